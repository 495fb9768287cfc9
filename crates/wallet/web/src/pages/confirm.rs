//! The screen before money moves, the same for sending to a person, paying a
//! scanned code, paying a bill and withdrawing to a card: who is paid (a
//! person's name masked), the amount, the fee and, when the person set one,
//! the payment PIN. The form that asks carries what was typed in hidden
//! fields and `confirm=1`; only that second post moves money, and it answers
//! 303 to the transfer's page (post/redirect/get), so a reload moves nothing.

use super::*;

/// What the confirmation screen shows.
pub(crate) struct Confirmation {
    /// Whom the money goes to, as the person checks it.
    pub payee: String,
    /// The payee's masked login, when paid by login.
    pub login_masked: Option<String>,
    pub amount_fen: i64,
    pub fee_fen: i64,
    pub pin_required: bool,
}

impl Confirmation {
    /// A payment to a person or an organisation, of `amount_fen`.
    pub(crate) fn payment(p: yizhan_pay::PaymentPreview, amount_fen: i64) -> Confirmation {
        Confirmation {
            payee: p.payee_name,
            login_masked: p.login_masked,
            amount_fen,
            fee_fen: p.fee_fen,
            pin_required: p.pin_required,
        }
    }

    /// A withdrawal to the person's card.
    pub(crate) fn withdrawal(lang: Lang, w: yizhan_pay::WithdrawalPreview) -> Confirmation {
        let payee = match w.card_masked {
            Some(c) => format!("{} {c}", lang.t("history.card")),
            None => lang.t("history.card_sandbox").to_string(),
        };
        Confirmation {
            payee,
            login_masked: None,
            amount_fen: w.amount_fen,
            fee_fen: w.fee_fen,
            pin_required: w.pin_required,
        }
    }
}

#[derive(Template)]
#[template(path = "wallet_confirm.html")]
pub(crate) struct ConfirmPage {
    l: Layout,
    title: String,
    /// Where the confirmed form goes.
    action: String,
    /// What was typed, sent again with the confirmation (the idempotency key among it).
    fields: Vec<(&'static str, String)>,
    c: Confirmation,
    /// The payer's note, shown as it will be sent.
    memo: String,
    /// Where "Change" goes.
    back: String,
}

/// The confirmation screen: nothing has moved yet.
pub(crate) fn confirm_page(
    l: Layout,
    title_key: &str,
    action: &str,
    fields: Vec<(&'static str, String)>,
    c: Confirmation,
    back: &str,
) -> Response {
    let memo = fields.iter().find(|(k, _)| *k == "memo").map(|(_, v)| v.clone()).unwrap_or_default();
    let title = l.lang.t(title_key).to_string();
    render(&ConfirmPage { l, title, action: action.to_string(), fields, c, memo, back: back.to_string() })
}

/// The form is the confirmed second step.
pub(crate) fn confirming(form: &CsrfForm) -> bool {
    form.get("confirm") == "1"
}

/// The payment PIN typed on the confirmation screen, checked before money
/// moves (wrong tries are counted; nothing to check when none is set).
pub(crate) async fn pin_checked(s: &WalletRoom, user_id: &str, form: &CsrfForm) -> Result<(), Error> {
    s.pay.check_payment_pin(user_id, non_empty(form.get("pin"))).await
}

/// Money moved: the transfer's page says what happened (post/redirect/get).
pub(crate) fn done(transfer_id: &str) -> Response {
    Redirect::to(&format!("{}?done=1", super::balance::transfer_href(transfer_id))).into_response()
}
