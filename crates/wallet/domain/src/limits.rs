//! Wallet limits per person: for each verification level, a per-transaction
//! and a per-day cap on top-ups, payments (all money a person sends: transfers,
//! QR payments, pay codes charged by a merchant, red packets, bills) and
//! withdrawals. The operator sets them (`wallet_limits`, seeded with the
//! defaults); every change is kept in `wallet_limit_changes`.
//!
//! # Counting, under races
//!
//! What a person used of a limit today is a ledger quota (`ledger_quotas`,
//! key `<operation>:<day>:<user id>`), counted with the
//! money in one of two ways, both keeping `used <= cap` for every decision:
//!
//! - A transfer to a person or a QR payment carries the quota
//!   ([`yizhan_ledger::TransferSpec::with_quota`]): the ledger's batcher
//!   checks and counts it in order with the balances, in the payment's own
//!   batch, so the count commits with the money; a replay counts nothing and
//!   is never refused by a limit, a refused payment counts nothing.
//! - A movement whose money moves later or elsewhere (a top-up charged at
//!   the bank first, a withdrawal, a red packet's escrow, a bill, a pay
//!   code) reserves first, in its own transaction: a row in
//!   `wallet_limit_reservations` keyed by the movement's ledger key
//!   (`INSERT … ON CONFLICT DO NOTHING`, so a retry is counted once), and
//!   the quota counted by [`yizhan_ledger::quotas::take_within`] under the
//!   row's lock. Then the money moves. When the movement is refused for good
//!   (not enough money, a declined card, a withdrawal the bank refused) the
//!   reservation is given back. A crash between the reservation and the
//!   movement leaves the day over-counted by that amount: the safe side (a
//!   retry with the same key is not counted again).
//!
//! The batcher writes a quota only where it still holds what the batch read,
//! so a reservation made meanwhile sends the batch down its plain path:
//! of two movements that together pass the cap only one passes, whichever
//! way each is counted, on both engines.
//!
//! # Durability
//!
//! Reservations (the second way) commit without waiting for the disk ([`yizhan_core::Db::begin_relaxed`]):
//! a payment is acknowledged only after its ledger batch commits durably,
//! and both engines write their log in commit order, so that flush carries
//! the reservation made before it. A power failure before the movement may
//! lose the reservation, but then nothing moved either. So a paid request
//! waits for one flush (the ledger's), not two.
//!
//! A movement the ledger already made under the key (a replay) is never
//! refused by a limit: it answers its receipt.
//!
//! The day is the China calendar day (UTC+8): daily usage resets at 00:00
//! China time.

use crate::Pay;
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use yizhan_core::group::Batch;
use yizhan_core::time::{CST_OFFSET_MS, DAY_MS};
use yizhan_core::{Error, Fen, Msg, Params, Result};
use yizhan_identity::Principal;

/// One reservation to count (see the module's note).
pub(crate) struct Reserve {
    reference: String,
    user_id: String,
    operation: &'static str,
    day: i64,
    amount_fen: i64,
    per_day_fen: i64,
    now_ms: i64,
}

/// What became of a reservation.
pub(crate) enum Reserved {
    Counted,
    /// A request with the same key counted it a moment ago.
    AlreadyCounted,
    /// It would pass the daily cap: nothing was counted.
    OverDaily,
}

/// Reservations counted many per transaction (a group commit), with a few
/// statements for the whole batch: the reservations inserted at once (a
/// reference already there was counted before), then the fresh ones
/// counted by the ledger's quotas in order ([`yizhan_ledger::quotas::take_within`]:
/// the rows made if missing and read, on PostgreSQL locked in key order),
/// so two movements in one batch that together pass the cap are decided
/// one after the other; the refused reservations are deleted.
pub(crate) struct Reservations;

/// Rows in one multi-row statement (each binds at most 6 values).
const RESERVE_ROWS: usize = 200;

/// The ledger quota that counts one person's use of one limit on one day.
pub(crate) fn quota_key(user_id: &str, operation: &str, day: i64) -> String {
    format!("{operation}:{day}:{user_id}")
}

