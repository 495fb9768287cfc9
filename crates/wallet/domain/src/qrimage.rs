//! Pictures of codes: QR as SVG or PNG, and the Code 128 barcode printed under
//! a customer's pay code (shop scanners read either).

use qrcode::types::Color;
use qrcode::{EcLevel, QrCode};
use yizhan_core::{Error, Result};

/// Light modules around a QR symbol, as the standard asks.
pub const QUIET_ZONE_MODULES: u32 = 4;
/// Light modules either side of a barcode (the standard asks for 10).
pub const BARCODE_QUIET_MODULES: u32 = 10;
/// Largest pixel size of one module we draw, to bound the image we allocate.
pub const MAX_MODULE_PX: u32 = 40;

fn qr(payload: &str) -> Result<QrCode> {
    QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .map_err(|e| Error { source: Some(anyhow::anyhow!("{e}")), ..Error::field("payload", "qr.draw_failed") })
}

/// The QR code as an SVG document, `module_px` units per module, with its quiet zone.
pub fn qr_svg(payload: &str, module_px: u32) -> Result<String> {
    let module_px = module_px.clamp(1, MAX_MODULE_PX);
    let code = qr(payload)?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().quiet_zone(true).module_dimensions(module_px, module_px).build())
}

/// Side of the PNG [`qr_png`] draws, in pixels: (modules + 2 × quiet zone) × module_px.
pub fn qr_png_side(payload: &str, module_px: u32) -> Result<u32> {
    let modules = u32::try_from(qr(payload)?.width()).map_err(Error::internal)?;
    Ok((modules + 2 * QUIET_ZONE_MODULES) * module_px.clamp(1, MAX_MODULE_PX))
}

/// The QR code as an 8-bit greyscale PNG, each module `module_px` pixels square.
pub fn qr_png(payload: &str, module_px: u32) -> Result<Vec<u8>> {
    let module_px = module_px.clamp(1, MAX_MODULE_PX);
    let code = qr(payload)?;
    let modules = code.width();
    let colors = code.to_colors();
    let quiet = QUIET_ZONE_MODULES as usize;
    let px = module_px as usize;
    let side = (modules + 2 * quiet) * px;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules, i / modules);
        for dy in 0..px {
            let row = (my + quiet) * px + dy;
            let start = row * side + (mx + quiet) * px;
            pixels[start..start + px].fill(0);
        }
    }
    let side_u32 = u32::try_from(side).map_err(Error::internal)?;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side_u32, side_u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(Error::internal)?;
        w.write_image_data(&pixels).map_err(Error::internal)?;
        w.finish().map_err(Error::internal)?;
    }
    Ok(out)
}

/// Bar/space widths of Code 128 symbols 0..=105; the stop symbol is separate.
/// Each symbol is 11 modules wide: bar, space, bar, space, bar, space.
const CODE128: [&str; 106] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213", "221312",
    "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132", "221231", "213212",
    "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211", "212123", "212321", "232121",
    "111323", "131123", "131321", "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331",
    "132131", "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131", "311123",
    "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111", "111224", "111422", "121124",
    "121421", "141122", "141221", "112214", "112412", "122114", "122411", "142112", "142211", "241211", "221114",
    "413111", "241112", "134111", "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112",
    "421211", "212141", "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232",
];
const CODE128_STOP: &str = "2331112";
const START_C: usize = 105;

/// The symbol values of a Code 128 subset C barcode: start C, one symbol per
/// digit pair, checksum, (stop is added when drawing).
pub fn code128c_symbols(digits: &str) -> Result<Vec<usize>> {
    if digits.is_empty() || !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::field("digits", "qr.barcode.digits_even"));
    }
    if digits.len() > 80 {
        return Err(Error::field_msg("digits", yizhan_core::Msg::new("qr.barcode.too_many").int("max", 80)));
    }
    let mut symbols = vec![START_C];
    for pair in digits.as_bytes().chunks(2) {
        symbols.push(usize::from(pair[0] - b'0') * 10 + usize::from(pair[1] - b'0'));
    }
    let weighted: usize = symbols.iter().enumerate().map(|(i, s)| if i == 0 { *s } else { i * s }).sum();
    symbols.push(weighted % 103);
    Ok(symbols)
}

/// Module widths, alternating bar and space and starting with a bar, of the whole symbol.
pub fn code128c_widths(digits: &str) -> Result<Vec<u8>> {
    let mut widths = Vec::new();
    for s in code128c_symbols(digits)? {
        widths.extend(CODE128[s].bytes().map(|b| b - b'0'));
    }
    widths.extend(CODE128_STOP.bytes().map(|b| b - b'0'));
    Ok(widths)
}

