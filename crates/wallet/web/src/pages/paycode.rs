//! Where a pay code stands, for its owner: waiting for the cashier, a charge
//! above the threshold to confirm (with the payment PIN, if set) or decline,
//! and how it ended. The code page's script polls the small state answer and
//! comes here when it changes; without the script, the code page links here
//! and this page refreshes itself while nothing is decided.
//! The code is named by its opaque id, never by its digits.

use super::*;
use yizhan_pay::{PayCodeState, PayCodeStatus};

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/wallet/paycode/{id}", get(status_page))
        .route("/wallet/paycode/{id}/state", get(state))
        .route("/wallet/paycode/{id}/confirm", post(confirm))
        .route("/wallet/paycode/{id}/decline", post(decline))
        .route("/wallet/settings", get(settings).post(settings_submit))
}

/// How often the page without a script asks again, while nothing is decided.
const REFRESH_S: i64 = 3;

#[derive(Template)]
#[template(path = "wallet_paycode_status.html")]
pub(crate) struct StatusPage {
    l: Layout,
    s: PayCodeStatus,
    /// "waiting", "awaiting_confirmation", … for the template and the script.
    state: &'static str,
    refresh_s: Option<i64>,
    /// Say what the charge is: "Pay ¥X to MERCHANT?", in the reader's language.
    question: String,
    paid: String,
}

fn status_view(l: Layout, lang: Lang, s: PayCodeStatus) -> StatusPage {
    let amount = s.amount_fen.unwrap_or_default();
    let payee = s.payee_name.clone().unwrap_or_default();
    let question =
        say(lang, Msg::new("pay.paycode.confirm_question").fen("amount", amount).text("payee", payee.clone()));
    let paid = say(lang, Msg::new("pay.done_msg").fen("amount", amount).text("payee", payee));
    let refresh_s = (!s.state.is_final() && s.state != PayCodeState::AwaitingConfirmation).then_some(REFRESH_S);
    StatusPage { l, state: s.state.as_str(), refresh_s, question, paid, s }
}

pub(crate) async fn status_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/paycode", &p).await;
    match s.pay.paycode_status(&p.user_id, &id).await {
        Ok(st) => render(&status_view(l, lang, st)),
        Err(e) => failure_page(lang, &e),
    }
}

#[derive(serde::Serialize)]
struct StateAnswer {
    state: &'static str,
}

/// The code's state alone, for the code page's script.
pub(crate) async fn state(
    State(s): State<WalletRoom>,
    lang: Lang,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    match s.pay.paycode_status(&p.user_id, &id).await {
        Ok(st) => {
            ([(axum::http::header::CACHE_CONTROL, "no-store")], axum::Json(StateAnswer { state: st.state.as_str() }))
                .into_response()
        }
        Err(e) => failure_page(lang, &e),
    }
}

pub(crate) async fn confirm(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/paycode", &p).await;
    let (pay, user, code_id, pin) = (s.pay.clone(), p.user_id.clone(), id.clone(), form.get("pin").to_string());
    let r = to_completion(async move { pay.confirm_paycode(&user, &code_id, non_empty(&pin)).await }).await;
    let (l, status) = match r {
        Ok(rc) => {
            let msg = say(lang, Msg::new("pay.done_msg").fen("amount", rc.amount_fen).text("payee", rc.payee_name));
            (l.ok(&msg), StatusCode::OK)
        }
        Err(e) => failed(l, e),
    };
    match s.pay.paycode_status(&p.user_id, &id).await {
        Ok(st) => render_status(status, &status_view(l, lang, st)),
        Err(e) => failure_page(lang, &e),
    }
}

pub(crate) async fn decline(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/paycode", &p).await;
    match s.pay.decline_paycode(&p.user_id, &id).await {
        Ok(st) => render(&status_view(l, lang, st)),
        Err(e) => {
            let (l, status) = failed(l, e);
            match s.pay.paycode_status(&p.user_id, &id).await {
                Ok(st) => render_status(status, &status_view(l, lang, st)),
                Err(e) => failure_page(lang, &e),
            }
        }
    }
}

// ---- /wallet/settings: the payment PIN ----

#[derive(Template)]
#[template(path = "wallet_settings.html")]
pub(crate) struct SettingsPage {
    l: Layout,
    has_pin: bool,
    /// What the PIN is for, with the operator's threshold.
    intro: String,
}

async fn settings_page(s: &WalletRoom, l: Layout, status: StatusCode, user_id: &str) -> Response {
    match s.pay.has_payment_pin(user_id).await {
        Ok(has_pin) => {
            let intro = say(l.lang, Msg::new("pay.pin.intro").fen("amount", s.pay.config().paycode_confirm_above_fen));
            render_status(status, &SettingsPage { l, has_pin, intro })
        }
        Err(e) => l.failure(&e),
    }
}

#[derive(Deserialize)]
pub(crate) struct SettingsQuery {
    /// What the form just did: "saved" or "removed" (post/redirect/get).
    done: Option<String>,
}

pub(crate) async fn settings(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<SettingsQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/settings", &p).await;
    let l = match q.done.as_deref() {
        Some("saved") => l.ok(lang.t("pay.pin.saved")),
        Some("removed") => l.ok(lang.t("pay.pin.removed")),
        _ => l,
    };
    settings_page(&s, l, StatusCode::OK, &p.user_id).await
}

pub(crate) async fn settings_submit(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/settings", &p).await;
    let r = if form.get("remove") == "1" {
        s.pay.remove_payment_pin(&p.user_id, form.get("password")).await.map(|()| "removed")
    } else if form.get("pin") != form.get("pin_again") {
        Err(Error::field("pin_again", "pay.pin.mismatch"))
    } else {
        s.pay.set_payment_pin(&p.user_id, form.get("password"), form.get("pin")).await.map(|()| "saved")
    };
    match r {
        Ok(what) => Redirect::to(&format!("/wallet/settings?done={what}")).into_response(),
        Err(e) => {
            let (l, status) = failed(l, e);
            settings_page(&s, l, status, &p.user_id).await
        }
    }
}