impl Batch for Reservations {
    type Op = Reserve;
    type Out = Reserved;
    /// See the module's note on durability.
    fn relaxed(&self) -> bool {
        true
    }
    fn apply<'a>(
        &'a self,
        tx: &'a mut yizhan_core::Tx,
        ops: &'a [Reserve],
    ) -> BoxFuture<'a, Result<Vec<Result<Reserved>>>> {
        Box::pin(async move {
            // 1. The reservations: the first of each new reference is fresh.
            let mut fresh_refs: std::collections::HashSet<String> = std::collections::HashSet::new();
            for chunk in ops.chunks(RESERVE_ROWS) {
                let mut p = Params::of(tx.conn());
                let values: Vec<String> = (0..chunk.len()).map(|_| p.row(6)).collect();
                let sql = format!(
                    "INSERT INTO wallet_limit_reservations (reference, user_id, operation, day, amount_fen, created_at_ms)
                     VALUES {} ON CONFLICT (reference) DO NOTHING RETURNING reference",
                    values.join(", ")
                );
                let mut q = sqlx::query_as::<_, (String,)>(&sql);
                for r in chunk {
                    q = q
                        .bind(&r.reference)
                        .bind(&r.user_id)
                        .bind(r.operation)
                        .bind(r.day)
                        .bind(r.amount_fen)
                        .bind(r.now_ms);
                }
                fresh_refs.extend(q.fetch_all(tx.conn()).await?.into_iter().map(|(r,)| r));
            }
            let mut fresh = vec![false; ops.len()];
            for (i, r) in ops.iter().enumerate() {
                fresh[i] = fresh_refs.remove(&r.reference);
            }
            // 2. The fresh ones counted by the ledger's quotas, in order, in
            //    this transaction (the rows locked on PostgreSQL).
            let takes: Vec<yizhan_ledger::quotas::Take> = ops
                .iter()
                .zip(&fresh)
                .filter(|(_, f)| **f)
                .map(|(r, _)| yizhan_ledger::quotas::Take {
                    key: quota_key(&r.user_id, r.operation, r.day),
                    amount_fen: r.amount_fen,
                    cap_fen: r.per_day_fen,
                })
                .collect();
            let mut passed = yizhan_ledger::quotas::take_within(tx.conn(), &takes).await?.into_iter();
            let mut refused: Vec<&str> = Vec::new();
            let mut out = Vec::with_capacity(ops.len());
            for (r, is_fresh) in ops.iter().zip(&fresh) {
                if !is_fresh {
                    out.push(Ok(Reserved::AlreadyCounted));
                } else if passed.next().unwrap_or(false) {
                    out.push(Ok(Reserved::Counted));
                } else {
                    refused.push(&r.reference);
                    out.push(Ok(Reserved::OverDaily));
                }
            }
            // 3. The refused reservations gone.
            for chunk in refused.chunks(RESERVE_ROWS) {
                let list = Params::of(tx.conn()).list(chunk.len());
                let sql = format!("DELETE FROM wallet_limit_reservations WHERE reference IN ({list})");
                let mut q = sqlx::query(&sql);
                for r in chunk {
                    q = q.bind(*r);
                }
                q.execute(tx.conn()).await?;
            }
            Ok(out)
        })
    }
}

/// Verification levels: 0 registered, 1 real name verified, 2 verified in person.
/// A higher level the identity room may add counts as the highest known.
pub const MAX_LEVEL: i64 = 2;
/// The highest daily cap an operator may set.
pub const MAX_DAILY_LIMIT_FEN: i64 = 100 * Fen::MAX_AMOUNT;

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Topup,
    /// Money the person sends out of the wallet to someone.
    Payment,
    Withdrawal,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::Topup, Operation::Payment, Operation::Withdrawal];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Topup => "topup",
            Operation::Payment => "payment",
            Operation::Withdrawal => "withdrawal",
        }
    }

    pub fn parse(s: &str) -> Result<Operation> {
        Operation::ALL
            .into_iter()
            .find(|o| o.as_str() == s.trim())
            .ok_or_else(|| Error::field("operation", "pay.limit.operation_unknown"))
    }

    /// The catalogue key naming it ("payment", "付款").
    pub fn key(self) -> String {
        format!("pay.limit.op.{}", self.as_str())
    }
}

/// One operator-set limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LimitRule {
    pub level: i64,
    pub operation: String,
    pub per_tx_fen: i64,
    pub per_day_fen: i64,
    pub updated_at_ms: i64,
}

