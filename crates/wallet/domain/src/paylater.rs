//! The pay-later line: spending beyond the wallet's balance, up to a limit,
//! through the ledger's credit limit on the person's wallet account (the
//! ledger refuses any payment that would take the available balance below
//! −limit, so concurrent payments never exceed it). What is owed is the
//! negative part of the wallet's balance: any money coming in pays it back.
//!
//! The limit comes from outside (the credit room's perk, wired by the app):
//! [`Pay::pay_later_set`] switches the line on with a limit or off. A lower
//! limit applies to new spending only: the ledger limit is never set below
//! what the wallet already uses, so nothing owed is called in early.
//!
//! Each China month is closed once per line ([`Pay::pay_later_sweep`], driven
//! by the injected clock, in bounded batches): a statement for what is owed
//! and not yet on an open statement, due [`STATEMENT_DUE_MS`] after closing,
//! told to the person in the inbox. A statement is repaid by paying it (a
//! top-up of its amount from the person's card, keyed by the statement, so a
//! retry pays once) or settles by itself once the wallet owes nothing. A
//! statement past its due time is overdue. Repaid (on time or late) and
//! overdue statements are told to [`crate::bills::BillEvents`], which the app
//! turns into credit records.
//!
//! The same sweep tells of bills past their due time ([`crate::bills::BillEvents::bill_overdue`]):
//! once when they become overdue, and once more past 30 days.

use crate::Pay;
use serde::Serialize;
use yizhan_core::time::{month_range_cst, year_month_cst};
use yizhan_core::{Code, Error, MigrationSet, Msg, Result};
use yizhan_notify::{Message, Target};

/// The pay-later tables (a set of their own, so the wallet's own numbering is left alone).
pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "paylater",
    sqlite: &[("0001", include_str!("../migrations/sqlite/paylater_0001.sql"))],
    postgres: &[("0001", include_str!("../migrations/postgres/paylater_0001.sql"))],
};

const DAY_MS: i64 = 86_400_000;
/// A statement is due 20 days after its month is closed.
pub const STATEMENT_DUE_MS: i64 = 20 * DAY_MS;
/// A bill is told overdue again once it is this many days late.
pub const BILL_OVERDUE_AGAIN_DAYS: i64 = 31;

/// A person's pay-later line as the wallet holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayLaterLine {
    pub user_id: String,
    pub on: bool,
    /// The limit asked for (the band's); 0 when off.
    pub limit_fen: i64,
    /// The ledger's credit limit on the wallet now: never below what is used.
    pub ledger_limit_fen: i64,
    /// What the wallet owes now (the negative part of its balance).
    pub owed_fen: i64,
    /// What can still be spent on credit now.
    pub available_credit_fen: i64,
    /// The statements, newest first.
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Statement {
    pub id: String,
    pub user_id: String,
    /// "2026-11": the China month it closes.
    pub period: String,
    pub amount_fen: i64,
    pub closed_at_ms: i64,
    pub due_at_ms: i64,
    /// open or paid
    pub status: String,
    pub paid_at_ms: Option<i64>,
    /// Told overdue (0/1).
    pub overdue_told: i64,
}

