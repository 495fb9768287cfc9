use serde::{Deserialize, Serialize};
use yizhan_core::{Error, Fen, Msg, Result};

/// The only currency the platform moves for now.
pub const CNY: &str = "CNY";

/// Longest account id, transfer id, category or idempotency key accepted.
pub const MAX_ID_LEN: usize = 128;
/// Longest memo accepted (in bytes).
pub const MAX_MEMO_LEN: usize = 512;

/// What a caller asks the ledger to do: move `amount_fen` from `debit` to `credit`.
///
/// Build one with [`TransferSpec::new`] and the `with_*` methods, or with a
/// struct literal and `..Default::default()` (the default currency is CNY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSpec {
    /// The transfer id; the ledger makes a time-ordered one when `None`.
    /// A caller-chosen id that already exists is refused with `Code::AlreadyExists`.
    pub id: Option<String>,
    /// The account money leaves (its balance goes down).
    pub debit: String,
    /// The account money enters (its balance goes up).
    pub credit: String,
    /// 1 ..= `Fen::MAX_AMOUNT`.
    pub amount_fen: i64,
    /// Must equal both accounts' currency; only "CNY" is accepted.
    pub currency: String,
    /// topup, withdrawal, p2p, qr, paycode, red_packet, bill, refund, fee, hold…
    pub category: String,
    pub memo: String,
    /// Make a pending transfer (a hold): the amount is reserved on the debit
    /// account (its available balance goes down) until the transfer is posted
    /// ([`crate::Ledger::post_pending`]), voided, or expires.
    pub pending: bool,
    /// A pending transfer with a timeout expires `pending_timeout_ms` after it
    /// was made (see [`crate::Ledger::expire_due`]). Setting it implies `pending`.
    pub pending_timeout_ms: Option<i64>,
    /// For a refund or correction: the id of the original transfer (must exist).
    pub refers_to: Option<String>,
    /// The caller scopes it (e.g. `"user:<id>:<key>"`). Submitting a key again
    /// returns the first transfer if debit, credit, amount and category are the
    /// same, and `Code::IdempotencyKeyReused` if not.
    pub idempotency_key: Option<String>,
    /// The debit account's own balance only: its available balance may not
    /// go below zero for this transfer, whatever its credit limit (money
    /// leaving a person's hands never comes from a pay-later line). Checked
    /// with the other limits, so concurrent transfers cannot pass it together.
    pub own_funds_only: bool,
    /// A cap on what every transfer counted under one key may move in all
    /// (a person's daily payment limit): see [`Quota`]. Set by the caller's
    /// domain code, never from a request.
    #[serde(skip)]
    pub quota: Option<Quota>,
}

/// A running total the ledger keeps beside the balances (`ledger_quotas`),
/// counted and checked in the same batch as the transfer: the transfer
/// passes only if `used + amount_fen <= cap_fen`, and then `used` grows by
/// its amount, atomically with the money. A replay of a transfer already
/// made counts nothing and is never refused by its quota; a refused
/// transfer counts nothing. Outside transfers, [`crate::quotas`] counts and
/// gives back under the same rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// The caller scopes it (e.g. `"payment:<day>:<user>"`), at most [`MAX_ID_LEN`] bytes.
    pub key: String,
    pub cap_fen: i64,
}

impl Default for TransferSpec {
    fn default() -> Self {
        TransferSpec {
            id: None,
            debit: String::new(),
            credit: String::new(),
            amount_fen: 0,
            currency: CNY.to_string(),
            category: String::new(),
            memo: String::new(),
            pending: false,
            pending_timeout_ms: None,
            refers_to: None,
            idempotency_key: None,
            own_funds_only: false,
            quota: None,
        }
    }
}

impl TransferSpec {
    /// A posted CNY transfer.
    pub fn new(
        debit: impl Into<String>,
        credit: impl Into<String>,
        amount_fen: i64,
        category: impl Into<String>,
    ) -> Self {
        TransferSpec {
            debit: debit.into(),
            credit: credit.into(),
            amount_fen,
            category: category.into(),
            ..Default::default()
        }
    }

