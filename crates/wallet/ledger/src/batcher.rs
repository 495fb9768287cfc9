//! The group-commit engine: one task per [`crate::Ledger`] drains waiting
//! commands, applies them in order against in-memory balances loaded once per
//! batch, writes everything in one database transaction, and answers the
//! callers only after the commit (the fsync) returned.

use crate::sql::{
    self, param_list, rows_per_statement, typed_values_list, values_list, INSERT_COLS, INSERT_NCOLS, PENDING_COLS,
    PENDING_NCOLS, SEQ_BLOCK_SHIFT, TRANSFER_COLS,
};
use crate::types::{check_id, Attachment, HoldState, Transfer, TransferKind, TransferSpec};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use yizhan_core::error::{is_retryable, is_unique_violation};
use yizhan_core::{Arg, Msg};
use yizhan_core::{Code, Ctx, Engine, Error, Result};

/// Tuning of the batcher.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Commands one batch (one database transaction) takes at most.
    pub max_batch: usize,
    /// Commands that may wait for the batcher before callers are slowed down.
    pub queue_capacity: usize,
    /// Rows per multi-row statement at most (also bounded by the engine's
    /// bind-parameter limit). Rounded down to a power of two so that only a
    /// few statement shapes exist and all stay prepared.
    pub max_rows_per_statement: usize,
    /// On SQLite, read and apply the next batch while the previous one is
    /// written (see the batcher's notes). PostgreSQL always runs one batch at
    /// a time per process, each locking its rows.
    pub pipeline: bool,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig { max_batch: 8192, queue_capacity: 65_536, max_rows_per_statement: 4096, pipeline: true }
    }
}

/// Counters of the batcher, for tuning and the benchmark.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub batches: AtomicU64,
    pub commands: AtomicU64,
    pub rows: AtomicU64,
    pub retries: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// What the batcher did since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LedgerStats {
    /// Database transactions committed or failed.
    pub batches: u64,
    /// Commands answered.
    pub commands: u64,
    /// Transfer rows written.
    pub rows: u64,
    /// Batches tried again after a transient failure.
    pub retries: u64,
    /// Batches whose every command got the error.
    pub failed_batches: u64,
}

impl Stats {
    pub fn snapshot(&self) -> LedgerStats {
        LedgerStats {
            batches: self.batches.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
        }
    }
}

pub(crate) enum Action {
    /// Post the given amount, or all of it.
    Post(Option<i64>),
    Void,
}

pub(crate) enum Cmd {
    Transfer {
        spec: Box<TransferSpec>,
        /// Rows of other parts written in the transaction that makes the transfer.
        attachments: Vec<Arc<dyn Attachment>>,
        reply: oneshot::Sender<Result<Transfer>>,
    },
    Linked {
        specs: Vec<TransferSpec>,
        reply: oneshot::Sender<Result<Vec<Transfer>>>,
    },
    Resolve {
        pending_id: String,
        action: Action,
        idempotency_key: Option<String>,
        reply: oneshot::Sender<Result<Transfer>>,
    },
    Expire {
        limit: usize,
        reply: oneshot::Sender<Result<u64>>,
    },
}

/// A transfer a command resulted in: a row of this batch or one stored before
/// (an idempotent replay).
#[derive(Clone)]
enum TRef {
    New(usize),
    Old(Box<Transfer>),
}

enum Outcome {
    One(Result<TRef>),
    Many(Result<Vec<TRef>>),
    Count(Result<u64>),
}

/// How many times a batch is tried again after a transient failure (a
/// deadlock or serialization failure, or another process inserting the same
/// idempotency key first: the next attempt then finds it).
const MAX_RETRIES: usize = 5;

pub(crate) async fn run(ctx: Ctx, cfg: LedgerConfig, stats: Arc<Stats>, rx: mpsc::Receiver<Cmd>) {
    match ctx.db.engine() {
        Engine::Sqlite if cfg.pipeline => run_pipelined(ctx, cfg, stats, rx).await,
        _ => run_plain(ctx, cfg, stats, rx).await,
    }
}

/// One batch at a time, each read, locked, applied and written in one transaction.
async fn run_plain(ctx: Ctx, cfg: LedgerConfig, stats: Arc<Stats>, mut rx: mpsc::Receiver<Cmd>) {
    let mut cmds: Vec<Cmd> = Vec::with_capacity(cfg.max_batch);
    loop {
        // Waits only until one command is there, then takes what else is queued:
        // no artificial delay, and the batch grows by itself while a commit runs.
        if rx.recv_many(&mut cmds, cfg.max_batch.max(1)).await == 0 {
            break;
        }
        execute(&ctx, &cfg, &stats, &mut cmds).await;
    }
}

async fn execute(ctx: &Ctx, cfg: &LedgerConfig, stats: &Stats, cmds: &mut Vec<Cmd>) {
    let mut attempt = 0;
    let result = loop {
        match run_once(ctx, cfg, cmds).await {
            Ok(r) => break Ok(r),
            Err(e) if attempt < MAX_RETRIES && is_transient(&e) => {
                attempt += 1;
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(attempt, error = %e, "ledger batch retried");
            }
            Err(e) => break Err(e),
        }
    };
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.commands.fetch_add(cmds.len() as u64, Ordering::Relaxed);
    match result {
        Ok((rows, outcomes)) => {
            stats.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
            for (cmd, outcome) in cmds.drain(..).zip(outcomes) {
                answer(cmd, outcome, &rows);
            }
        }
        Err(e) => {
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, commands = cmds.len(), "ledger batch failed; nothing of it was applied");
            for cmd in cmds.drain(..) {
                fail(cmd, &e);
            }
        }
    }
}

fn is_transient(e: &Error) -> bool {
    e.source
        .as_ref()
        .and_then(|s| s.downcast_ref::<sqlx::Error>())
        .is_some_and(|s| is_retryable(s) || is_unique_violation(s))
}

fn copy_err(e: &Error) -> Error {
    Error {
        code: e.code,
        msg: e.msg.clone(),
        fields: e.fields.clone(),
        retry_after_s: e.retry_after_s,
        source: e.source.as_ref().map(|s| anyhow::anyhow!("{s:#}")),
    }
}

fn materialize(r: TRef, rows: &[Transfer]) -> Result<Transfer> {
    match r {
        TRef::Old(t) => Ok(*t),
        TRef::New(i) => {
            rows.get(i).cloned().ok_or_else(|| Error::internal(anyhow::anyhow!("ledger: batch row {i} missing")))
        }
    }
}

// A caller that went away (dropped its future) is not an error: the send fails silently.
fn answer(cmd: Cmd, outcome: Outcome, rows: &[Transfer]) {
    match (cmd, outcome) {
        (Cmd::Transfer { reply, .. }, Outcome::One(r)) | (Cmd::Resolve { reply, .. }, Outcome::One(r)) => {
            let _ = reply.send(r.and_then(|r| materialize(r, rows)));
        }
        (Cmd::Linked { reply, .. }, Outcome::Many(r)) => {
            let _ = reply.send(r.and_then(|v| v.into_iter().map(|r| materialize(r, rows)).collect()));
        }
        (Cmd::Expire { reply, .. }, Outcome::Count(n)) => {
            let _ = reply.send(n);
        }
        (cmd, _) => fail(cmd, &Error::internal(anyhow::anyhow!("ledger: outcome does not match command"))),
    }
}