impl Statement {
    /// Whole days after the due time it was repaid (or is, now, if open); 0 if on time.
    pub fn days_late(&self, now_ms: i64) -> i64 {
        let at = self.paid_at_ms.unwrap_or(now_ms);
        if at <= self.due_at_ms {
            0
        } else {
            (at - self.due_at_ms + DAY_MS - 1) / DAY_MS
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub lines_closed: u64,
    pub statements_issued: u64,
    pub statements_settled: u64,
    pub statements_overdue: u64,
    pub bills_overdue: u64,
}

impl SweepReport {
    pub fn is_empty(&self) -> bool {
        *self == SweepReport::default()
    }
}

fn period_of(y: i64, m: u32) -> String {
    format!("{y:04}-{m:02}")
}

/// The month before the one `now_ms` is in (China time), as a period and its end.
fn previous_month(now_ms: i64) -> (String, i64) {
    let (y, m) = year_month_cst(now_ms);
    let (start, _) = month_range_cst(y, m);
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    (period_of(py, pm), start)
}

const STATEMENT_COLS: &str =
    "id, user_id, period, amount_fen, closed_at_ms, due_at_ms, status, paid_at_ms, overdue_told";

impl Pay {
    /// The injected clock's now.
    pub fn now_ms(&self) -> i64 {
        self.ctx().now_ms()
    }

    /// Money that leaves the person's hands (a withdrawal, a transfer to a
    /// person, a red packet) comes from their own balance only, never from
    /// the pay-later line (which is for paying merchants and bills).
    /// A check before the ledger call for a clear answer; the ledger itself
    /// holds it for concurrent payments (the transfer is `own_funds_only`).
    pub(crate) async fn own_funds_only(&self, user_id: &str, amount_fen: i64) -> Result<()> {
        let account = self.ensure_wallet(user_id).await?;
        let a = self.ledger().account(&account).await?;
        if a.credit_limit_fen > 0 && a.balance.available_fen < amount_fen {
            return Err(Error::new(yizhan_ledger::codes::INSUFFICIENT_FUNDS, "paylater.own_funds_only"));
        }
        Ok(())
    }

    /// A transfer the ledger refused as `own_funds_only` for want of money:
    /// with a pay-later line, the answer says the line does not pay people.
    pub(crate) async fn explain_own_funds(&self, user_id: &str, refused: Error) -> Error {
        let Ok(account) = self.ensure_wallet(user_id).await else { return refused };
        match self.ledger().account(&account).await {
            Ok(a) if a.credit_limit_fen > 0 => {
                Error::new(yizhan_ledger::codes::INSUFFICIENT_FUNDS, "paylater.own_funds_only")
            }
            _ => refused,
        }
    }

    async fn owed_and_used(&self, user_id: &str) -> Result<(String, i64, i64)> {
        let account = self.ensure_wallet(user_id).await?;
        let b = self.ledger().balance(&account).await?;
        Ok((account, (-b.posted_fen).max(0), (-b.available_fen).max(0)))
    }

    /// Switch the line on with this limit (the band's), or off (`None`). The
    /// ledger's credit limit becomes the limit, but never less than what the
    /// wallet already uses: a lower limit holds back new spending only.
    pub async fn pay_later_set(&self, user_id: &str, limit_fen: Option<i64>) -> Result<PayLaterLine> {
        let limit = limit_fen.unwrap_or(0);
        if limit < 0 {
            return Err(Error::field("limit_fen", "paylater.limit_negative"));
        }
        let now = self.ctx().now_ms();
        let (closed_through, _) = previous_month(now);
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO paylater_lines (user_id, line_on, limit_fen, closed_through, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET line_on = excluded.line_on, limit_fen = excluded.limit_fen,
                 updated_at_ms = excluded.updated_at_ms",
        )
        .bind(user_id)
        .bind(i64::from(limit_fen.is_some()))
        .bind(limit)
        .bind(&closed_through)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.apply_limit(user_id, limit).await?;
        self.pay_later(user_id).await
    }

    /// Set the ledger limit to `limit`, or to what is used if that is more.
    /// A payment between reading the use and setting the limit makes the
    /// ledger refuse (`Conflict`); then it is read again.
    async fn apply_limit(&self, user_id: &str, limit: i64) -> Result<()> {
        for _ in 0..5 {
            let (account, _, used) = self.owed_and_used(user_id).await?;
            match self.ledger().set_credit_limit(&account, limit.max(used)).await {
                Ok(()) => return Ok(()),
                Err(e) if e.code == Code::Conflict => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(Code::Conflict, "paylater.limit_busy"))
    }

    /// A person's line, what they owe and their statements.
    pub async fn pay_later(&self, user_id: &str) -> Result<PayLaterLine> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT line_on, limit_fen FROM paylater_lines WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        let (on, limit_fen) = row.map_or((false, 0), |(o, l)| (o != 0, l));
        let account = self.ensure_wallet(user_id).await?;
        let a = self.ledger().account(&account).await?;
        let b = &a.balance;
        let owed_fen = (-b.posted_fen).max(0);
        let available_credit_fen = if on { (a.credit_limit_fen + b.available_fen.min(0)).max(0) } else { 0 };
        let statements: Vec<Statement> = sqlx::query_as(&format!(
            "SELECT {STATEMENT_COLS} FROM paylater_statements WHERE user_id = $1 ORDER BY closed_at_ms DESC LIMIT 24"
        ))
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        Ok(PayLaterLine {
            user_id: user_id.to_string(),
            on,
            limit_fen,
            ledger_limit_fen: a.credit_limit_fen,
            owed_fen,
            available_credit_fen,
            statements,
        })
    }

    async fn pay_later_statement(&self, user_id: &str, statement_id: &str) -> Result<Statement> {
        sqlx::query_as(&format!("SELECT {STATEMENT_COLS} FROM paylater_statements WHERE id = $1 AND user_id = $2"))
            .bind(statement_id)
            .bind(user_id)
            .fetch_optional(&self.ctx().db.pool)
            .await?
            .ok_or_else(|| Error::not_found("paylater_statement"))
    }

    /// Repay a statement: its amount comes in from the person's card (a
    /// top-up keyed by the statement, so a retry pays once) and it is marked
    /// repaid, on time or late. Repaying one already repaid answers it.
    pub async fn pay_later_repay(&self, user_id: &str, statement_id: &str, card: Option<&str>) -> Result<Statement> {
        let s = self.pay_later_statement(user_id, statement_id).await?;
        if s.status == "paid" {
            return Ok(s);
        }
        let r = self.topup(user_id, s.amount_fen, card, &format!("paylater-{}", s.id)).await?;
        self.settle(&s, r.at_ms).await?;
        self.pay_later_statement(user_id, statement_id).await
    }

    /// Mark a statement repaid at `at_ms` (once) and tell the hook.
    async fn settle(&self, s: &Statement, at_ms: i64) -> Result<bool> {
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query(
            "UPDATE paylater_statements SET status = 'paid', paid_at_ms = $1 WHERE id = $2 AND status = 'open'",
        )
        .bind(at_ms)
        .bind(&s.id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        if n > 0 {
            let paid = self.pay_later_statement(&s.user_id, &s.id).await?;
            if let Some(events) = self.bill_events() {
                events.pay_later_repaid(&paid).await;
            }
        }
        Ok(n > 0)
    }

    /// The month close and the overdue checks, at most `max` of each kind
    /// per call (call again while the report is not empty).
    pub async fn pay_later_sweep(&self, max: i64) -> Result<SweepReport> {
        let max = max.clamp(1, 10_000);
        let now = self.ctx().now_ms();
        let mut report = SweepReport::default();
        let (period, month_start) = previous_month(now);

        // Close last month for lines not closed through it.
        let lines: Vec<(String,)> =
            sqlx::query_as("SELECT user_id FROM paylater_lines WHERE closed_through < $1 ORDER BY user_id LIMIT $2")
                .bind(&period)
                .bind(max)
                .fetch_all(&self.ctx().db.pool)
                .await?;
        for (user_id,) in lines {
            let (_, owed, _) = self.owed_and_used(&user_id).await?;
            let (open,): (i64,) = sqlx::query_as(
                "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM paylater_statements
                 WHERE user_id = $1 AND status = 'open'",
            )
            .bind(&user_id)
            .fetch_one(&self.ctx().db.pool)
            .await?;
            let amount = owed - open;
            let mut tx = self.ctx().db.begin().await?;
            let claimed =
                sqlx::query("UPDATE paylater_lines SET closed_through = $1 WHERE user_id = $2 AND closed_through < $1")
                    .bind(&period)
                    .bind(&user_id)
                    .execute(tx.conn())
                    .await?
                    .rows_affected();
            let mut issued = None;
            if claimed > 0 && amount > 0 {
                let id = self.ctx().new_id();
                let due = now.max(month_start) + STATEMENT_DUE_MS;
                sqlx::query(
                    "INSERT INTO paylater_statements (id, user_id, period, amount_fen, closed_at_ms, due_at_ms, status,
                         overdue_told) VALUES ($1, $2, $3, $4, $5, $6, 'open', 0)",
                )
                .bind(&id)
                .bind(&user_id)
                .bind(&period)
                .bind(amount)
                .bind(now)
                .bind(due)
                .execute(tx.conn())
                .await?;
                issued = Some((id, due));
            }
            tx.commit().await?;
            if claimed > 0 {
                report.lines_closed += 1;
            }
            if let Some((id, due)) = issued {
                report.statements_issued += 1;
                self.tell_statement(&user_id, &id, &period, amount, due).await;
            }
        }

        // Open statements of wallets that owe nothing any more are settled.
        let open: Vec<Statement> = sqlx::query_as(&format!(
            "SELECT {STATEMENT_COLS} FROM paylater_statements WHERE status = 'open' ORDER BY closed_at_ms LIMIT $1"
        ))
        .bind(max)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        for s in open {
            let (_, owed, _) = self.owed_and_used(&s.user_id).await?;
            if owed == 0 {
                if self.settle(&s, now).await? {
                    report.statements_settled += 1;
                }
            } else if s.due_at_ms < now && s.overdue_told == 0 {
                let n =
                    sqlx::query("UPDATE paylater_statements SET overdue_told = 1 WHERE id = $1 AND overdue_told = 0")
                        .bind(&s.id)
                        .execute(&self.ctx().db.pool)
                        .await?
                        .rows_affected();
                if n > 0 {
                    report.statements_overdue += 1;
                    if let Some(events) = self.bill_events() {
                        events.pay_later_overdue(&s, s.days_late(now)).await;
                    }
                }
            }
        }

        report.bills_overdue = self.tell_overdue_bills(max).await?;
        Ok(report)
    }

    /// Close what the line owes now, and is on no open statement, into a
    /// statement at once (due [`STATEMENT_DUE_MS`] from now, the period is
    /// this month), without waiting for the month's end: for an operator
    /// closing a line early and for the demo. Nothing owed, nothing made.
    pub async fn pay_later_statement_now(&self, user_id: &str) -> Result<Option<Statement>> {
        let now = self.ctx().now_ms();
        let (y, m) = year_month_cst(now);
        let period = period_of(y, m);
        let (_, owed, _) = self.owed_and_used(user_id).await?;
        let mut tx = self.ctx().db.begin().await?;
        let (open,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM paylater_statements
             WHERE user_id = $1 AND status = 'open'",
        )
        .bind(user_id)
        .fetch_one(tx.conn())
        .await?;
        let amount = owed - open;
        if amount <= 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let id = self.ctx().new_id();
        let due = now + STATEMENT_DUE_MS;
        sqlx::query(
            "INSERT INTO paylater_statements (id, user_id, period, amount_fen, closed_at_ms, due_at_ms, status,
                 overdue_told) VALUES ($1, $2, $3, $4, $5, $6, 'open', 0)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(&period)
        .bind(amount)
        .bind(now)
        .bind(due)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.tell_statement(user_id, &id, &period, amount, due).await;
        let st: Statement = sqlx::query_as(&format!("SELECT {STATEMENT_COLS} FROM paylater_statements WHERE id = $1"))
            .bind(&id)
            .fetch_one(&self.ctx().db.pool)
            .await?;
        Ok(Some(st))
    }

    /// The inbox notice of a statement just closed: what is owed and by when.
    async fn tell_statement(&self, user_id: &str, id: &str, period: &str, amount: i64, due: i64) {
        self.tell(
            user_id,
            Message {
                kind: "paylater".into(),
                title: Msg::new("paylater.notice.statement.title").fen("amount", amount),
                body: Msg::new("paylater.notice.statement.body")
                    .text("period", period)
                    .fen("amount", amount)
                    .time("due", due),
                target: Some(Target::new("paylater_statement", id)),
            },
        )
        .await;
    }

    /// Bills unpaid past their due time, told to the hook once when they
    /// become overdue and once more when [`BILL_OVERDUE_AGAIN_DAYS`] late.
    async fn tell_overdue_bills(&self, max: i64) -> Result<u64> {
        let now = self.ctx().now_ms();
        let again = now - BILL_OVERDUE_AGAIN_DAYS * DAY_MS;
        let due: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT b.id, b.user_id, b.due_at_ms, o.told_days FROM bills b
             LEFT JOIN paylater_bill_overdue o ON o.bill_id = b.id
             WHERE b.status = 'unpaid' AND b.due_at_ms < $1
               AND (o.bill_id IS NULL OR (o.told_days < $2 AND b.due_at_ms < $3))
             ORDER BY b.due_at_ms LIMIT $4",
        )
        .bind(now)
        .bind(BILL_OVERDUE_AGAIN_DAYS)
        .bind(again)
        .bind(max)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let mut told = 0;
        for (bill_id, user_id, due_at_ms, _) in due {
            let days = (now - due_at_ms + DAY_MS - 1) / DAY_MS;
            let mut tx = self.ctx().db.begin().await?;
            sqlx::query(
                "INSERT INTO paylater_bill_overdue (bill_id, told_days, told_at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (bill_id) DO UPDATE SET told_days = excluded.told_days, told_at_ms = excluded.told_at_ms",
            )
            .bind(&bill_id)
            .bind(days)
            .bind(now)
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            let bill = self.bill(&user_id, &bill_id).await?;
            if let Some(events) = self.bill_events() {
                events.bill_overdue(&bill, days).await;
            }
            told += 1;
        }
        Ok(told)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_month_is_in_china_time() {
        // 2026-12-01 00:30 in China is 2026-11-30 16:30 UTC.
        let (y, m) = (2026, 12);
        let (start, _) = month_range_cst(y, m);
        assert_eq!(previous_month(start + 30 * 60_000), ("2026-11".to_string(), start));
        assert_eq!(previous_month(start - 1).0, "2026-10");
        let (jan, _) = month_range_cst(2027, 1);
        assert_eq!(previous_month(jan).0, "2026-12");
    }

    #[test]
    fn days_late_round_up() {
        let s = Statement {
            id: "s".into(),
            user_id: "u".into(),
            period: "2026-11".into(),
            amount_fen: 1,
            closed_at_ms: 0,
            due_at_ms: 1000,
            status: "open".into(),
            paid_at_ms: None,
            overdue_told: 0,
        };
        assert_eq!(s.days_late(1000), 0);
        assert_eq!(s.days_late(1001), 1);
        assert_eq!(s.days_late(1000 + DAY_MS), 1);
        assert_eq!(s.days_late(1001 + DAY_MS), 2);
    }
}
