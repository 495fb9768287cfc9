//! Icons as inline SVG, drawn with the text's colour: emoji and symbol
//! characters show as empty boxes on devices without the font.

macro_rules! wrap {
    ($body:literal) => {
        concat!(
            r#"<svg viewBox="0 0 24 24" width="28" height="28" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">"#,
            $body,
            "</svg>"
        )
    };
}

/// The icons there are.
pub const NAMES: &[&str] =
    &["purse", "inbox", "eye", "scan", "barcode", "send", "list", "bars", "envelope", "receipt", "gear"];

/// 24×24 line icons by name; an unknown name gets a plain circle.
pub fn svg(name: &str) -> &'static str {
    match name {
        "purse" => wrap!(
            r#"<rect x="3" y="6" width="18" height="13" rx="2"/><path d="M3 9h15a3 3 0 0 1 3 3v1h-5a2 2 0 0 0 0 4h5"/><path d="M6 6l9-3 1 3"/>"#
        ),
        "inbox" => wrap!(r#"<rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3 7l9 6 9-6"/>"#),
        "eye" => {
            wrap!(r#"<path d="M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12z"/><circle cx="12" cy="12" r="3"/>"#)
        }
        "scan" => wrap!(
            r#"<path d="M4 8V5a1 1 0 0 1 1-1h3M16 4h3a1 1 0 0 1 1 1v3M20 16v3a1 1 0 0 1-1 1h-3M8 20H5a1 1 0 0 1-1-1v-3"/><path d="M4 12h16"/>"#
        ),
        "barcode" => wrap!(r#"<path d="M4 5v14M7 5v14M10 5v14M14 5v14M16 5v14M20 5v14"/>"#),
        "send" => wrap!(r#"<path d="M4 12h14M13 6l6 6-6 6"/>"#),
        "list" => wrap!(
            r#"<path d="M8 6h12M8 12h12M8 18h12"/><circle cx="4" cy="6" r="1"/><circle cx="4" cy="12" r="1"/><circle cx="4" cy="18" r="1"/>"#
        ),
        "bars" => wrap!(
            r#"<path d="M4 20h16"/><rect x="5" y="11" width="3" height="7"/><rect x="10.5" y="6" width="3" height="12"/><rect x="16" y="9" width="3" height="9"/>"#
        ),
        "envelope" => wrap!(
            r#"<rect x="5" y="3" width="14" height="18" rx="2"/><path d="M5 8c4 3 10 3 14 0"/><circle cx="12" cy="11" r="2"/>"#
        ),
        "receipt" => {
            wrap!(r#"<path d="M6 3h12v18l-2-1.5-2 1.5-2-1.5-2 1.5-2-1.5L6 21z"/><path d="M9 8h6M9 12h6M9 16h3"/>"#)
        }
        "gear" => wrap!(
            r#"<circle cx="12" cy="12" r="3"/><path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1"/>"#
        ),
        _ => wrap!(r#"<circle cx="12" cy="12" r="8"/>"#),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_icon_is_one_svg_element() {
        for n in super::NAMES.iter().copied().chain(["?"]) {
            let s = super::svg(n);
            assert!(s.starts_with("<svg ") && s.ends_with("</svg>") && s.matches("<svg").count() == 1, "{n}");
            // Each named icon is its own drawing, not the fallback circle.
            assert!(n == "?" || s != super::svg("?"), "{n}");
        }
    }
}