fn fail(cmd: Cmd, e: &Error) {
    match cmd {
        Cmd::Transfer { reply, .. } | Cmd::Resolve { reply, .. } => {
            let _ = reply.send(Err(copy_err(e)));
        }
        Cmd::Linked { reply, .. } => {
            let _ = reply.send(Err(copy_err(e)));
        }
        Cmd::Expire { reply, .. } => {
            let _ = reply.send(Err(copy_err(e)));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Bal {
    posted: i64,
    pending_debit: i64,
    pending_credit: i64,
}

#[derive(Clone)]
struct AccMem {
    currency: String,
    allow_negative: bool,
    /// Takes no new money.
    closed: bool,
    credit_limit_fen: i64,
    bal: Bal,
    /// As loaded: the batch writes `bal - base` as the account's net change.
    base: Bal,
}

#[derive(Clone)]
struct PendMem {
    debit: String,
    credit: String,
    amount_fen: i64,
    currency: String,
    category: String,
    expires_at_ms: Option<i64>,
    state: HoldState,
    resolved_by: Option<String>,
    resolved_at_ms: Option<i64>,
    created_at_ms: i64,
    /// Made in this batch: inserted, not updated.
    is_new: bool,
    dirty: bool,
}

/// A quota's count as the batch has it, and as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QuotaMem {
    used: i64,
    base: i64,
    /// No row yet: the write makes it.
    missing: bool,
}

enum Undo {
    Acc(String, Bal),
    Quota(String, i64),
    Pend(String, Option<PendMem>),
    Idem(String),
    Id(String),
}

/// A batch's working state: the touched accounts and pending transfers as
/// they stand after every command applied so far.
struct State {
    now: i64,
    accounts: HashMap<String, AccMem>,
    /// Every quota the batch's transfers count under (missing rows as 0).
    quotas: HashMap<String, QuotaMem>,
    pendings: HashMap<String, PendMem>,
    idem: HashMap<String, TRef>,
    /// Transfer ids known to exist: looked up (explicit ids, refers_to) or made in this batch.
    known_ids: HashSet<String>,
    rows: Vec<Transfer>,
    /// While applying a linked group: how to take back what it did.
    journal: Option<Vec<Undo>>,
    /// Ids are `ctx.new_id()`'s shape (12 hex digits of ms, 16 random), but one
    /// random draw per batch: `id_base + n × odd` is distinct for every n.
    id_base: u64,
    ids_made: u64,
}

fn overflow() -> Error {
    Error::internal(anyhow::anyhow!("ledger: balance out of range"))
}

impl State {
    fn new_id(&mut self) -> String {
        self.ids_made += 1;
        let r = self.id_base.wrapping_add(self.ids_made.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        format!("{:012x}{:016x}", self.now.max(0), r)
    }

    fn get<'s>(&'s self, r: &'s TRef) -> Option<&'s Transfer> {
        match r {
            TRef::New(i) => self.rows.get(*i),
            TRef::Old(t) => Some(t),
        }
    }

    fn acc(&self, id: &str) -> Result<&AccMem> {
        self.accounts.get(id).ok_or_else(|| Error::not_found("ledger_account"))
    }

    /// The balance of `id` after a change; nothing is changed yet.
    fn plan(&self, id: &str, d_posted: i64, d_pending_debit: i64, d_pending_credit: i64) -> Result<Bal> {
        let b = self.acc(id)?.bal;
        Ok(Bal {
            posted: b.posted.checked_add(d_posted).ok_or_else(overflow)?,
            pending_debit: b.pending_debit.checked_add(d_pending_debit).ok_or_else(overflow)?,
            pending_credit: b.pending_credit.checked_add(d_pending_credit).ok_or_else(overflow)?,
        })
    }

    fn set_bal(&mut self, id: &str, bal: Bal) {
        if let Some(acc) = self.accounts.get_mut(id) {
            if let Some(j) = &mut self.journal {
                j.push(Undo::Acc(id.to_string(), acc.bal));
            }
            acc.bal = bal;
        }
    }

    fn set_pending(&mut self, id: &str, p: PendMem) {
        let old = self.pendings.insert(id.to_string(), p);
        if let Some(j) = &mut self.journal {
            j.push(Undo::Pend(id.to_string(), old));
        }
    }

    fn remember(&mut self, id: &str, key: Option<&str>, r: TRef) {
        if let Some(k) = key {
            self.idem.insert(k.to_string(), r);
            if let Some(j) = &mut self.journal {
                j.push(Undo::Idem(k.to_string()));
            }
        }
        if self.known_ids.insert(id.to_string()) {
            if let Some(j) = &mut self.journal {
                j.push(Undo::Id(id.to_string()));
            }
        }
    }

    fn rollback(&mut self, rows_len: usize) {
        for u in self.journal.take().unwrap_or_default().into_iter().rev() {
            match u {
                Undo::Acc(id, bal) => {
                    if let Some(a) = self.accounts.get_mut(&id) {
                        a.bal = bal;
                    }
                }
                Undo::Quota(key, used) => {
                    if let Some(q) = self.quotas.get_mut(&key) {
                        q.used = used;
                    }
                }
                Undo::Pend(id, Some(p)) => {
                    self.pendings.insert(id, p);
                }
                Undo::Pend(id, None) => {
                    self.pendings.remove(&id);
                }
                Undo::Idem(k) => {
                    self.idem.remove(&k);
                }
                Undo::Id(id) => {
                    self.known_ids.remove(&id);
                }
            }
        }
        self.rows.truncate(rows_len);
    }

    fn apply_spec(&mut self, spec: &TransferSpec, linked_group: Option<&str>) -> Result<TRef> {
        spec.validate()?;
        let pending = spec.is_pending();
        if let Some(key) = &spec.idempotency_key {
            if let Some(r) = self.idem.get(key) {
                let same = self.get(r).is_some_and(|t| {
                    t.debit_account_id == spec.debit
                        && t.credit_account_id == spec.credit
                        && t.amount_fen == spec.amount_fen
                        && t.category == spec.category
                        && t.kind == if pending { TransferKind::Pending } else { TransferKind::Posted }
                });
                return if same {
                    Ok(r.clone())
                } else {
                    Err(Error::new(Code::IdempotencyKeyReused, "ledger.key_reused"))
                };
            }
        }
        if let Some(id) = &spec.id {
            if self.known_ids.contains(id) {
                return Err(Error::new(Code::AlreadyExists, "ledger.transfer_exists"));
            }
        }
        if let Some(r) = &spec.refers_to {
            if !self.known_ids.contains(r) {
                return Err(Error::not_found("transfer"));
            }
        }
        let amount = spec.amount_fen;
        let debit = self.acc(&spec.debit)?;
        let credit = self.acc(&spec.credit)?;
        if debit.currency != spec.currency || credit.currency != spec.currency {
            return Err(Error::field("currency", "ledger.currency_mismatch"));
        }
        if credit.closed {
            return Err(Error::new(crate::codes::ACCOUNT_CLOSED, "ledger.account_closed"));
        }
        // The quota first: a limit refuses before the balance does.
        let quota_after = match &spec.quota {
            Some(q) => {
                let used = self.quotas.get(&q.key).map_or(0, |m| m.used);
                match used.checked_add(amount) {
                    Some(after) if after <= q.cap_fen => Some((q.key.as_str(), used, after)),
                    _ => {
                        return Err(Error::msg(
                            crate::codes::QUOTA_EXCEEDED,
                            Msg::new("ledger.quota_exceeded").fen("remaining", (q.cap_fen - used).max(0)),
                        ))
                    }
                }
            }
            None => None,
        };
        if !debit.allow_negative {
            let available = debit.bal.posted - debit.bal.pending_debit;
            let floor = if spec.own_funds_only { 0 } else { -debit.credit_limit_fen };
            if available - amount < floor {
                return Err(Error::msg(
                    crate::codes::INSUFFICIENT_FUNDS,
                    Msg::new("ledger.insufficient_funds").fen("available", available.max(0)).fen("needed", amount),
                ));
            }
        }
        let (d_bal, c_bal) = if pending {
            (self.plan(&spec.debit, 0, amount, 0)?, self.plan(&spec.credit, 0, 0, amount)?)
        } else {
            (self.plan(&spec.debit, -amount, 0, 0)?, self.plan(&spec.credit, amount, 0, 0)?)
        };
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => self.new_id(),
        };
        let expires_at_ms = if pending { spec.pending_timeout_ms.map(|t| self.now.saturating_add(t)) } else { None };
        self.set_bal(&spec.debit, d_bal);
        self.set_bal(&spec.credit, c_bal);
        if let Some((key, used, after)) = quota_after {
            if let Some(j) = &mut self.journal {
                j.push(Undo::Quota(key.to_string(), used));
            }
            self.quotas.entry(key.to_string()).or_insert(QuotaMem { used, base: used, missing: true }).used = after;
        }
        if pending {
            self.set_pending(
                &id,
                PendMem {
                    debit: spec.debit.clone(),
                    credit: spec.credit.clone(),
                    amount_fen: amount,
                    currency: spec.currency.clone(),
                    category: spec.category.clone(),
                    expires_at_ms,
                    state: HoldState::Pending,
                    resolved_by: None,
                    resolved_at_ms: None,
                    created_at_ms: self.now,
                    is_new: true,
                    dirty: true,
                },
            );
        }
        let idx = self.rows.len();
        self.rows.push(Transfer {
            id: id.clone(),
            seq: 0,
            kind: if pending { TransferKind::Pending } else { TransferKind::Posted },
            debit_account_id: spec.debit.clone(),
            credit_account_id: spec.credit.clone(),
            amount_fen: amount,
            currency: spec.currency.clone(),
            category: spec.category.clone(),
            memo: spec.memo.clone(),
            pending_id: None,
            expires_at_ms,
            refers_to: spec.refers_to.clone(),
            linked_group: linked_group.map(str::to_string),
            idempotency_key: spec.idempotency_key.clone(),
            created_at_ms: self.now,
        });
        self.remember(&id, spec.idempotency_key.as_deref(), TRef::New(idx));
        Ok(TRef::New(idx))
    }

    fn apply_linked(&mut self, specs: &[TransferSpec]) -> Result<Vec<TRef>> {
        if specs.is_empty() {
            return Err(Error::field("transfers", "ledger.transfers_empty"));
        }
        let group = self.new_id();
        let rows_len = self.rows.len();
        self.journal = Some(Vec::new());
        let mut out = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            match self.apply_spec(spec, Some(&group)) {
                Ok(r) => out.push(r),
                Err(e) => {
                    self.rollback(rows_len);
                    // The person's reason stays the failed transfer's; which one failed goes along.
                    // The reason's own arguments follow it, so its placeholders are filled too.
                    let mut msg = Msg::new("ledger.linked_failed")
                        .int("index", i as i64 + 1)
                        .int("count", specs.len() as i64)
                        .key_arg("reason", e.msg.key.clone());
                    let reason_args =
                        e.msg.args.iter().filter(|(k, _)| !["index", "count", "reason"].contains(&k.as_str()));
                    msg.args.extend(reason_args.cloned());
                    return Err(Error { msg, ..e });
                }
            }
        }
        self.journal = None;
        Ok(out)
    }

    fn apply_resolve(&mut self, pending_id: &str, action: &Action, key: Option<&str>) -> Result<TRef> {
        check_id("pending_id", pending_id)?;
        if let Some(k) = key {
            check_id("idempotency_key", k)?;
        }
        if let Action::Post(Some(a)) = action {
            crate::types::amount_check("amount_fen", *a)?;
        }
        let wanted_kind = match action {
            Action::Post(_) => TransferKind::PostPending,
            Action::Void => TransferKind::VoidPending,
        };
        if let Some(k) = key {
            if let Some(r) = self.idem.get(k) {
                let pending_amount = self.pendings.get(pending_id).map(|p| p.amount_fen);
                let same = self.get(r).is_some_and(|t| {
                    t.pending_id.as_deref() == Some(pending_id)
                        && t.kind == wanted_kind
                        && match action {
                            Action::Post(Some(a)) => t.amount_fen == *a,
                            Action::Post(None) => pending_amount == Some(t.amount_fen),
                            Action::Void => true,
                        }
                });
                return if same {
                    Ok(r.clone())
                } else {
                    Err(Error::new(Code::IdempotencyKeyReused, "ledger.key_reused"))
                };
            }
        }
        let p = self.pendings.get(pending_id).ok_or_else(|| Error::not_found("hold"))?;
        match p.state {
            HoldState::Pending => {}
            HoldState::Expired => return Err(Error::new(crate::codes::HOLD_EXPIRED, "ledger.hold_expired")),
            HoldState::Posted | HoldState::Voided => {
                return Err(Error::new(crate::codes::TRANSFER_ALREADY_RESOLVED, "ledger.hold_resolved")
                    .with("state", Arg::Key(format!("ledger.hold_state.{}", p.state.as_str()))))
            }
        }
        match action {
            Action::Post(amount) => {
                if p.expires_at_ms.is_some_and(|e| e <= self.now) {
                    return Err(Error::new(crate::codes::HOLD_EXPIRED, "ledger.hold_expired"));
                }
                let amount = amount.unwrap_or(p.amount_fen);
                if amount > p.amount_fen {
                    return Err(Error::field("amount_fen", "ledger.post_exceeds_hold"));
                }
                self.resolve(pending_id, TransferKind::PostPending, amount, HoldState::Posted, key)
            }
            Action::Void => {
                let amount = p.amount_fen;
                self.resolve(pending_id, TransferKind::VoidPending, amount, HoldState::Voided, key)
            }
        }
    }

    /// Writes the resolution row of a pending transfer whose state was checked.
    fn resolve(
        &mut self,
        pending_id: &str,
        kind: TransferKind,
        amount_fen: i64,
        state: HoldState,
        key: Option<&str>,
    ) -> Result<TRef> {
        let p = self.pendings.get(pending_id).cloned().ok_or_else(|| Error::not_found("hold"))?;
        let posted = if kind == TransferKind::PostPending { amount_fen } else { 0 };
        let d_bal = self.plan(&p.debit, -posted, -p.amount_fen, 0)?;
        let c_bal = self.plan(&p.credit, posted, 0, -p.amount_fen)?;
        if d_bal.pending_debit < 0 || c_bal.pending_credit < 0 {
            return Err(Error::internal(anyhow::anyhow!(
                "ledger: resolving {pending_id} would make pending sums negative"
            )));
        }
        let id = self.new_id();
        self.set_bal(&p.debit, d_bal);
        self.set_bal(&p.credit, c_bal);
        let idx = self.rows.len();
        self.rows.push(Transfer {
            id: id.clone(),
            seq: 0,
            kind,
            debit_account_id: p.debit.clone(),
            credit_account_id: p.credit.clone(),
            amount_fen,
            currency: p.currency.clone(),
            category: p.category.clone(),
            memo: String::new(),
            pending_id: Some(pending_id.to_string()),
            expires_at_ms: None,
            refers_to: None,
            linked_group: None,
            idempotency_key: key.map(str::to_string),
            created_at_ms: self.now,
        });
        let mut resolved = p;
        resolved.state = state;
        resolved.resolved_by = Some(id.clone());
        resolved.resolved_at_ms = Some(self.now);
        resolved.dirty = true;
        self.set_pending(pending_id, resolved);
        self.remember(&id, key, TRef::New(idx));
        Ok(TRef::New(idx))
    }

    fn apply_expire(&mut self, due: &[String]) -> Result<u64> {
        let mut n = 0;
        for pid in due {
            let Some(p) = self.pendings.get(pid) else { continue };
            if p.state != HoldState::Pending || p.expires_at_ms.is_none_or(|e| e > self.now) {
                continue;
            }
            let amount = p.amount_fen;
            self.resolve(pid, TransferKind::ExpirePending, amount, HoldState::Expired, None)?;
            n += 1;
        }
        Ok(n)
    }

    /// Cheap whole-batch invariants: money only moves between accounts.
    fn assert_balanced(&self) -> Result<()> {
        let (mut posted, mut pd, mut pc) = (0i128, 0i128, 0i128);
        for a in self.accounts.values() {
            posted += i128::from(a.bal.posted) - i128::from(a.base.posted);
            pd += i128::from(a.bal.pending_debit) - i128::from(a.base.pending_debit);
            pc += i128::from(a.bal.pending_credit) - i128::from(a.base.pending_credit);
            if !a.allow_negative && a.bal.posted - a.bal.pending_debit < -a.credit_limit_fen && a.bal != a.base {
                return Err(Error::internal(anyhow::anyhow!("ledger: batch would overdraw an account")));
            }
        }
        if posted != 0 || pd != pc {
            return Err(Error::internal(anyhow::anyhow!(
                "ledger: batch does not balance (posted {posted}, pending {pd}/{pc})"
            )));
        }
        Ok(())
    }
}

/// Sizes of the statements for `n` rows: as many `max` as fit, then
/// descending powers of two, so only a few statement shapes ever exist.
fn ladder(mut n: usize, max: usize) -> Vec<usize> {
    let max = if max.is_power_of_two() { max } else { (max.next_power_of_two() / 2).max(1) };
    let mut out = Vec::new();
    while n >= max {
        out.push(max);
        n -= max;
    }
    let mut s = max / 2;
    while n > 0 && s > 0 {
        if n >= s {
            out.push(s);
            n -= s;
        }
        s /= 2;
    }
    out
}

fn chunks<'a, T>(items: &'a [T], max: usize) -> impl Iterator<Item = &'a [T]> + 'a {
    let mut at = 0;
    ladder(items.len(), max).into_iter().map(move |s| {
        let c = &items[at..at + s];
        at += s;
        c
    })
}