/// A limit as it stands for one person today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitUse {
    pub operation: Operation,
    pub per_tx_fen: i64,
    pub per_day_fen: i64,
    pub used_today_fen: i64,
    pub remaining_today_fen: i64,
}

/// A person's limits today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MyLimits {
    /// The verification level the limits are for (0..=[`MAX_LEVEL`]).
    pub level: i64,
    pub limits: Vec<LimitUse>,
    /// When the daily usage resets (the next 00:00 China time).
    pub resets_at_ms: i64,
}

/// Days since 1970-01-01 in China time.
pub fn china_day(ms: i64) -> i64 {
    (ms + CST_OFFSET_MS).div_euclid(DAY_MS)
}

/// The first moment of the China day after `ms`.
pub fn next_china_midnight(ms: i64) -> i64 {
    (china_day(ms) + 1) * DAY_MS - CST_OFFSET_MS
}

/// The level a verification level counts as.
fn level_of(verification_level: i64) -> i64 {
    verification_level.clamp(0, MAX_LEVEL)
}

/// How long the limit table is remembered without reading it again.
pub const RULES_FRESH_FOR: Duration = Duration::from_secs(5);

/// The limit table: (level, operation) → (per transaction, per day) in fen.
type Rules = Arc<HashMap<(i64, String), (i64, i64)>>;

/// The limit table as last read, so a payment need not read it.
#[derive(Default)]
pub(crate) struct RuleCache {
    kept: Mutex<Option<(Instant, Rules)>>,
    /// Moves on with every change, so a read that began before a change
    /// cannot keep the table it read.
    generation: AtomicU64,
}

impl RuleCache {
    fn fresh(&self) -> Option<Rules> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref().filter(|(at, _)| at.elapsed() < RULES_FRESH_FOR).map(|(_, r)| r.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn keep(&self, read_from: u64, rules: Rules) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation() == read_from {
            *kept = Some((Instant::now(), rules));
        }
    }

    fn forget(&self) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *kept = None;
    }
}

impl Pay {
    /// Every limit, for every level and operation.
    pub async fn limit_table(&self) -> Result<Vec<LimitRule>> {
        Ok(sqlx::query_as(
            "SELECT level, operation, per_tx_fen, per_day_fen, updated_at_ms FROM wallet_limits
             ORDER BY level, CASE operation WHEN 'topup' THEN 0 WHEN 'payment' THEN 1 ELSE 2 END",
        )
        .fetch_all(&self.ctx().db.pool)
        .await?)
    }

    /// One level's caps for one operation, from the table remembered for at
    /// most [`RULES_FRESH_FOR`] (a change made in this process takes effect at
    /// once; one made by another process within that time).
    async fn limit_rule(&self, level: i64, op: Operation) -> Result<(i64, i64)> {
        let rules = match self.inner_rules().fresh() {
            Some(r) => r,
            None => {
                let read_from = self.inner_rules().generation();
                let rows: Vec<(i64, String, i64, i64)> =
                    sqlx::query_as("SELECT level, operation, per_tx_fen, per_day_fen FROM wallet_limits")
                        .fetch_all(&self.ctx().db.pool)
                        .await?;
                let rules: Rules = Arc::new(rows.into_iter().map(|(l, o, t, d)| ((l, o), (t, d))).collect());
                self.inner_rules().keep(read_from, rules.clone());
                rules
            }
        };
        // No row (an operator deleted it by hand): nothing is allowed, the safe side.
        Ok(rules.get(&(level, op.as_str().to_string())).copied().unwrap_or((0, 0)))
    }

    async fn level(&self, user_id: &str) -> Result<i64> {
        Ok(level_of(self.identity().standing(user_id).await?.verification_level))
    }

    async fn used_on(&self, user_id: &str, op: Operation, day: i64) -> Result<i64> {
        yizhan_ledger::quotas::used(&self.ctx().db.pool, &quota_key(user_id, op.as_str(), day)).await
    }

