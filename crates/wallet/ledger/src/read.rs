//! Reads go straight to the pool; they never wait for the batcher.

use crate::sql::{self, ACCOUNT_COLS, PENDING_COLS, SEQ_BLOCK_SHIFT, TRANSFER_COLS};
use crate::types::{Account, CategorySum, CheckReport, HistoryFilter, HistoryItem, Hold, Page, Transfer};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};
use yizhan_core::{Ctx, Engine, Error, Fen, Result};

/// Most history items one page returns.
pub const MAX_PAGE: i64 = 200;

/// Accounts looked up for many callers at once (a wallet's balance on every
/// home screen): one query for every lookup waiting.
pub(crate) struct AccountReads;

impl yizhan_core::group::ReadBatch for AccountReads {
    type Op = String;
    type Out = Account;
    fn read<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        ops: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<Vec<Result<Account>>>> {
        Box::pin(async move {
            let mut found: std::collections::HashMap<String, Account> = std::collections::HashMap::new();
            for chunk in ops.chunks(256) {
                let list = yizhan_core::Params::of(conn).list(chunk.len());
                let sql = format!("SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE id IN ({list})");
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(id);
                }
                for row in q.fetch_all(&mut *conn).await? {
                    let a = sql::account_from_row(&row)?;
                    found.insert(a.id.clone(), a);
                }
            }
            Ok(ops.iter().map(|id| found.get(id).cloned().ok_or_else(|| Error::not_found("ledger_account"))).collect())
        })
    }
}

pub(crate) async fn account(ctx: &Ctx, id: &str) -> Result<Account> {
    let row = sqlx::query(&format!("SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE id = $1"))
        .bind(id)
        .fetch_optional(&ctx.db.pool)
        .await?
        .ok_or_else(|| Error::not_found("ledger_account"))?;
    sql::account_from_row(&row)
}

pub(crate) async fn transfer(ctx: &Ctx, id: &str) -> Result<Transfer> {
    let row = sqlx::query(&format!("SELECT {TRANSFER_COLS} FROM ledger_transfers WHERE id = $1"))
        .bind(id)
        .fetch_optional(&ctx.db.pool)
        .await?
        .ok_or_else(|| Error::not_found("transfer"))?;
    sql::transfer_from_row(&row)
}

pub(crate) async fn transfer_by_key(ctx: &Ctx, key: &str) -> Result<Option<Transfer>> {
    let row = sqlx::query(&format!("SELECT {TRANSFER_COLS} FROM ledger_transfers WHERE idempotency_key = $1"))
        .bind(key)
        .fetch_optional(&ctx.db.pool)
        .await?;
    row.as_ref().map(sql::transfer_from_row).transpose()
}

pub(crate) async fn hold(ctx: &Ctx, pending_id: &str) -> Result<Hold> {
    let row = sqlx::query(&format!("SELECT {PENDING_COLS} FROM ledger_pending WHERE pending_id = $1"))
        .bind(pending_id)
        .fetch_optional(&ctx.db.pool)
        .await?
        .ok_or_else(|| Error::not_found("hold"))?;
    sql::hold_from_row(&row)
}

/// `$first,$first+1,…` for `n` parameters.
fn params_from(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(",")
}

/// The newest seq handed out so far.
async fn last_seq(ctx: &Ctx) -> Result<i64> {
    Ok(sqlx::query("SELECT value_int FROM ledger_meta WHERE key = 'transfer_seq'")
        .fetch_one(&ctx.db.pool)
        .await?
        .try_get(0)?)
}

/// Widest window of history blocks one query looks at.
const MAX_BLOCKS_PER_QUERY: i64 = 64;

/// Most queries one history page runs (1+2+…+64 blocks, then 64 a query:
/// about 1,200 blocks, 20 million seqs), whatever the cursor.
const MAX_WINDOWS_PER_PAGE: usize = 24;

