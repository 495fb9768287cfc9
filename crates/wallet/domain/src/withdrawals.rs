//! Withdrawals: money held in the wallet, paid out by the gateway, then the
//! hold posted (paid) or voided (refused). Every withdrawal has a row here
//! before its hold exists, so a hold whose payout has no answer (a timeout, a
//! crash between the hold and the answer) is found by
//! [`Pay::reconcile_withdrawals`], which asks the gateway by the payout's
//! reference, and settled; a gateway notification settles it too.
//!
//! The hold itself has no ledger expiry on purpose: expiring it without asking
//! the gateway could give the money back after it was paid out. The time limit
//! is the sweep's: after [`GIVE_UP_AFTER_MS`] with no answer it voids the hold
//! and logs the case for the operator.

use crate::gateway::PayoutStatus;
use crate::{category, check_amount, check_idempotency_key, scoped_key, GatewayReceipt, Pay};
use serde::Serialize;
use yizhan_core::time::{HOUR_MS, MINUTE_MS};
use yizhan_core::{Code, Error, Msg, Result};
use yizhan_ledger::{Hold, HoldState, TransferSpec};
use yizhan_notify::{Message, Target};

/// A withdrawal whose payout has had no final answer for this long is asked about.
pub const RECONCILE_AFTER_MS: i64 = 10 * MINUTE_MS;
/// How often it is asked again while the gateway does not know.
pub const RECHECK_EVERY_MS: i64 = 5 * MINUTE_MS;
/// A withdrawal the gateway still knows nothing of after this long is voided
/// (the money goes back to the wallet) and logged for the operator.
pub const GIVE_UP_AFTER_MS: i64 = 24 * HOUR_MS;
/// Withdrawals one sweep handles at most.
const SWEEP_LIMIT: i64 = 200;

/// What one run of [`Pay::reconcile_withdrawals`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct WithdrawalReport {
    /// Holds posted: the gateway paid.
    pub paid: u64,
    /// Holds voided: the gateway refused.
    pub failed: u64,
    /// Holds voided because the gateway still did not know after [`GIVE_UP_AFTER_MS`].
    pub given_up: u64,
    /// Asked, still unknown; asked again later.
    pub unknown: u64,
    /// Withdrawals whose hold was never made (nothing was held or paid out).
    pub no_hold: u64,
    /// Items that failed this time (logged; the next sweep tries them again).
    pub failures: u64,
}

impl WithdrawalReport {
    /// Whether the run settled or failed anything worth a log line.
    pub fn is_empty(&self) -> bool {
        self.paid + self.failed + self.given_up + self.no_hold + self.failures == 0
    }
}

#[derive(sqlx::FromRow)]
struct WithdrawalRow {
    reference: String,
    hold_id: Option<String>,
    status: String,
    created_at_ms: i64,
}

const ROW_COLS: &str = "reference, hold_id, status, created_at_ms";

/// What a withdrawal's hold should become.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Settle {
    Paid { gateway_ref: String },
    Failed,
    GiveUp,
}

/// What reconciling one withdrawal did.
enum Reconciled {
    Paid,
    Failed,
    GivenUp,
    Unknown,
    NoHold,
}