/// `SELECT … WHERE column IN (…)` over as many statements as needed.
async fn select_in(
    conn: &mut AnyConnection,
    engine: Engine,
    head: &str,
    tail: &str,
    ids: &[&str],
    cap: usize,
) -> Result<Vec<AnyRow>> {
    let mut out = Vec::new();
    for chunk in chunks(ids, rows_per_statement(engine, 1, cap)) {
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * 7);
        sql.push_str(head);
        sql.push_str(" IN (");
        param_list(&mut sql, engine, chunk.len());
        sql.push(')');
        sql.push_str(tail);
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Field and record separators of the packed account rows (ids have no control characters).
const UNIT: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// Loads (and on PostgreSQL locks, in id order) the accounts. One packed text
/// per statement instead of a row per account: decoding rows costs far more
/// than the lookups.
async fn load_accounts(
    conn: &mut AnyConnection,
    engine: Engine,
    ids: &[&str],
    cap: usize,
    lock: bool,
) -> Result<HashMap<String, AccMem>> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let (head, tail) = match engine {
        Engine::Sqlite => (
            "SELECT group_concat(id || char(31) || currency || char(31) || allow_negative || char(31) || \
             closed || char(31) || credit_limit_fen || char(31) || posted_fen || char(31) || pending_debit_fen || char(31) || \
             pending_credit_fen, char(30)) FROM ledger_accounts WHERE id",
            "",
        ),
        Engine::Postgres => (
            "SELECT string_agg(id || chr(31) || currency || chr(31) || CAST(allow_negative AS TEXT) || chr(31) || \
             CAST(closed AS TEXT) || chr(31) || CAST(credit_limit_fen AS TEXT) || chr(31) || CAST(posted_fen AS TEXT) || chr(31) || \
             CAST(pending_debit_fen AS TEXT) || chr(31) || CAST(pending_credit_fen AS TEXT), chr(30)) \
             FROM (SELECT * FROM ledger_accounts WHERE id",
            if lock { " ORDER BY id COLLATE \"C\" FOR UPDATE) AS a" } else { ") AS a" },
        ),
    };
    let bad = || Error::internal(anyhow::anyhow!("ledger: packed account row does not parse"));
    for row in select_in(conn, engine, head, tail, ids, cap).await? {
        let Some(packed) = row.try_get::<Option<String>, _>(0)? else { continue };
        for record in packed.split(RECORD) {
            let mut f = record.split(UNIT);
            let mut next = || f.next().ok_or_else(bad);
            let id = next()?.to_string();
            let currency = next()?.to_string();
            let allow_negative = next()? != "0";
            let closed = next()? != "0";
            let mut num = || -> Result<i64> { next()?.parse::<i64>().map_err(|_| bad()) };
            let credit_limit_fen = num()?;
            let bal = Bal { posted: num()?, pending_debit: num()?, pending_credit: num()? };
            out.insert(id, AccMem { currency, allow_negative, closed, credit_limit_fen, bal, base: bal });
        }
    }
    Ok(out)
}

