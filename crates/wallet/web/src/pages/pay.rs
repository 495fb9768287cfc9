//! Paying a scanned code (preview, then pay), the one-time pay code, sending money to a person.

use super::confirm::{confirm_page, confirming, done, pin_checked, Confirmation};
use super::*;

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/wallet/pay", get(pay_form).post(pay_submit))
        .route("/wallet/pay/preview", post(pay_preview))
        .route("/wallet/paycode", get(paycode))
        .route("/wallet/send", get(send_form).post(send_submit))
}

// ---- /wallet/pay: paste or scan a code, see whom it pays, enter the amount, confirm, pay ----

#[derive(Template)]
#[template(path = "wallet_pay.html")]
pub(crate) struct PayPage {
    l: Layout,
    payload: String,
    /// Whom the code pays (a person's name masked), once read.
    preview: Option<yizhan_pay::PaymentPreview>,
    amount: String,
    key: String,
}

pub(crate) fn pay_page(
    l: Layout,
    status: StatusCode,
    payload: String,
    preview: Option<yizhan_pay::PaymentPreview>,
    amount: String,
    key: String,
) -> Response {
    let amount = match preview.as_ref().and_then(|p| p.amount_fen) {
        Some(fixed) => yuan(fixed),
        None => amount,
    };
    render_status(status, &PayPage { l, payload, preview, amount, key })
}

pub(crate) async fn pay_form(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/pay", &p).await;
    pay_page(l, StatusCode::OK, String::new(), None, String::new(), form_key())
}

/// Read the code: whom it pays, masked; one's own code is refused here.
pub(crate) async fn pay_preview(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/pay", &p).await;
    let payload = form.get("payload").trim().to_string();
    match s.pay.preview_qr_payment(&p.user_id, &payload).await {
        Ok(preview) => pay_page(l, StatusCode::OK, payload, Some(preview), String::new(), form_key()),
        Err(e) => {
            let (l, status) = failed(l, e);
            pay_page(l, status, payload, None, String::new(), form_key())
        }
    }
}

/// The amount entered: the confirmation screen; confirmed (with the PIN): pay.
pub(crate) async fn pay_submit(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/pay", &p).await;
    let payload = form.get("payload").trim().to_string();
    if !confirming(&form) {
        let checked = async {
            let amount = yuan_field(form.get("amount"), "amount")?;
            Ok::<_, Error>(Confirmation::payment(s.pay.preview_qr_payment(&p.user_id, &payload).await?, amount))
        }
        .await;
        return match checked {
            Ok(c) => {
                let fields = vec![
                    ("idem", form.get("idem").to_string()),
                    ("payload", payload.clone()),
                    ("amount", form.get("amount").to_string()),
                ];
                confirm_page(l, "pay.title", "/wallet/pay", fields, c, "/wallet/pay")
            }
            Err(e) => {
                let preview = s.pay.preview_qr_payment(&p.user_id, &payload).await.ok();
                let (l, status) = failed(l, e);
                pay_page(l, status, payload, preview, form.get("amount").to_string(), form.get("idem").to_string())
            }
        };
    }
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        pin_checked(&s, &p.user_id, &form).await?;
        let (pay, user, payload, idem) =
            (s.pay.clone(), p.user_id.clone(), payload.clone(), form.get("idem").to_string());
        to_completion(async move { pay.qr_pay(&user, &payload, amount, &idem).await }).await
    }
    .await;
    match r {
        Ok(rc) => done(&rc.transfer_id),
        Err(e) => {
            let preview = s.pay.preview_qr_payment(&p.user_id, &payload).await.ok();
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            pay_page(l, status, payload, preview, form.get("amount").to_string(), key)
        }
    }
}

// ---- /wallet/paycode ----

#[derive(Template)]
#[template(path = "wallet_paycode.html")]
pub(crate) struct PayCodePage {
    l: Layout,
    /// The code's opaque id, for the page that shows how it stands.
    id: String,
    code: String,
    /// The digits as the page shows them at first: all but the last four hidden.
    code_masked: String,
    expires_at_ms: i64,
    ttl_s: i64,
    /// The words around the seconds left ("(" and " s)"), in the reader's
    /// language; the script only rewrites the number between them.
    ttl_around: (String, String),
    qr_svg: String,
    barcode_svg: String,
}

