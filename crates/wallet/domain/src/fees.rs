//! Fees and deposits of services other rooms offer (a booked appointment's
//! fee, a library card's deposit), paid from a person's wallet to the
//! organisation that offers the service. The caller names each movement by a
//! reference of its own (a booking hold, an application): the ledger keys
//! are derived from it, so a fee is taken once, refunded once, and a deposit
//! held and returned once, however often the caller asks.

use crate::{category, check_amount, org_account, wallet_account, Pay};
use yizhan_core::{Error, Result};
use yizhan_ledger::{Transfer, TransferSpec};

/// The longest reference a caller may give (the ledger key has room to spare).
pub const MAX_REFERENCE_CHARS: usize = 80;

fn check_reference(reference: &str) -> Result<&str> {
    if reference.is_empty()
        || reference.chars().count() > MAX_REFERENCE_CHARS
        || !reference.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Error::internal(anyhow::anyhow!("invalid fee reference")));
    }
    Ok(reference)
}

fn fee_key(reference: &str) -> String {
    format!("fee:{reference}:pay")
}

fn refund_key(reference: &str) -> String {
    format!("fee:{reference}:refund")
}

fn deposit_key(reference: &str) -> String {
    format!("deposit:{reference}:hold")
}

fn deposit_return_key(reference: &str) -> String {
    format!("deposit:{reference}:return")
}

impl Pay {
    /// A service's fee, from the person's wallet to the organisation: once per
    /// `reference` (a second call answers with the first payment). Counted
    /// against the person's payment limits; `insufficient_funds` moves nothing.
    pub async fn pay_fee(&self, user_id: &str, org_id: &str, amount_fen: i64, reference: &str) -> Result<Transfer> {
        let amount_fen = check_amount(amount_fen)?;
        let key = fee_key(check_reference(reference)?);
        if let Some(t) = self.ledger().transfer_by_idempotency_key(&key).await? {
            return Ok(t);
        }
        self.live_user_name(user_id).await?;
        let from = self.ensure_wallet(user_id).await?;
        let to = self.ensure_org(org_id).await?;
        self.reserve_limit(user_id, crate::Operation::Payment, amount_fen, &key).await?;
        match self
            .transfer(
                TransferSpec::new(from, to, amount_fen, category::SERVICE_FEE)
                    .with_memo(reference.to_string())
                    .with_idempotency_key(key.clone()),
            )
            .await
        {
            Ok(t) => Ok(t),
            Err(e) => {
                self.give_back_if_refused(&key, &e).await;
                Err(e)
            }
        }
    }

    /// Gives back the fee paid under `reference`, from the organisation to
    /// the wallet it came from: once, however often asked; `None` when no fee
    /// was paid under it.
    pub async fn refund_fee(&self, user_id: &str, org_id: &str, reference: &str) -> Result<Option<Transfer>> {
        let reference = check_reference(reference)?;
        let Some(paid) = self.ledger().transfer_by_idempotency_key(&fee_key(reference)).await? else {
            return Ok(None);
        };
        if paid.debit_account_id != wallet_account(user_id) || paid.credit_account_id != org_account(org_id) {
            return Err(Error::internal(anyhow::anyhow!("fee refund for another payer or payee")));
        }
        let t = self
            .transfer(
                TransferSpec::new(
                    paid.credit_account_id,
                    paid.debit_account_id,
                    paid.amount_fen,
                    category::SERVICE_REFUND,
                )
                .with_memo(reference.to_string())
                .with_refers_to(paid.id)
                .with_idempotency_key(refund_key(reference)),
            )
            .await?;
        Ok(Some(t))
    }

    /// The fee paid under `reference` and its refund, if any: (paid, refunded).
    pub async fn fee_state(&self, reference: &str) -> Result<(Option<Transfer>, Option<Transfer>)> {
        let reference = check_reference(reference)?;
        Ok((
            self.ledger().transfer_by_idempotency_key(&fee_key(reference)).await?,
            self.ledger().transfer_by_idempotency_key(&refund_key(reference)).await?,
        ))
    }

    /// Holds a deposit in the person's wallet for the organisation (a hold
    /// in the ledger: the money stays the person's, but cannot be spent)
    /// until it is returned; once per `reference`. `insufficient_funds` holds nothing.
    pub async fn hold_deposit(
        &self,
        user_id: &str,
        org_id: &str,
        amount_fen: i64,
        reference: &str,
    ) -> Result<Transfer> {
        let amount_fen = check_amount(amount_fen)?;
        let key = deposit_key(check_reference(reference)?);
        if let Some(t) = self.ledger().transfer_by_idempotency_key(&key).await? {
            return Ok(t);
        }
        self.live_user_name(user_id).await?;
        let from = self.ensure_wallet(user_id).await?;
        let to = self.ensure_org(org_id).await?;
        self.transfer(
            TransferSpec::new(from, to, amount_fen, category::DEPOSIT)
                .with_memo(reference.to_string())
                .with_idempotency_key(key)
                .pending(None),
        )
        .await
    }

    /// Returns the deposit held under `reference` (the hold is released):
    /// once, however often asked; `false` when none was held.
    pub async fn return_deposit(&self, reference: &str) -> Result<bool> {
        let reference = check_reference(reference)?;
        let Some(held) = self.ledger().transfer_by_idempotency_key(&deposit_key(reference)).await? else {
            return Ok(false);
        };
        match self.ledger().void_pending(&held.id, Some(deposit_return_key(reference))).await {
            Ok(_) => Ok(true),
            // Released before (by this key or another way): nothing is held any more.
            Err(e) if e.code == yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Whether a deposit is still held under `reference`.
    pub async fn deposit_held(&self, reference: &str) -> Result<bool> {
        let reference = check_reference(reference)?;
        let Some(held) = self.ledger().transfer_by_idempotency_key(&deposit_key(reference)).await? else {
            return Ok(false);
        };
        Ok(self.ledger().hold(&held.id).await?.state == yizhan_ledger::HoldState::Pending)
    }
}