type BatchResult = (Vec<Transfer>, Vec<Outcome>);

/// What a batch reads before applying its commands.
struct Wanted<'a> {
    keys: BTreeSet<&'a str>,
    ids: BTreeSet<&'a str>,
    pending_ids: BTreeSet<String>,
    account_ids: BTreeSet<String>,
    quota_keys: BTreeSet<&'a str>,
    expire_limit: usize,
}

fn wanted(cmds: &[Cmd]) -> Wanted<'_> {
    let mut w = Wanted {
        keys: BTreeSet::new(),
        ids: BTreeSet::new(),
        pending_ids: BTreeSet::new(),
        account_ids: BTreeSet::new(),
        quota_keys: BTreeSet::new(),
        expire_limit: 0,
    };
    for cmd in cmds {
        match cmd {
            Cmd::Transfer { spec, .. } => collect_spec(spec, &mut w),
            Cmd::Linked { specs, .. } => {
                for spec in specs {
                    collect_spec(spec, &mut w);
                }
            }
            Cmd::Resolve { pending_id, idempotency_key, .. } => {
                w.pending_ids.insert(pending_id.clone());
                if let Some(k) = idempotency_key {
                    w.keys.insert(k);
                }
            }
            Cmd::Expire { limit, .. } => w.expire_limit += *limit,
        }
    }
    w
}

/// The final state of a batch being written, for the next batch to build on
/// before the first is committed (the SQLite pipeline).
struct Carry {
    /// Changed accounts as they will be after the commit.
    accounts: HashMap<String, AccMem>,
    /// Quotas counted, as they will be.
    quotas: HashMap<String, i64>,
    /// Pending transfers made or resolved, as they will be.
    pendings: HashMap<String, PendMem>,
    /// New rows by idempotency key.
    idem: HashMap<String, Transfer>,
    ids: HashSet<String>,
    /// The seq counter before and after the commit.
    prev_seq: i64,
    last_seq: i64,
}

impl Carry {
    fn of(st: &State, prev_seq: i64, last_seq: i64) -> Carry {
        Carry {
            accounts: st
                .accounts
                .iter()
                .filter(|(_, a)| a.bal != a.base)
                .map(|(id, a)| (id.clone(), AccMem { base: a.bal, ..a.clone() }))
                .collect(),
            quotas: st.quotas.iter().filter(|(_, q)| q.used != q.base).map(|(k, q)| (k.clone(), q.used)).collect(),
            pendings: st
                .pendings
                .iter()
                .filter(|(_, p)| p.is_new || p.dirty)
                .map(|(id, p)| (id.clone(), PendMem { is_new: false, dirty: false, ..p.clone() }))
                .collect(),
            idem: st.rows.iter().filter_map(|t| t.idempotency_key.clone().map(|k| (k, t.clone()))).collect(),
            ids: st.rows.iter().map(|t| t.id.clone()).collect(),
            prev_seq,
            last_seq,
        }
    }
}