    pub fn with_memo(mut self, memo: impl Into<String>) -> Self {
        self.memo = memo.into();
        self
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// See [`TransferSpec::own_funds_only`].
    pub fn own_funds_only(mut self, only: bool) -> Self {
        self.own_funds_only = only;
        self
    }

    /// Count the transfer under `key` and refuse it past `cap_fen` (see [`Quota`]).
    pub fn with_quota(mut self, key: impl Into<String>, cap_fen: i64) -> Self {
        self.quota = Some(Quota { key: key.into(), cap_fen });
        self
    }

    pub fn with_refers_to(mut self, transfer_id: impl Into<String>) -> Self {
        self.refers_to = Some(transfer_id.into());
        self
    }

    /// Make it a pending transfer (a hold), expiring after `timeout_ms` if given.
    pub fn pending(mut self, timeout_ms: Option<i64>) -> Self {
        self.pending = true;
        self.pending_timeout_ms = timeout_ms;
        self
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.pending || self.pending_timeout_ms.is_some()
    }

    /// The checks that need no stored state.
    pub(crate) fn validate(&self) -> Result<()> {
        amount_check("amount_fen", self.amount_fen)?;
        if self.currency != CNY {
            return Err(Error::field("currency", "ledger.currency_only_cny"));
        }
        check_id("debit", &self.debit)?;
        check_id("credit", &self.credit)?;
        if self.debit == self.credit {
            return Err(Error::new(crate::codes::SELF_PAYMENT, "ledger.same_account"));
        }
        check_id("category", &self.category)?;
        if self.memo.len() > MAX_MEMO_LEN {
            return Err(Error::field_msg("memo", Msg::new("ledger.memo_too_long").int("max", MAX_MEMO_LEN as i64)));
        }
        if let Some(id) = &self.id {
            check_id("id", id)?;
        }
        if let Some(r) = &self.refers_to {
            check_id("refers_to", r)?;
        }
        if let Some(k) = &self.idempotency_key {
            check_id("idempotency_key", k)?;
        }
        if let Some(t) = self.pending_timeout_ms {
            if t <= 0 {
                return Err(Error::field("pending_timeout_ms", "ledger.timeout_not_positive"));
            }
        }
        if let Some(q) = &self.quota {
            check_id("quota", &q.key)?;
            if q.cap_fen < 0 {
                return Err(Error::field("quota", "ledger.quota_negative"));
            }
        }
        Ok(())
    }
}

/// What is wrong with an amount to move, as a message: not positive, or over
/// the platform's limit (shown in yuan).
pub fn amount_msg(v: i64) -> Option<Msg> {
    if v <= 0 {
        Some(Msg::new("ledger.amount.not_positive"))
    } else if Fen::amount(v).is_err() {
        Some(Msg::new("ledger.amount.too_large").fen("max", Fen::MAX_AMOUNT))
    } else {
        None
    }
}

/// An amount to move, checked: a validation error on `field` otherwise.
pub fn amount_check(field: &str, v: i64) -> Result<i64> {
    match amount_msg(v) {
        None => Ok(v),
        Some(m) => Err(Error::field_msg(field, m)),
    }
}

pub(crate) fn check_id(field: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        Err(Error::field(field, "ledger.id.empty"))
    } else if v.chars().any(char::is_control) {
        // Also keeps the batcher's packed reads (control characters as separators) unambiguous.
        Err(Error::field(field, "ledger.id.control"))
    } else if v.len() > MAX_ID_LEN {
        Err(Error::field_msg(field, Msg::new("ledger.id.too_long").int("max", MAX_ID_LEN as i64)))
    } else {
        Ok(())
    }
}

/// What a transfer row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Moved money at once.
    Posted,
    /// A hold: reserved the amount; moves nothing until posted.
    Pending,
    /// Resolves a pending transfer (`pending_id`) by moving `amount_fen`
    /// (≤ the pending amount; the rest is released).
    PostPending,
    /// Resolves a pending transfer by releasing it; `amount_fen` is the released amount.
    VoidPending,
    /// Resolved by the expiry sweep; `amount_fen` is the released amount.
    ExpirePending,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Posted => "posted",
            TransferKind::Pending => "pending",
            TransferKind::PostPending => "post_pending",
            TransferKind::VoidPending => "void_pending",
            TransferKind::ExpirePending => "expire_pending",
        }
    }

    pub fn parse(s: &str) -> Option<TransferKind> {
        Some(match s {
            "posted" => TransferKind::Posted,
            "pending" => TransferKind::Pending,
            "post_pending" => TransferKind::PostPending,
            "void_pending" => TransferKind::VoidPending,
            "expire_pending" => TransferKind::ExpirePending,
            _ => return None,
        })
    }

    /// Whether the row changes posted balances.
    pub fn moves_money(self) -> bool {
        matches!(self, TransferKind::Posted | TransferKind::PostPending)
    }
}

/// One immutable transfer row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: String,
    /// Grows with every committed row; the cursor of [`crate::Ledger::history`].
    pub seq: i64,
    pub kind: TransferKind,
    pub debit_account_id: String,
    pub credit_account_id: String,
    pub amount_fen: i64,
    pub currency: String,
    pub category: String,
    pub memo: String,
    /// For resolution rows: the pending transfer resolved.
    pub pending_id: Option<String>,
    /// For pending transfers with a timeout.
    pub expires_at_ms: Option<i64>,
    pub refers_to: Option<String>,
    /// Shared by the transfers of one [`crate::Ledger::submit_linked`] call.
    pub linked_group: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at_ms: i64,
}

