//! The ways people pay, on top of the ledger: wallets, top-up and withdrawal
//! through a funding gateway, transfers between people, QR codes (static
//! merchant codes and one-time customer pay codes), red packets, and bills and
//! fines issued by organisations.
//!
//! Money only ever moves through the ledger, and every money path carries an
//! idempotency key that reaches the ledger, so a retried request cannot move
//! money twice. Where a step outside the ledger (a code, a packet share, a
//! bill) must happen exactly once, its row is claimed first with a conditional
//! UPDATE and the ledger transfer uses a key derived from that row; a crash
//! between the two is finished by the next retry with the same key.

pub mod account;
mod attach;
pub mod bills;
pub mod confirm;
pub mod emvco;
pub mod fees;
pub mod gateway;
pub mod history;
pub mod limits;
pub mod packets;
pub mod paylater;
pub mod preview;
pub mod qrimage;
pub mod qrpay;
pub mod receiving;
pub mod redpacket;
pub mod rekey;
pub mod types;
pub mod withdrawals;

pub use confirm::{
    Charge, PayCodeState, PayCodeStatus, PendingCharge, TillCharge, PIN_DIGITS, PIN_MAX_FAILURES, PIN_WINDOW_MS,
};
pub use gateway::{FundingGateway, GatewayOutcome, Notification, PayoutStatus, SandboxGateway};
pub use history::{EntryStatus, HistoryEntry, HistoryQuery, HISTORY_TYPES};
pub use limits::{LimitChange, LimitRule, LimitUse, MyLimits, Operation};
pub use packets::{MyPackets, PacketLine};
pub use preview::{PaymentPreview, WithdrawalPreview};
pub use receiving::{Received, ReceivedToday};
pub use redpacket::SplitMode;
pub use types::*;
pub use withdrawals::WithdrawalReport;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use yizhan_audit::Audit;
use yizhan_core::{Code, Ctx, Error, MigrationSet, Msg, Result};
use yizhan_identity::Identity;
use yizhan_ledger::{Ledger, Transfer, TransferSpec};
use yizhan_notify::{Message, Notify};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "pay",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_pay.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_bill_issue_key.sql")),
        ("0003", include_str!("../migrations/sqlite/0003_withdrawals.sql")),
        ("0004", include_str!("../migrations/sqlite/0004_paycode_confirm.sql")),
        ("0005", include_str!("../migrations/sqlite/0005_limits.sql")),
        ("0006", include_str!("../migrations/sqlite/0006_drop_vehicles.sql")),
        ("0007", include_str!("../migrations/sqlite/0007_limits_in_ledger.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_pay.sql")),
        ("0002", include_str!("../migrations/postgres/0002_bill_issue_key.sql")),
        ("0003", include_str!("../migrations/postgres/0003_withdrawals.sql")),
        ("0004", include_str!("../migrations/postgres/0004_paycode_confirm.sql")),
        ("0005", include_str!("../migrations/postgres/0005_limits.sql")),
        ("0006", include_str!("../migrations/postgres/0006_drop_vehicles.sql")),
        ("0007", include_str!("../migrations/postgres/0007_limits_in_ledger.sql")),
    ],
};

/// The pay's public error codes (their titles are in the wallet room's texts).
pub mod codes {
    use yizhan_core::{Class, Code};

    pub const CODE_EXPIRED: Code = Code::new("code_expired", Class::Gone);
    pub const CODE_USED: Code = Code::new("code_used", Class::Conflict);
    pub const QR_INVALID: Code = Code::new("qr_invalid", Class::Invalid);
    pub const PAYMENT_DECLINED: Code = Code::new("payment_declined", Class::PaymentRequired);
    pub const ALREADY_CLAIMED: Code = Code::new("already_claimed", Class::Conflict);
    pub const PACKET_EMPTY: Code = Code::new("packet_empty", Class::Gone);
    pub const ALREADY_PAID: Code = Code::new("already_paid", Class::Conflict);
    /// The customer said no to a pay code charge above the confirmation threshold.
    pub const PAYCODE_DECLINED: Code = Code::new("paycode_declined", Class::PaymentRequired);
    pub const WRONG_PIN: Code = Code::new("wrong_pin", Class::Invalid);
    /// Over a per-transaction or daily limit of the person's verification level.
    /// Invalid (422), like `insufficient_funds`: the request is well formed and
    /// a rule says no; not 429, which invites an automatic retry that a
    /// per-transaction cap never lets pass, nor 403, which says who may call.
    pub const LIMIT_EXCEEDED: Code = Code::new("limit_exceeded", Class::Invalid);

