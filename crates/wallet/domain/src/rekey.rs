//! The wallet's part of a key rotation (`yizhan key rotate`). The wallet seals
//! nothing; it keeps only keyed hashes of pay codes, which cannot be carried
//! to a new key. Codes nobody has used yet (they live a minute) are dropped:
//! a customer's screen draws a new one. Used codes stay as the record of what
//! they paid. Static QR codes are signed, not stored: those printed before the
//! rotation check against the previous key while the operator keeps it.

use yizhan_core::{Result, Tx};

/// Drop the pay codes not yet used; returns how many.
pub async fn rekey(tx: &mut Tx) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM paycodes WHERE used_at_ms IS NULL").execute(tx.conn()).await?.rows_affected())
}
