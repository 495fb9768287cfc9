//! The wallet room's catalogue: every key its code uses has words, rows sorted.

use std::collections::HashSet;
use std::path::Path;
use yizhan_wallet_web::texts::TEXTS;

/// The quoted strings of the wallet's sources that look like catalogue keys.
fn keys_in(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            keys_in(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("texts.rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for (i, piece) in src.split('"').enumerate() {
            let looks_like_key = i % 2 == 1
                && ["ledger.", "pay.", "qr.", "wallet.", "error.not_found."].iter().any(|p| piece.starts_with(p))
                && piece.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
                && !piece.ends_with('.')
                && !piece.ends_with(".html");
            if looks_like_key {
                out.push((piece.to_string(), path.display().to_string()));
            }
        }
        // EMVCo's reasons are named without their prefix.
        for piece in src.split("invalid(\"").skip(1) {
            let name = piece.split('"').next().unwrap();
            out.push((format!("qr.invalid.{name}"), path.display().to_string()));
        }
    }
}

#[test]
fn a_reason_given_as_a_key_has_its_own_arguments_filled() {
    use yizhan_core::Msg;
    use yizhan_kit::{i18n, Lang};
    yizhan_app::install();
    let m = Msg::new("ledger.linked_failed")
        .int("index", 3)
        .int("count", 3)
        .key_arg("reason", "ledger.insufficient_funds")
        .fen("available", 394)
        .fen("needed", 500);
    assert_eq!(
        i18n::render(Lang::En, &m),
        "Payment 3 of 3 failed, so none was made: Only 3.94 yuan is available; 5.00 yuan is needed"
    );
    assert_eq!(
        i18n::render(Lang::Zh, &m),
        "3 笔付款中的第 3 笔失败，所有付款均未执行：可用余额只有 3.94 元，需要 5.00 元"
    );
}

#[test]
fn every_key_the_wallet_uses_has_words_and_the_rows_are_sorted() {
    let have: HashSet<&str> = TEXTS.iter().map(|t| t.0).collect();
    assert_eq!(have.len(), TEXTS.len(), "a key is defined twice");
    assert!(TEXTS.windows(2).all(|w| w[0].0 < w[1].0), "rows are sorted by key");
    // Notification kinds look like keys but are not texts.
    let kinds = [
        "pay.bill",
        "pay.paycode_charged",
        "pay.paycode_confirm",
        "pay.pin_dropped",
        "pay.red_packet",
        "pay.red_packet_refund",
        "pay.received",
        "pay.withdrawal_settled",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut used = Vec::new();
    for dir in ["src", "../domain/src", "../ledger/src"] {
        keys_in(&root.join(dir), &mut used);
    }
    assert!(used.len() > 100, "the scan found the keys");
    let missing: Vec<_> =
        used.iter().filter(|(k, _)| !have.contains(k.as_str()) && !kinds.contains(&k.as_str())).collect();
    assert!(missing.is_empty(), "keys without words: {missing:?}");
    for (k, _, zh) in TEXTS {
        // Placeholders are names for programs, not words.
        let words: String = zh.split('{').map(|p| p.split_once('}').map_or(p, |(_, rest)| rest)).collect();
        let english = words.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| w.len() > 1);
        for w in english {
            assert!(
                ["QR", "PIN", "CNY", "CRC", "CN", "json", "svg", "png"].contains(&w) || k.starts_with("pay.bill.plate"),
                "{k}: English word {w:?} in the Chinese text"
            );
        }
    }
}