fn pend_from(h: crate::types::Hold) -> (String, PendMem) {
    (
        h.pending_id,
        PendMem {
            debit: h.debit_account_id,
            credit: h.credit_account_id,
            amount_fen: h.amount_fen,
            currency: h.currency,
            category: h.category,
            expires_at_ms: h.expires_at_ms,
            state: h.state,
            resolved_by: h.resolved_by,
            resolved_at_ms: h.resolved_at_ms,
            created_at_ms: h.created_at_ms,
            is_new: false,
            dirty: false,
        },
    )
}

/// What the pipeline already knows better than the database.
#[derive(Default, Clone, Copy)]
struct Known<'a> {
    /// The batch in flight.
    carry: Option<&'a Carry>,
    /// Accounts as the batches left them.
    accounts: Option<&'a HashMap<String, AccMem>>,
}

/// Reads everything the batch needs, each table once, and returns the
/// working state and the pending transfers due to expire. With `lock`
/// (PostgreSQL, inside the write transaction) the rows are locked in a fixed
/// order: pending rows, then accounts (then the seq row when writing), each
/// by id in byte order, so batchers of several processes cannot deadlock.
/// With `prior`, what the batch still being written will have made wins
/// over what the database shows.
async fn load(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    cap: usize,
    now: i64,
    mut w: Wanted<'_>,
    lock: bool,
    known: Known<'_>,
) -> Result<(State, Vec<String>)> {
    let Known { carry: prior, accounts: cache } = known;
    let engine = ctx.db.engine();
    let mut idem: HashMap<String, TRef> = HashMap::new();
    if !w.keys.is_empty() {
        let keys: Vec<&str> = w.keys.iter().copied().collect();
        let head = format!("SELECT {TRANSFER_COLS} FROM ledger_transfers WHERE idempotency_key");
        for row in select_in(conn, engine, &head, "", &keys, cap).await? {
            let t = sql::transfer_from_row(&row)?;
            if let Some(k) = t.idempotency_key.clone() {
                idem.insert(k, TRef::Old(Box::new(t)));
            }
        }
        if let Some(c) = prior {
            for k in keys {
                if let Some(t) = c.idem.get(k) {
                    idem.insert(k.to_string(), TRef::Old(Box::new(t.clone())));
                }
            }
        }
    }
    let mut known_ids: HashSet<String> = HashSet::new();
    if !w.ids.is_empty() {
        let ids: Vec<&str> = w.ids.iter().copied().collect();
        for row in select_in(conn, engine, "SELECT id FROM ledger_transfers WHERE id", "", &ids, cap).await? {
            known_ids.insert(row.try_get("id")?);
        }
        if let Some(c) = prior {
            known_ids.extend(ids.iter().filter(|id| c.ids.contains(**id)).map(|id| id.to_string()));
        }
    }
    let mut due: Vec<String> = Vec::new();
    if w.expire_limit > 0 {
        let rows = sqlx::query(
            "SELECT pending_id FROM ledger_pending WHERE state = 'pending' AND expires_at_ms <= $1 \
             ORDER BY expires_at_ms, pending_id LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(w.expire_limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            due.push(row.try_get("pending_id")?);
        }
        if let Some(c) = prior {
            for (id, p) in &c.pendings {
                if p.state == HoldState::Pending && p.expires_at_ms.is_some_and(|e| e <= now) && !due.contains(id) {
                    due.push(id.clone());
                }
            }
        }
        w.pending_ids.extend(due.iter().cloned());
    }

    let mut pendings: HashMap<String, PendMem> = HashMap::new();
    if !w.pending_ids.is_empty() {
        let list: Vec<&str> = w.pending_ids.iter().map(String::as_str).collect();
        let head = format!("SELECT {PENDING_COLS} FROM ledger_pending WHERE pending_id");
        let tail = if lock { " ORDER BY pending_id COLLATE \"C\" FOR UPDATE" } else { "" };
        for row in select_in(conn, engine, &head, tail, &list, cap).await? {
            let (id, p) = pend_from(sql::hold_from_row(&row)?);
            pendings.insert(id, p);
        }
        if let Some(c) = prior {
            for id in list {
                if let Some(p) = c.pendings.get(id) {
                    pendings.insert(id.to_string(), p.clone());
                }
            }
        }
        for p in pendings.values() {
            w.account_ids.insert(p.debit.clone());
            w.account_ids.insert(p.credit.clone());
        }
    }
    let mut accounts: HashMap<String, AccMem> = HashMap::with_capacity(w.account_ids.len());
    let mut list: Vec<&str> = Vec::with_capacity(w.account_ids.len());
    for id in &w.account_ids {
        match cache.and_then(|c| c.get(id)) {
            Some(a) => {
                accounts.insert(id.clone(), a.clone());
            }
            None => list.push(id),
        }
    }
    accounts.extend(load_accounts(conn, engine, &list, cap, lock).await?);
    if let Some(c) = prior {
        for id in list {
            if let Some(a) = c.accounts.get(id) {
                accounts.insert(id.to_string(), a.clone());
            }
        }
    }
    // Quotas: created and locked on PostgreSQL (inside the write
    // transaction, after the accounts); the batch in flight's counts win.
    let mut quotas: HashMap<String, QuotaMem> = HashMap::with_capacity(w.quota_keys.len());
    if !w.quota_keys.is_empty() {
        let keys: Vec<&str> = w.quota_keys.iter().copied().collect();
        let read = crate::quotas::read(conn, &keys, lock).await?;
        for k in keys {
            let found = read.get(k).copied();
            let mut used = found.unwrap_or(0);
            let mut missing = found.is_none();
            if let Some(n) = prior.and_then(|c| c.quotas.get(k)) {
                // The batch in flight makes the row if it was missing.
                used = *n;
                missing = false;
            }
            quotas.insert(k.to_string(), QuotaMem { used, base: used, missing });
        }
    }
    let st = State {
        now,
        accounts,
        quotas,
        pendings,
        idem,
        known_ids,
        rows: Vec::new(),
        journal: None,
        id_base: ctx.rng.next_u64(),
        ids_made: 0,
    };
    Ok((st, due))
}

/// Applies every command in order against the running balances.
fn apply_all(st: &mut State, cmds: &[Cmd], due: &[String]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(cmds.len());
    for cmd in cmds {
        outcomes.push(match cmd {
            Cmd::Transfer { spec, .. } => Outcome::One(st.apply_spec(spec, None)),
            Cmd::Linked { specs, .. } => Outcome::Many(st.apply_linked(specs)),
            Cmd::Resolve { pending_id, action, idempotency_key, .. } => {
                Outcome::One(st.apply_resolve(pending_id, action, idempotency_key.as_deref()))
            }
            Cmd::Expire { .. } => Outcome::Count(st.apply_expire(due)),
        });
    }
    outcomes
}

fn assign_seqs(rows: &mut [Transfer], first: i64) -> Result<()> {
    for (i, row) in rows.iter_mut().enumerate() {
        row.seq = first + i64::try_from(i).map_err(Error::internal)?;
    }
    Ok(())
}