    /// A person's limits, what they used of them today and what is left.
    pub async fn my_limits(&self, user_id: &str) -> Result<MyLimits> {
        let level = self.level(user_id).await?;
        let now = self.ctx().now_ms();
        let day = china_day(now);
        let mut limits = Vec::with_capacity(3);
        for op in Operation::ALL {
            let (per_tx_fen, per_day_fen) = self.limit_rule(level, op).await?;
            let used_today_fen = self.used_on(user_id, op, day).await?;
            limits.push(LimitUse {
                operation: op,
                per_tx_fen,
                per_day_fen,
                used_today_fen,
                remaining_today_fen: (per_day_fen - used_today_fen).max(0),
            });
        }
        Ok(MyLimits { level, limits, resets_at_ms: next_china_midnight(now) })
    }

    /// A platform admin sets one limit. Both caps are whole fen, not negative,
    /// the per-transaction cap within the platform's largest amount and not
    /// above the daily cap. The change is recorded (who, when, before, after).
    pub async fn set_limit(
        &self,
        actor: &Principal,
        level: i64,
        op: Operation,
        per_tx_fen: i64,
        per_day_fen: i64,
    ) -> Result<LimitRule> {
        self.identity().require_admin(actor).await?;
        let mut errors = Vec::new();
        if !(0..=MAX_LEVEL).contains(&level) {
            errors.push(yizhan_core::FieldError::new("level", Msg::new("pay.limit.level_range").int("max", MAX_LEVEL)));
        }
        if !(0..=Fen::MAX_AMOUNT).contains(&per_tx_fen) {
            errors.push(yizhan_core::FieldError::new(
                "per_tx_fen",
                Msg::new("pay.limit.amount_range").fen("max", Fen::MAX_AMOUNT),
            ));
        }
        if !(0..=MAX_DAILY_LIMIT_FEN).contains(&per_day_fen) {
            errors.push(yizhan_core::FieldError::new(
                "per_day_fen",
                Msg::new("pay.limit.amount_range").fen("max", MAX_DAILY_LIMIT_FEN),
            ));
        } else if errors.is_empty() && per_tx_fen > per_day_fen {
            errors.push(yizhan_core::FieldError::new("per_tx_fen", Msg::new("pay.limit.tx_over_day")));
        }
        if !errors.is_empty() {
            return Err(Error::fields(errors));
        }
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let old: Option<(i64, i64)> =
            sqlx::query_as("SELECT per_tx_fen, per_day_fen FROM wallet_limits WHERE level = $1 AND operation = $2")
                .bind(level)
                .bind(op.as_str())
                .fetch_optional(tx.conn())
                .await?;
        let (old_tx, old_day) = old.unwrap_or((0, 0));
        sqlx::query(
            "INSERT INTO wallet_limits (level, operation, per_tx_fen, per_day_fen, updated_at_ms, updated_by_user_id)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (level, operation) DO UPDATE SET per_tx_fen = excluded.per_tx_fen,
                 per_day_fen = excluded.per_day_fen, updated_at_ms = excluded.updated_at_ms,
                 updated_by_user_id = excluded.updated_by_user_id",
        )
        .bind(level)
        .bind(op.as_str())
        .bind(per_tx_fen)
        .bind(per_day_fen)
        .bind(now)
        .bind(&actor.user_id)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO wallet_limit_changes (id, level, operation, old_per_tx_fen, old_per_day_fen,
                 new_per_tx_fen, new_per_day_fen, changed_by_user_id, changed_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.ctx().new_id())
        .bind(level)
        .bind(op.as_str())
        .bind(old_tx)
        .bind(old_day)
        .bind(per_tx_fen)
        .bind(per_day_fen)
        .bind(&actor.user_id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.inner_rules().forget();
        tracing::info!(admin = %actor.user_id, level, operation = op.as_str(), old_per_tx_fen = old_tx,
            old_per_day_fen = old_day, per_tx_fen, per_day_fen, "wallet limit changed");
        Ok(LimitRule { level, operation: op.as_str().into(), per_tx_fen, per_day_fen, updated_at_ms: now })
    }

    /// The changes admins made to limits, newest first.
    pub async fn limit_changes(&self, limit: i64) -> Result<Vec<LimitChange>> {
        Ok(sqlx::query_as(
            "SELECT level, operation, old_per_tx_fen, old_per_day_fen, new_per_tx_fen, new_per_day_fen,
                    changed_by_user_id, changed_at_ms
             FROM wallet_limit_changes ORDER BY changed_at_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit.clamp(1, 500))
        .fetch_all(&self.ctx().db.pool)
        .await?)
    }

    /// Count `amount_fen` of `op` against the person's limits for the movement
    /// with ledger key `reference`, or refuse it (`LIMIT_EXCEEDED`). A movement
    /// counted before (a retry) or made before (a replay) passes as it is.
    pub(crate) async fn reserve_limit(
        &self,
        user_id: &str,
        op: Operation,
        amount_fen: i64,
        reference: &str,
    ) -> Result<()> {
        let counted: Option<(i64,)> =
            sqlx::query_as("SELECT amount_fen FROM wallet_limit_reservations WHERE reference = $1")
                .bind(reference)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        if counted.is_some() || self.ledger().transfer_by_idempotency_key(reference).await?.is_some() {
            return Ok(());
        }
        let standing = self.identity().standing(user_id).await?;
        self.reserve_fresh(&standing, user_id, op, amount_fen, reference).await
    }

    /// [`Pay::reserve_limit`] for a caller that has read the payer's
    /// standing and has not asked the ledger: a reservation counted already
    /// (a retry) is recognised by the group commit itself, and a caller whose
    /// movement may have been made already asks the ledger only when this
    /// refuses it (a replay is never refused by a limit).
    pub(crate) async fn reserve_fresh(
        &self,
        standing: &yizhan_identity::Standing,
        user_id: &str,
        op: Operation,
        amount_fen: i64,
        reference: &str,
    ) -> Result<()> {
        let check = self.limit_check(standing, user_id, op, amount_fen).await?;
        let reserved = self
            .inner_reservations()
            .submit(Reserve {
                reference: reference.to_string(),
                user_id: user_id.to_string(),
                operation: op.as_str(),
                day: check.day,
                amount_fen,
                per_day_fen: check.per_day_fen,
                now_ms: check.now_ms,
            })
            .await?;
        match reserved {
            Reserved::Counted | Reserved::AlreadyCounted => Ok(()),
            Reserved::OverDaily => Err(self.over_daily(&check).await),
        }
    }

    /// The checks of a movement's limits that need no count: the login
    /// proved (to pay), the per-transaction cap, the daily cap itself. What
    /// it returns names the day's quota to count the movement under, with
    /// its cap (a transfer counts it in the ledger's batch:
    /// [`yizhan_ledger::TransferSpec::with_quota`]).
    pub(crate) async fn limit_check(
        &self,
        standing: &yizhan_identity::Standing,
        user_id: &str,
        op: Operation,
        amount_fen: i64,
    ) -> Result<LimitCheck> {
        // Until its login is proved by a code, an account may look around but not pay.
        if op == Operation::Payment && !standing.login_verified {
            return Err(yizhan_identity::login_unproved());
        }
        let level = level_of(standing.verification_level);
        let (per_tx_fen, per_day_fen) = self.limit_rule(level, op).await?;
        let now_ms = self.ctx().now_ms();
        let day = china_day(now_ms);
        let check = LimitCheck {
            quota_key: quota_key(user_id, op.as_str(), day),
            user_id: user_id.to_string(),
            op,
            level,
            per_tx_fen,
            per_day_fen,
            day,
            now_ms,
        };
        if amount_fen > per_tx_fen || amount_fen > per_day_fen {
            let used = self.used_on(user_id, op, day).await?;
            return Err(check.refusal(per_day_fen - used, amount_fen <= per_tx_fen));
        }
        Ok(check)
    }

    /// The refusal of a movement that would pass the daily cap, with what is left today.
    pub(crate) async fn over_daily(&self, check: &LimitCheck) -> Error {
        match self.used_on(&check.user_id, check.op, check.day).await {
            Ok(used) => check.refusal(check.per_day_fen - used, true),
            Err(e) => e,
        }
    }

    /// Give back what a movement reserved: it was refused for good. Safe to
    /// repeat (the reservation is gone after the first).
    pub(crate) async fn give_back_limit(&self, reference: &str) -> Result<()> {
        // Lost in a power failure, the day stays over-counted: the safe side.
        let mut tx = self.ctx().db.begin_relaxed().await?;
        let row: Option<ReservationRow> = sqlx::query_as(
            "DELETE FROM wallet_limit_reservations WHERE reference = $1 RETURNING user_id, operation, day, amount_fen",
        )
        .bind(reference)
        .fetch_optional(tx.conn())
        .await?;
        if let Some(r) = row {
            let key = quota_key(&r.user_id, &r.operation, r.day);
            yizhan_ledger::quotas::give_back(tx.conn(), &key, r.amount_fen).await?;
        }
        tx.commit().await
    }

    /// After a movement failed with `e`: give its reservation back if it was
    /// refused for good and the ledger holds nothing under its key (a refused
    /// request that reused the key of a movement made does not undo its count).
    /// On an unknown outcome (a server error, a timeout) the count stays.
    pub(crate) async fn give_back_if_refused(&self, reference: &str, e: &Error) {
        if matches!(e.code, yizhan_core::Code::Internal | yizhan_core::Code::GatewayTimeout) {
            return;
        }
        let r = async {
            if self.ledger().transfer_by_idempotency_key(reference).await?.is_none() {
                self.give_back_limit(reference).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(code = %e.code, error = %e.msg, "limit reservation not given back; the day stays over-counted");
        }
    }
}

/// A movement's limits as [`Pay::limit_check`] found them.
pub(crate) struct LimitCheck {
    /// The ledger quota counting the person's use of the limit today.
    pub(crate) quota_key: String,
    user_id: String,
    op: Operation,
    level: i64,
    per_tx_fen: i64,
    pub(crate) per_day_fen: i64,
    day: i64,
    now_ms: i64,
}

impl LimitCheck {
    /// `LIMIT_EXCEEDED`, saying which cap, what is left and how to raise it.
    fn refusal(&self, remaining: i64, daily: bool) -> Error {
        let (key, limit) = if self.per_tx_fen == 0 || self.per_day_fen == 0 {
            ("pay.limit.not_allowed", 0)
        } else if daily {
            ("pay.limit.exceeded", self.per_day_fen)
        } else {
            ("pay.limit.exceeded", self.per_tx_fen)
        };
        let period = if daily { "pay.limit.period.per_day" } else { "pay.limit.period.per_tx" };
        let raise = match self.level {
            0 => "pay.limit.raise.verify",
            1 => "pay.limit.raise.counter",
            _ => "pay.limit.raise.none",
        };
        Error::msg(
            crate::codes::LIMIT_EXCEEDED,
            Msg::new(key)
                .key_arg("operation", self.op.key())
                .key_arg("period", period)
                .fen("limit", limit)
                .fen("remaining", remaining.max(0))
                .time("resets", next_china_midnight(self.now_ms))
                .key_arg("raise", raise),
        )
    }
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    user_id: String,
    operation: String,
    day: i64,
    amount_fen: i64,
}

/// One change an admin made to a limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LimitChange {
    pub level: i64,
    pub operation: String,
    pub old_per_tx_fen: i64,
    pub old_per_day_fen: i64,
    pub new_per_tx_fen: i64,
    pub new_per_day_fen: i64,
    pub changed_by_user_id: String,
    pub changed_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_turns_at_china_midnight() {
        // 2026-12-01 16:00 UTC is 2026-12-02 00:00 in China.
        let midnight = yizhan_core::time::days_from_civil(2026, 12, 2) * DAY_MS - CST_OFFSET_MS;
        assert_eq!(china_day(midnight - 1) + 1, china_day(midnight));
        assert_eq!(next_china_midnight(midnight - 1), midnight);
        assert_eq!(next_china_midnight(midnight), midnight + DAY_MS);
        assert_eq!(level_of(7), 2);
        assert_eq!(level_of(-1), 0);
    }

    #[test]
    fn a_table_read_before_a_change_is_not_kept() {
        let cache = RuleCache::default();
        let table = |cap: i64| Arc::new(HashMap::from([((0, "payment".to_string()), (cap, cap))]));
        assert!(cache.fresh().is_none());
        let read_from = cache.generation();
        cache.keep(read_from, table(100));
        assert_eq!(cache.fresh().unwrap()[&(0, "payment".to_string())], (100, 100));
        // A change forgets the table; a read that began before it cannot put its table back.
        let stale_read = cache.generation();
        cache.forget();
        assert!(cache.fresh().is_none());
        cache.keep(stale_read, table(100));
        assert!(cache.fresh().is_none());
        let read_from = cache.generation();
        cache.keep(read_from, table(50));
        assert_eq!(cache.fresh().unwrap()[&(0, "payment".to_string())], (50, 50));
    }
}
