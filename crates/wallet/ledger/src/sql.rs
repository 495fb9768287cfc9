//! SQL shared by the batcher and the readers.

use crate::types::{Account, Balance, Hold, HoldState, Transfer, TransferKind};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::fmt::Write;
use yizhan_core::{Engine, Error, Params, Result};

pub(crate) const TRANSFER_COLS: &str = "seq, id, kind, debit_account_id, credit_account_id, amount_fen, currency, \
     category, memo, pending_id, expires_at_ms, refers_to, linked_group, idempotency_key, created_at_ms";
/// Columns written: the transfer's plus `seq_block`.
pub(crate) const INSERT_COLS: &str = "seq, id, kind, debit_account_id, credit_account_id, amount_fen, currency, \
     category, memo, pending_id, expires_at_ms, refers_to, linked_group, idempotency_key, created_at_ms, seq_block";
pub(crate) const INSERT_NCOLS: usize = 16;

/// Transfers per history block (`seq_block = seq >> SEQ_BLOCK_SHIFT`; migration 0002 uses 14 too).
pub(crate) const SEQ_BLOCK_SHIFT: u32 = 14;

pub(crate) const ACCOUNT_COLS: &str = "id, kind, currency, allow_negative, credit_limit_fen, posted_fen, \
     pending_debit_fen, pending_credit_fen, created_at_ms";

pub(crate) const PENDING_COLS: &str = "pending_id, debit_account_id, credit_account_id, amount_fen, currency, \
     category, expires_at_ms, state, resolved_by, resolved_at_ms, created_at_ms";
pub(crate) const PENDING_NCOLS: usize = 11;

/// Bind parameters one statement may carry.
pub(crate) fn max_binds(engine: Engine) -> usize {
    match engine {
        Engine::Sqlite => 32_766,
        Engine::Postgres => 65_535,
    }
}

/// Rows of `ncols` parameters per statement: under the engine's limit and `cap`.
pub(crate) fn rows_per_statement(engine: Engine, ncols: usize, cap: usize) -> usize {
    (max_binds(engine) / ncols).clamp(1, cap.max(1))
}

/// `($1,$2,$3), ($4,$5,$6)` for `rows` rows of `ncols` parameters (`?` on
/// SQLite: see [`Params`]).
pub(crate) fn values_list(out: &mut String, engine: Engine, rows: usize, ncols: usize) {
    let mut p = Params::new(engine);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push_str(&p.row(ncols));
    }
}

/// Like [`values_list`] but each parameter wrapped in `CAST($n AS type)`, for
/// `UPDATE … FROM (VALUES …)` where PostgreSQL has no column to infer types from.
pub(crate) fn typed_values_list(out: &mut String, engine: Engine, rows: usize, types: &[&str]) {
    let mut p = Params::new(engine);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for (c, ty) in types.iter().enumerate() {
            if c > 0 {
                out.push(',');
            }
            let _ = write!(out, "CAST({} AS {ty})", p.one());
        }
        out.push(')');
    }
}

/// `$1, $2, …, $n` (`?` on SQLite)
pub(crate) fn param_list(out: &mut String, engine: Engine, n: usize) {
    out.push_str(&Params::new(engine).list(n));
}

fn bad_row(what: &str, v: &str) -> Error {
    Error::internal(anyhow::anyhow!("ledger: stored {what} {v:?} is not known"))
}

pub(crate) fn transfer_from_row(row: &AnyRow) -> Result<Transfer> {
    let kind: String = row.try_get("kind")?;
    Ok(Transfer {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        kind: TransferKind::parse(&kind).ok_or_else(|| bad_row("transfer kind", &kind))?,
        debit_account_id: row.try_get("debit_account_id")?,
        credit_account_id: row.try_get("credit_account_id")?,
        amount_fen: row.try_get("amount_fen")?,
        currency: row.try_get("currency")?,
        category: row.try_get("category")?,
        memo: row.try_get("memo")?,
        pending_id: row.try_get("pending_id")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        refers_to: row.try_get("refers_to")?,
        linked_group: row.try_get("linked_group")?,
        idempotency_key: row.try_get("idempotency_key")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

pub(crate) fn account_from_row(row: &AnyRow) -> Result<Account> {
    let posted_fen: i64 = row.try_get("posted_fen")?;
    let pending_debit_fen: i64 = row.try_get("pending_debit_fen")?;
    let currency: String = row.try_get("currency")?;
    Ok(Account {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        allow_negative: row.try_get::<i64, _>("allow_negative")? != 0,
        credit_limit_fen: row.try_get("credit_limit_fen")?,
        balance: Balance {
            posted_fen,
            pending_debit_fen,
            pending_credit_fen: row.try_get("pending_credit_fen")?,
            available_fen: posted_fen - pending_debit_fen,
            currency: currency.clone(),
        },
        currency,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

pub(crate) fn hold_from_row(row: &AnyRow) -> Result<Hold> {
    let state: String = row.try_get("state")?;
    Ok(Hold {
        pending_id: row.try_get("pending_id")?,
        debit_account_id: row.try_get("debit_account_id")?,
        credit_account_id: row.try_get("credit_account_id")?,
        amount_fen: row.try_get("amount_fen")?,
        currency: row.try_get("currency")?,
        category: row.try_get("category")?,
        expires_at_ms: row.try_get("expires_at_ms")?,
        state: HoldState::parse(&state).ok_or_else(|| bad_row("hold state", &state))?,
        resolved_by: row.try_get("resolved_by")?,
        resolved_at_ms: row.try_get("resolved_at_ms")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}