/// Writes the batch's rows, pending states and account changes.
/// Writes the attachments of the transfers this batch made (not of replays
/// or refusals), each kind together through its first one's `write_all`.
async fn write_attachments<C: Attached>(
    conn: &mut AnyConnection,
    cmds: &[C],
    outcomes: &[Outcome],
    rows: &[Transfer],
) -> Result<()> {
    let mut kinds: Vec<(std::any::TypeId, AttachedRows<'_>)> = Vec::new();
    for (cmd, outcome) in cmds.iter().zip(outcomes) {
        let (atts, Outcome::One(Ok(TRef::New(i)))) = (cmd.attachments(), outcome) else {
            continue;
        };
        let Some(row) = rows.get(*i) else {
            continue;
        };
        for a in atts {
            let kind = a.as_any().type_id();
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, list)) => list.push((a.as_ref(), row)),
                None => kinds.push((kind, vec![(a.as_ref(), row)])),
            }
        }
    }
    for (_, list) in &kinds {
        if let Some((first, _)) = list.first() {
            first.write_all(conn, list).await?;
        }
    }
    Ok(())
}

/// Attachments of one type with the transfers they belong to.
type AttachedRows<'a> = Vec<(&'a dyn Attachment, &'a Transfer)>;

/// What carries attachments: a command, or (in a prepared batch) their copy.
trait Attached {
    fn attachments(&self) -> &[Arc<dyn Attachment>];
}

impl Attached for Cmd {
    fn attachments(&self) -> &[Arc<dyn Attachment>] {
        match self {
            Cmd::Transfer { attachments, .. } => attachments,
            _ => &[],
        }
    }
}

impl Attached for Vec<Arc<dyn Attachment>> {
    fn attachments(&self) -> &[Arc<dyn Attachment>] {
        self
    }
}

async fn write_rows(conn: &mut AnyConnection, engine: Engine, cap: usize, st: &State) -> Result<()> {
    insert_transfers(conn, engine, cap, &st.rows).await?;
    write_pendings(conn, engine, cap, &st.pendings).await?;
    write_accounts(conn, engine, cap, &st.accounts).await?;
    let moved: Vec<(&str, i64, i64)> =
        st.quotas.iter().filter(|(_, q)| q.used != q.base).map(|(k, q)| (k.as_str(), q.used, q.base)).collect();
    // Rows read as missing are made first (on PostgreSQL the batch made and
    // locked them when it read them).
    let missing: Vec<&str> =
        st.quotas.iter().filter(|(_, q)| q.missing && q.used != q.base).map(|(k, _)| k.as_str()).collect();
    crate::quotas::write_guarded(conn, &moved, &missing).await
}

/// One batch in one transaction that reads (and on PostgreSQL locks) what it
/// touches, applies, writes and commits.
async fn run_once(ctx: &Ctx, cfg: &LedgerConfig, cmds: &[Cmd]) -> Result<BatchResult> {
    let engine = ctx.db.engine();
    let cap = cfg.max_rows_per_statement;
    let now = ctx.now_ms();
    let w = wanted(cmds);
    let t0 = std::time::Instant::now();
    let mut tx = ctx.db.begin().await?;
    let conn = tx.conn();
    let (mut st, due) = load(conn, ctx, cap, now, w, engine == Engine::Postgres, Known::default()).await?;
    let t_load = t0.elapsed();
    let outcomes = apply_all(&mut st, cmds, &due);
    if st.rows.is_empty() {
        // Only refusals and replays: nothing to write.
        drop(tx);
        return Ok((Vec::new(), outcomes));
    }
    st.assert_balanced()?;
    let n = i64::try_from(st.rows.len()).map_err(Error::internal)?;
    let last: i64 =
        sqlx::query("UPDATE ledger_meta SET value_int = value_int + $1 WHERE key = 'transfer_seq' RETURNING value_int")
            .bind(n)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
    assign_seqs(&mut st.rows, last - n + 1)?;
    let t_apply = t0.elapsed();
    write_rows(conn, engine, cap, &st).await?;
    write_attachments(conn, cmds, &outcomes, &st.rows).await?;
    let t_write = t0.elapsed();
    tx.commit().await?;
    tracing::debug!(
        commands = cmds.len(),
        rows = st.rows.len(),
        accounts = st.accounts.len(),
        read_ms = t_load.as_secs_f64() * 1e3,
        apply_ms = (t_apply - t_load).as_secs_f64() * 1e3,
        write_ms = (t_write - t_apply).as_secs_f64() * 1e3,
        commit_ms = (t0.elapsed() - t_write).as_secs_f64() * 1e3,
        "ledger batch committed"
    );
    Ok((st.rows, outcomes))
}

// ---------------------------------------------------------------------------
// The SQLite pipeline. SQLite has one writer; while it writes and commits
// batch k, batch k+1 is read on another connection and applied on top of
// k's final state (its Carry). k+1 is written only if k committed exactly as
// prepared, and its write checks that nobody else wrote in between (the seq
// counter must be where k left it); every rule the batch relied on is also
// a constraint (CHECK on balances, UNIQUE keys, the pending state), so a
// stale read makes the write fail instead of breaking an invariant. Any
// failure before the commit falls back to `run_once`.

/// A batch applied in memory, waiting for its turn to write.
struct Prepared {
    st: State,
    outcomes: Vec<Outcome>,
    /// Each command's attachments (the commands themselves stay with their callers' replies).
    cmds_attachments: Vec<Vec<Arc<dyn Attachment>>>,
    /// The seq counter as the batch expects to find it.
    prev_seq: i64,
    /// The accounts' version its reads saw: an account changed since (closed,
    /// a new credit limit) means the batch runs again the plain way.
    version: i64,
    carry: Arc<Carry>,
    read: std::time::Duration,
}

/// Accounts as the pipeline's batches left them, so a batch reads only the
/// accounts it has not seen. Valid while nobody else changes accounts: every
/// balance change moves the seq counter and every other change to an
/// existing account moves `accounts_version`; either moving unexpectedly
/// drops the cache.
struct AccountCache {
    accounts: HashMap<String, AccMem>,
    /// The seq counter the accounts reflect (with the batch in flight committed).
    seq: i64,
    version: i64,
}

/// Accounts kept in memory at most; beyond that the cache starts again.
const MAX_CACHED_ACCOUNTS: usize = 1_000_000;

async fn read_counters(conn: &mut AnyConnection) -> Result<(i64, i64)> {
    let rows = sqlx::query("SELECT key, value_int FROM ledger_meta WHERE key IN ('transfer_seq', 'accounts_version')")
        .fetch_all(&mut *conn)
        .await?;
    let (mut seq, mut version) = (None, None);
    for r in rows {
        let key: String = r.try_get(0)?;
        let v: i64 = r.try_get(1)?;
        match key.as_str() {
            "transfer_seq" => seq = Some(v),
            "accounts_version" => version = Some(v),
            _ => {}
        }
    }
    match (seq, version) {
        (Some(s), Some(v)) => Ok((s, v)),
        _ => Err(Error::internal(anyhow::anyhow!("ledger: ledger_meta counters missing"))),
    }
}