    /// Every code of the pay, for the room's list.
    pub const ALL: &[Code] = &[
        CODE_EXPIRED,
        CODE_USED,
        QR_INVALID,
        PAYMENT_DECLINED,
        ALREADY_CLAIMED,
        PACKET_EMPTY,
        ALREADY_PAID,
        PAYCODE_DECLINED,
        WRONG_PIN,
        LIMIT_EXCEEDED,
    ];
}

/// Longest idempotency key a client may send (the ledger gets it scoped, with room to spare).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 64;
/// Longest memo on a transfer.
pub const MAX_MEMO_CHARS: usize = 200;
/// Rows of history per page.
pub const HISTORY_PAGE: i64 = 50;

/// Holds the money of red packets not yet claimed.
pub const ESCROW_ACCOUNT: &str = "redpacket:escrow";
pub const CLEARING_ACCOUNT: &str = "clearing";
pub const FEES_ACCOUNT: &str = "fees";

/// A person's wallet account in the ledger.
pub fn wallet_account(user_id: &str) -> String {
    format!("wallet:{user_id}")
}

/// An organisation's account in the ledger.
pub fn org_account(org_id: &str) -> String {
    format!("org:{org_id}")
}

/// A funding gateway's account in the ledger (may go negative: it mirrors money outside).
pub fn gateway_account(name: &str) -> String {
    format!("gateway:{name}")
}

/// Ledger categories of the transfers this crate makes.
pub mod category {
    pub const TOPUP: &str = "topup";
    pub const WITHDRAWAL: &str = "withdrawal";
    pub const P2P: &str = "p2p";
    pub const QR: &str = "qr";
    pub const PAYCODE: &str = "paycode";
    pub const RED_PACKET: &str = "red_packet";
    pub const RED_PACKET_REFUND: &str = "red_packet_refund";
    pub const BILL: &str = "bill";
    /// A service's fee (an appointment's), and its refund.
    pub const SERVICE_FEE: &str = "service_fee";
    pub const SERVICE_REFUND: &str = "service_refund";
    /// A deposit held for a service (a library card's), released when it is returned.
    pub const DEPOSIT: &str = "deposit";
}

/// What the operator sets for Pay.
#[derive(Debug, Clone)]
pub struct PayConfig {
    /// A pay code charge of more than this (fen) waits for the customer to
    /// confirm it on their screen (with their payment PIN, if they set one).
    /// 0 asks for every charge.
    pub paycode_confirm_above_fen: i64,
}

/// ¥500: above an everyday shop or restaurant bill, so the till keeps its
/// one-scan speed for most payments, and below what a lost or photographed
/// code should be able to take without its owner noticing.
pub const DEFAULT_PAYCODE_CONFIRM_ABOVE_FEN: i64 = 50_000;

impl Default for PayConfig {
    fn default() -> Self {
        PayConfig { paycode_confirm_above_fen: DEFAULT_PAYCODE_CONFIRM_ABOVE_FEN }
    }
}

/// The payment services. Cheap to clone.
#[derive(Clone)]
pub struct Pay {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Ctx,
    ledger: Ledger,
    identity: Identity,
    audit: Audit,
    notify: Notify,
    gateway: Arc<dyn FundingGateway>,
    config: PayConfig,
    /// Accounts known to exist, so "open on first use" costs one call per process.
    opened: Mutex<HashSet<String>>,
    /// Limit reservations, many per transaction (see [`limits`]).
    reservations: yizhan_core::group::GroupCommit<limits::Reservations>,
    /// The limit table as last read.
    rules: limits::RuleCache,
    /// Each person's payment PIN hash (or none) as last read, forgotten in
    /// every process when it is set, changed or removed.
    pins: Arc<yizhan_core::cache::Remembered<Option<String>>>,
    /// Who hears of a paid bill (the credit room, wired by the app); none: nobody.
    bill_events: std::sync::OnceLock<Arc<dyn bills::BillEvents>>,
}

/// A client's idempotency key: required, 1 to 64 printable ASCII characters.
pub(crate) fn check_idempotency_key(key: &str) -> Result<&str> {
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::new(Code::IdempotencyKeyRequired, "pay.key_required"));
    }
    if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::field_msg(
            "idempotency_key",
            Msg::new("pay.key_invalid").int("max", MAX_IDEMPOTENCY_KEY_CHARS as i64),
        ));
    }
    Ok(key)
}

