//! The wallet's part of a key rotation (`yizhan key rotate`). The wallet seals
//! nothing; it keeps only keyed hashes, which cannot be carried to a new key:
//! - pay codes nobody has used yet (they live a minute) are dropped: a
//!   customer's screen draws a new one; used codes stay as the record of what
//!   they paid;
//! - payment PINs are hashed over a MAC with the key (so a copy of the
//!   database cannot be tried offline): they are dropped, and after the
//!   rotation each person is told to set a new one ([`Pay::tell_pin_dropped`]);
//!   until then a large pay code charge asks for a confirmation without one.
//!
//! Static QR codes are signed, not stored: those printed before the rotation
//! check against the previous key while the operator keeps it.

use crate::Pay;
use yizhan_core::{Msg, Result, Tx};
use yizhan_notify::{Message, Target};

/// What a rotation did in the wallet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub paycodes_dropped: u64,
    /// The people whose payment PIN was dropped, to be told.
    pub pins_dropped: Vec<String>,
}

/// Drop the pay codes not yet used and the payment PINs.
pub async fn rekey(tx: &mut Tx) -> Result<RekeyReport> {
    let paycodes_dropped =
        sqlx::query("DELETE FROM paycodes WHERE used_at_ms IS NULL").execute(tx.conn()).await?.rows_affected();
    let pins: Vec<(String,)> =
        sqlx::query_as("SELECT user_id FROM payment_pins ORDER BY user_id").fetch_all(tx.conn()).await?;
    sqlx::query("DELETE FROM payment_pins").execute(tx.conn()).await?;
    Ok(RekeyReport { paycodes_dropped, pins_dropped: pins.into_iter().map(|r| r.0).collect() })
}

impl Pay {
    /// Tell a person their payment PIN was dropped by a key rotation.
    pub async fn tell_pin_dropped(&self, user_id: &str) {
        self.tell(
            user_id,
            Message {
                kind: "pay.pin_dropped".into(),
                title: Msg::new("pay.notice.pin_dropped.title"),
                body: Msg::new("pay.notice.pin_dropped.body"),
                target: Some(Target::new("wallet_settings", user_id)),
            },
        )
        .await;
    }
}
