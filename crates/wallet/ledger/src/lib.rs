//! yizhan-ledger: the double-entry ledger every movement of money goes through.
//!
//! # Model
//!
//! * **Accounts** have an id the caller chooses (`"wallet:<user_id>"`,
//!   `"org:<org_id>"`, `"clearing"`, `"gateway:sandbox"`, `"fees"`), a kind
//!   (free text), a currency (only `"CNY"`), and balances in fen:
//!   `posted` (credits − debits of posted transfers), `pending_debit` and
//!   `pending_credit` (open holds), and `available = posted − pending_debit`.
//!   An account opened with `allow_negative = false` (a wallet) can never have
//!   `available < −credit_limit_fen` (the limit is 0 unless set); system
//!   accounts such as the funding gateway are opened with `allow_negative = true`.
//! * **Transfers** are immutable rows moving `amount_fen` from `debit` to
//!   `credit`. A *pending* transfer (a hold) reserves the amount; it is later
//!   resolved exactly once by a second row pointing at it (`pending_id`):
//!   post (all or part; the rest is released), void, or expiry.
//! * Money is never created or destroyed: the posted balances of all accounts
//!   sum to 0. Top-ups come from a gateway account that may go negative.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo(ctx: yizhan_core::Ctx) -> yizhan_core::Result<()> {
//! use yizhan_ledger::{Ledger, TransferSpec};
//! let ledger = Ledger::start(ctx); // once per process; clone the handle freely
//! ledger.open_account("gateway:sandbox", "gateway", true).await?;
//! ledger.open_account("wallet:u1", "wallet", false).await?;
//! ledger.open_account("org:shop", "merchant", false).await?;
//!
//! // Top up 100 yuan, then pay 12.50 yuan; retries with the same key are safe.
//! ledger.transfer(TransferSpec::new("gateway:sandbox", "wallet:u1", 10_000, "topup")).await?;
//! let paid = ledger
//!     .transfer(
//!         TransferSpec::new("wallet:u1", "org:shop", 1_250, "qr")
//!             .with_memo("coffee")
//!             .with_idempotency_key("user:u1:8f3a"),
//!     )
//!     .await?;
//!
//! // A hold that expires after 15 minutes unless posted.
//! let hold = ledger
//!     .transfer(TransferSpec::new("wallet:u1", "org:shop", 3_000, "hold").pending(Some(15 * 60_000)))
//!     .await?;
//! ledger.post_pending(&hold.id, Some(2_800), None).await?; // 2.00 yuan released
//!
//! // A refund points at the original.
//! ledger
//!     .transfer(TransferSpec::new("org:shop", "wallet:u1", 1_250, "refund").with_refers_to(&paid.id))
//!     .await?;
//! let b = ledger.balance("wallet:u1").await?;
//! assert_eq!(b.available_fen, 10_000 - 2_800);
//! # Ok(()) }
//! ```
//!
//! # Errors (`yizhan_core::Code`)
//!
//! | code | when |
//! |---|---|
//! | `ValidationFailed` | amount ≤ 0 or > `Fen::MAX_AMOUNT` (field `amount_fen`), currency not CNY or not the accounts' (field `currency`), empty/too long ids, category, memo |
//! | `SelfPayment` | debit == credit |
//! | `NotFound` | unknown account, pending transfer, or `refers_to` transfer |
//! | `InsufficientFunds` | the debit account's available balance would fall below −credit_limit |
//! | `IdempotencyKeyReused` | the key was used for a different transfer (debit, credit, amount, category, or pending-ness differ) |
//! | `AlreadyExists` | a caller-chosen transfer id exists |
//! | `TransferAlreadyResolved` | posting or voiding a pending transfer already posted or voided |
//! | `HoldExpired` | posting a pending transfer past its expiry, or voiding one the sweep expired |
//! | `Internal` | the database failed; then nothing of the batch was applied |
//!
//! # Durability and speed
//!
//! Every write ([`Ledger::transfer`], [`Ledger::submit_linked`],
//! [`Ledger::post_pending`], [`Ledger::void_pending`], [`Ledger::expire_due`])
//! goes to one batcher task per [`Ledger::start`], which takes everything
//! waiting (up to [`LedgerConfig::max_batch`] commands, no artificial delay),
//! checks each command in order against the running balances (so a transfer
//! that would overdraw fails alone), writes all rows with multi-row
//! statements and each touched account once with its net change, in ONE
//! transaction, and answers only after the commit is durable (SQLite WAL
//! with its commit covered by a flush of the log (`GroupFlush`), PostgreSQL
//! `synchronous_commit=on`). A crash
//! loses nothing that was acknowledged. If a batch's transaction fails,
//! every command in it gets the error and nothing of it is applied.
//!
//! * PostgreSQL: each batch locks the pending rows and accounts it touches
//!   (`FOR UPDATE`, in id order), so several server processes may each run a
//!   batcher on one database.
//! * SQLite (one writer per process): while batch k is written, batch k+1 is
//!   read on another connection and applied on top of k's result, and the
//!   batcher keeps the accounts it has seen in memory. Both are checked
//!   against counters every change moves (`ledger_meta`), and every rule is
//!   also a database constraint, so anything unexpected (another writer)
//!   makes the batch run again the plain way. Turn it off with
//!   [`LedgerConfig::pipeline`].
//!
//! Reads ([`Ledger::balance`], [`Ledger::history`], …) go straight to the
//! pool. [`check`] recomputes everything from the transfer rows; the
//! benchmark is [`bench::run`].
//!
//! Apply [`MIGRATIONS`] before [`Ledger::start`] (`ctx.db.migrate(&[&MIGRATIONS, …])`).

