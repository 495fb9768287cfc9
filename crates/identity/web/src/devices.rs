//! The "Devices" page of the account: the sessions signed in (device,
//! network, last use) with a sign-out button each, "sign out everywhere
//! else", and the password change form; the second factor's page.

use crate::{person_layout, IdentityRoom, PageUser};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use yizhan_identity::SessionInfo;
use yizhan_kit::extract::{cookie, session_cookie_name, ClientAddr, Csrf, CsrfForm};
use yizhan_kit::page::{filters, render_status, Layout};
use yizhan_kit::Lang;

pub fn router() -> Router<IdentityRoom> {
    Router::new()
        .route("/account/devices", get(devices))
        .route("/account/devices/end", post(end_one))
        .route("/account/devices/end-others", post(end_others))
        .route("/account/password", post(change_password))
        .route("/account/totp", get(totp_page).post(totp_start))
        .route("/account/totp/confirm", post(totp_confirm))
        .route("/account/totp/disable", post(totp_disable))
        .route("/account/totp/recovery", post(totp_recovery))
        .route("/account/login", post(change_login))
        .route("/account/login/confirm", post(confirm_login))
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    l: Layout,
    sessions: Vec<SessionInfo>,
    /// The new login a change waits to be proved for (masked).
    pending_login: Option<String>,
}

fn page_token(s: &IdentityRoom, headers: &HeaderMap) -> String {
    cookie(headers, session_cookie_name(s.config.secure_cookies)).unwrap_or_default()
}

async fn show(s: &IdentityRoom, l: Layout, user_id: &str, token: &str, addr: &str, status: StatusCode) -> Response {
    let sessions = s.identity.sessions(user_id, token, addr).await.unwrap_or_default();
    let pending_login = s.identity.pending_login_change(user_id).await.unwrap_or_default();
    render_status(status, &DevicesPage { l, sessions, pending_login })
}

async fn after(
    s: &IdentityRoom,
    l: Layout,
    user_id: &str,
    token: &str,
    addr: &str,
    r: yizhan_core::Result<()>,
    done: &str,
) -> Response {
    match r {
        Ok(()) => show(s, l.ok(done), user_id, token, addr, StatusCode::OK).await,
        Err(e) => {
            let (l, status) = l.failed(&e);
            show(s, l, user_id, token, addr, status).await
        }
    }
}

async fn devices(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/devices", &p).await;
    show(&s, l, &p.user_id, &page_token(&s, &headers), &addr, StatusCode::OK).await
}

async fn end_one(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/devices", &p).await;
    let r = s.identity.end_session(&p.user_id, form.get("session_id")).await;
    after(&s, l, &p.user_id, &page_token(&s, &headers), &addr, r, lang.t("devices.ended")).await
}

async fn end_others(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    _form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/devices", &p).await;
    let token = page_token(&s, &headers);
    let r = s.identity.end_other_sessions(&p.user_id, &token).await.map(|_| ());
    after(&s, l, &p.user_id, &token, &addr, r, lang.t("devices.ended_others")).await
}

async fn change_password(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/devices", &p).await;
    let token = page_token(&s, &headers);
    let r =
        s.identity.change_password(&p.user_id, &token, form.get("current_password"), form.get("new_password")).await;
    after(&s, l, &p.user_id, &token, &addr, r, lang.t("password.changed")).await
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    l: Layout,
    on: bool,
    /// While enrolling: the secret, its URI and the URI as an SVG QR code.
    enrolment: Option<(yizhan_identity::TotpEnrolment, String)>,
    recovery_codes: Vec<String>,
}

/// The otpauth URI as an SVG QR code (empty if it cannot be drawn).
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().quiet_zone(true).min_dimensions(200, 200).build(),
        Err(_) => String::new(),
    }
}

/// The TOTP page as it stands for the person now (on or off), with the
/// recovery codes just made, if any.
async fn totp_shown(s: &IdentityRoom, l: Layout, status: StatusCode, user_id: &str, codes: Vec<String>) -> Response {
    let on = s.identity.totp_enabled(user_id).await.unwrap_or(false);
    render_status(status, &TotpPage { l, on, enrolment: None, recovery_codes: codes })
}

/// The TOTP page after an action: its confirmation (`ok_key`) and any new
/// recovery codes, or its error.
async fn totp_after(
    s: &IdentityRoom,
    l: Layout,
    user_id: &str,
    r: yizhan_core::Result<Vec<String>>,
    ok_key: &str,
) -> Response {
    let (l, status, codes) = match r {
        Ok(codes) => {
            let text = l.lang.t(ok_key);
            (l.ok(text), StatusCode::OK, codes)
        }
        Err(e) => {
            let (l, status) = l.failed(&e);
            (l, status, Vec::new())
        }
    };
    totp_shown(s, l, status, user_id, codes).await
}

async fn totp_page(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/totp", &p).await;
    totp_shown(&s, l, StatusCode::OK, &p.user_id, Vec::new()).await
}

async fn totp_start(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    _form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/totp", &p).await;
    match s.identity.start_totp(&p.user_id).await {
        Ok(e) => {
            let svg = qr_svg(&e.otpauth_uri);
            render_status(
                StatusCode::OK,
                &TotpPage { l, on: false, enrolment: Some((e, svg)), recovery_codes: Vec::new() },
            )
        }
        Err(e) => {
            let (l, status) = l.failed(&e);
            totp_shown(&s, l, status, &p.user_id, Vec::new()).await
        }
    }
}

async fn totp_confirm(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/totp", &p).await;
    let r = s.identity.confirm_totp(&p.user_id, form.get("code")).await;
    totp_after(&s, l, &p.user_id, r, "totp.on").await
}

async fn change_login(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/devices", &p).await;
    let r =
        s.identity.start_login_change(&p.user_id, form.get("login"), form.get("password"), &addr, lang.code()).await;
    after(&s, l, &p.user_id, &page_token(&s, &headers), &addr, r, lang.t("change_login.sent")).await
}

async fn confirm_login(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/devices", &p).await;
    let r = s.identity.confirm_login_change(&p.user_id, form.get("code"), &addr, lang.code()).await.map(|_| ());
    after(&s, l, &p.user_id, &page_token(&s, &headers), &addr, r, lang.t("change_login.done")).await
}

async fn totp_disable(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/totp", &p).await;
    let r = s.identity.disable_totp(&p.user_id, form.get("password"), form.get("code")).await.map(|()| Vec::new());
    totp_after(&s, l, &p.user_id, r, "totp.turned_off").await
}

async fn totp_recovery(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/totp", &p).await;
    let r = s.identity.regenerate_recovery_codes(&p.user_id, form.get("code")).await;
    totp_after(&s, l, &p.user_id, r, "totp.recovery_replaced").await
}
