//! The pages around one-time codes: proving the login after registering
//! (with a button to send a new code) and recovering a forgotten password.
//! Their answers never say whether an account has the login.

use crate::IdentityRoom;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use yizhan_core::Error;
use yizhan_kit::extract::{cookie, session_cookie_name, ClientAddr, Csrf, CsrfForm};
use yizhan_kit::page::{render_status, Layout};
use yizhan_kit::Lang;

pub fn router() -> Router<IdentityRoom> {
    Router::new()
        .route("/register/verify", get(verify_form).post(verify_submit))
        .route("/register/resend", post(resend))
        .route("/forgot-password", get(forgot_form).post(forgot_submit))
        .route("/forgot-password/confirm", post(reset_submit))
}

/// The message of the error about `field`, in the page's language.
pub(crate) fn field_error(lang: Lang, e: Option<&Error>, field: &str) -> String {
    e.and_then(|e| e.fields.iter().find(|f| f.field == field))
        .map(|f| yizhan_kit::i18n::render(lang, &f.msg))
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    login: String,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    l: Layout,
    login: String,
    login_error: String,
    code_error: String,
}

fn verify_page(l: Layout, login: &str, e: Option<&Error>, status: StatusCode) -> Response {
    let lang = l.lang;
    let page = VerifyPage {
        l,
        login: login.to_string(),
        login_error: field_error(lang, e, "login"),
        code_error: field_error(lang, e, "code"),
    };
    render_status(status, &page)
}

async fn verify_form(lang: Lang, csrf: Csrf, Query(q): Query<LoginQuery>) -> Response {
    let l = Layout::anon(lang, &csrf, "/register/verify");
    verify_page(l, q.login.trim(), None, StatusCode::OK)
}

/// The signed-in person of this browser, if any.
async fn signed_in(s: &IdentityRoom, headers: &HeaderMap) -> Option<String> {
    let token = cookie(headers, session_cookie_name(s.config.secure_cookies))?;
    s.identity.authenticate(&token).await.ok().map(|p| p.user_id)
}

async fn verify_submit(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let l = Layout::anon(lang, &csrf, "/register/verify");
    let me = signed_in(&s, &headers).await;
    match s.identity.prove_login(form.get("login"), form.get("code"), &addr, me.as_deref()).await {
        Ok(_) if me.is_some() => Redirect::to("/home").into_response(),
        Ok(_) => crate::pages::login_page(l.ok(lang.t("verify.done")), form.get("login"), StatusCode::OK),
        Err(e) => {
            let (l, status) = l.failed(&e);
            verify_page(l, form.get("login"), Some(&e), status)
        }
    }
}

async fn resend(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let l = Layout::anon(lang, &csrf, "/register/verify");
    let me = signed_in(&s, &headers).await;
    match s.identity.resend_code(form.get("login"), &addr, lang.code(), me.as_deref()).await {
        Ok(()) => verify_page(l.ok(lang.t("verify.resent")), form.get("login"), None, StatusCode::OK),
        Err(e) => {
            let (l, status) = l.failed(&e);
            verify_page(l, form.get("login"), Some(&e), status)
        }
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    l: Layout,
    login: String,
    login_error: String,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    l: Layout,
    login: String,
    code_error: String,
    password_error: String,
}

fn reset_page(l: Layout, login: &str, e: Option<&Error>, status: StatusCode) -> Response {
    let lang = l.lang;
    let page = ResetPage {
        l,
        login: login.to_string(),
        code_error: field_error(lang, e, "code"),
        password_error: field_error(lang, e, "password"),
    };
    render_status(status, &page)
}

async fn forgot_form(lang: Lang, csrf: Csrf, Query(q): Query<LoginQuery>) -> Response {
    let l = Layout::anon(lang, &csrf, "/forgot-password");
    render_status(StatusCode::OK, &ForgotPage { l, login: q.login.trim().to_string(), login_error: String::new() })
}

async fn forgot_submit(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    form: CsrfForm,
) -> Response {
    let l = Layout::anon(lang, &csrf, "/forgot-password");
    match s.identity.request_password_reset(form.get("login"), &addr, lang.code()).await {
        Ok(()) => reset_page(l.ok(lang.t("forgot.sent")), form.get("login"), None, StatusCode::OK),
        Err(e) => {
            let (l, status) = l.failed(&e);
            let login_error = field_error(lang, Some(&e), "login");
            render_status(status, &ForgotPage { l, login: form.get("login").to_string(), login_error })
        }
    }
}

async fn reset_submit(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    form: CsrfForm,
) -> Response {
    let l = Layout::anon(lang, &csrf, "/forgot-password");
    let r = s
        .identity
        .confirm_password_reset(form.get("login"), form.get("code"), form.get("password"), &addr, lang.code())
        .await;
    match r {
        Ok(()) => crate::pages::login_page(l.ok(lang.t("forgot.done")), form.get("login"), StatusCode::OK),
        Err(e) => {
            let (l, status) = l.failed(&e);
            reset_page(l, form.get("login"), Some(&e), status)
        }
    }
}
