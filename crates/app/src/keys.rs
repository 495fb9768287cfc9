//! Rotating the vault key (`yizhan key rotate`): every room that keeps data
//! under the key moves it to the new one, in ONE transaction that also
//! records the new key's fingerprint, so the database is wholly under the old
//! key or wholly under the new one, whatever happens. A room that starts
//! keeping sealed data or keyed hashes adds its step here.

use yizhan_core::{Db, Result, Vault};

/// What a rotation did, room by room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub identity: yizhan_identity::rekey::RekeyReport,
    pub access_logs: yizhan_audit::RekeyReport,
    pub wallet: yizhan_pay::rekey::RekeyReport,
}

/// Rows a rotation will go through (for a progress bar).
pub async fn rotation_size(db: &Db) -> Result<u64> {
    Ok(yizhan_identity::rekey::rekey_size(db).await? + yizhan_audit::rekey_size(db).await?)
}

/// Move the database from `old` to `new`. Refused, changing nothing, when the
/// database is not under `old` or an access log does not verify under it.
/// Every server process must be stopped first: one still holding the old key
/// would seal new data the new key cannot open (the sweep stops such a
/// process when it notices, see [`key_still_current`]).
pub async fn rotate(
    db: &Db,
    old: &Vault,
    new: &Vault,
    now_ms: i64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RotationReport> {
    let mut tx = db.begin().await?;
    old.hand_over(&mut tx, new).await?;
    let identity = yizhan_identity::rekey::rekey(&mut tx, old, new, progress).await?;
    let access_logs = yizhan_audit::rekey(&mut tx, old, new, now_ms, progress).await?;
    let wallet = yizhan_pay::rekey::rekey(&mut tx).await?;
    tx.commit().await?;
    Ok(RotationReport { identity, access_logs, wallet })
}

/// After a rotation, with the services under the new key: tell the people
/// what they must set again.
pub async fn after_rotation(pay: &yizhan_pay::Pay, report: &RotationReport) {
    for user_id in &report.wallet.pins_dropped {
        pay.tell_pin_dropped(user_id).await;
    }
}

/// Whether the database still records this process's key (a rotation by
/// another process changes it).
pub async fn key_still_current(db: &Db, vault: &Vault) -> Result<bool> {
    Ok(Vault::recorded_fingerprint(db).await?.is_none_or(|f| f == vault.fingerprint()))
}