impl Pay {
    /// Move money from the wallet to a card: hold it, pay out, then post the
    /// hold, or void it when the payout is refused. When the outcome is unknown
    /// (a timeout) the hold stays until the gateway's answer is known (a retry
    /// with the same key, a notification or [`Pay::reconcile_withdrawals`]).
    pub async fn withdraw(
        &self,
        user_id: &str,
        amount_fen: i64,
        card: Option<&str>,
        idempotency_key: &str,
    ) -> Result<GatewayReceipt> {
        let amount_fen = check_amount(amount_fen)?;
        let key = scoped_key("user", user_id, "withdraw", check_idempotency_key(idempotency_key)?);
        let wallet = self.ensure_wallet(user_id).await?;
        let gw = self.ensure_gateway().await?;
        self.own_funds_only(user_id, amount_fen).await?;
        self.reserve_limit(user_id, crate::Operation::Withdrawal, amount_fen, &key).await?;
        let now = self.ctx().now_ms();
        // The row comes before the hold, so no hold exists that the sweep cannot find.
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO withdrawals (reference, user_id, amount_fen, status, created_at_ms, next_check_at_ms)
             VALUES ($1, $2, $3, 'pending', $4, $5) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&key)
        .bind(user_id)
        .bind(amount_fen)
        .bind(now)
        .bind(now + RECONCILE_AFTER_MS)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        let hold = match self
            .transfer(
                TransferSpec::new(wallet, gw, amount_fen, category::WITHDRAWAL)
                    .with_memo(format!("withdrawal {}", self.gateway_name()))
                    .with_idempotency_key(key.clone())
                    .own_funds_only(true)
                    .pending(None),
            )
            .await
        {
            Ok(h) => h,
            Err(e) => {
                self.give_back_if_refused(&key, &e).await;
                return Err(e);
            }
        };
        // A sweep that found no hold yet (this request was slow) closed the row
        // as 'no_hold': the hold exists now, so the row is pending again.
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "UPDATE withdrawals SET hold_id = $1, status = 'pending', next_check_at_ms = $2, settled_at_ms = NULL
             WHERE reference = $3 AND hold_id IS NULL",
        )
        .bind(&hold.id)
        .bind(self.ctx().now_ms() + RECONCILE_AFTER_MS)
        .bind(&key)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        // A retry of a withdrawal that already ended must not reach the gateway
        // again: after a failure the card may have changed, after a success the
        // gateway answers from its own record of the reference.
        let state = self.ledger().hold(&hold.id).await?.state;
        match state {
            HoldState::Pending | HoldState::Posted => {}
            HoldState::Voided | HoldState::Expired => {
                return Err(Error::new(yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED, "pay.withdrawal_failed_before"))
            }
        }
        match self.inner.gateway.payout(card.unwrap_or(""), amount_fen, &key).await {
            Ok(outcome) => {
                let (settled, _) = self
                    .settle_withdrawal(&key, &hold.id, Settle::Paid { gateway_ref: outcome.gateway_ref.clone() })
                    .await?;
                let posted = match (settled.state, settled.resolved_by) {
                    (HoldState::Posted, Some(id)) => self.ledger().get_transfer(&id).await?,
                    _ => {
                        return Err(Error::new(
                            yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED,
                            "pay.withdrawal_cancelled",
                        ))
                    }
                };
                Ok(GatewayReceipt {
                    transfer_id: posted.id,
                    amount_fen,
                    gateway: self.gateway_name().to_string(),
                    gateway_ref: outcome.gateway_ref,
                    at_ms: posted.created_at_ms,
                })
            }
            // Only a definite refusal releases the money.
            Err(e) if matches!(e.code, crate::codes::PAYMENT_DECLINED | Code::ValidationFailed) => {
                if let Err(v) = self.settle_withdrawal(&key, &hold.id, Settle::Failed).await {
                    tracing::error!(hold = %hold.id, code = %v.code, error = %v.msg, "withdrawal hold not voided");
                }
                Err(e)
            }
            // The payout may or may not have happened: the money stays reserved
            // until the outcome is known, never paid twice nor lost.
            Err(e) if e.code == Code::GatewayTimeout => {
                tracing::warn!(hold = %hold.id, "withdrawal payout timed out; hold kept until reconciled");
                Err(Error { source: e.source, ..Error::new(Code::GatewayTimeout, "pay.withdrawal_pending") })
            }
            Err(e) => {
                tracing::warn!(hold = %hold.id, code = %e.code, "withdrawal outcome unknown; hold kept");
                Err(e)
            }
        }
    }

    /// Post or void a withdrawal's hold and mark its row. Safe to repeat (the
    /// resolutions carry keys derived from the reference) and to race. Returns
    /// the hold as it ended and whether this call marked the row.
    async fn settle_withdrawal(&self, reference: &str, hold_id: &str, how: Settle) -> Result<(Hold, bool)> {
        let resolved = match &how {
            Settle::Paid { .. } => self.ledger().post_pending(hold_id, None, Some(format!("{reference}:post"))).await,
            Settle::Failed | Settle::GiveUp => {
                self.ledger().void_pending(hold_id, Some(format!("{reference}:void"))).await
            }
        };
        match resolved {
            Ok(_) => {}
            // Settled before (by a retry, a notification or the sweep): the hold says how.
            Err(e)
                if e.code == yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED
                    || e.code == yizhan_ledger::codes::HOLD_EXPIRED => {}
            Err(e) => return Err(e),
        }
        let hold = self.ledger().hold(hold_id).await?;
        let status = match (hold.state, &how) {
            (HoldState::Posted, Settle::Paid { .. }) => "paid",
            (HoldState::Posted, _) => {
                tracing::error!(hold = %hold_id, "withdrawal refused by the gateway but its hold was posted; operator: pay the person back");
                "paid"
            }
            (HoldState::Voided | HoldState::Expired, Settle::Paid { .. }) => {
                tracing::error!(hold = %hold_id, "withdrawal paid out by the gateway but its hold was released; operator: reconcile");
                "failed"
            }
            (HoldState::Voided | HoldState::Expired, Settle::GiveUp) => "given_up",
            (HoldState::Voided | HoldState::Expired, Settle::Failed) => "failed",
            (HoldState::Pending, _) => {
                return Err(Error::internal(anyhow::anyhow!("withdrawal hold still pending after settling")))
            }
        };
        let gateway_ref = match &how {
            Settle::Paid { gateway_ref } if !gateway_ref.is_empty() => Some(gateway_ref.clone()),
            _ => None,
        };
        let mut tx = self.ctx().db.begin().await?;
        let marked = sqlx::query(
            "UPDATE withdrawals SET status = $1, gateway_ref = COALESCE($2, gateway_ref), settled_at_ms = $3
             WHERE reference = $4 AND status = 'pending'",
        )
        .bind(status)
        .bind(gateway_ref)
        .bind(self.ctx().now_ms())
        .bind(reference)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        if marked > 0 && matches!(status, "failed" | "given_up") {
            // The money went back to the wallet: so does what it used of the limit.
            if let Err(e) = self.give_back_limit(reference).await {
                tracing::warn!(%reference, code = %e.code, "withdrawal's limit not given back; the day stays over-counted");
            }
        }
        Ok((hold, marked > 0))
    }

    /// Tell the person how a withdrawal that waited for the bank ended (they
    /// left the page with "waiting for the bank").
    async fn tell_settled_late(&self, hold: &Hold) {
        let Some(user_id) = hold.debit_account_id.strip_prefix("wallet:") else {
            return;
        };
        let (title, body) = if hold.state == HoldState::Posted {
            ("pay.notice.withdrawal_paid.title", "pay.notice.withdrawal_paid.body")
        } else {
            ("pay.notice.withdrawal_returned.title", "pay.notice.withdrawal_returned.body")
        };
        self.tell(
            user_id,
            Message {
                kind: "pay.withdrawal_settled".into(),
                title: Msg::new(title).fen("amount", hold.amount_fen),
                body: Msg::new(body),
                target: Some(Target::new("transfer", &hold.pending_id)),
            },
        )
        .await;
    }

    /// The hold of a withdrawal row, found by the ledger key when the row does
    /// not have it yet (a crash between the hold and the row's update).
    async fn hold_of(&self, row: &WithdrawalRow) -> Result<Option<Hold>> {
        if let Some(id) = &row.hold_id {
            return self.ledger().hold(id).await.map(Some);
        }
        let Some(t) = self.ledger().transfer_by_idempotency_key(&row.reference).await? else {
            return Ok(None);
        };
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE withdrawals SET hold_id = $1 WHERE reference = $2 AND hold_id IS NULL")
            .bind(&t.id)
            .bind(&row.reference)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.ledger().hold(&t.id).await.map(Some)
    }

    /// Settle withdrawals whose payout has had no answer for
    /// [`RECONCILE_AFTER_MS`]: ask the gateway by the payout's reference, post
    /// the hold if it paid, void it if it refused, and void it (logged for the
    /// operator) when it still does not know after [`GIVE_UP_AFTER_MS`]. Each
    /// item stands alone; at most a bounded number per run. Run it periodically.
    pub async fn reconcile_withdrawals(&self) -> Result<WithdrawalReport> {
        let now = self.ctx().now_ms();
        let due: Vec<WithdrawalRow> = sqlx::query_as(&format!(
            "SELECT {ROW_COLS} FROM withdrawals WHERE status = 'pending' AND next_check_at_ms <= $1
             ORDER BY next_check_at_ms, reference LIMIT $2"
        ))
        .bind(now)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let mut report = WithdrawalReport::default();
        for row in due {
            match self.reconcile_one(&row, now).await {
                Ok(Reconciled::Paid) => report.paid += 1,
                Ok(Reconciled::Failed) => report.failed += 1,
                Ok(Reconciled::GivenUp) => report.given_up += 1,
                Ok(Reconciled::Unknown) => report.unknown += 1,
                Ok(Reconciled::NoHold) => report.no_hold += 1,
                Err(e) => {
                    report.failures += 1;
                    tracing::warn!(reference = %row.reference, code = %e.code, error = %e.msg,
                        "reconciling a withdrawal failed; a later sweep tries again");
                    // Later, so a withdrawal that keeps failing does not take the others' turn.
                    if let Err(e) = self.check_later(&row.reference, now).await {
                        tracing::warn!(reference = %row.reference, code = %e.code, "withdrawal not rescheduled");
                    }
                }
            }
        }
        Ok(report)
    }

    async fn check_later(&self, reference: &str, now: i64) -> Result<()> {
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE withdrawals SET next_check_at_ms = $1 WHERE reference = $2 AND status = 'pending'")
            .bind(now + RECHECK_EVERY_MS)
            .bind(reference)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reconcile_one(&self, row: &WithdrawalRow, now: i64) -> Result<Reconciled> {
        let Some(hold) = self.hold_of(row).await? else {
            // The payout is only sent once the hold exists: nothing was held or paid.
            let mut tx = self.ctx().db.begin().await?;
            sqlx::query(
                "UPDATE withdrawals SET status = 'no_hold', settled_at_ms = $1
                 WHERE reference = $2 AND status = 'pending' AND hold_id IS NULL",
            )
            .bind(now)
            .bind(&row.reference)
            .execute(tx.conn())
            .await?;
            tx.commit().await?;
            return Ok(Reconciled::NoHold);
        };
        let how = match hold.state {
            // Settled in the ledger, the row not yet marked (a crash in between).
            HoldState::Posted => Settle::Paid { gateway_ref: String::new() },
            HoldState::Voided | HoldState::Expired => Settle::Failed,
            HoldState::Pending => match self.inner.gateway.payout_status(&row.reference).await? {
                PayoutStatus::Paid { gateway_ref } => Settle::Paid { gateway_ref },
                PayoutStatus::Failed => Settle::Failed,
                PayoutStatus::Unknown if now - row.created_at_ms >= GIVE_UP_AFTER_MS => {
                    tracing::error!(reference = %row.reference, hold = %hold.pending_id, amount_fen = hold.amount_fen,
                        "withdrawal unknown to the gateway after 24 hours; hold voided, money back in the wallet; operator: confirm with the gateway");
                    Settle::GiveUp
                }
                PayoutStatus::Unknown => {
                    self.check_later(&row.reference, now).await?;
                    return Ok(Reconciled::Unknown);
                }
            },
        };
        let given_up = how == Settle::GiveUp;
        let (hold, marked) = self.settle_withdrawal(&row.reference, &hold.pending_id, how).await?;
        if marked {
            self.tell_settled_late(&hold).await;
        }
        Ok(match hold.state {
            HoldState::Posted => Reconciled::Paid,
            _ if given_up => Reconciled::GivenUp,
            _ => Reconciled::Failed,
        })
    }

    /// A "payout.succeeded" or "payout.failed" notification: settle the
    /// withdrawal it is about, if it is still open.
    pub(crate) async fn withdrawal_notification(&self, n: &crate::Notification, paid: bool) -> Result<String> {
        let row: Option<WithdrawalRow> =
            sqlx::query_as(&format!("SELECT {ROW_COLS} FROM withdrawals WHERE reference = $1"))
                .bind(&n.reference)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        let Some(row) = row else {
            return Ok("recorded".into());
        };
        if row.status != "pending" {
            return Ok(format!("withdrawal already {}", row.status));
        }
        let Some(hold) = self.hold_of(&row).await? else {
            return Ok("recorded: no hold".into());
        };
        if paid && n.amount_fen != hold.amount_fen {
            tracing::error!(reference = %n.reference, notified_fen = n.amount_fen, held_fen = hold.amount_fen,
                "payout notification for another amount than held; operator: reconcile");
            return Ok("recorded: amount differs".into());
        }
        let how = if paid { Settle::Paid { gateway_ref: n.gateway_ref.clone() } } else { Settle::Failed };
        let (hold, marked) = self.settle_withdrawal(&row.reference, &hold.pending_id, how).await?;
        if marked {
            self.tell_settled_late(&hold).await;
        }
        Ok(match hold.state {
            HoldState::Posted => format!("withdrawal paid: {}", hold.pending_id),
            _ => format!("withdrawal voided: {}", hold.pending_id),
        })
    }
}