/// The key the ledger gets: scoped by who acts and what they do, so keys of
/// different people or operations never meet.
pub(crate) fn scoped_key(scope: &str, actor_id: &str, operation: &str, key: &str) -> String {
    format!("{scope}:{actor_id}:{operation}:{key}")
}

pub(crate) fn check_amount(amount_fen: i64) -> Result<i64> {
    yizhan_ledger::amount_check("amount_fen", amount_fen)
}

pub(crate) fn check_memo(memo: &str) -> Result<String> {
    let memo = memo.trim();
    if memo.chars().count() > MAX_MEMO_CHARS {
        return Err(Error::field_msg("memo", Msg::new("pay.memo_too_long").int("max", MAX_MEMO_CHARS as i64)));
    }
    if memo.chars().any(char::is_control) {
        return Err(Error::field("memo", "pay.memo_control"));
    }
    Ok(memo.to_string())
}

impl Pay {
    pub fn new(
        ctx: Ctx,
        ledger: Ledger,
        identity: Identity,
        audit: Audit,
        notify: Notify,
        gateway: Arc<dyn FundingGateway>,
    ) -> Pay {
        Pay::with_config(ctx, ledger, identity, audit, notify, gateway, PayConfig::default())
    }

    /// Pay with the operator's settings.
    pub fn with_config(
        ctx: Ctx,
        ledger: Ledger,
        identity: Identity,
        audit: Audit,
        notify: Notify,
        gateway: Arc<dyn FundingGateway>,
        config: PayConfig,
    ) -> Pay {
        let reservations =
            yizhan_core::group::GroupCommit::start(ctx.db.clone(), limits::Reservations, Default::default());
        let pins = yizhan_core::cache::Remembered::start(
            &ctx.db,
            confirm::PINS_CHANNEL,
            confirm::PINS_MAX,
            confirm::PINS_MAX_AGE_MS,
        );
        Pay {
            inner: Arc::new(Inner {
                ctx,
                ledger,
                identity,
                audit,
                notify,
                gateway,
                config,
                opened: Mutex::new(HashSet::new()),
                pins,
                reservations,
                rules: limits::RuleCache::default(),
                bill_events: std::sync::OnceLock::new(),
            }),
        }
    }

    pub(crate) fn inner_reservations(&self) -> &yizhan_core::group::GroupCommit<limits::Reservations> {
        &self.inner.reservations
    }

    pub(crate) fn inner_rules(&self) -> &limits::RuleCache {
        &self.inner.rules
    }

    /// Who hears of a paid bill (set once, at start).
    pub fn set_bill_events(&self, events: Arc<dyn bills::BillEvents>) {
        let _ = self.inner.bill_events.set(events);
    }

    pub(crate) fn bill_events(&self) -> Option<&Arc<dyn bills::BillEvents>> {
        self.inner.bill_events.get()
    }

    pub fn config(&self) -> &PayConfig {
        &self.inner.config
    }

