//! Moving the identity room's secrets to a new vault key (`yizhan key rotate`):
//! every sealed identity number is opened with the old key and sealed with the
//! new one, its blind index recomputed, inside the rotation's transaction.
//! A dispute's sealed evidence (the claimant's number) is re-sealed the same
//! way, and its subject (the number's blind index) recomputed, and so is each
//! second factor's TOTP secret (context `totp:USER`). Recovery codes are plain
//! hashes, not keyed: they stay as they are.
//!
//! What the room only ever stored as a keyed hash of something it does not
//! keep cannot be carried over: log-in limit counters and the addresses a
//! login succeeded from are dropped (counters start afresh, owners' known
//! addresses are learnt again at their next log-in), and so are the one-time
//! codes sent to logins (a person asks for a new one). The keyed hash of a
//! vehicle registration certificate is kept as it was, with its last four
//! digits: it is the record of which certificate was shown, never looked up.

use yizhan_core::db::Tx;
use yizhan_core::{Error, Result, Vault};

/// Rows read and rewritten at a time, so memory stays flat however many people there are.
const PAGE: i64 = 500;

/// What a rotation did in this room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub id_numbers: u64,
    pub disputes: u64,
    pub totp_secrets: u64,
    pub login_limits_dropped: u64,
    pub known_addresses_dropped: u64,
}

#[derive(sqlx::FromRow)]
struct SealedRow {
    id: String,
    id_cipher: String,
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    user_id: String,
    secret_cipher: String,
}

#[derive(sqlx::FromRow)]
struct DisputeRow {
    id: String,
    kind: String,
    claimant_user_id: String,
    id_cipher: String,
}

/// Re-seal and re-index under `new`; `progress` is told each row done.
pub async fn rekey(tx: &mut Tx, old: &Vault, new: &Vault, progress: &(dyn Fn(u64) + Sync)) -> Result<RekeyReport> {
    let mut report = RekeyReport::default();
    // The new indexes go in first under a prefix no old one has, then lose it,
    // so no new value can meet an old one in the UNIQUE index half-way.
    let mut after = String::new();
    loop {
        let rows: Vec<SealedRow> = sqlx::query_as(
            "SELECT id, id_cipher FROM users WHERE id_cipher IS NOT NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(tx.conn())
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        for row in rows {
            let context = format!("id_number:{}", row.id);
            let plain = old.open(&row.id_cipher, &context)?;
            let number = String::from_utf8(plain).map_err(Error::internal)?;
            let sealed = new.seal(number.as_bytes(), &context)?;
            let index = format!("rekey:{}", new.blind_index("id_number", &number));
            sqlx::query("UPDATE users SET id_cipher = $1, id_index = $2 WHERE id = $3")
                .bind(&sealed)
                .bind(&index)
                .bind(&row.id)
                .execute(tx.conn())
                .await?;
            report.id_numbers += 1;
            progress(1);
        }
    }
    sqlx::query("UPDATE users SET id_index = SUBSTR(id_index, 7) WHERE id_index LIKE 'rekey:%'")
        .execute(tx.conn())
        .await?;
    let mut after = String::new();
    loop {
        let rows: Vec<DisputeRow> = sqlx::query_as(
            "SELECT id, kind, claimant_user_id, id_cipher FROM identity_disputes
             WHERE id_cipher IS NOT NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(tx.conn())
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        for row in rows {
            let context = format!("id_number:{}", row.claimant_user_id);
            let number = String::from_utf8(old.open(&row.id_cipher, &context)?).map_err(Error::internal)?;
            let sealed = new.seal(number.as_bytes(), &context)?;
            let q = if row.kind == "id_number" {
                sqlx::query("UPDATE identity_disputes SET id_cipher = $1, subject_key = $2 WHERE id = $3")
                    .bind(sealed)
                    .bind(new.blind_index("id_number", &number))
                    .bind(&row.id)
            } else {
                sqlx::query("UPDATE identity_disputes SET id_cipher = $1 WHERE id = $2").bind(sealed).bind(&row.id)
            };
            q.execute(tx.conn()).await?;
            report.disputes += 1;
            progress(1);
        }
    }
    let mut after = String::new();
    loop {
        let rows: Vec<TotpRow> = sqlx::query_as(
            "SELECT user_id, secret_cipher FROM identity_totp WHERE user_id > $1 ORDER BY user_id LIMIT $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(tx.conn())
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.user_id.clone();
        for row in rows {
            let context = format!("totp:{}", row.user_id);
            let sealed = new.seal(&old.open(&row.secret_cipher, &context)?, &context)?;
            sqlx::query("UPDATE identity_totp SET secret_cipher = $1 WHERE user_id = $2")
                .bind(sealed)
                .bind(&row.user_id)
                .execute(tx.conn())
                .await?;
            report.totp_secrets += 1;
            progress(1);
        }
    }
    report.login_limits_dropped = sqlx::query("DELETE FROM login_limits").execute(tx.conn()).await?.rows_affected();
    sqlx::query("DELETE FROM identity_login_codes").execute(tx.conn()).await?;
    report.known_addresses_dropped =
        sqlx::query("DELETE FROM login_known_addresses").execute(tx.conn()).await?.rows_affected();
    Ok(report)
}

/// How many rows [`rekey`] will rewrite, for a progress bar.
pub async fn rekey_size(db: &yizhan_core::Db) -> Result<u64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE id_cipher IS NOT NULL").fetch_one(&db.pool).await?;
    let (d,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM identity_disputes WHERE id_cipher IS NOT NULL")
        .fetch_one(&db.pool)
        .await?;
    let (t,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM identity_totp").fetch_one(&db.pool).await?;
    Ok(u64::try_from(n + d + t).unwrap_or(0))
}