mod batcher;
pub mod bench;
pub mod quotas;
mod read;
mod sql;
mod types;

pub use batcher::{LedgerConfig, LedgerStats};
pub use read::MAX_PAGE;
pub use types::{
    amount_check, amount_msg, Account, Attachment, Balance, CategorySum, CheckReport, Direction, HistoryFilter,
    HistoryItem, Hold, HoldState, Page, Quota, Transfer, TransferKind, TransferSpec, CNY, MAX_ID_LEN, MAX_MEMO_LEN,
};

use batcher::{Action, Cmd, Stats};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use types::check_id;
use yizhan_core::{Code, Ctx, Error, MigrationSet, Result};

/// The ledger's tables (`ledger_accounts`, `ledger_transfers`, `ledger_pending`, `ledger_meta`).
pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "ledger",
    sqlite: &[
        ("0001_ledger", include_str!("../migrations/sqlite/0001_ledger.sql")),
        ("0002_history_blocks", include_str!("../migrations/sqlite/0002_history_blocks.sql")),
        ("0003_accounts_version", include_str!("../migrations/sqlite/0003_accounts_version.sql")),
        ("0004_closed", include_str!("../migrations/sqlite/0004_closed.sql")),
        ("0005_quotas", include_str!("../migrations/sqlite/0005_quotas.sql")),
    ],
    postgres: &[
        ("0001_ledger", include_str!("../migrations/postgres/0001_ledger.sql")),
        ("0002_history_blocks", include_str!("../migrations/postgres/0002_history_blocks.sql")),
        ("0003_accounts_version", include_str!("../migrations/postgres/0003_accounts_version.sql")),
        ("0004_closed", include_str!("../migrations/postgres/0004_closed.sql")),
        ("0005_quotas", include_str!("../migrations/postgres/0005_quotas.sql")),
    ],
};

/// The ledger's public error codes (their titles are in the wallet room's texts).
pub mod codes {
    use yizhan_core::{Class, Code};

    pub const INSUFFICIENT_FUNDS: Code = Code::new("insufficient_funds", Class::Invalid);
    pub const TRANSFER_ALREADY_RESOLVED: Code = Code::new("transfer_already_resolved", Class::Conflict);
    pub const HOLD_EXPIRED: Code = Code::new("hold_expired", Class::Gone);
    /// The account is closed to new money.
    pub const ACCOUNT_CLOSED: Code = Code::new("account_closed", Class::Conflict);
    /// From and to the same account, or a person paying themselves.
    pub const SELF_PAYMENT: Code = Code::new("self_payment", Class::Invalid);
    /// A transfer would take its quota past the cap (see [`crate::Quota`]).
    pub const QUOTA_EXCEEDED: Code = Code::new("quota_exceeded", Class::Invalid);

