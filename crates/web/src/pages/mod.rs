//! Server-rendered pages, mobile first. Every page takes its words from the
//! catalogue in the person's language; every form carries the CSRF token.

use crate::account;
use crate::extract::{ClientAddr, Csrf, CsrfForm, PageUser, SESSION_COOKIE};
use crate::i18n::Lang;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use yizhan_core::Error;

pub mod admin;
pub mod wallet;

pub mod filters {
    /// Epoch milliseconds as China Standard Time.
    pub fn cst(ms: &i64) -> askama::Result<String> {
        Ok(yizhan_core::time::fmt_cst(*ms))
    }

    /// Fen as yuan: 1234 → "12.34".
    pub fn yuan(fen: &i64) -> askama::Result<String> {
        Ok(yizhan_core::money::yuan(*fen))
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(landing))
        .route("/login", get(login_form).post(login_submit))
        .route("/register", get(register_form).post(register_submit))
        .route("/logout", post(logout))
        .route("/home", get(home))
        .route("/profile", get(profile))
        .route("/profile/real-name", post(real_name))
        .route("/profile/city", post(set_city))
        .route("/access-log", get(access_log))
        .route("/inbox", get(inbox))
        .route("/inbox/read", post(inbox_read))
        .route("/export", get(export))
        .route("/account/delete", get(delete_form).post(delete_submit))
        .route("/lang", get(switch_lang))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .merge(wallet::router())
        .merge(admin::router())
}

/// What every page's frame needs.
pub struct Layout {
    pub lang: Lang,
    pub csrf: String,
    pub path: String,
    pub user_name: Option<String>,
    pub unread: i64,
    pub flash_error: Option<String>,
    pub flash_ok: Option<String>,
}

impl Layout {
    pub fn anon(lang: Lang, csrf: &Csrf, path: &str) -> Layout {
        Layout {
            lang,
            csrf: csrf.0.clone(),
            path: path.to_string(),
            user_name: None,
            unread: 0,
            flash_error: None,
            flash_ok: None,
        }
    }

    pub async fn user(s: &AppState, lang: Lang, csrf: &Csrf, path: &str, p: &yizhan_identity::Principal) -> Layout {
        let unread = s.notify.unread_count(&p.user_id).await.unwrap_or(0);
        Layout { user_name: Some(p.name.clone()), unread, ..Layout::anon(lang, csrf, path) }
    }

    pub fn error(mut self, e: &Error) -> Layout {
        let title = self.lang.t(&format!("error.{}", e.code.as_str()));
        self.flash_error = Some(if e.code == yizhan_core::Code::Internal || e.detail.is_empty() {
            title.to_string()
        } else {
            format!("{title}: {}", e.detail)
        });
        self
    }

    /// The frame showing a failed action, with the status that goes with the error.
    pub fn failed(self, e: &Error) -> (Layout, StatusCode) {
        (self.error(e), crate::problem::status_of(e.code))
    }

    pub fn ok(mut self, msg: &str) -> Layout {
        self.flash_ok = Some(msg.to_string());
        self
    }
}

pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

fn render_status(status: StatusCode, t: &impl Template) -> Response {
    let mut r = render(t);
    *r.status_mut() = status;
    r
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    l: Layout,
    title: String,
    message: String,
}

pub fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let l = Layout::anon(lang, &Csrf(String::new()), "/");
    render_status(status, &MessagePage { l, title: status.to_string(), message: message.to_string() })
}

fn session_cookie(s: &AppState, token: &str, max_age_s: i64) -> HeaderValue {
    let v = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{}",
        if s.config.secure_cookies { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    l: Layout,
}

async fn landing(State(s): State<AppState>, lang: Lang, csrf: Csrf, headers: HeaderMap) -> Response {
    if let Some(t) = crate::extract::cookie(&headers, SESSION_COOKIE) {
        if s.identity.authenticate(&t).await.is_ok() {
            return Redirect::to("/home").into_response();
        }
    }
    render(&Landing { l: Layout::anon(lang, &csrf, "/") })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    login: String,
}

async fn login_form(lang: Lang, csrf: Csrf) -> Response {
    render(&LoginPage { l: Layout::anon(lang, &csrf, "/login"), login: String::new() })
}

async fn login_submit(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    form: CsrfForm,
) -> Response {
    match s.identity.login(form.get("login"), form.get("password"), &addr).await {
        Ok(sess) => {
            let max_age = (sess.expires_at_ms - s.ctx.now_ms()) / 1000;
            let mut r = Redirect::to("/home").into_response();
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&s, &sess.token, max_age));
            r
        }
        Err(e) => {
            let (l, status) = Layout::anon(lang, &csrf, "/login").failed(&e);
            render_status(status, &LoginPage { l, login: form.get("login").to_string() })
        }
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    l: Layout,
    login: String,
    name: String,
    cities: Vec<yizhan_identity::City>,
    city_id: String,
}