/// An account's balances, in fen. Posted balance = credits − debits of posted transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub posted_fen: i64,
    /// Sum of open pending transfers debiting the account (holds on it).
    pub pending_debit_fen: i64,
    /// Sum of open pending transfers crediting the account.
    pub pending_credit_fen: i64,
    /// posted − pending_debit: what the account can still spend (plus its credit limit).
    pub available_fen: i64,
    pub currency: String,
}

/// An account row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub kind: String,
    pub currency: String,
    /// System accounts (the funding gateway) may go negative; wallets may not.
    pub allow_negative: bool,
    /// A non-negative account's available balance may go down to −credit_limit_fen.
    pub credit_limit_fen: i64,
    pub balance: Balance,
    pub created_at_ms: i64,
}

/// Where a pending transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    Pending,
    Posted,
    Voided,
    Expired,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "pending",
            HoldState::Posted => "posted",
            HoldState::Voided => "voided",
            HoldState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<HoldState> {
        Some(match s {
            "pending" => HoldState::Pending,
            "posted" => HoldState::Posted,
            "voided" => HoldState::Voided,
            "expired" => HoldState::Expired,
            _ => return None,
        })
    }
}

/// A pending transfer and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub pending_id: String,
    pub debit_account_id: String,
    pub credit_account_id: String,
    pub amount_fen: i64,
    pub currency: String,
    pub category: String,
    pub expires_at_ms: Option<i64>,
    pub state: HoldState,
    /// The resolution transfer's id.
    pub resolved_by: Option<String>,
    pub resolved_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// Which side of a transfer an account is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Money left the account (it was debited).
    Out,
    /// Money entered the account (it was credited).
    In,
}

/// A transfer as seen from one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub transfer: Transfer,
    pub direction: Direction,
    /// The account on the other side.
    pub counterparty: String,
    /// The change of the account's posted balance: ±amount for posted and
    /// post_pending rows, 0 for holds and releases.
    pub posted_change_fen: i64,
}

impl HistoryItem {
    /// A transfer as `account_id` sees it (one of its two sides).
    pub fn of(account_id: &str, t: Transfer) -> HistoryItem {
        let out = t.debit_account_id == account_id;
        let posted_change_fen = match (t.kind.moves_money(), out) {
            (false, _) => 0,
            (true, true) => -t.amount_fen,
            (true, false) => t.amount_fen,
        };
        HistoryItem {
            direction: if out { Direction::Out } else { Direction::In },
            counterparty: if out { t.credit_account_id.clone() } else { t.debit_account_id.clone() },
            posted_change_fen,
            transfer: t,
        }
    }
}

/// Which of an account's transfers a history page holds: any of these
/// categories (all when empty), made within `[from_ms, to_ms)` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub categories: Vec<String>,
    pub between: Option<(i64, i64)>,
}

/// One page of history, newest first. Pass `next_cursor` to get the next page;
/// `None` means there is no more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<i64>,
}

/// Posted money moved by one account in one category over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategorySum {
    pub category: String,
    /// Money that left the account.
    pub debit_fen: i64,
    /// Money that entered the account.
    pub credit_fen: i64,
    /// Number of transfer rows counted.
    pub transfers: i64,
}

/// What [`crate::Ledger::check`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CheckReport {
    pub accounts: u64,
    pub transfers: u64,
    pub open_pending: u64,
    /// Sum of all posted balances (must be 0).
    pub sum_posted_fen: i64,
    /// Every inconsistency found, in words. Empty when the ledger is sound.
    pub mismatches: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Rows that belong to a transfer but to another part of the system (the
/// payee's notice, the stored answer of the request that paid), written by
/// that part's own code in the ledger's transaction: they commit with the
/// money, or not at all. Given to [`crate::Ledger::transfer_with`].
///
/// A batch holds many transfers; their attachments of one type are written
/// together, by the first one's [`Attachment::write_all`], which sees every
/// attachment of its type with the transfer it belongs to (downcast them with
/// `as_any`). A failing write fails the whole batch, so attachments write
/// rows that cannot conflict (or `ON CONFLICT DO NOTHING`).
pub trait Attachment: Send + Sync + 'static {
    fn as_any(&self) -> &dyn std::any::Any;
    fn write_all<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        all: &'a [(&'a dyn Attachment, &'a Transfer)],
    ) -> futures::future::BoxFuture<'a, yizhan_core::Result<()>>;
}