pub(crate) async fn history(
    ctx: &Ctx,
    account_id: &str,
    cursor: Option<i64>,
    limit: i64,
    filter: &HistoryFilter,
) -> Result<Page<HistoryItem>> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::field_msg("limit", yizhan_core::Msg::new("ledger.page_limit").int("max", MAX_PAGE)));
    }
    // A cursor is a seq: rows have seq >= 1, none beyond the counter. Any
    // other value is clamped to that range, so no cursor makes the loop
    // below walk windows that cannot hold a row (or overflow).
    let newest = last_seq(ctx).await?.max(0);
    let mut before = cursor.unwrap_or(i64::MAX).clamp(0, newest.saturating_add(1));
    // A time range: only the blocks it may touch are looked at.
    let (from_ms, to_ms) = filter.between.unwrap_or((i64::MIN, i64::MAX));
    let mut lowest_block = 0;
    if filter.between.is_some() {
        let Some((first, last)) = blocks_between(ctx, from_ms, to_ms).await? else {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        };
        before = before.min((last + 1) << SEQ_BLOCK_SHIFT);
        lowest_block = first;
    }
    if before <= 1 || (before - 1) >> SEQ_BLOCK_SHIFT < lowest_block {
        return Ok(Page { items: Vec::new(), next_cursor: None });
    }
    let categories = filter.categories.len();
    let category_sql =
        if categories == 0 { String::new() } else { format!(" AND category IN ({})", params_from(6, categories)) };
    // One more than asked, to know whether another page exists.
    let want = usize::try_from(limit + 1).unwrap_or(usize::MAX);
    let mut found: Vec<Transfer> = Vec::with_capacity(want);
    // The account's rows are found block by block, newest first, in windows
    // that widen (1, 2, 4 … blocks) so a busy account needs one query and a
    // quiet one few. Within the windows: two index range scans (debit side,
    // credit side) merged, instead of an OR that would sort every row.
    // At most MAX_WINDOWS_PER_PAGE queries per page: a quiet account in a
    // long ledger gets a short (even empty) page whose cursor resumes below
    // the blocks already looked at.
    let mut hi = (before - 1) >> SEQ_BLOCK_SHIFT;
    let mut width: i64 = 1;
    let mut windows = 0;
    while hi >= lowest_block && found.len() < want && windows < MAX_WINDOWS_PER_PAGE {
        windows += 1;
        let lo = hi.saturating_sub(width - 1).max(lowest_block);
        let n = usize::try_from(hi - lo + 1).unwrap_or(1);
        let blocks = params_from(6 + categories, n);
        let sql = format!(
            "SELECT {TRANSFER_COLS} FROM (SELECT {TRANSFER_COLS} FROM ledger_transfers \
                WHERE seq_block IN ({blocks}) AND debit_account_id = $1 AND seq < $2 \
                AND created_at_ms >= $4 AND created_at_ms < $5{category_sql} ORDER BY seq DESC LIMIT $3) AS d \
             UNION ALL \
             SELECT {TRANSFER_COLS} FROM (SELECT {TRANSFER_COLS} FROM ledger_transfers \
                WHERE seq_block IN ({blocks}) AND credit_account_id = $1 AND seq < $2 \
                AND created_at_ms >= $4 AND created_at_ms < $5{category_sql} ORDER BY seq DESC LIMIT $3) AS c \
             ORDER BY seq DESC LIMIT $3"
        );
        let remaining = i64::try_from(want - found.len()).unwrap_or(i64::MAX);
        let mut q = sqlx::query(&sql).bind(account_id).bind(before).bind(remaining).bind(from_ms).bind(to_ms);
        for c in &filter.categories {
            q = q.bind(c);
        }
        for b in lo..=hi {
            q = q.bind(b);
        }
        for row in q.fetch_all(&ctx.db.pool).await? {
            found.push(sql::transfer_from_row(&row)?);
        }
        hi = lo - 1;
        width = width.saturating_mul(2).min(MAX_BLOCKS_PER_QUERY);
    }
    // Blocks 0..=hi were not looked at: the next page starts at their top.
    let unvisited_cursor =
        if hi >= lowest_block && found.len() < want { Some((hi + 1) << SEQ_BLOCK_SHIFT) } else { None };
    let mut items: Vec<HistoryItem> = found.into_iter().map(|t| HistoryItem::of(account_id, t)).collect();
    let limit_usize = want - 1;
    let next_cursor = if items.len() > limit_usize {
        items.truncate(limit_usize);
        items.last().map(|i| i.transfer.seq)
    } else {
        unvisited_cursor
    };
    Ok(Page { items, next_cursor })
}

