//! What the payer sees before money moves: who is paid (a person's name with
//! all but its last character hidden, and their masked login, so a wrong
//! number shows before confirming), the amount of a fixed-amount code, the
//! fee, and whether the payment PIN will be asked. Paying oneself is refused
//! here, before any confirmation.

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

impl Pay {
    /// Preview paying `to` (a login or a scanned QR payload).
    pub async fn preview_payment(&self, payer_user_id: &str, to: &str) -> Result<PaymentPreview> {
        let to = to.trim();
        let pin_required = self.has_payment_pin(payer_user_id).await?;
        if to.starts_with("000201") {
            let qr = self.qr_preview(to).await?;
            if qr.payee == Payee::User(payer_user_id.to_string()) {
                return Err(Error::new(yizhan_ledger::codes::SELF_PAYMENT, "pay.self_payment"));
            }
            let payee_name = match &qr.payee {
                Payee::User(_) => yizhan_identity::mask_name(&qr.payee_name),
                Payee::Org(_) => qr.payee_name.clone(),
            };
            return Ok(PaymentPreview {
                payee: qr.payee,
                payee_name,
                login_masked: None,
                amount_fen: qr.amount_fen,
                fee_fen: 0,
                pin_required,
            });
        }
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

    /// The payment PIN, when the person set one (counted tries, like a pay
    /// code's confirmation); nothing to check otherwise.
    pub async fn check_payment_pin(&self, user_id: &str, pin: Option<&str>) -> Result<()> {
        self.check_pin(user_id, pin).await
    }
}