/// A Code 128 (subset C) barcode of an even number of digits, as SVG with the
/// digits printed beneath.
pub fn code128_svg(digits: &str, module_px: u32, height_px: u32) -> Result<String> {
    let module_px = module_px.clamp(1, MAX_MODULE_PX);
    let widths = code128c_widths(digits)?;
    let total_modules: u32 = widths.iter().map(|w| u32::from(*w)).sum::<u32>() + 2 * BARCODE_QUIET_MODULES;
    let w = total_modules * module_px;
    let text_px = 18;
    let h = height_px.max(20) + text_px + 4;
    let mut path = String::new();
    let mut x = BARCODE_QUIET_MODULES * module_px;
    for (i, width) in widths.iter().enumerate() {
        let wpx = u32::from(*width) * module_px;
        if i % 2 == 0 {
            path.push_str(&format!("M{x} 0h{wpx}v{}h-{wpx}z", height_px.max(20)));
        }
        x += wpx;
    }
    Ok(format!(
        concat!(
            r#"<?xml version="1.0" standalone="yes"?>"#,
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" viewBox="0 0 {w} {h}" shape-rendering="crispEdges">"#,
            r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/>"##,
            r##"<path fill="#000" d="{path}"/>"##,
            r##"<text x="{cx}" y="{ty}" font-family="monospace" font-size="{fs}" text-anchor="middle" fill="#000">{digits}</text>"##,
            "</svg>"
        ),
        w = w,
        h = h,
        path = path,
        cx = w / 2,
        ty = height_px.max(20) + text_px,
        fs = text_px - 2,
        digits = digits,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_decodes_with_the_expected_size() {
        let payload = "00020101021126130009cn.yizhan5204000053031565802CN5903Ada6007Beijing6304ABCD";
        let bytes = qr_png(payload, 4).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let modules = u32::try_from(QrCode::with_error_correction_level(payload, EcLevel::M).unwrap().width()).unwrap();
        let side = (modules + 8) * 4;
        assert_eq!((info.width, info.height), (side, side));
        assert_eq!(qr_png_side(payload, 4).unwrap(), side);
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        let px = |x: u32, y: u32| buf[(y * side + x) as usize];
        // Quiet zone is light; the finder pattern's top-left corner module is dark, fully scaled.
        for i in 0..16 {
            assert_eq!(px(i, i), 255);
            assert_eq!(px(side - 1 - i, i), 255);
        }
        for dy in 0..4 {
            for dx in 0..4 {
                assert_eq!(px(16 + dx, 16 + dy), 0);
            }
        }
        // Finder pattern: 7 dark modules then the light separator.
        assert_eq!(px(16 + 6 * 4, 16), 0);
        assert_eq!(px(16 + 7 * 4, 16), 255);
    }

    #[test]
    fn svg_is_an_svg_document() {
        let s = qr_svg("hello", 8).unwrap();
        assert!(s.contains("<svg") && s.ends_with("</svg>"));
        // 21 modules + 8 quiet, 8 px each.
        assert!(s.contains(r#"width="232""#), "{}", &s[..200]);
    }

    #[test]
    fn code128_table_is_well_formed() {
        for (i, p) in CODE128.iter().enumerate() {
            let w: Vec<u32> = p.bytes().map(|b| u32::from(b - b'0')).collect();
            assert_eq!(w.iter().sum::<u32>(), 11, "symbol {i}");
            // Code 128 symbols have an even number of bar modules.
            assert_eq!((w[0] + w[2] + w[4]) % 2, 0, "symbol {i}");
            assert!(w.iter().all(|x| (1..=4).contains(x)), "symbol {i}");
        }
        let mut sorted = CODE128.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 106);
        assert_eq!(CODE128_STOP.bytes().map(|b| u32::from(b - b'0')).sum::<u32>(), 13);
    }

    #[test]
    fn code128c_checksum_and_decoding() {
        // Worked example: start C (105) + 1×12 + 2×34 + 3×56 = 353; 353 mod 103 = 44.
        assert_eq!(code128c_symbols("123456").unwrap(), vec![105, 12, 34, 56, 44]);
        let digits = "283746501928374650";
        let widths = code128c_widths(digits).unwrap();
        assert_eq!(widths.len(), 6 * (digits.len() / 2 + 2) + 7);
        // Read it back the way a scanner does: 6 widths at a time against the table.
        let mut out = String::new();
        let syms: Vec<usize> = widths[..widths.len() - 7]
            .chunks(6)
            .map(|c| {
                let s: String = c.iter().map(|w| char::from(b'0' + w)).collect();
                CODE128.iter().position(|p| *p == s).unwrap()
            })
            .collect();
        assert_eq!(syms[0], START_C);
        let check = syms[syms.len() - 1];
        let data = &syms[1..syms.len() - 1];
        let weighted: usize = 105 + data.iter().enumerate().map(|(i, s)| (i + 1) * s).sum::<usize>();
        assert_eq!(weighted % 103, check);
        for s in data {
            out.push_str(&format!("{s:02}"));
        }
        assert_eq!(out, digits);
        let svg = code128_svg(digits, 2, 60).unwrap();
        assert!(svg.contains(digits) && svg.contains("<path"));
    }

    #[test]
    fn code128c_refuses_odd_or_non_digit_input() {
        assert!(code128c_symbols("123").is_err());
        assert!(code128c_symbols("12a4").is_err());
        assert!(code128c_symbols("").is_err());
    }
}
