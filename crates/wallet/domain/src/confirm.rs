//! The customer's side of a pay code: how it stands (for the page that shows
//! it), confirming or declining a charge above the operator's threshold, and
//! the optional payment PIN such a confirmation then asks for.
//!
//! A charge above the threshold takes the code but moves nothing: the code
//! waits `PAYCODE_CONFIRM_WINDOW_MS` for its owner. Confirm, decline and the
//! end of the window are decided by one conditional UPDATE of the code's row
//! (`confirm_state = 'awaiting' AND confirm_expires_at_ms > now`), so of a
//! confirmation and a decline at once exactly one wins; the money then moves
//! under the same ledger key the cashier's own charge uses, so once.

use crate::{Pay, Payee, Receipt};
use yizhan_core::time::HOUR_MS;
use yizhan_core::{Arg, Code, Error, Msg, Result};
use yizhan_identity::{Principal, Role};
use yizhan_ledger::Transfer;
use yizhan_notify::{Message, Target};

pub(crate) const AWAITING: &str = "awaiting";
pub(crate) const CONFIRMED: &str = "confirmed";
pub(crate) const DECLINED: &str = "declined";
pub(crate) const FAILED: &str = "failed";

/// A payment PIN is this many digits.
pub const PIN_DIGITS: usize = 6;
/// Wrong PINs (or wrong passwords when setting one) a person may send in a
/// window; past it, every attempt is refused until the window ends.
pub const PIN_MAX_FAILURES: i64 = 5;
pub const PIN_WINDOW_MS: i64 = HOUR_MS;

/// What a cashier's charge of a pay code came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// The money moved.
    Paid(Receipt),
    /// Above the threshold: nothing moved; the customer is asked.
    AwaitingConfirmation(PendingCharge),
}

impl Charge {
    /// The receipt, if the money moved.
    pub fn receipt(self) -> Option<Receipt> {
        match self {
            Charge::Paid(r) => Some(r),
            Charge::AwaitingConfirmation(_) => None,
        }
    }
}

/// A charge waiting for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCharge {
    pub amount_fen: i64,
    pub payee: Payee,
    pub payee_name: String,
    /// After this the charge lapses and nothing moves.
    pub confirm_expires_at_ms: i64,
}

/// Where a pay code stands, for its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayCodeState {
    /// Not used yet; a cashier may still charge it.
    Waiting,
    /// Taken by a cashier; the money is moving.
    Charging,
    /// A charge above the threshold waits for the owner.
    AwaitingConfirmation,
    Paid,
    Declined,
    /// Its minute passed unused, or the confirmation's window passed.
    Expired,
    /// Confirmed, but the money could not move (not enough, for one).
    Failed,
}

impl PayCodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            PayCodeState::Waiting => "waiting",
            PayCodeState::Charging => "charging",
            PayCodeState::AwaitingConfirmation => "awaiting_confirmation",
            PayCodeState::Paid => "paid",
            PayCodeState::Declined => "declined",
            PayCodeState::Expired => "expired",
            PayCodeState::Failed => "failed",
        }
    }

    /// Whether it can change no more.
    pub fn is_final(self) -> bool {
        matches!(self, PayCodeState::Paid | PayCodeState::Declined | PayCodeState::Expired | PayCodeState::Failed)
    }
}

/// A pay code as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayCodeStatus {
    pub id: String,
    pub state: PayCodeState,
    /// When the code itself stops being chargeable.
    pub expires_at_ms: i64,
    /// The charge, once a cashier made one.
    pub amount_fen: Option<i64>,
    pub payee: Option<Payee>,
    pub payee_name: Option<String>,
    pub confirm_expires_at_ms: Option<i64>,
    /// Paid: the ledger's transfer and when it was made.
    pub transfer_id: Option<String>,
    pub paid_at_ms: Option<i64>,
    /// Declined (or confirmed) at.
    pub decided_at_ms: Option<i64>,
    /// Failed: the error code the money could not move with.
    pub failure_code: Option<String>,
    /// Whether confirming needs the owner's payment PIN.
    pub pin_required: bool,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    public_id: String,
    code_hash: String,
    user_id: String,
    expires_at_ms: i64,
    used_at_ms: Option<i64>,
    used_by_org_id: Option<String>,
    charge_key: Option<String>,
    amount_fen: Option<i64>,
    transfer_id: Option<String>,
    confirm_state: Option<String>,
    confirm_expires_at_ms: Option<i64>,
    decided_at_ms: Option<i64>,
    failure_code: Option<String>,
    paid_at_ms: Option<i64>,
}