pub(crate) async fn paycode(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/paycode", &p).await;
    let made = async {
        let pc = s.pay.create_paycode(&p.user_id).await?;
        let (qr, bar) = paycode_images(&pc.code)?;
        Ok::<_, Error>((pc, qr, bar))
    }
    .await;
    match made {
        Ok((pc, qr, bar)) => render(&PayCodePage {
            l,
            ttl_s: (pc.expires_at_ms - s.ctx.now_ms()) / 1000,
            ttl_around: around_placeholder(lang.t("paycode.seconds_left"), "{s}"),
            id: pc.id,
            code_masked: masked_digits(&pc.code),
            code: pc.code,
            expires_at_ms: pc.expires_at_ms,
            qr_svg: strip_xml_declaration(qr),
            barcode_svg: strip_xml_declaration(bar),
        }),
        Err(e) => failure_page(lang, &e),
    }
}

/// "•••• •••• •••• ••34 56": a code in groups of four, all but its last four
/// digits hidden, so someone looking over the person's shoulder cannot read it.
pub(crate) fn masked_digits(code: &str) -> String {
    let n = code.chars().count();
    let shown: String = code.chars().enumerate().map(|(i, c)| if i + 4 >= n { c } else { '•' }).collect();
    let mut out = String::with_capacity(shown.len() + n / 4);
    for (i, c) in shown.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A text split at its one placeholder, for markup that goes in its place.
fn around_placeholder(text: &str, placeholder: &str) -> (String, String) {
    match text.split_once(placeholder) {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (format!("{text} "), String::new()),
    }
}

// ---- /wallet/send ----

#[derive(Template)]
#[template(path = "wallet_send.html")]
pub(crate) struct SendPage {
    l: Layout,
    to: String,
    amount: String,
    memo: String,
    key: String,
}

pub(crate) async fn send_form(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/send", &p).await;
    render(&SendPage { l, to: String::new(), amount: String::new(), memo: String::new(), key: form_key() })
}

/// First the confirmation screen (payee masked, amount, fee; nothing moves),
/// then, confirmed with the PIN when one is set, the transfer.
pub(crate) async fn send_submit(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/send", &p).await;
    let again = |l: Layout, status: StatusCode, key: String| {
        let page = SendPage {
            l,
            to: form.get("to").to_string(),
            amount: form.get("amount").to_string(),
            memo: form.get("memo").to_string(),
            key,
        };
        render_status(status, &page)
    };
    if !confirming(&form) {
        let checked = async {
            let amount = yuan_field(form.get("amount"), "amount")?;
            Ok::<_, Error>(Confirmation::payment(s.pay.preview_payment(&p.user_id, form.get("to")).await?, amount))
        }
        .await;
        return match checked {
            Ok(c) => {
                let fields = vec![
                    ("idem", form.get("idem").to_string()),
                    ("to", form.get("to").to_string()),
                    ("amount", form.get("amount").to_string()),
                    ("memo", form.get("memo").to_string()),
                ];
                confirm_page(l, "send.title", "/wallet/send", fields, c, "/wallet/send")
            }
            Err(e) => {
                let (l, status) = failed(l, e);
                again(l, status, form.get("idem").to_string())
            }
        };
    }
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        pin_checked(&s, &p.user_id, &form).await?;
        let (pay, user) = (s.pay.clone(), p.user_id.clone());
        let (to, memo, idem) = (form.get("to").to_string(), form.get("memo").to_string(), form.get("idem").to_string());
        to_completion(async move { pay.transfer_to_user(&user, &to, amount, &memo, &idem).await }).await
    }
    .await;
    match r {
        Ok(rc) => done(&rc.transfer_id),
        Err(e) => {
            // The same key again when the outcome is unknown: a resubmit cannot pay twice.
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            again(l, status, key)
        }
    }
}
