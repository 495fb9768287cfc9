//! The wallet's form helpers: amounts in yuan, form keys, category words.

use yizhan_kit::Lang;
use yizhan_wallet_web::forms::{category_label, form_key, yuan_field};

#[test]
fn yuan_fields_parse_or_name_the_field() {
    assert_eq!(yuan_field("12.50", "amount").unwrap(), 1250);
    assert_eq!(yuan_field(" 3 ", "amount").unwrap(), 300);
    for bad in ["", "abc", "1.234", "-1", "1e3"] {
        assert_eq!(yuan_field(bad, "amount").unwrap_err().fields[0].field, "amount", "{bad}");
    }
    assert!(form_key().len() <= yizhan_pay::MAX_IDEMPOTENCY_KEY_CHARS);
    assert_ne!(form_key(), form_key());
}

#[test]
fn every_category_has_words() {
    use yizhan_pay::category::*;
    yizhan_app::install();
    for c in [TOPUP, WITHDRAWAL, P2P, QR, PAYCODE, RED_PACKET, RED_PACKET_REFUND, BILL] {
        assert_ne!(category_label(Lang::Zh, c), c, "{c}");
    }
    for k in yizhan_pay::BillKind::ALL {
        assert_ne!(category_label(Lang::Zh, k.as_str()), k.as_str(), "{k:?}");
    }
}
