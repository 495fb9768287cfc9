//! Quotas counted outside a transfer: a movement that counts against a cap
//! before its money moves elsewhere (a top-up charged at the bank first, a
//! withdrawal held for the bank), and giving back what such a movement
//! counted. The caller's transaction holds the rows' locks: every function
//! here works inside it, so the count commits with whatever else the caller
//! writes. A transfer with [`crate::Quota`] counts in its batch instead;
//! both keep `used_fen <= cap` for every decision, and the batcher writes a
//! quota only if nobody moved it since it was read (else the batch runs
//! again with the rows locked).

use std::collections::HashMap;
use yizhan_core::{Engine, Error, Params, Result};

/// Rows in one statement at most.
const ROWS: usize = 200;

/// One count asked for.
#[derive(Debug, Clone)]
pub struct Take {
    pub key: String,
    pub amount_fen: i64,
    pub cap_fen: i64,
}

/// Counts each take in order, or refuses it (`false`) if it would pass its
/// cap; counted amounts are written back before returning. The rows are
/// created if missing, then read (on PostgreSQL locked, in key order), so
/// two callers counting the same key are decided one after the other.
pub async fn take_within(conn: &mut sqlx::AnyConnection, takes: &[Take]) -> Result<Vec<bool>> {
    let mut keys: Vec<&str> = takes.iter().map(|t| t.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut used = read(conn, &keys, true).await?;
    let before = used.clone();
    let mut out = Vec::with_capacity(takes.len());
    for t in takes {
        let n = used.entry(t.key.clone()).or_insert(0);
        let pass = t.amount_fen >= 0 && n.checked_add(t.amount_fen).is_some_and(|after| after <= t.cap_fen);
        if pass {
            *n += t.amount_fen;
        }
        out.push(pass);
    }
    let moved: Vec<(&str, i64, i64)> = used
        .iter()
        .filter_map(|(k, n)| {
            let was = before.get(k).copied().unwrap_or(0);
            (was != *n).then_some((k.as_str(), *n, was))
        })
        .collect();
    write_guarded(conn, &moved, &[]).await?;
    Ok(out)
}

/// Takes `amount_fen` back off `key` (never below zero): the movement it
/// was counted for was refused for good.
pub async fn give_back(conn: &mut sqlx::AnyConnection, key: &str, amount_fen: i64) -> Result<()> {
    sqlx::query("UPDATE ledger_quotas SET used_fen = used_fen - $1 WHERE key = $2 AND used_fen >= $1")
        .bind(amount_fen)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// What is counted under `key` (0 if nothing was).
pub async fn used(pool: &sqlx::AnyPool, key: &str) -> Result<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT used_fen FROM ledger_quotas WHERE key = $1").bind(key).fetch_optional(pool).await?;
    Ok(row.map_or(0, |r| r.0))
}

/// The rows of `keys` (sorted, distinct), created at 0 first when `create`;
/// on PostgreSQL locked in key order.
pub(crate) async fn read(conn: &mut sqlx::AnyConnection, keys: &[&str], create: bool) -> Result<HashMap<String, i64>> {
    let postgres = Params::of(conn).engine() == Engine::Postgres;
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(ROWS) {
        if create {
            create_rows(conn, chunk).await?;
        }
        let list = Params::of(conn).list(chunk.len());
        let lock = if postgres { " ORDER BY key COLLATE \"C\" FOR UPDATE" } else { "" };
        let sql = format!("SELECT key, used_fen FROM ledger_quotas WHERE key IN ({list}){lock}");
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for k in chunk {
            q = q.bind(*k);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

async fn create_rows(conn: &mut sqlx::AnyConnection, keys: &[&str]) -> Result<()> {
    let mut p = Params::of(conn);
    let values: Vec<String> = (0..keys.len()).map(|_| format!("({}, 0)", p.one())).collect();
    let sql =
        format!("INSERT INTO ledger_quotas (key, used_fen) VALUES {} ON CONFLICT (key) DO NOTHING", values.join(", "));
    let mut q = sqlx::query(&sql);
    for k in keys {
        q = q.bind(*k);
    }
    q.execute(conn).await?;
    Ok(())
}

/// Writes each `(key, used, was)` (first creating the rows of `missing`,
/// read as absent) only where the row still holds `was`: a count that
/// moved since it was read fails the write (and so the caller's
/// transaction) instead of being lost.
pub(crate) async fn write_guarded(
    conn: &mut sqlx::AnyConnection,
    moved: &[(&str, i64, i64)],
    missing: &[&str],
) -> Result<()> {
    let mut missing = missing.to_vec();
    missing.sort_unstable();
    for chunk in missing.chunks(ROWS) {
        create_rows(conn, chunk).await?;
    }
    let mut sorted = moved.to_vec();
    sorted.sort_unstable();
    let engine = Params::of(conn).engine();
    for chunk in sorted.chunks(ROWS) {
        let mut sql = String::from("UPDATE ledger_quotas SET used_fen = v.column2 FROM (VALUES ");
        crate::sql::typed_values_list(&mut sql, engine, chunk.len(), &["TEXT", "BIGINT", "BIGINT"]);
        sql.push_str(") AS v WHERE ledger_quotas.key = v.column1 AND ledger_quotas.used_fen = v.column3");
        let mut q = sqlx::query(&sql);
        for (k, n, was) in chunk {
            q = q.bind(*k).bind(*n).bind(*was);
        }
        let done = q.execute(&mut *conn).await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(Error::internal(anyhow::anyhow!("ledger: a quota moved under the batch")));
        }
    }
    Ok(())
}
