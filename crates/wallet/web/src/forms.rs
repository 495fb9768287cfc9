//! What the wallet's forms read and show: amounts typed in yuan, the
//! idempotency key a money form carries, the words for a ledger category.

use rand::RngCore;
use yizhan_core::money::parse_yuan;
use yizhan_core::Error;
use yizhan_kit::Lang;

/// A fresh idempotency key for a form that moves money.
pub fn form_key() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("web-{}", hex::encode(b))
}

/// An amount typed in yuan ("12.50"), in fen.
pub fn yuan_field(s: &str, field: &str) -> Result<i64, Error> {
    parse_yuan(s).ok_or_else(|| Error::field(field, "wallet.amount_yuan_hint"))
}

/// The words for a ledger category, or the category itself if the catalogue has none.
pub fn category_label(lang: Lang, category: &str) -> String {
    lang.tk_or("category", category).to_string()
}