async fn prepare(
    ctx: &Ctx,
    cfg: &LedgerConfig,
    cmds: &[Cmd],
    prior: Option<Arc<Carry>>,
    cache: &mut Option<AccountCache>,
) -> Result<Prepared> {
    let t0 = std::time::Instant::now();
    let now = ctx.now_ms();
    let mut conn = ctx.db.pool.acquire().await?;
    let (seq_before, version) = read_counters(&mut conn).await?;
    // The counter may only be where the batch in flight found it or will leave it.
    let expected = |seq: i64| match &prior {
        Some(c) => seq == c.prev_seq || seq == c.last_seq,
        None => true,
    };
    if !expected(seq_before) {
        *cache = None;
        return Err(Error::internal(anyhow::anyhow!("ledger: another writer committed meanwhile")));
    }
    let prev_seq = prior.as_ref().map_or(seq_before, |c| c.last_seq);
    if cache.as_ref().is_some_and(|c| c.version != version || c.seq != prev_seq) {
        *cache = None;
    }
    let w = wanted(cmds);
    let cached = cache.as_ref().map(|c| &c.accounts);
    let known = Known { carry: prior.as_deref(), accounts: cached };
    let (mut st, due) = load(&mut conn, ctx, cfg.max_rows_per_statement, now, w, false, known).await?;
    // The reads above are separate statements. Every change to balances,
    // holds or keys comes with transfer rows, so if the counters did not move
    // (but for the batch in flight, which the carry covers) they saw one state.
    let (seq_after, version_after) = read_counters(&mut conn).await?;
    drop(conn);
    let consistent = version_after == version
        && match &prior {
            Some(_) => expected(seq_after),
            None => seq_after == seq_before,
        };
    if !consistent {
        *cache = None;
        return Err(Error::internal(anyhow::anyhow!("ledger: another writer committed during the batch's reads")));
    }
    let read = t0.elapsed();
    let outcomes = apply_all(&mut st, cmds, &due);
    st.assert_balanced()?;
    assign_seqs(&mut st.rows, prev_seq + 1)?;
    let last_seq = prev_seq + i64::try_from(st.rows.len()).map_err(Error::internal)?;
    let carry = Arc::new(Carry::of(&st, prev_seq, last_seq));
    let c = cache.get_or_insert_with(|| AccountCache { accounts: HashMap::new(), seq: last_seq, version });
    if c.accounts.len() > MAX_CACHED_ACCOUNTS {
        c.accounts.clear();
    }
    c.seq = last_seq;
    for (id, a) in &st.accounts {
        c.accounts.insert(id.clone(), AccMem { base: a.bal, ..a.clone() });
    }
    let cmds_attachments = cmds.iter().map(|c| c.attachments().to_vec()).collect();
    Ok(Prepared { st, outcomes, cmds_attachments, prev_seq, version, carry, read })
}

enum WriteError {
    /// Nothing was committed: the batch can be run again.
    BeforeCommit(Error),
    /// The commit itself failed; whether it took effect is not known.
    AtCommit(Error),
}

/// Writes and commits a prepared batch; its commit is then on its way to
/// disk (the next batch may write meanwhile), and nobody is answered before
/// [`yizhan_core::Flushing::durable`].
async fn write_prepared(
    ctx: &Ctx,
    cfg: &LedgerConfig,
    p: &Prepared,
) -> Result<Option<yizhan_core::Flushing>, WriteError> {
    let t0 = std::time::Instant::now();
    let engine = ctx.db.engine();
    let before = |e: Error| WriteError::BeforeCommit(e);
    if p.st.rows.is_empty() {
        return Ok(None);
    }
    let mut tx = ctx.db.begin().await.map_err(before)?;
    let t_begin = t0.elapsed();
    let conn = tx.conn();
    let n = i64::try_from(p.st.rows.len()).map_err(|e| before(Error::internal(e)))?;
    let moved = sqlx::query("UPDATE ledger_meta SET value_int = $1 WHERE key = 'transfer_seq' AND value_int = $2")
        .bind(p.prev_seq + n)
        .bind(p.prev_seq)
        .execute(&mut *conn)
        .await
        .map_err(|e| before(e.into()))?;
    if moved.rows_affected() != 1 {
        return Err(before(Error::internal(anyhow::anyhow!("ledger: someone else wrote since the batch was read"))));
    }
    let (version,): (i64,) = sqlx::query_as("SELECT value_int FROM ledger_meta WHERE key = 'accounts_version'")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| before(e.into()))?;
    if version != p.version {
        return Err(before(Error::internal(anyhow::anyhow!("ledger: an account changed since the batch was read"))));
    }
    write_rows(conn, engine, cfg.max_rows_per_statement, &p.st).await.map_err(before)?;
    let t_rows = t0.elapsed();
    write_attachments(conn, &p.cmds_attachments, &p.outcomes, &p.st.rows).await.map_err(before)?;
    let t_write = t0.elapsed();
    let flushing = tx.commit_then_flush().await.map_err(WriteError::AtCommit)?;
    tracing::debug!(
        rows = p.st.rows.len(),
        accounts = p.st.accounts.len(),
        read_ms = p.read.as_secs_f64() * 1e3,
        begin_ms = t_begin.as_secs_f64() * 1e3,
        rows_ms = (t_rows - t_begin).as_secs_f64() * 1e3,
        attachments_ms = (t_write - t_rows).as_secs_f64() * 1e3,
        commit_ms = (t0.elapsed() - t_write).as_secs_f64() * 1e3,
        "ledger batch committed (pipelined)"
    );
    Ok(Some(flushing))
}

/// Writes a batch (prepared, or else the plain way) and answers its callers.
/// Says on `committed`, as soon as its commit is made, whether it committed
/// exactly as prepared (so a batch built on its carry stands and may write),
/// then waits for the disk before answering.
async fn write_task(
    ctx: Ctx,
    cfg: LedgerConfig,
    stats: Arc<Stats>,
    mut cmds: Vec<Cmd>,
    prepared: Option<Prepared>,
    committed: oneshot::Sender<bool>,
) {
    if let Some(p) = prepared {
        match write_prepared(&ctx, &cfg, &p).await {
            Ok(flushing) => {
                let _ = committed.send(true);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                if let Some(f) = flushing {
                    if let Err(e) = f.durable().await {
                        // Committed, but not known to be on disk: an unknown outcome.
                        stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "ledger batch not flushed to disk");
                        for cmd in cmds.drain(..) {
                            fail(cmd, &e);
                        }
                        return;
                    }
                }
                stats.commands.fetch_add(cmds.len() as u64, Ordering::Relaxed);
                stats.rows.fetch_add(p.st.rows.len() as u64, Ordering::Relaxed);
                for (cmd, outcome) in cmds.drain(..).zip(p.outcomes) {
                    answer(cmd, outcome, &p.st.rows);
                }
                return;
            }
            Err(WriteError::AtCommit(e)) => {
                let _ = committed.send(false);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "ledger batch commit failed");
                for cmd in cmds.drain(..) {
                    fail(cmd, &e);
                }
                return;
            }
            Err(WriteError::BeforeCommit(e)) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "pipelined ledger batch runs again the plain way");
            }
        }
    }
    execute(&ctx, &cfg, &stats, &mut cmds).await;
    let _ = committed.send(false);
}

struct InFlight {
    /// Whether the batch committed as prepared, said once its commit is made.
    committed: oneshot::Receiver<bool>,
    /// Set when the batch was prepared: the next one may build on it.
    carry: Option<Arc<Carry>>,
}

async fn run_pipelined(ctx: Ctx, cfg: LedgerConfig, stats: Arc<Stats>, mut rx: mpsc::Receiver<Cmd>) {
    let max = cfg.max_batch.max(1);
    let mut inflight: Option<InFlight> = None;
    let mut cache: Option<AccountCache> = None;
    loop {
        let mut cmds: Vec<Cmd> = Vec::with_capacity(max);
        let got = match inflight.as_mut() {
            Some(f) => tokio::select! {
                n = rx.recv_many(&mut cmds, max) => Ok(n),
                done = &mut f.committed => Err(done.unwrap_or(false)),
            },
            None => Ok(rx.recv_many(&mut cmds, max).await),
        };
        let n = match got {
            Ok(n) => n,
            Err(as_prepared) => {
                // The batch in flight is done and nothing is waiting.
                inflight = None;
                if !as_prepared {
                    cache = None;
                }
                continue;
            }
        };
        if n == 0 {
            if let Some(f) = inflight.take() {
                let _ = f.committed.await;
            }
            break;
        }
        // Read and apply while the previous batch writes, if it left a carry.
        let mut prepared = match &inflight {
            Some(InFlight { carry: Some(c), .. }) => prepare(&ctx, &cfg, &cmds, Some(c.clone()), &mut cache).await.ok(),
            Some(InFlight { carry: None, .. }) => None,
            None => prepare(&ctx, &cfg, &cmds, None, &mut cache).await.ok(),
        };
        if let Some(f) = inflight.take() {
            let built_on_it = f.carry.is_some();
            let as_prepared = f.committed.await.unwrap_or(false);
            if !as_prepared {
                // What the cache holds was not committed (or not as prepared).
                cache = None;
            }
            if built_on_it && !as_prepared {
                prepared = None;
            } else if !built_on_it {
                // It was written the plain way; now the database is current.
                prepared = prepare(&ctx, &cfg, &cmds, None, &mut cache).await.ok();
            }
        }
        if prepared.is_none() {
            cache = None;
        }
        let carry = prepared.as_ref().map(|p| p.carry.clone());
        let (said, committed) = oneshot::channel();
        tokio::spawn(write_task(ctx.clone(), cfg.clone(), stats.clone(), cmds, prepared, said));
        inflight = Some(InFlight { committed, carry });
    }
}