async fn register_form(State(s): State<AppState>, lang: Lang, csrf: Csrf) -> Response {
    let cities = s.identity.list_cities().await.unwrap_or_default();
    let l = Layout::anon(lang, &csrf, "/register");
    render(&RegisterPage { l, login: String::new(), name: String::new(), cities, city_id: String::new() })
}

async fn register_submit(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    form: CsrfForm,
) -> Response {
    let result = async {
        let city_id = form.get("city_id");
        if !city_id.is_empty() {
            // Checked before the account exists, so a bad choice leaves nothing half done.
            s.identity.city(city_id).await?;
        }
        let user_id = account::register(&s, form.get("login"), form.get("password"), form.get("name")).await?;
        if !city_id.is_empty() {
            s.identity.set_home_city(&user_id, form.get("city_id")).await?;
        }
        s.identity.login(form.get("login"), form.get("password"), &addr).await
    }
    .await;
    match result {
        Ok(sess) => {
            let max_age = (sess.expires_at_ms - s.ctx.now_ms()) / 1000;
            let mut r = Redirect::to("/home").into_response();
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&s, &sess.token, max_age));
            r
        }
        Err(e) => {
            let (l, status) = Layout::anon(lang, &csrf, "/register").failed(&e);
            let cities = s.identity.list_cities().await.unwrap_or_default();
            let page = RegisterPage {
                l,
                login: form.get("login").to_string(),
                name: form.get("name").to_string(),
                cities,
                city_id: form.get("city_id").to_string(),
            };
            render_status(status, &page)
        }
    }
}

async fn logout(State(s): State<AppState>, headers: HeaderMap, _form: CsrfForm) -> Response {
    if let Some(t) = crate::extract::cookie(&headers, SESSION_COOKIE) {
        let _ = s.identity.logout(&t).await;
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(&s, "", 0));
    r
}

/// A service on the home screen. Only capabilities this build has are listed.
pub struct Tile {
    pub key: &'static str,
    pub href: &'static str,
    pub icon: &'static str,
    pub label_key: &'static str,
    /// Shown in every city (platform features) rather than only where the city offers it.
    pub everywhere: bool,
}

pub static TILES: &[Tile] = &[
    Tile { key: "wallet", href: "/wallet", icon: "¥", label_key: "service.wallet", everywhere: false },
    Tile { key: "inbox", href: "/inbox", icon: "✉", label_key: "service.inbox", everywhere: true },
    Tile { key: "access", href: "/access-log", icon: "👁", label_key: "service.access", everywhere: true },
];

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    l: Layout,
    name: String,
    city_name: Option<String>,
    tiles: Vec<&'static Tile>,
}

async fn home(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let profile = match s.identity.profile(&p.user_id).await {
        Ok(pr) => pr,
        Err(e) => return error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    };
    let city_services: Vec<String> = match &profile.home_city_id {
        Some(id) => s.identity.city(id).await.map(|c| c.services).unwrap_or_default(),
        None => Vec::new(),
    };
    // Without a home city, every capability of the platform shows; a city shows what it offers.
    let no_city = profile.home_city_id.is_none();
    let tiles = TILES.iter().filter(|t| t.everywhere || no_city || city_services.iter().any(|k| k == t.key)).collect();
    let l = Layout::user(&s, lang, &csrf, "/home", &p).await;
    render(&HomePage { l, name: profile.name, city_name: profile.home_city_name, tiles })
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    l: Layout,
    p: yizhan_identity::Profile,
    cities: Vec<yizhan_identity::City>,
}

