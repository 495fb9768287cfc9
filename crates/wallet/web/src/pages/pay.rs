//! Paying a scanned code (preview, then pay), the one-time pay code, sending money to a person.

use super::*;

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/wallet/pay", get(pay_form).post(pay_submit))
        .route("/wallet/pay/preview", post(pay_preview))
        .route("/wallet/paycode", get(paycode))
        .route("/wallet/send", get(send_form).post(send_submit))
}

// ---- /wallet/pay: paste or scan a code, see whom it pays, pay ----

#[derive(Template)]
#[template(path = "wallet_pay.html")]
pub(crate) struct PayPage {
    l: Layout,
    payload: String,
    preview: Option<yizhan_pay::QrPreview>,
    amount: String,
    key: String,
    receipt: Option<yizhan_pay::Receipt>,
}

pub(crate) fn pay_page(
    l: Layout,
    status: StatusCode,
    payload: String,
    preview: Option<yizhan_pay::QrPreview>,
    key: String,
) -> Response {
    let amount = preview.as_ref().and_then(|p| p.amount_fen).map(yuan).unwrap_or_default();
    render_status(status, &PayPage { l, payload, preview, amount, key, receipt: None })
}

pub(crate) async fn pay_form(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/pay", &p).await;
    pay_page(l, StatusCode::OK, String::new(), None, form_key())
}

pub(crate) async fn pay_preview(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/pay", &p).await;
    let payload = form.get("payload").trim().to_string();
    match s.pay.qr_preview(&payload).await {
        Ok(preview) => pay_page(l, StatusCode::OK, payload, Some(preview), form_key()),
        Err(e) => {
            let (l, status) = failed(l, e);
            pay_page(l, status, payload, None, form_key())
        }
    }
}

pub(crate) async fn pay_submit(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/pay", &p).await;
    let payload = form.get("payload").trim().to_string();
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        let (pay, user, payload, idem) =
            (s.pay.clone(), p.user_id.clone(), payload.clone(), form.get("idem").to_string());
        to_completion(async move { pay.qr_pay(&user, &payload, amount, &idem).await }).await
    }
    .await;
    match r {
        Ok(rc) => {
            let msg =
                say(lang, Msg::new("pay.done_msg").fen("amount", rc.amount_fen).text("payee", rc.payee_name.clone()));
            let page = PayPage {
                l: l.ok(&msg),
                payload: String::new(),
                preview: None,
                amount: String::new(),
                key: form_key(),
                receipt: Some(rc),
            };
            render(&page)
        }
        Err(e) => {
            let preview = s.pay.qr_preview(&payload).await.ok();
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            pay_page(l, status, payload, preview, key)
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
    receipt: Option<yizhan_pay::Receipt>,
    /// The confirmation step: who is paid, before money moves.
    check: Option<yizhan_pay::PaymentPreview>,
    amount_fen: i64,
}

pub(crate) async fn send_form(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/send", &p).await;
    render(&SendPage {
        l,
        to: String::new(),
        amount: String::new(),
        memo: String::new(),
        key: form_key(),
        receipt: None,
        check: None,
        amount_fen: 0,
    })
}

pub(crate) async fn send_submit(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/send", &p).await;
    if form.get("confirm") != "1" {
        // First the confirmation screen: payee (masked), amount, fee; nothing moves yet.
        let checked = async {
            let amount = yuan_field(form.get("amount"), "amount")?;
            let v = s.pay.preview_payment(&p.user_id, form.get("to")).await?;
            Ok::<_, yizhan_core::Error>((amount, v))
        }
        .await;
        let (l, status, check, amount_fen) = match checked {
            Ok((amount, v)) => (l, axum::http::StatusCode::OK, Some(v), amount),
            Err(e) => {
                let (l, status) = failed(l, e);
                (l, status, None, 0)
            }
        };
        let page = SendPage {
            l,
            to: form.get("to").to_string(),
            amount: form.get("amount").to_string(),
            memo: form.get("memo").to_string(),
            key: form.get("idem").to_string(),
            receipt: None,
            check,
            amount_fen,
        };
        return render_status(status, &page);
    }
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        s.pay.check_payment_pin(&p.user_id, Some(form.get("pin")).filter(|p| !p.is_empty())).await?;
        let (pay, user) = (s.pay.clone(), p.user_id.clone());
        let (to, memo, idem) = (form.get("to").to_string(), form.get("memo").to_string(), form.get("idem").to_string());
        to_completion(async move { pay.transfer_to_user(&user, &to, amount, &memo, &idem).await }).await
    }
    .await;
    match r {
        Ok(rc) => {
            let msg =
                say(lang, Msg::new("send.done_msg").fen("amount", rc.amount_fen).text("payee", rc.payee_name.clone()));
            render(&SendPage {
                l: l.ok(&msg),
                to: String::new(),
                amount: String::new(),
                memo: String::new(),
                key: form_key(),
                receipt: Some(rc),
                check: None,
                amount_fen: 0,
            })
        }
        Err(e) => {
            // The same key again when the outcome is unknown: a resubmit cannot pay twice.
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            let page = SendPage {
                l,
                to: form.get("to").to_string(),
                amount: form.get("amount").to_string(),
                memo: form.get("memo").to_string(),
                key,
                receipt: None,
                check: None,
                amount_fen: 0,
            };
            render_status(status, &page)
        }
    }
}