fn collect_spec<'a>(s: &'a TransferSpec, w: &mut Wanted<'a>) {
    if !w.account_ids.contains(&s.debit) {
        w.account_ids.insert(s.debit.clone());
    }
    if !w.account_ids.contains(&s.credit) {
        w.account_ids.insert(s.credit.clone());
    }
    if let Some(k) = &s.idempotency_key {
        w.keys.insert(k);
    }
    if let Some(id) = &s.id {
        w.ids.insert(id);
    }
    if let Some(r) = &s.refers_to {
        w.ids.insert(r);
    }
    if let Some(q) = &s.quota {
        w.quota_keys.insert(&q.key);
    }
}

async fn insert_transfers(conn: &mut AnyConnection, engine: Engine, cap: usize, rows: &[Transfer]) -> Result<()> {
    for chunk in chunks(rows, rows_per_statement(engine, INSERT_NCOLS, cap)) {
        let mut sql = String::with_capacity(64 + chunk.len() * INSERT_NCOLS * 7);
        sql.push_str("INSERT INTO ledger_transfers (");
        sql.push_str(INSERT_COLS);
        sql.push_str(") VALUES ");
        values_list(&mut sql, engine, chunk.len(), INSERT_NCOLS);
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q
                .bind(t.seq)
                .bind(t.id.as_str())
                .bind(t.kind.as_str())
                .bind(t.debit_account_id.as_str())
                .bind(t.credit_account_id.as_str())
                .bind(t.amount_fen)
                .bind(t.currency.as_str())
                .bind(t.category.as_str())
                .bind(t.memo.as_str())
                .bind(t.pending_id.as_deref())
                .bind(t.expires_at_ms)
                .bind(t.refers_to.as_deref())
                .bind(t.linked_group.as_deref())
                .bind(t.idempotency_key.as_deref())
                .bind(t.created_at_ms)
                .bind(t.seq >> SEQ_BLOCK_SHIFT);
        }
        let done = q.execute(&mut *conn).await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(Error::internal(anyhow::anyhow!("ledger: transfer insert wrote fewer rows")));
        }
    }
    Ok(())
}

async fn write_pendings(
    conn: &mut AnyConnection,
    engine: Engine,
    cap: usize,
    pendings: &HashMap<String, PendMem>,
) -> Result<()> {
    let mut new: Vec<(&String, &PendMem)> = pendings.iter().filter(|(_, p)| p.is_new).collect();
    let mut changed: Vec<(&String, &PendMem)> = pendings.iter().filter(|(_, p)| !p.is_new && p.dirty).collect();
    new.sort_by(|a, b| a.0.cmp(b.0));
    changed.sort_by(|a, b| a.0.cmp(b.0));
    for chunk in chunks(&new, rows_per_statement(engine, PENDING_NCOLS, cap)) {
        let mut sql = format!("INSERT INTO ledger_pending ({PENDING_COLS}) VALUES ");
        values_list(&mut sql, engine, chunk.len(), PENDING_NCOLS);
        let mut q = sqlx::query(&sql);
        for (id, p) in chunk {
            q = q
                .bind(id.as_str())
                .bind(p.debit.as_str())
                .bind(p.credit.as_str())
                .bind(p.amount_fen)
                .bind(p.currency.as_str())
                .bind(p.category.as_str())
                .bind(p.expires_at_ms)
                .bind(p.state.as_str())
                .bind(p.resolved_by.as_deref())
                .bind(p.resolved_at_ms)
                .bind(p.created_at_ms);
        }
        q.execute(&mut *conn).await?;
    }
    const TYPES: [&str; 4] = ["TEXT", "TEXT", "TEXT", "BIGINT"];
    for chunk in chunks(&changed, rows_per_statement(engine, TYPES.len(), cap)) {
        let mut sql = String::from(
            "UPDATE ledger_pending SET state = v.column2, resolved_by = v.column3, resolved_at_ms = v.column4 \
             FROM (VALUES ",
        );
        typed_values_list(&mut sql, engine, chunk.len(), &TYPES);
        sql.push_str(") AS v WHERE ledger_pending.pending_id = v.column1 AND ledger_pending.state = 'pending'");
        let mut q = sqlx::query(&sql);
        for (id, p) in chunk {
            q = q.bind(id.as_str()).bind(p.state.as_str()).bind(p.resolved_by.as_deref()).bind(p.resolved_at_ms);
        }
        let done = q.execute(&mut *conn).await?;
        if done.rows_affected() != chunk.len() as u64 {
            // Someone resolved one of them meanwhile: refuse the whole batch.
            return Err(Error::internal(anyhow::anyhow!("ledger: a pending transfer changed under the batch")));
        }
    }
    Ok(())
}

async fn write_accounts(
    conn: &mut AnyConnection,
    engine: Engine,
    cap: usize,
    accounts: &HashMap<String, AccMem>,
) -> Result<()> {
    let mut changed: Vec<(&String, Bal)> = accounts
        .iter()
        .filter(|(_, a)| a.bal != a.base)
        .map(|(id, a)| {
            (
                id,
                Bal {
                    posted: a.bal.posted - a.base.posted,
                    pending_debit: a.bal.pending_debit - a.base.pending_debit,
                    pending_credit: a.bal.pending_credit - a.base.pending_credit,
                },
            )
        })
        .collect();
    changed.sort_by(|a, b| a.0.cmp(b.0));
    const TYPES: [&str; 4] = ["TEXT", "BIGINT", "BIGINT", "BIGINT"];
    for chunk in chunks(&changed, rows_per_statement(engine, TYPES.len(), cap)) {
        let mut sql = String::from(
            "UPDATE ledger_accounts SET posted_fen = posted_fen + v.column2, \
             pending_debit_fen = pending_debit_fen + v.column3, \
             pending_credit_fen = pending_credit_fen + v.column4 FROM (VALUES ",
        );
        typed_values_list(&mut sql, engine, chunk.len(), &TYPES);
        sql.push_str(") AS v WHERE ledger_accounts.id = v.column1");
        let mut q = sqlx::query(&sql);
        for (id, d) in chunk {
            q = q.bind(id.as_str()).bind(d.posted).bind(d.pending_debit).bind(d.pending_credit);
        }
        let done = q.execute(&mut *conn).await?;
        if done.rows_affected() != chunk.len() as u64 {
            return Err(Error::internal(anyhow::anyhow!("ledger: account update wrote fewer rows")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ladder;

    #[test]
    fn ladder_covers_exactly_with_powers_of_two() {
        for max in [1usize, 2, 7, 1024, 2184] {
            for n in [0usize, 1, 2, 3, 100, 1023, 1024, 1025, 5000] {
                let l = ladder(n, max);
                assert_eq!(l.iter().sum::<usize>(), n, "n={n} max={max}");
                assert!(l.iter().all(|s| s.is_power_of_two() && *s <= max));
            }
        }
    }
}