    /// Every code of the ledger, for the room's list.
    pub const ALL: &[Code] =
        &[INSUFFICIENT_FUNDS, TRANSFER_ALREADY_RESOLVED, HOLD_EXPIRED, SELF_PAYMENT, ACCOUNT_CLOSED, QUOTA_EXCEEDED];
}

/// The handle to the ledger. Cheap to clone; all clones share one batcher.
#[derive(Clone)]
pub struct Ledger {
    ctx: Ctx,
    max_batch: usize,
    cmds: mpsc::Sender<Cmd>,
    stats: Arc<Stats>,
    accounts: yizhan_core::group::GroupRead<read::AccountReads>,
}

fn stopped() -> Error {
    Error::internal(anyhow::anyhow!("the ledger's batcher has stopped"))
}

impl Ledger {
    /// Start the ledger's batcher (a tokio task) with the default tuning.
    /// Call it once per process, inside a tokio runtime; the task ends when
    /// the last handle is dropped.
    pub fn start(ctx: Ctx) -> Ledger {
        Ledger::start_with(ctx, LedgerConfig::default())
    }

    pub fn start_with(ctx: Ctx, cfg: LedgerConfig) -> Ledger {
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let max_batch = cfg.max_batch.max(1);
        let stats = Arc::new(Stats::default());
        tokio::spawn(batcher::run(ctx.clone(), cfg, stats.clone(), rx));
        let accounts = yizhan_core::group::GroupRead::start(ctx.db.clone(), read::AccountReads, Default::default());
        Ledger { ctx, max_batch, cmds: tx, stats, accounts }
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// What this handle's batcher did so far.
    pub fn stats(&self) -> LedgerStats {
        self.stats.snapshot()
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Cmd) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(make(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Open a CNY account. Idempotent: opening it again with the same kind and
    /// `allow_negative` does nothing; with different ones it is `Code::Conflict`.
    pub async fn open_account(&self, id: &str, kind: &str, allow_negative: bool) -> Result<()> {
        self.open_account_in(id, kind, allow_negative, CNY).await
    }

    /// [`Ledger::open_account`] naming the currency (only "CNY" is accepted:
    /// `ValidationFailed` on field `currency` otherwise).
    pub async fn open_account_in(&self, id: &str, kind: &str, allow_negative: bool, currency: &str) -> Result<()> {
        check_id("id", id)?;
        check_id("kind", kind)?;
        if currency != CNY {
            return Err(Error::field("currency", "ledger.currency_only_cny"));
        }
        let mut tx = self.ctx.db.begin().await?;
        let done = sqlx::query(
            "INSERT INTO ledger_accounts (id, kind, currency, allow_negative, credit_limit_fen, posted_fen, \
             pending_debit_fen, pending_credit_fen, created_at_ms) VALUES ($1, $2, $3, $4, 0, 0, 0, 0, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(currency)
        .bind(i64::from(allow_negative))
        .bind(self.ctx.now_ms())
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            let a = read::account(&self.ctx, id).await?;
            if a.kind != kind || a.allow_negative != allow_negative || a.currency != currency {
                return Err(Error::new(Code::Conflict, "ledger.account_exists_differently"));
            }
        }
        Ok(())
    }

    /// Open many CNY accounts in one transaction (`(id, kind, allow_negative)`).
    /// Accounts that exist already are left as they are, whatever their shape.
    pub async fn open_accounts(&self, accounts: &[(&str, &str, bool)]) -> Result<()> {
        for (id, kind, _) in accounts {
            check_id("id", id)?;
            check_id("kind", kind)?;
        }
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        for chunk in accounts.chunks(1000) {
            let mut sql =
                String::from("INSERT INTO ledger_accounts (id, kind, currency, allow_negative, created_at_ms) VALUES ");
            sql::values_list(&mut sql, self.ctx.db.engine(), chunk.len(), 5);
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for (id, kind, allow_negative) in chunk {
                q = q.bind(*id).bind(*kind).bind(CNY).bind(i64::from(*allow_negative)).bind(now);
            }
            q.execute(tx.conn()).await?;
        }
        tx.commit().await
    }

    /// Close an account to new money (`closed = true`) or open it again. A
    /// transfer into a closed account is refused (`ACCOUNT_CLOSED`); one already
    /// committed stays. Closing waits for batches in flight on the account, so
    /// after it returns the balance moves no more.
    pub async fn set_closed(&self, account_id: &str, closed: bool) -> Result<()> {
        let mut tx = self.ctx.db.begin().await?;
        let done = sqlx::query("UPDATE ledger_accounts SET closed = $2 WHERE id = $1")
            .bind(account_id)
            .bind(i64::from(closed))
            .execute(tx.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("ledger_account"));
        }
        // Batchers that keep accounts in memory re-read them.
        sqlx::query("UPDATE ledger_meta SET value_int = value_int + 1 WHERE key = 'accounts_version'")
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    /// Let a non-negative account's available balance go down to −`credit_limit_fen`.
    /// Lowering it below what the account already uses is `Code::Conflict`.
    pub async fn set_credit_limit(&self, account_id: &str, credit_limit_fen: i64) -> Result<()> {
        if !(0..=i64::MAX / 4).contains(&credit_limit_fen) {
            return Err(Error::field("credit_limit_fen", "ledger.credit_limit.negative"));
        }
        let mut tx = self.ctx.db.begin().await?;
        let done = sqlx::query(
            "UPDATE ledger_accounts SET credit_limit_fen = $2 WHERE id = $1 \
             AND (allow_negative = 1 OR posted_fen - pending_debit_fen >= -$2)",
        )
        .bind(account_id)
        .bind(credit_limit_fen)
        .execute(tx.conn())
        .await?;
        if done.rows_affected() > 0 {
            // Batchers that keep accounts in memory re-read them.
            sqlx::query("UPDATE ledger_meta SET value_int = value_int + 1 WHERE key = 'accounts_version'")
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        if done.rows_affected() == 0 {
            read::account(&self.ctx, account_id).await?;
            return Err(Error::new(Code::Conflict, "ledger.credit_limit.in_use"));
        }
        Ok(())
    }

    /// Make one transfer (posted, or pending if `spec.pending`). Returns it once durable.
    /// With an idempotency key already used for the same transfer, returns that first transfer.
    pub async fn transfer(&self, spec: TransferSpec) -> Result<Transfer> {
        self.call(|reply| Cmd::Transfer { spec: Box::new(spec), attachments: Vec::new(), reply }).await
    }

    /// [`Ledger::transfer`], with rows of other parts of the system (a
    /// notice, the stored answer of the request) written in the same
    /// transaction as the transfer, so they commit together or not at all.
    /// They are written only when the transfer is made, not for a replay of
    /// its idempotency key or a refusal.
    pub async fn transfer_with(&self, spec: TransferSpec, attachments: Vec<Arc<dyn Attachment>>) -> Result<Transfer> {
        self.call(|reply| Cmd::Transfer { spec: Box::new(spec), attachments, reply }).await
    }

    /// Make several transfers that succeed or fail together (in order, in one
    /// batch; they share a `linked_group`). If one fails, none is applied and
    /// the error is that transfer's, its detail saying which one ("linked
    /// transfer 2 of 3 failed …").
    pub async fn submit_linked(&self, specs: Vec<TransferSpec>) -> Result<Vec<Transfer>> {
        self.call(|reply| Cmd::Linked { specs, reply }).await
    }

    /// Post a pending transfer: move `amount_fen` (all of it when `None`; at
    /// most the pending amount, the rest is released). Returns the resolution
    /// transfer (`kind = PostPending`). `TransferAlreadyResolved` if it was
    /// posted or voided, `HoldExpired` if it is past its expiry. With an
    /// idempotency key, a retry returns the first resolution.
    pub async fn post_pending(
        &self,
        pending_id: &str,
        amount_fen: Option<i64>,
        idempotency_key: Option<String>,
    ) -> Result<Transfer> {
        let pending_id = pending_id.to_string();
        self.call(|reply| Cmd::Resolve { pending_id, action: Action::Post(amount_fen), idempotency_key, reply }).await
    }

    /// Release a pending transfer. Returns the resolution transfer (`kind =
    /// VoidPending`). `TransferAlreadyResolved` if it was posted or voided (or,
    /// with the same idempotency key, the first void again), `HoldExpired` if
    /// the expiry sweep released it.
    pub async fn void_pending(&self, pending_id: &str, idempotency_key: Option<String>) -> Result<Transfer> {
        let pending_id = pending_id.to_string();
        self.call(|reply| Cmd::Resolve { pending_id, action: Action::Void, idempotency_key, reply }).await
    }

    /// Expire every pending transfer whose `expires_at_ms` ≤ now (the clock of
    /// the ledger's `Ctx`); returns how many. Runs through the batcher, so it
    /// never races a post. Run it periodically (e.g. every second).
    pub async fn expire_due(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let limit = self.max_batch;
            let n = self.call(|reply| Cmd::Expire { limit, reply }).await?;
            total += n;
            if n < limit as u64 {
                return Ok(total);
            }
        }
    }

    /// An account's balances, read with every other lookup waiting (one query).
    pub async fn balance(&self, account_id: &str) -> Result<Balance> {
        Ok(self.account(account_id).await?.balance)
    }

    pub async fn account(&self, account_id: &str) -> Result<Account> {
        self.accounts.get(account_id.to_string()).await
    }

    /// One transfer by id (`NotFound` if none).
    pub async fn get_transfer(&self, id: &str) -> Result<Transfer> {
        read::transfer(&self.ctx, id).await
    }

    /// The transfer made with an idempotency key, if any.
    pub async fn transfer_by_idempotency_key(&self, key: &str) -> Result<Option<Transfer>> {
        read::transfer_by_key(&self.ctx, key).await
    }

    /// A pending transfer's state.
    pub async fn hold(&self, pending_id: &str) -> Result<Hold> {
        read::hold(&self.ctx, pending_id).await
    }

    /// The account's transfers, newest first, `limit` (1..=[`MAX_PAGE`]) per
    /// page: pass `None`, then each page's `next_cursor`. Stable under new
    /// transfers (they only appear on a new first page).
    pub async fn history(&self, account_id: &str, cursor: Option<i64>, limit: i64) -> Result<Page<HistoryItem>> {
        read::history(&self.ctx, account_id, cursor, limit, &HistoryFilter::default()).await
    }

    /// [`Ledger::history`] of some categories, or of a time range (only the
    /// blocks the range may touch are looked at). Pages may come short while
    /// rows elsewhere do not match; go on while `next_cursor` is given.
    pub async fn history_filtered(
        &self,
        account_id: &str,
        cursor: Option<i64>,
        limit: i64,
        filter: &HistoryFilter,
    ) -> Result<Page<HistoryItem>> {
        read::history(&self.ctx, account_id, cursor, limit, filter).await
    }

    /// Posted money in and out of an account per category for `[from_ms, to_ms)`
    /// (for monthly statements: `yizhan_core::time::month_range_cst`).
    pub async fn sum_by_category(&self, account_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<CategorySum>> {
        read::sum_by_category(&self.ctx, account_id, from_ms, to_ms).await
    }

    /// See [`check`].
    pub async fn check(&self) -> Result<CheckReport> {
        check(&self.ctx).await
    }
}

/// Recompute every balance from the transfer rows and compare with the
/// account rows: posted balances sum to 0; each account's posted balance is
/// credits − debits of its posted transfers; pending sums match the open
/// pending transfers; no non-negative account is below its credit limit;
/// each resolution matches its pending transfer. Needs no batcher (for
/// `yizhan ledger check`).
pub async fn check(ctx: &Ctx) -> Result<CheckReport> {
    read::check(ctx).await
}