async fn profile_page(s: &AppState, l: Layout, user_id: &str, status: StatusCode) -> Response {
    match (s.identity.profile(user_id).await, s.identity.list_cities().await) {
        (Ok(p), Ok(cities)) => render_status(status, &ProfilePage { l, p, cities }),
        (Err(e), _) | (_, Err(e)) => error_page(l.lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    }
}

async fn profile(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/profile", &p).await;
    profile_page(&s, l, &p.user_id, StatusCode::OK).await
}

async fn real_name(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/profile", &p).await;
    match s.identity.verify_real_name(&p.user_id, form.get("name"), form.get("id_number")).await {
        Ok(_) => profile_page(&s, l.ok(lang.t("realname.done")), &p.user_id, StatusCode::OK).await,
        Err(e) => {
            let (l, status) = l.failed(&e);
            profile_page(&s, l, &p.user_id, status).await
        }
    }
}

async fn set_city(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    match s.identity.set_home_city(&p.user_id, form.get("city_id")).await {
        Ok(()) => Redirect::to("/home").into_response(),
        Err(e) => {
            let (l, status) = Layout::user(&s, lang, &csrf, "/profile", &p).await.failed(&e);
            profile_page(&s, l, &p.user_id, status).await
        }
    }
}

#[derive(Template)]
#[template(path = "access_log.html")]
struct AccessPage {
    l: Layout,
    entries: Vec<yizhan_audit::AccessEntry>,
    chain_ok: bool,
}

async fn access_log(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/access-log", &p).await;
    match (s.audit.list(&p.user_id, 200, None).await, s.audit.verify(&p.user_id).await) {
        (Ok(entries), Ok(chain)) => render(&AccessPage { l, entries, chain_ok: chain.ok }),
        (Err(e), _) | (_, Err(e)) => error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    l: Layout,
    items: Vec<yizhan_notify::Notification>,
}

async fn inbox(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/inbox", &p).await;
    match s.notify.inbox(&p.user_id, 100).await {
        Ok(items) => render(&InboxPage { l, items }),
        Err(e) => error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    }
}

async fn inbox_read(State(s): State<AppState>, PageUser(p): PageUser, _form: CsrfForm) -> Response {
    let _ = s.notify.mark_read(&p.user_id, None).await;
    Redirect::to("/inbox").into_response()
}

async fn export(State(s): State<AppState>, lang: Lang, PageUser(p): PageUser) -> Response {
    match account::export(&s, &p.user_id).await {
        Ok(v) => {
            let body = serde_json::to_string_pretty(&v).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"yizhan-export.json\""),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    }
}

#[derive(Template)]
#[template(path = "delete.html")]
struct DeletePage {
    l: Layout,
}

async fn delete_form(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/account/delete", &p).await;
    render(&DeletePage { l })
}

async fn delete_submit(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    if form.get("confirm").trim() != "DELETE" {
        let l = Layout::user(&s, lang, &csrf, "/account/delete", &p).await;
        let e = Error::field("confirm", "type DELETE to confirm");
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &DeletePage { l: l.error(&e) });
    }
    match account::delete(&s, &p.user_id).await {
        Ok(_) => {
            let l = Layout::anon(lang, &csrf, "/");
            let mut r = render(&MessagePage {
                l,
                title: lang.t("delete.title").to_string(),
                message: lang.t("delete.done").to_string(),
            });
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&s, "", 0));
            r
        }
        Err(e) => error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    }
}

#[derive(Deserialize)]
struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

async fn switch_lang(State(s): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    let lang = q.to.as_deref().and_then(Lang::parse).unwrap_or_default();
    // Only local paths: never an open redirect.
    let back = q.back.filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\')).unwrap_or("/".into());
    let back = back.parse::<Uri>().map(|u| u.to_string()).unwrap_or_else(|_| "/".into());
    let mut r = Redirect::to(&back).into_response();
    let v = format!(
        "lang={}; Path=/; Max-Age=31536000; SameSite=Lax{}",
        if lang == Lang::Zh { "zh" } else { "en" },
        if s.config.secure_cookies { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.js"),
    )
        .into_response()
}