    pub(crate) fn ctx(&self) -> &Ctx {
        &self.inner.ctx
    }

    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    pub(crate) fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub(crate) fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    pub fn gateway_name(&self) -> &'static str {
        self.inner.gateway.name()
    }

    /// Whether money only pretends to enter and leave (the sandbox gateway).
    pub fn gateway_is_sandbox(&self) -> bool {
        self.inner.gateway.is_sandbox()
    }

    /// Open a ledger account unless this process already knows it exists.
    pub(crate) async fn ensure_account(&self, id: &str, kind: &str, allow_negative: bool) -> Result<()> {
        if self.inner.opened.lock().unwrap_or_else(|e| e.into_inner()).contains(id) {
            return Ok(());
        }
        match self.ledger().open_account(id, kind, allow_negative).await {
            Ok(_) => {}
            Err(e) if e.code == Code::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.inner.opened.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string());
        Ok(())
    }

    pub(crate) async fn ensure_wallet(&self, user_id: &str) -> Result<String> {
        let id = wallet_account(user_id);
        self.ensure_account(&id, "wallet", false).await?;
        Ok(id)
    }

    pub(crate) async fn ensure_org(&self, org_id: &str) -> Result<String> {
        let id = org_account(org_id);
        self.ensure_account(&id, "org", false).await?;
        Ok(id)
    }

    pub(crate) async fn ensure_payee(&self, payee: &Payee) -> Result<String> {
        match payee {
            Payee::User(id) => self.ensure_wallet(id).await,
            Payee::Org(id) => self.ensure_org(id).await,
        }
    }

    pub(crate) async fn ensure_gateway(&self) -> Result<String> {
        let id = gateway_account(self.gateway_name());
        self.ensure_account(&id, "gateway", true).await?;
        Ok(id)
    }

    pub(crate) async fn ensure_escrow(&self) -> Result<()> {
        self.ensure_account(ESCROW_ACCOUNT, "system", false).await
    }

    /// Open the platform's own accounts (gateway, clearing, fees, red packet escrow).
    pub async fn open_system_accounts(&self) -> Result<()> {
        self.ensure_gateway().await?;
        self.ensure_account(CLEARING_ACCOUNT, "system", true).await?;
        self.ensure_account(FEES_ACCOUNT, "system", false).await?;
        self.ensure_escrow().await
    }

    /// A person who exists and is not deleted: their display name.
    pub(crate) async fn live_user_name(&self, user_id: &str) -> Result<String> {
        let r = self.identity().user_ref(user_id).await?;
        if r.login_masked == "deleted" {
            return Err(Error::not_found("user"));
        }
        Ok(r.name)
    }

    /// Tell a person something, in English and Chinese. A payment never fails
    /// because its notice could not be stored: that is logged instead.
    pub(crate) async fn tell(&self, user_id: &str, msg: Message) {
        let email = self.notice_email(user_id).await;
        if let Err(e) = self.inner.notify.send(user_id, email.as_deref(), msg).await {
            tracing::warn!(%user_id, code = %e.code, error = %e.msg, "payment notice not stored");
        }
    }

    /// Where a notice's copy is mailed. The person's address is looked up
    /// only when mail goes anywhere: without a mailer a notice costs no read
    /// on the payment path.
    async fn notice_email(&self, user_id: &str) -> Option<String> {
        self.inner.notify.mailer_name()?;
        match self.identity().profile(user_id).await {
            Ok(p) if p.login.contains('@') => Some(p.login),
            _ => None,
        }
    }

    pub(crate) async fn transfer(&self, spec: TransferSpec) -> Result<Transfer> {
        self.ledger().transfer(spec).await
    }

    // ---- wallet ----

    /// A person's balances; opens the wallet on first use.
    pub async fn wallet(&self, user_id: &str) -> Result<Wallet> {
        let account_id = self.ensure_wallet(user_id).await?;
        let b = self.ledger().balance(&account_id).await?;
        Ok(Wallet {
            user_id: user_id.to_string(),
            account_id,
            balance_fen: b.posted_fen,
            available_fen: b.available_fen,
            pending_fen: b.pending_debit_fen,
            currency: b.currency,
        })
    }

    /// Move money from a card into the wallet. On a decline or a timeout nothing moves.
    pub async fn topup(
        &self,
        user_id: &str,
        amount_fen: i64,
        card: Option<&str>,
        idempotency_key: &str,
    ) -> Result<GatewayReceipt> {
        let amount_fen = check_amount(amount_fen)?;
        let key = scoped_key("user", user_id, "topup", check_idempotency_key(idempotency_key)?);
        self.live_user_name(user_id).await?;
        let wallet = self.ensure_wallet(user_id).await?;
        let gw = self.ensure_gateway().await?;
        // The gateway reference is the ledger key: a retry is charged once by the
        // gateway and credited once by the ledger, and a late "charge.succeeded"
        // notification can credit a top-up whose answer was lost.
        self.reserve_limit(user_id, Operation::Topup, amount_fen, &key).await?;
        let outcome = match self.inner.gateway.charge(card.unwrap_or(""), amount_fen, &key).await {
            Ok(o) => o,
            Err(e) => {
                self.give_back_if_refused(&key, &e).await;
                return Err(e);
            }
        };
        let t = match self
            .transfer(
                TransferSpec::new(gw, wallet, amount_fen, category::TOPUP)
                    .with_memo(format!("{} {}", self.gateway_name(), outcome.gateway_ref))
                    .with_idempotency_key(key.clone()),
            )
            .await
        {
            Ok(t) => t,
            Err(e) => {
                self.give_back_if_refused(&key, &e).await;
                return Err(e);
            }
        };
        Ok(GatewayReceipt {
            transfer_id: t.id,
            amount_fen,
            gateway: self.gateway_name().to_string(),
            gateway_ref: outcome.gateway_ref,
            at_ms: t.created_at_ms,
        })
    }

    /// Send money to another person, named by login or by their QR payload.
    pub async fn transfer_to_user(
        &self,
        from_user_id: &str,
        to: &str,
        amount_fen: i64,
        memo: &str,
        idempotency_key: &str,
    ) -> Result<Receipt> {
        let to = to.trim();
        if to.starts_with("000201") {
            let preview = self.qr_preview(to).await?;
            return self.pay_payee(from_user_id, &preview, amount_fen, memo, idempotency_key, category::QR).await;
        }
        let amount_fen = check_amount(amount_fen)?;
        let memo = check_memo(memo)?;
        let idem = check_idempotency_key(idempotency_key)?;
        let payee =
            self.identity().find_by_login(to).await?.ok_or_else(|| Error::new(Code::NotFound, "pay.no_such_login"))?;
        if payee.user_id == from_user_id {
            return Err(Error::new(yizhan_ledger::codes::SELF_PAYMENT, "pay.self_transfer"));
        }
        let preview = QrPreview { payee: Payee::User(payee.user_id), payee_name: payee.name, amount_fen: None };
        self.move_to_payee(from_user_id, &preview, amount_fen, &memo, idem, category::P2P).await
    }

    /// Pay a payee the payer already saw (from a QR preview).
    pub(crate) async fn pay_payee(
        &self,
        payer_user_id: &str,
        preview: &QrPreview,
        amount_fen: i64,
        memo: &str,
        idempotency_key: &str,
        category: &str,
    ) -> Result<Receipt> {
        let amount_fen = check_amount(amount_fen)?;
        let memo = check_memo(memo)?;
        let idem = check_idempotency_key(idempotency_key)?;
        if let Some(fixed) = preview.amount_fen {
            if fixed != amount_fen {
                return Err(Error::field_msg("amount_fen", Msg::new("pay.fixed_amount_needed").fen("amount", fixed)));
            }
        }
        if preview.payee == Payee::User(payer_user_id.to_string()) {
            return Err(Error::new(yizhan_ledger::codes::SELF_PAYMENT, "pay.self_payment"));
        }
        self.move_to_payee(payer_user_id, preview, amount_fen, &memo, idem, category).await
    }

    async fn move_to_payee(
        &self,
        payer_user_id: &str,
        preview: &QrPreview,
        amount_fen: i64,
        memo: &str,
        idem: &str,
        category: &str,
    ) -> Result<Receipt> {
        let payer = self.identity().standing(payer_user_id).await?;
        let payer_name = payer.name.clone();
        let from = self.ensure_wallet(payer_user_id).await?;
        let to = self.ensure_payee(&preview.payee).await?;
        let key = scoped_key("user", payer_user_id, category, idem);
        // The day's limit is counted by the ledger with the money, in its
        // batch: a retry of a payment made counts nothing and is never
        // refused by a limit, a refused payment counts nothing. (The ledger
        // is asked about the key only when a cap refuses it beforehand.)
        let limit = match self.limit_check(&payer, payer_user_id, Operation::Payment, amount_fen).await {
            Ok(c) => Some(c),
            Err(e)
                if e.code == codes::LIMIT_EXCEEDED
                    && self.ledger().transfer_by_idempotency_key(&key).await?.is_some() =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        // The payee's notice and the request's answer commit with the money;
        // a replay writes neither again (the ledger writes attachments only
        // for transfers it makes), so the payee is not told twice.
        let mut attachments: Vec<Arc<dyn yizhan_ledger::Attachment>> = Vec::new();
        let notice = match &preview.payee {
            Payee::User(to_user) => {
                let n = Arc::new(attach::ReceivedNotice {
                    notify: self.inner.notify.clone(),
                    payee_user_id: to_user.clone(),
                    payer_name: payer_name.clone(),
                    memo: memo.to_string(),
                    email: self.notice_email(to_user).await,
                    prepared: std::sync::Mutex::new(None),
                });
                attachments.push(n.clone());
                Some(n)
            }
            Payee::Org(_) => None,
        };
        attachments.extend(attach::request_answer());
        // Money to a person comes from the payer's own balance, never from a pay-later line.
        let to_person = matches!(preview.payee, Payee::User(_));
        let mut spec = TransferSpec::new(from, to, amount_fen, category)
            .with_memo(memo)
            .with_idempotency_key(key)
            .own_funds_only(to_person);
        if let Some(c) = &limit {
            spec = spec.with_quota(c.quota_key.clone(), c.per_day_fen);
        }
        let t = match self.ledger().transfer_with(spec, attachments).await {
            Ok(t) => t,
            Err(e) => {
                if let (Some(c), true) = (&limit, e.code == yizhan_ledger::codes::QUOTA_EXCEEDED) {
                    return Err(self.over_daily(c).await);
                }
                // Refused for want of own money: say why when a pay-later line is
                // there (asked only now, so a payment that passes reads nothing for it).
                if to_person && e.code == yizhan_ledger::codes::INSUFFICIENT_FUNDS {
                    return Err(self.explain_own_funds(payer_user_id, e).await);
                }
                return Err(e);
            }
        };
        if let Some(n) = notice {
            n.mail();
        }
        Ok(Receipt {
            transfer_id: t.id,
            amount_fen,
            category: category.to_string(),
            payee: preview.payee.clone(),
            payee_name: preview.payee_name.clone(),
            at_ms: t.created_at_ms,
        })
    }

    // ---- statements and history ----

    /// Money in and out of the wallet per category over one calendar month (China time).
    pub async fn statement(&self, user_id: &str, year: i64, month: u32) -> Result<Statement> {
        if !(1..=12).contains(&month) {
            return Err(Error::field("month", "pay.month_range"));
        }
        if !(2000..=2200).contains(&year) {
            return Err(Error::field_msg("year", Msg::new("pay.year_range").int("min", 2000).int("max", 2200)));
        }
        let account = self.ensure_wallet(user_id).await?;
        let (from_ms, to_ms) = yizhan_core::time::month_range_cst(year, month);
        let sums = self.ledger().sum_by_category(&account, from_ms, to_ms).await?;
        let lines: Vec<StatementLine> = sums
            .into_iter()
            .map(|s| StatementLine {
                category: s.category,
                in_fen: s.credit_fen,
                out_fen: s.debit_fen,
                transfers: s.transfers,
            })
            .collect();
        Ok(Statement {
            user_id: user_id.to_string(),
            year,
            month,
            from_ms,
            to_ms,
            total_in_fen: lines.iter().map(|l| l.in_fen).sum(),
            total_out_fen: lines.iter().map(|l| l.out_fen).sum(),
            lines,
        })
    }

    /// The wallet's transfers, newest first, with the other side named.
    /// Platform support staff read a person's wallet history, with a stated
    /// reason; the read is written to the person's access log first.
    pub async fn staff_read_history(
        &self,
        actor: &yizhan_identity::Principal,
        subject_user_id: &str,
        reason: &str,
        cursor: Option<i64>,
    ) -> Result<HistoryPage> {
        if !actor.is_admin {
            return Err(Error::forbidden("pay.staff_only"));
        }
        self.identity().require_second_factor_for_staff(actor).await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::field_msg("reason", Msg::new("pay.reason_required").int("max", 500)));
        }
        self.identity().user_ref(subject_user_id).await?;
        self.audit()
            .record(yizhan_audit::NewAccess {
                subject_user_id: subject_user_id.to_string(),
                actor_user_id: actor.user_id.clone(),
                actor_label: actor.name.clone(),
                org_id: None,
                // A role, not a name: the audit room shows it in the reader's language.
                org_label: Some(yizhan_audit::PLATFORM_SUPPORT.to_string()),
                what: "transactions".into(),
                why: reason.to_string(),
            })
            .await?;
        self.history(subject_user_id, cursor).await
    }

    pub async fn history(&self, user_id: &str, cursor: Option<i64>) -> Result<HistoryPage> {
        self.history_where(user_id, cursor, &history::HistoryQuery::default()).await
    }

    /// Who a ledger account is, in a person's history.
    pub(crate) async fn counterpart(&self, account: &str) -> Counterpart {
        if let Some(user) = account.strip_prefix("wallet:") {
            return Counterpart::Person(
                self.identity().user_ref(user).await.map(|u| u.name).unwrap_or_else(|_| "—".into()),
            );
        }
        if let Some(org) = account.strip_prefix("org:") {
            return Counterpart::Org(self.identity().org(org).await.map(|o| o.name).unwrap_or_else(|_| "—".into()));
        }
        if let Some(gw) = account.strip_prefix("gateway:") {
            return Counterpart::Card(gw.to_string());
        }
        if account == ESCROW_ACCOUNT {
            return Counterpart::RedPacket;
        }
        Counterpart::Platform
    }

    /// The kinds of the bills these transfers paid.
    pub(crate) async fn bill_kinds_of(
        &self,
        transfer_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, BillKind>> {
        let mut out = std::collections::HashMap::new();
        if transfer_ids.is_empty() {
            return Ok(out);
        }
        let marks: Vec<String> = (1..=transfer_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT transfer_id, kind FROM bills WHERE transfer_id IN ({})", marks.join(","));
        let mut q = sqlx::query_as::<_, (String, String)>(&sql);
        for id in transfer_ids {
            q = q.bind(*id);
        }
        for (transfer_id, kind) in q.fetch_all(&self.ctx().db.pool).await? {
            if let Ok(k) = BillKind::parse(&kind) {
                out.insert(transfer_id, k);
            }
        }
        Ok(out)
    }

    // ---- gateway notifications ----

    /// Take a notification from the funding gateway. Its signature is checked;
    /// a notification seen before (same id) is acknowledged and changes nothing.
    /// A "charge.succeeded" for a top-up whose answer was lost credits the wallet
    /// (once: the ledger key is the charge's reference). A "payout.succeeded" or
    /// "payout.failed" settles a withdrawal still on hold: posts or voids the hold.
    pub async fn gateway_notification(&self, body: &[u8], signature: &str) -> Result<NotificationAck> {
        let n = self.inner.gateway.verify_notification(body, signature)?;
        let gateway = self.gateway_name();
        let seen: Option<(String,)> =
            sqlx::query_as("SELECT outcome FROM gateway_notifications WHERE gateway = $1 AND id = $2")
                .bind(gateway)
                .bind(&n.id)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        if let Some((outcome,)) = seen {
            return Ok(NotificationAck { id: n.id, duplicate: true, outcome });
        }
        // Claim the id before acting, so two deliveries at once act once.
        let mut tx = self.ctx().db.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO gateway_notifications (gateway, id, kind, reference, amount_fen, gateway_ref, outcome, received_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, 'received', $7) ON CONFLICT (gateway, id) DO NOTHING",
        )
        .bind(gateway)
        .bind(&n.id)
        .bind(&n.kind)
        .bind(&n.reference)
        .bind(n.amount_fen)
        .bind(&n.gateway_ref)
        .bind(self.ctx().now_ms())
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        if claimed == 0 {
            return Ok(NotificationAck { id: n.id, duplicate: true, outcome: "received".into() });
        }
        let outcome = match self.apply_notification(&n).await {
            Ok(o) => o,
            Err(e) => {
                // Forget the claim so the gateway's next delivery tries again.
                let mut tx = self.ctx().db.begin().await?;
                sqlx::query("DELETE FROM gateway_notifications WHERE gateway = $1 AND id = $2")
                    .bind(gateway)
                    .bind(&n.id)
                    .execute(tx.conn())
                    .await?;
                tx.commit().await?;
                return Err(e);
            }
        };
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE gateway_notifications SET outcome = $1 WHERE gateway = $2 AND id = $3")
            .bind(&outcome)
            .bind(gateway)
            .bind(&n.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(NotificationAck { id: n.id, duplicate: false, outcome })
    }

    async fn apply_notification(&self, n: &Notification) -> Result<String> {
        let topup_user = n
            .reference
            .strip_prefix("user:")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(_, op)| op.starts_with("topup:"))
            .map(|(user, _)| user.to_string());
        match (n.kind.as_str(), topup_user) {
            ("charge.succeeded", Some(user_id)) => {
                let amount_fen = check_amount(n.amount_fen)?;
                let wallet = self.ensure_wallet(&user_id).await?;
                let gw = self.ensure_gateway().await?;
                let t = self
                    .transfer(
                        TransferSpec::new(gw, wallet, amount_fen, category::TOPUP)
                            .with_memo(format!("{} {}", self.gateway_name(), n.gateway_ref))
                            .with_idempotency_key(n.reference.clone()),
                    )
                    .await?;
                Ok(format!("topup credited: {}", t.id))
            }
            ("payout.succeeded", _) => self.withdrawal_notification(n, true).await,
            ("payout.failed", _) => self.withdrawal_notification(n, false).await,
            _ => Ok("recorded".into()),
        }
    }
}
