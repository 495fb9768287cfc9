//! What the payer sees before money moves: who is paid (a person's name with
//! all but its last character hidden, and their masked login, so a wrong
//! number shows before confirming), the amount of a fixed-amount code, the
//! fee, and whether the payment PIN will be asked. Paying oneself is refused
//! here, before any confirmation. A bill and a withdrawal are previewed the
//! same way: who is paid (the organisation, the person's own card), the
//! amount, the fee, the PIN.

use crate::{Pay, Payee};
use serde::Serialize;
use yizhan_core::{Code, Error, Result};

/// A payment's payee as the payer confirms it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentPreview {
    pub payee: Payee,
    /// A person's name masked ("*伟"); a shop's name in full.
    pub payee_name: String,
    /// A person's login masked ("138****0002"), when paid by login.
    pub login_masked: Option<String>,
    /// A fixed-amount code's amount.
    pub amount_fen: Option<i64>,
    /// What the payer pays on top (there is no fee for paying a person or a shop).
    pub fee_fen: i64,
    /// The payer set a payment PIN: confirming asks for it.
    pub pin_required: bool,
}

/// A withdrawal as the person confirms it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WithdrawalPreview {
    /// "•••• 0002"; `None` for the gateway's test card.
    pub card_masked: Option<String>,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub pin_required: bool,
}

/// A card number with all but its last four digits hidden.
pub fn mask_card(card: &str) -> String {
    let digits: Vec<char> = card.chars().filter(|c| c.is_ascii_digit()).collect();
    let last: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("•••• {last}")
}

impl Pay {
    /// Preview paying `to` (a login or a scanned QR payload).
    pub async fn preview_payment(&self, payer_user_id: &str, to: &str) -> Result<PaymentPreview> {
        let to = to.trim();
        if to.starts_with("000201") {
            return self.preview_qr_payment(payer_user_id, to).await;
        }
        let pin_required = self.has_payment_pin(payer_user_id).await?;
        if to.is_empty() {
            return Err(Error::field("to", "pay.to.required"));
        }
        let payee =
            self.identity().find_by_login(to).await?.ok_or_else(|| Error::new(Code::NotFound, "pay.no_such_login"))?;
        if payee.user_id == payer_user_id {
            return Err(Error::new(yizhan_ledger::codes::SELF_PAYMENT, "pay.self_transfer"));
        }
        Ok(PaymentPreview {
            payee_name: payee.name_masked(),
            login_masked: Some(payee.login_masked.clone()),
            payee: Payee::User(payee.user_id),
            amount_fen: None,
            fee_fen: 0,
            pin_required,
        })
    }

    /// Preview paying a scanned QR code: a person's name masked, a shop's in
    /// full; one's own code is refused.
    pub async fn preview_qr_payment(&self, payer_user_id: &str, payload: &str) -> Result<PaymentPreview> {
        let qr = self.qr_preview(payload.trim()).await?;
        if qr.payee == Payee::User(payer_user_id.to_string()) {
            return Err(Error::new(yizhan_ledger::codes::SELF_PAYMENT, "pay.self_payment"));
        }
        let payee_name = match &qr.payee {
            Payee::User(_) => yizhan_identity::mask_name(&qr.payee_name),
            Payee::Org(_) => qr.payee_name.clone(),
        };
        Ok(PaymentPreview {
            payee: qr.payee,
            payee_name,
            login_masked: None,
            amount_fen: qr.amount_fen,
            fee_fen: 0,
            pin_required: self.has_payment_pin(payer_user_id).await?,
        })
    }

    /// Preview paying one of the person's bills: the organisation (in full),
    /// the bill's amount. A bill already paid is refused here.
    pub async fn preview_bill(&self, user_id: &str, bill_id: &str) -> Result<PaymentPreview> {
        let bill = self.bill(user_id, bill_id).await?;
        if bill.status == crate::BillStatus::Paid {
            return Err(Error::new(crate::codes::ALREADY_PAID, "pay.bill.already_paid"));
        }
        Ok(PaymentPreview {
            payee: Payee::Org(bill.org_id),
            payee_name: bill.org_name,
            login_masked: None,
            amount_fen: Some(bill.amount_fen),
            fee_fen: 0,
            pin_required: self.has_payment_pin(user_id).await?,
        })
    }

    /// Preview a withdrawal to a card (the gateway's test card when none is
    /// given): the card with all but its last four digits hidden, the amount,
    /// the fee.
    pub async fn preview_withdrawal(
        &self,
        user_id: &str,
        amount_fen: i64,
        card: Option<&str>,
    ) -> Result<WithdrawalPreview> {
        let amount_fen = crate::check_amount(amount_fen)?;
        let card_masked = card.map(str::trim).filter(|c| !c.is_empty()).map(mask_card);
        Ok(WithdrawalPreview {
            card_masked,
            amount_fen,
            fee_fen: 0,
            pin_required: self.has_payment_pin(user_id).await?,
        })
    }

    /// The payment PIN, when the person set one (counted tries, like a pay
    /// code's confirmation); nothing to check otherwise.
    pub async fn check_payment_pin(&self, user_id: &str, pin: Option<&str>) -> Result<()> {
        self.check_pin(user_id, pin).await
    }
}