const CODE_COLUMNS: &str = "public_id, code_hash, user_id, expires_at_ms, used_at_ms, used_by_org_id, charge_key, \
     amount_fen, transfer_id, confirm_state, confirm_expires_at_ms, decided_at_ms, failure_code, paid_at_ms";

impl CodeRow {
    fn state(&self, now: i64) -> PayCodeState {
        match (self.confirm_state.as_deref(), &self.transfer_id, self.used_at_ms) {
            (_, Some(_), _) => PayCodeState::Paid,
            (Some(AWAITING), _, _) if self.confirm_expires_at_ms.is_some_and(|t| t > now) => {
                PayCodeState::AwaitingConfirmation
            }
            (Some(AWAITING), _, _) => PayCodeState::Expired,
            (Some(DECLINED), _, _) => PayCodeState::Declined,
            (Some(FAILED), _, _) => PayCodeState::Failed,
            (_, None, Some(_)) => PayCodeState::Charging,
            (_, None, None) if self.expires_at_ms > now => PayCodeState::Waiting,
            (_, None, None) => PayCodeState::Expired,
        }
    }
}

/// The cashier's answer for a confirmed charge whose money could not move.
pub(crate) fn failure(code: Option<&str>) -> Error {
    let code = yizhan_ledger::codes::ALL
        .iter()
        .chain(crate::codes::ALL)
        .chain(Code::ALL)
        .find(|c| Some(c.as_str()) == code)
        .copied()
        .unwrap_or(crate::codes::PAYMENT_DECLINED);
    Error::new(code, "pay.paycode.confirm_failed")
}

fn not_awaiting(state: PayCodeState) -> Error {
    match state {
        PayCodeState::Paid => Error::new(crate::codes::ALREADY_PAID, "pay.paycode.already_paid"),
        PayCodeState::Declined => Error::new(crate::codes::PAYCODE_DECLINED, "pay.paycode.declined"),
        PayCodeState::Expired => Error::new(crate::codes::CODE_EXPIRED, "pay.paycode.confirm_expired"),
        PayCodeState::Failed => Error::new(Code::Conflict, "pay.paycode.confirm_failed"),
        PayCodeState::Waiting | PayCodeState::Charging | PayCodeState::AwaitingConfirmation => {
            Error::new(Code::Conflict, "pay.paycode.nothing_to_confirm")
        }
    }
}

/// A cashier's charge as the till sees it, found by the till's own key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TillCharge {
    pub state: PayCodeState,
    pub amount_fen: i64,
    /// Awaiting the customer: until when.
    pub confirm_expires_at_ms: Option<i64>,
    pub transfer_id: Option<String>,
    pub paid_at_ms: Option<i64>,
    /// Failed: the error code the money could not move with.
    pub failure_code: Option<String>,
}

