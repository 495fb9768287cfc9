//! The credit side of the pay-later line: who may switch it on (the
//! `pay_later` perk), the limit their band allows (the model file's
//! `pay_later_limits`), and keeping the wallet's limit in step with the score.
//! The line itself (the ledger's credit limit, statements, repayment) is the
//! wallet's, reached through [`PayLaterWallet`], which the app wires; the
//! repayments and overdue statements come back as records of kind
//! `pay_later` through [`Credit::record_event`].

use crate::{not_opted_in, Asker, Credit};
use serde::Serialize;
use std::sync::Arc;
use yizhan_core::{Error, Result};

/// A statement of the line, as the wallet reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayLaterStatement {
    pub id: String,
    pub period: String,
    pub amount_fen: i64,
    pub due_at_ms: i64,
    /// open or paid
    pub status: String,
    pub paid_at_ms: Option<i64>,
    /// Whole days after the due time it was (or, open, is) repaid.
    pub days_late: i64,
}

/// The line as the wallet holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayLaterState {
    pub on: bool,
    /// The ledger's limit now: the band's, or what is used if more.
    pub ledger_limit_fen: i64,
    pub owed_fen: i64,
    pub available_credit_fen: i64,
    pub statements: Vec<PayLaterStatement>,
}

/// What the wallet does for the line (the app implements it on Pay).
#[async_trait::async_trait]
pub trait PayLaterWallet: Send + Sync {
    /// On with this limit, or off (`None`): new spending on credit stops;
    /// the limit never goes below what is used.
    async fn set_line(&self, user_id: &str, limit_fen: Option<i64>) -> Result<PayLaterState>;
    async fn line(&self, user_id: &str) -> Result<PayLaterState>;
    /// Repay a statement from the person's card.
    async fn repay(&self, user_id: &str, statement_id: &str) -> Result<PayLaterState>;
}

/// What the person sees of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayLaterView {
    /// The score reaches the perk now.
    pub has_perk: bool,
    pub min_score: i64,
    /// What the band allows now.
    pub band_limit_fen: i64,
    pub on: bool,
    pub line: PayLaterState,
}

const PERK: &str = "pay_later";

fn no_line() -> Error {
    Error::new(crate::codes::NO_PAY_LATER, "credit.pay_later.unavailable")
}

impl Credit {
    /// Wire the wallet side (once, at start).
    pub fn set_pay_later_wallet(&self, wallet: Arc<dyn PayLaterWallet>) {
        let _ = self.inner.pay_later.set(wallet);
    }

    fn wallet(&self) -> Result<&Arc<dyn PayLaterWallet>> {
        self.inner.pay_later.get().ok_or_else(no_line)
    }

    /// After a new score: a person with the line on gets the limit it allows
    /// for new spending (the wallet keeps it at least at what is used).
    pub(crate) async fn sync_pay_later(&self, user_id: &str, score: i64) -> Result<()> {
        let Some(w) = self.inner.pay_later.get() else { return Ok(()) };
        let on = self.person(user_id).await?.is_some_and(|p| p.pay_later_on != 0);
        if on {
            w.set_line(user_id, Some(self.model().pay_later_limit_fen(score))).await?;
        }
        Ok(())
    }

    /// The person's line and what their score allows.
    pub async fn pay_later(&self, user_id: &str) -> Result<PayLaterView> {
        let person = self.person(user_id).await?.ok_or_else(not_opted_in)?;
        let score = self.score(user_id).await?.score;
        let m = self.model();
        let min_score = m.perk(PERK).map_or(i64::MAX, |p| p.from);
        let line = self.wallet()?.line(user_id).await?;
        Ok(PayLaterView {
            has_perk: score >= min_score,
            min_score,
            band_limit_fen: m.pay_later_limit_fen(score),
            on: person.pay_later_on != 0,
            line,
        })
    }

    /// Switch the line on (only with the perk: the check is in the person's
    /// access log) or off (new spending on credit stops; what is owed stays).
    pub async fn switch_pay_later(&self, user_id: &str, on: bool) -> Result<PayLaterView> {
        self.person(user_id).await?.ok_or_else(not_opted_in)?;
        let w = self.wallet()?.clone();
        if on {
            let me = self.inner.identity.profile(user_id).await?;
            let asker = Asker { user_id: user_id.to_string(), label: me.name, org_id: None, org_label: None };
            if !self.can(&asker, user_id, PERK).await?.granted() {
                return Err(Error::new(crate::codes::NO_PAY_LATER, "credit.pay_later.no_perk"));
            }
        }
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE credit_people SET pay_later_on = $1 WHERE user_id = $2")
            .bind(i64::from(on))
            .bind(user_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        if on {
            let score = self.score(user_id).await?.score;
            w.set_line(user_id, Some(self.model().pay_later_limit_fen(score))).await?;
        } else {
            w.set_line(user_id, None).await?;
        }
        self.pay_later(user_id).await
    }

    /// Repay a statement (from the person's card, through the wallet).
    pub async fn repay_pay_later(&self, user_id: &str, statement_id: &str) -> Result<PayLaterView> {
        self.person(user_id).await?.ok_or_else(not_opted_in)?;
        self.wallet()?.repay(user_id, statement_id).await?;
        self.pay_later(user_id).await
    }
}