/// Blocks a time range may touch. Rows arrive in time order, but batches of
/// different processes may interleave by a little, hence the margin.
async fn blocks_between(ctx: &Ctx, from_ms: i64, to_ms: i64) -> Result<Option<(i64, i64)>> {
    let first: Option<i64> =
        sqlx::query("SELECT seq FROM ledger_transfers WHERE created_at_ms >= $1 ORDER BY created_at_ms LIMIT 1")
            .bind(from_ms)
            .fetch_optional(&ctx.db.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    let last: Option<i64> =
        sqlx::query("SELECT seq FROM ledger_transfers WHERE created_at_ms < $1 ORDER BY created_at_ms DESC LIMIT 1")
            .bind(to_ms)
            .fetch_optional(&ctx.db.pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    Ok(match (first, last) {
        (Some(f), Some(l)) => Some((((f.min(l) >> SEQ_BLOCK_SHIFT) - 2).max(0), (f.max(l) >> SEQ_BLOCK_SHIFT) + 2)),
        _ => None,
    })
}

pub(crate) async fn sum_by_category(ctx: &Ctx, account_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<CategorySum>> {
    let mut sums: BTreeMap<String, CategorySum> = BTreeMap::new();
    let Some((first, last)) = blocks_between(ctx, from_ms, to_ms).await? else { return Ok(Vec::new()) };
    let mut lo = first;
    while lo <= last {
        let hi = (lo + MAX_BLOCKS_PER_QUERY - 1).min(last);
        let blocks = params_from(4, usize::try_from(hi - lo + 1).unwrap_or(1));
        let sql = format!(
            "SELECT category, CAST(COALESCE(SUM(debit_fen), 0) AS BIGINT) AS debit_fen, \
                CAST(COALESCE(SUM(credit_fen), 0) AS BIGINT) AS credit_fen, COUNT(*) AS n FROM ( \
                SELECT category, amount_fen AS debit_fen, CAST(0 AS BIGINT) AS credit_fen FROM ledger_transfers \
                  WHERE seq_block IN ({blocks}) AND debit_account_id = $1 AND created_at_ms >= $2 \
                  AND created_at_ms < $3 AND kind IN ('posted', 'post_pending') \
                UNION ALL \
                SELECT category, CAST(0 AS BIGINT), amount_fen FROM ledger_transfers \
                  WHERE seq_block IN ({blocks}) AND credit_account_id = $1 AND created_at_ms >= $2 \
                  AND created_at_ms < $3 AND kind IN ('posted', 'post_pending') \
            ) AS x GROUP BY category"
        );
        let mut q = sqlx::query(&sql).bind(account_id).bind(from_ms).bind(to_ms);
        for b in lo..=hi {
            q = q.bind(b);
        }
        for r in q.fetch_all(&ctx.db.pool).await? {
            let category: String = r.try_get("category")?;
            let e = sums.entry(category.clone()).or_insert(CategorySum {
                category,
                debit_fen: 0,
                credit_fen: 0,
                transfers: 0,
            });
            e.debit_fen += r.try_get::<i64, _>("debit_fen")?;
            e.credit_fen += r.try_get::<i64, _>("credit_fen")?;
            e.transfers += r.try_get::<i64, _>("n")?;
        }
        lo = hi + 1;
    }
    Ok(sums.into_values().collect())
}

#[derive(Default)]
struct Sums {
    posted: i64,
    pending_debit: i64,
    pending_credit: i64,
}

/// Recomputes every balance from the transfer rows, in one snapshot.
pub(crate) async fn check(ctx: &Ctx) -> Result<CheckReport> {
    const SHOW: usize = 50;
    let mut tx = ctx.db.pool.begin().await?;
    if ctx.db.engine() == Engine::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *tx).await?;
    }
    let mut report = CheckReport::default();
    let mut m: Vec<String> = Vec::new();

    let mut sums: BTreeMap<String, Sums> = BTreeMap::new();
    for (sql, sign) in [
        (
            "SELECT debit_account_id AS a, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS s FROM ledger_transfers \
             WHERE kind IN ('posted', 'post_pending') GROUP BY debit_account_id",
            -1,
        ),
        (
            "SELECT credit_account_id AS a, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS s FROM ledger_transfers \
             WHERE kind IN ('posted', 'post_pending') GROUP BY credit_account_id",
            1,
        ),
    ] {
        for r in sqlx::query(sql).fetch_all(&mut *tx).await? {
            let a: String = r.try_get("a")?;
            let s: i64 = r.try_get("s")?;
            sums.entry(a).or_default().posted += sign * s;
        }
    }
    // Open pending transfers: those without a resolution row.
    let open = "FROM ledger_transfers t WHERE t.kind = 'pending' \
                AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = t.id)";
    for (col, debit) in [("debit_account_id", true), ("credit_account_id", false)] {
        let sql = format!(
            "SELECT t.{col} AS a, CAST(COALESCE(SUM(t.amount_fen), 0) AS BIGINT) AS s, COUNT(*) AS n {open} GROUP BY t.{col}"
        );
        for r in sqlx::query(&sql).fetch_all(&mut *tx).await? {
            let a: String = r.try_get("a")?;
            let s: i64 = r.try_get("s")?;
            let n: i64 = r.try_get("n")?;
            let e = sums.entry(a).or_default();
            if debit {
                e.pending_debit += s;
                report.open_pending += u64::try_from(n).unwrap_or(0);
            } else {
                e.pending_credit += s;
            }
        }
    }

    let mut account_ids = BTreeSet::new();
    let mut total: i128 = 0;
    let rows =
        sqlx::query(&format!("SELECT {ACCOUNT_COLS} FROM ledger_accounts ORDER BY id")).fetch_all(&mut *tx).await?;
    for r in &rows {
        let a = sql::account_from_row(r)?;
        report.accounts += 1;
        total += i128::from(a.balance.posted_fen);
        let s = sums.remove(&a.id).unwrap_or_default();
        let b = &a.balance;
        if b.posted_fen != s.posted {
            m.push(format!("account {}: posted {} but its transfers sum to {}", a.id, b.posted_fen, s.posted));
        }
        if b.pending_debit_fen != s.pending_debit {
            m.push(format!(
                "account {}: pending debit {} but its open pending transfers sum to {}",
                a.id, b.pending_debit_fen, s.pending_debit
            ));
        }
        if b.pending_credit_fen != s.pending_credit {
            m.push(format!(
                "account {}: pending credit {} but its open pending transfers sum to {}",
                a.id, b.pending_credit_fen, s.pending_credit
            ));
        }
        if !a.allow_negative && b.available_fen < -a.credit_limit_fen {
            m.push(format!(
                "account {}: available {} is below its credit limit {}",
                a.id, b.available_fen, a.credit_limit_fen
            ));
        }
        account_ids.insert(a.id);
    }
    for (a, _) in sums {
        m.push(format!("transfers name account {a}, which does not exist"));
    }
    report.sum_posted_fen = i64::try_from(total).unwrap_or(i64::MAX);
    if total != 0 {
        m.push(format!("posted balances sum to {total}, not 0"));
    }

    let n: i64 = sqlx::query("SELECT COUNT(*) FROM ledger_transfers").fetch_one(&mut *tx).await?.try_get(0)?;
    report.transfers = u64::try_from(n).unwrap_or(0);

    // Each row on its own: amount, sides, currency of both accounts.
    let bad = sqlx::query(
        "SELECT t.id AS id FROM ledger_transfers t \
         LEFT JOIN ledger_accounts d ON d.id = t.debit_account_id \
         LEFT JOIN ledger_accounts c ON c.id = t.credit_account_id \
         WHERE t.amount_fen <= 0 OR t.amount_fen > $1 OR t.debit_account_id = t.credit_account_id \
            OR d.id IS NULL OR c.id IS NULL OR t.currency <> d.currency OR t.currency <> c.currency \
            OR t.seq_block <> t.seq / 16384 \
         ORDER BY t.seq LIMIT 100",
    )
    .bind(Fen::MAX_AMOUNT)
    .fetch_all(&mut *tx)
    .await?;
    for r in bad.iter().take(SHOW) {
        let id: String = r.try_get("id")?;
        m.push(format!("transfer {id}: bad amount, sides or currency"));
    }

    // Every resolution row resolves a pending transfer, on its accounts, for at most its amount.
    let bad = sqlx::query(
        "SELECT r.id AS id FROM ledger_transfers r \
         LEFT JOIN ledger_transfers t ON t.id = r.pending_id AND t.kind = 'pending' \
         WHERE r.pending_id IS NOT NULL AND (t.id IS NULL \
            OR r.debit_account_id <> t.debit_account_id OR r.credit_account_id <> t.credit_account_id \
            OR r.amount_fen > t.amount_fen OR r.kind NOT IN ('post_pending', 'void_pending', 'expire_pending') \
            OR (r.kind <> 'post_pending' AND r.amount_fen <> t.amount_fen)) \
         ORDER BY r.seq LIMIT 100",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in bad.iter().take(SHOW) {
        let id: String = r.try_get("id")?;
        m.push(format!("resolution transfer {id} does not match its pending transfer"));
    }

    // The pending-state table agrees with the rows.
    let bad = sqlx::query(
        "SELECT t.id AS id FROM ledger_transfers t \
         LEFT JOIN ledger_pending p ON p.pending_id = t.id \
         LEFT JOIN ledger_transfers r ON r.pending_id = t.id \
         WHERE t.kind = 'pending' AND (p.pending_id IS NULL OR p.amount_fen <> t.amount_fen \
            OR (r.id IS NULL AND p.state <> 'pending') \
            OR (r.kind = 'post_pending' AND p.state <> 'posted') \
            OR (r.kind = 'void_pending' AND p.state <> 'voided') \
            OR (r.kind = 'expire_pending' AND p.state <> 'expired') \
            OR (r.id IS NOT NULL AND (p.resolved_by IS NULL OR p.resolved_by <> r.id))) \
         ORDER BY t.seq LIMIT 100",
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in bad.iter().take(SHOW) {
        let id: String = r.try_get("id")?;
        m.push(format!("pending transfer {id}: its state row disagrees with the transfer rows"));
    }
    let orphans: i64 = sqlx::query(
        "SELECT COUNT(*) FROM ledger_pending p WHERE NOT EXISTS \
         (SELECT 1 FROM ledger_transfers t WHERE t.id = p.pending_id AND t.kind = 'pending')",
    )
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    if orphans > 0 {
        m.push(format!("{orphans} pending state rows have no pending transfer"));
    }
    let seq: i64 = sqlx::query("SELECT value_int FROM ledger_meta WHERE key = 'transfer_seq'")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let max_seq: Option<i64> =
        sqlx::query("SELECT MAX(seq) FROM ledger_transfers").fetch_one(&mut *tx).await?.try_get(0)?;
    if max_seq.unwrap_or(0) > seq {
        m.push(format!("transfer seq {} is beyond the sequence counter {seq}", max_seq.unwrap_or(0)));
    }
    tx.rollback().await?;
    report.mismatches = m;
    Ok(report)
}