impl Pay {
    /// The owner's code by its opaque id; someone else's is not found.
    async fn owned_code(&self, user_id: &str, paycode_id: &str) -> Result<CodeRow> {
        let row: Option<CodeRow> =
            sqlx::query_as(&format!("SELECT {CODE_COLUMNS} FROM paycodes WHERE public_id = $1 AND user_id = $2"))
                .bind(paycode_id)
                .bind(user_id)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("pay_code"))
    }

    /// How the till's charge made with `idempotency_key` stands (staff of the
    /// organisation): paid, waiting for the customer, declined, lapsed. A charge
    /// refused outright (not enough money) left nothing behind: not found.
    pub async fn till_charge(&self, actor: &Principal, org_id: &str, idempotency_key: &str) -> Result<TillCharge> {
        let idem = crate::check_idempotency_key(idempotency_key)?;
        self.identity().require_staff(actor, org_id, Role::Operator).await?;
        let key = crate::scoped_key("org", org_id, "paycode", idem);
        let row: Option<CodeRow> = sqlx::query_as(&format!(
            "SELECT {CODE_COLUMNS} FROM paycodes WHERE charge_key = $1 AND used_by_org_id = $2"
        ))
        .bind(&key)
        .bind(org_id)
        .fetch_optional(&self.ctx().db.pool)
        .await?;
        let row = row.ok_or_else(|| Error::not_found("pay_code"))?;
        let state = row.state(self.ctx().now_ms());
        Ok(TillCharge {
            state,
            amount_fen: row.amount_fen.unwrap_or_default(),
            confirm_expires_at_ms: row.confirm_expires_at_ms,
            transfer_id: row.transfer_id,
            paid_at_ms: row.paid_at_ms,
            failure_code: row.failure_code,
        })
    }

    /// Tell the customer a charge waits for them (the page that shows the code
    /// shows it too; the notice reaches them when that page is closed).
    pub(crate) async fn ask_to_confirm(&self, customer: &str, hash: &str, amount_fen: i64, org_name: &str) {
        let id: Option<(Option<String>,)> = sqlx::query_as("SELECT public_id FROM paycodes WHERE code_hash = $1")
            .bind(hash)
            .fetch_optional(&self.ctx().db.pool)
            .await
            .unwrap_or(None);
        let Some((Some(id),)) = id else { return };
        self.tell(
            customer,
            Message {
                kind: "pay.paycode_confirm".into(),
                title: Msg::new("pay.notice.paycode_confirm.title").fen("amount", amount_fen).text("org", org_name),
                body: Msg::new("pay.notice.paycode_confirm.body").fen("amount", amount_fen).text("org", org_name),
                target: Some(Target::new("paycode", &id)),
            },
        )
        .await;
    }

    /// Where the owner's pay code stands.
    pub async fn paycode_status(&self, user_id: &str, paycode_id: &str) -> Result<PayCodeStatus> {
        let row = self.owned_code(user_id, paycode_id).await?;
        let now = self.ctx().now_ms();
        let state = row.state(now);
        let payee_name = match &row.used_by_org_id {
            Some(org) if row.confirm_state.is_some() || row.transfer_id.is_some() => {
                Some(self.identity().org(org).await?.name)
            }
            _ => None,
        };
        let pin_required = state == PayCodeState::AwaitingConfirmation && self.has_payment_pin(user_id).await?;
        let charged = payee_name.is_some();
        Ok(PayCodeStatus {
            id: row.public_id,
            state,
            expires_at_ms: row.expires_at_ms,
            amount_fen: row.amount_fen.filter(|_| charged),
            payee: row.used_by_org_id.filter(|_| charged).map(Payee::Org),
            payee_name,
            confirm_expires_at_ms: row.confirm_expires_at_ms,
            transfer_id: row.transfer_id,
            paid_at_ms: row.paid_at_ms,
            decided_at_ms: row.decided_at_ms,
            failure_code: row.failure_code,
            pin_required,
        })
    }

    /// The owner confirms a charge waiting for them: the money moves, once
    /// (confirming again answers the same receipt). With a payment PIN set,
    /// `pin` must be it.
    pub async fn confirm_paycode(&self, user_id: &str, paycode_id: &str, pin: Option<&str>) -> Result<Receipt> {
        let row = self.owned_code(user_id, paycode_id).await?;
        let now = self.ctx().now_ms();
        match (row.state(now), row.confirm_state.as_deref()) {
            (PayCodeState::AwaitingConfirmation, _) => {}
            // Confirmed before (an answer lost, or the money still moving): finish it.
            (PayCodeState::Paid | PayCodeState::Charging, Some(CONFIRMED)) => return self.finish_confirmed(row).await,
            (state, _) => return Err(not_awaiting(state)),
        }
        self.check_pin(user_id, pin).await?;
        let mut tx = self.ctx().db.begin().await?;
        let won: Option<(String,)> = sqlx::query_as(
            "UPDATE paycodes SET confirm_state = $1, decided_at_ms = $2
             WHERE public_id = $3 AND user_id = $4 AND confirm_state = $5 AND confirm_expires_at_ms > $2
             RETURNING code_hash",
        )
        .bind(CONFIRMED)
        .bind(now)
        .bind(paycode_id)
        .bind(user_id)
        .bind(AWAITING)
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;
        let row = self.owned_code(user_id, paycode_id).await?;
        if won.is_none() && row.confirm_state.as_deref() != Some(CONFIRMED) {
            return Err(not_awaiting(row.state(self.ctx().now_ms())));
        }
        self.finish_confirmed(row).await
    }

    async fn finish_confirmed(&self, row: CodeRow) -> Result<Receipt> {
        let (Some(org_id), Some(key), Some(amount_fen)) = (&row.used_by_org_id, &row.charge_key, row.amount_fen) else {
            return Err(Error::internal(anyhow::anyhow!("a confirmed pay code without its charge")));
        };
        let org = self.identity().org(org_id).await?;
        if let Some(t) = &row.transfer_id {
            if let Some(t) = self.ledger().transfer_by_idempotency_key(&format!("paycode:{}", row.code_hash)).await? {
                return Ok(receipt_of(&t, &org));
            }
            tracing::warn!(transfer_id = %t, "a paid pay code's transfer is not under its key");
        }
        self.finish_paycode(&row.user_id, &org, &row.code_hash, key, amount_fen).await
    }

    /// The owner declines a charge waiting for them: nothing moves, and the
    /// cashier's next ask answers `paycode_declined`. Declining again is fine.
    pub async fn decline_paycode(&self, user_id: &str, paycode_id: &str) -> Result<PayCodeStatus> {
        self.owned_code(user_id, paycode_id).await?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let done = sqlx::query(
            "UPDATE paycodes SET confirm_state = $1, decided_at_ms = $2
             WHERE public_id = $3 AND user_id = $4 AND confirm_state = $5 AND confirm_expires_at_ms > $2",
        )
        .bind(DECLINED)
        .bind(now)
        .bind(paycode_id)
        .bind(user_id)
        .bind(AWAITING)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        let status = self.paycode_status(user_id, paycode_id).await?;
        if done.rows_affected() == 0 && status.state != PayCodeState::Declined {
            return Err(not_awaiting(status.state));
        }
        Ok(status)
    }

    // ---- the payment PIN ----

    /// What the PIN's hash is made of: a keyed MAC of the person and the PIN,
    /// so the stored hash cannot be tried offline without the vault's key.
    fn pin_secret(&self, user_id: &str, pin: &str) -> String {
        hex::encode(self.ctx().vault.mac("payment-pin", format!("{user_id}:{pin}").as_bytes()))
    }

    /// The person's PIN hash, if they set a PIN: remembered (see `Inner::pins`).
    async fn pin_hash(&self, user_id: &str) -> Result<Option<String>> {
        let pins = &self.inner.pins;
        if let Some(known) = pins.get(user_id, self.ctx().now_ms()) {
            return Ok(known);
        }
        let generation = pins.generation();
        let row: Option<(String,)> = sqlx::query_as("SELECT pin_hash FROM payment_pins WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.ctx().db.pool)
            .await?;
        let hash = row.map(|r| r.0);
        pins.put(user_id, hash.clone(), self.ctx().now_ms(), generation);
        Ok(hash)
    }

    pub async fn has_payment_pin(&self, user_id: &str) -> Result<bool> {
        Ok(self.pin_hash(user_id).await?.is_some())
    }

    /// Set or change the payment PIN (6 digits, not all one digit nor a run
    /// like 123456); the account password is asked for, and its wrong tries
    /// are counted like wrong PINs.
    pub async fn set_payment_pin(&self, user_id: &str, password: &str, pin: &str) -> Result<()> {
        let pin = pin.trim();
        check_pin_shape(pin)?;
        self.check_password(user_id, password).await?;
        let hash = self.identity().hash_secret(&self.pin_secret(user_id, pin)).await?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO payment_pins (user_id, pin_hash, set_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET pin_hash = $2, set_at_ms = $3",
        )
        .bind(user_id)
        .bind(&hash)
        .bind(now)
        .execute(tx.conn())
        .await?;
        // A new PIN starts with a clean count.
        sqlx::query("DELETE FROM pin_limits WHERE limit_key = $1")
            .bind(format!("pin:{user_id}"))
            .execute(tx.conn())
            .await?;
        self.inner.pins.forget(&mut tx, user_id).await?;
        tx.commit().await?;
        self.inner.pins.forgotten(user_id);
        tracing::info!(%user_id, "payment PIN set");
        Ok(())
    }

    /// Remove the payment PIN (the account password is asked for).
    pub async fn remove_payment_pin(&self, user_id: &str, password: &str) -> Result<()> {
        self.check_password(user_id, password).await?;
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("DELETE FROM payment_pins WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        self.inner.pins.forget(&mut tx, user_id).await?;
        tx.commit().await?;
        self.inner.pins.forgotten(user_id);
        tracing::info!(%user_id, "payment PIN removed");
        Ok(())
    }

    async fn check_password(&self, user_id: &str, password: &str) -> Result<()> {
        let key = format!("password:{user_id}");
        self.count_try(&key).await?;
        if !self.identity().check_password(user_id, password).await? {
            return Err(Error::field("password", "pay.pin.wrong_password"));
        }
        self.forgive(&key).await
    }

    /// With a PIN set, `pin` must be it; wrong ones are counted.
    pub(crate) async fn check_pin(&self, user_id: &str, pin: Option<&str>) -> Result<()> {
        let Some(hash) = self.pin_hash(user_id).await? else { return Ok(()) };
        let Some(pin) = pin.map(str::trim).filter(|p| !p.is_empty()) else {
            return Err(Error::field("pin", "pay.pin.required"));
        };
        let key = format!("pin:{user_id}");
        let failures = self.count_try(&key).await?;
        if pin.len() > PIN_DIGITS || !self.identity().verify_secret(&self.pin_secret(user_id, pin), &hash).await? {
            return Err(Error::new(crate::codes::WRONG_PIN, "pay.pin.wrong")
                .with("left", Arg::Int((PIN_MAX_FAILURES - failures).max(0))));
        }
        self.forgive(&key).await
    }

    /// Count one try under `key` before checking it (so tries at once cannot
    /// pass the limit); refused when past the limit, with when it ends.
    async fn count_try(&self, key: &str) -> Result<i64> {
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let (failures, start): (i64, i64) = sqlx::query_as(
            "INSERT INTO pin_limits (limit_key, window_start_ms, failures) VALUES ($1, $2, 1)
             ON CONFLICT (limit_key) DO UPDATE SET
                 failures = CASE WHEN pin_limits.window_start_ms <= $3 THEN 1 ELSE pin_limits.failures + 1 END,
                 window_start_ms = CASE WHEN pin_limits.window_start_ms <= $3 THEN $2
                                        ELSE pin_limits.window_start_ms END
             RETURNING failures, window_start_ms",
        )
        .bind(key)
        .bind(now)
        .bind(now - PIN_WINDOW_MS)
        .fetch_one(tx.conn())
        .await?;
        tx.commit().await?;
        if failures > PIN_MAX_FAILURES {
            let until = start + PIN_WINDOW_MS;
            let s = u64::try_from((until - now).max(1)).unwrap_or(1).div_ceil(1000);
            return Err(Error::new(Code::TooManyAttempts, "pay.pin.locked")
                .with("until", Arg::Time(until))
                .with_retry_after(s));
        }
        Ok(failures)
    }

    /// A right answer: this try was not a failure.
    async fn forgive(&self, key: &str) -> Result<()> {
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE pin_limits SET failures = failures - 1 WHERE limit_key = $1 AND failures > 0")
            .bind(key)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }
}

/// The PostgreSQL channel a change of a payment PIN travels on.
pub(crate) const PINS_CHANNEL: &str = "yizhan_pins";
/// People whose PIN (or its absence) is remembered at most, and for how long.
pub(crate) const PINS_MAX: usize = 200_000;
pub(crate) const PINS_MAX_AGE_MS: i64 = 300_000;

/// A deleted account's payment PIN and its counts go with it.
pub(crate) async fn erase_pin(tx: &mut yizhan_core::Tx, user_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM payment_pins WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
    sqlx::query("DELETE FROM pin_limits WHERE limit_key = $1 OR limit_key = $2")
        .bind(format!("pin:{user_id}"))
        .bind(format!("password:{user_id}"))
        .execute(tx.conn())
        .await?;
    Ok(())
}

fn check_pin_shape(pin: &str) -> Result<()> {
    if pin.len() != PIN_DIGITS || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::field_msg("pin", Msg::new("pay.pin.digits").int("digits", PIN_DIGITS as i64)));
    }
    let b = pin.as_bytes();
    let steps: Vec<i16> = b.windows(2).map(|w| i16::from(w[1]) - i16::from(w[0])).collect();
    if steps.iter().all(|&d| d == 0) || steps.iter().all(|&d| d == 1) || steps.iter().all(|&d| d == -1) {
        return Err(Error::field("pin", "pay.pin.too_simple"));
    }
    Ok(())
}

fn receipt_of(t: &Transfer, org: &yizhan_identity::Org) -> Receipt {
    Receipt {
        transfer_id: t.id.clone(),
        amount_fen: t.amount_fen,
        category: crate::category::PAYCODE.into(),
        payee: Payee::Org(org.id.clone()),
        payee_name: org.name.clone(),
        at_ms: t.created_at_ms,
    }
}
