//! The page frame every room's pages share: the layout (language, CSRF
//! token, who is logged in, the flash messages), rendering with the right
//! status, the message page, the template filters, cookies, the language
//! switch and the static files.

use crate::extract::Csrf;
use crate::i18n::Lang;
use crate::problem::status_of;
use askama::Template;
use axum::extract::Query;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::sync::{OnceLock, RwLock};
use yizhan_core::{Code, Error, Msg};

pub mod filters {
    /// Epoch milliseconds as China Standard Time.
    pub fn cst(ms: &i64) -> askama::Result<String> {
        Ok(yizhan_core::time::fmt_cst(*ms))
    }

    /// An icon by name as inline SVG (use with `|safe`).
    pub fn icon<T: std::fmt::Display>(name: T) -> askama::Result<&'static str> {
        Ok(crate::icons::svg(&name.to_string()))
    }

    /// Fen as yuan: 1234 → "12.34".
    pub fn yuan(fen: &i64) -> askama::Result<String> {
        Ok(yizhan_core::money::yuan_grouped(*fen))
    }
}

/// Settings of the web side.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Served over HTTPS: cookies are `Secure` with the `__Host-` prefix, and
    /// responses carry Strict-Transport-Security.
    pub secure_cookies: bool,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 503 `request_timeout`.
    pub request_timeout_ms: u64,
    /// Addresses besides loopback that may read `/metrics`.
    pub metrics_allow: Vec<std::net::IpAddr>,
    /// A bearer token that lets any address read `/metrics`.
    pub metrics_token: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (the client is the
    /// address they say connected to them); nobody else's is.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            body_limit_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            metrics_allow: Vec::new(),
            metrics_token: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A link in the tab bar at the bottom of every logged-in page.
#[derive(Debug)]
pub struct NavItem {
    /// Where the tabs sort: lower first.
    pub order: u16,
    pub href: &'static str,
    pub label_key: &'static str,
    /// Shows the count of unread messages.
    pub shows_unread: bool,
}

/// A service on the home screen.
#[derive(Debug)]
pub struct Tile {
    /// Where the tile sorts on the home screen: lower first.
    pub order: u16,
    /// The capability's key, as cities list the services they offer.
    pub key: &'static str,
    pub href: &'static str,
    /// An icon name of `yizhan_kit::icons` (drawn as inline SVG).
    pub icon: &'static str,
    pub label_key: &'static str,
    /// Shown in every city (platform features) rather than only where the city offers it.
    pub everywhere: bool,
}

static NAV: OnceLock<Vec<&'static NavItem>> = OnceLock::new();

/// The joined tab bar (set once by the app from every room's items).
pub fn install_nav(mut items: Vec<&'static NavItem>) {
    items.sort_by_key(|n| n.order);
    let _ = NAV.set(items);
}

static NOTICE: RwLock<Option<&'static str>> = RwLock::new(None);

/// The text key of a band shown at the top of every page (the app sets it at
/// start, e.g. to say that no real money moves), or `None` for no band. The
/// kit shows it without knowing what it says.
pub fn install_notice(key: Option<&'static str>) {
    *NOTICE.write().unwrap_or_else(|e| e.into_inner()) = key;
}

/// The installed notice's text key, if any.
pub fn notice_key() -> Option<&'static str> {
    *NOTICE.read().unwrap_or_else(|e| e.into_inner())
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

    /// The frame of a logged-in person.
    pub fn person(lang: Lang, csrf: &Csrf, path: &str, name: &str, unread: i64) -> Layout {
        Layout { user_name: Some(name.to_string()), unread, ..Layout::anon(lang, csrf, path) }
    }

    /// The band at the top of every page, in this frame's language.
    pub fn notice(&self) -> Option<&'static str> {
        notice_key().map(|k| self.lang.t(k))
    }

    /// The tabs of the bar at the bottom.
    pub fn nav(&self) -> &'static [&'static NavItem] {
        NAV.get().map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn error(mut self, e: &Error) -> Layout {
        self.flash_error = Some(error_text(self.lang, e));
        self
    }

    /// The frame showing a failed action, with the status that goes with the error.
    pub fn failed(self, e: &Error) -> (Layout, StatusCode) {
        (self.error(e), status_of(e.code))
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
            // No page to show it in: the platform's words for an internal error, in both languages.
            let text = format!("{} / {}", Lang::Zh.t("error.internal"), Lang::En.t("error.internal"));
            (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
        }
    }
}

pub fn render_status(status: StatusCode, t: &impl Template) -> Response {
    let mut r = render(t);
    *r.status_mut() = status;
    r
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub l: Layout,
    pub title: String,
    pub message: String,
}

/// An error for a person: the code's title, then what went wrong when the
/// message says more than the title (never for an internal error).
pub fn error_text(lang: Lang, e: &Error) -> String {
    let (title, detail) = error_parts(lang, e);
    match detail {
        Some(d) => crate::i18n::render(lang, &Msg::new("error.with_detail").text("title", title).text("detail", d)),
        None => title,
    }
}

/// The title of an error's code, and its message when that says more.
fn error_parts(lang: Lang, e: &Error) -> (String, Option<String>) {
    let title_key = format!("error.{}", e.code.as_str());
    let title = lang.t(&title_key).to_string();
    if e.code == Code::Internal || e.msg.key.is_empty() || e.msg.key == title_key {
        (title, None)
    } else {
        (title, Some(crate::i18n::render(lang, &e.msg)))
    }
}

/// A page for a failed request: the status from the one table, the code's
/// title as the heading and what went wrong, in the person's language.
pub fn failure_page(lang: Lang, e: &Error) -> Response {
    Layout::anon(lang, &Csrf(String::new()), "/").failure(e)
}

impl Layout {
    /// The failure page inside this frame (a logged-in person keeps their
    /// header and tabs).
    pub fn failure(self, e: &Error) -> Response {
        let status = status_of(e.code);
        let (title, detail) = error_parts(self.lang, e);
        render_status(status, &MessagePage { l: self, title, message: detail.unwrap_or_default() })
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, for the whole site.
pub fn cookie_header(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");
/// The tab's icon: the brand's green square with the character 站.
const FAVICON_SVG: &str = concat!(
    r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">"##,
    r##"<rect width="64" height="64" rx="14" fill="#07c160"/>"##,
    r##"<text x="32" y="45" font-size="38" text-anchor="middle" fill="#fff" font-family="sans-serif">站</text></svg>"##
);

/// A static file's name with its content's hash in it, so it can be cached
/// for a year and a new build's pages ask for the new file.
fn versioned(stem: &str, ext: &str, body: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(body.as_bytes());
    format!("/static/{stem}.{}.{ext}", &hex::encode(h)[..12])
}

static CSS_HREF: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| versioned("app", "css", APP_CSS));
static JS_HREF: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| versioned("app", "js", APP_JS));

impl Layout {
    /// Where the page's stylesheet is (a versioned name).
    pub fn css_href(&self) -> &'static str {
        CSS_HREF.as_str()
    }

    /// Where the page's script is (a versioned name).
    pub fn js_href(&self) -> &'static str {
        JS_HREF.as_str()
    }
}

/// The language switch and the static files, for every page: under their
/// versioned names (cached for a year, immutable) and their plain names (an
/// hour, for anything that links them directly).
pub fn router(config: WebConfig) -> Router {
    Router::new()
        .route("/lang", get(move |q| switch_lang(config.secure_cookies, q)))
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS, false) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS, false) }))
        .route("/static/favicon.svg", get(|| async { asset("image/svg+xml", FAVICON_SVG, false) }))
        .route(CSS_HREF.as_str(), get(|| async { asset("text/css; charset=utf-8", APP_CSS, true) }))
        .route(JS_HREF.as_str(), get(|| async { asset("text/javascript; charset=utf-8", APP_JS, true) }))
}

fn asset(content_type: &'static str, body: &'static str, versioned: bool) -> Response {
    let cache = if versioned { "public, max-age=31536000, immutable" } else { "public, max-age=3600" };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], body).into_response()
}

#[derive(Deserialize)]
struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

async fn switch_lang(secure: bool, Query(q): Query<LangQuery>) -> Response {
    let lang = q.to.as_deref().and_then(Lang::parse).unwrap_or_default();
    // Only local paths: never an open redirect.
    let back = q.back.filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\')).unwrap_or("/".into());
    let back = back.parse::<Uri>().map(|u| u.to_string()).unwrap_or_else(|_| "/".into());
    let mut r = Redirect::to(&back).into_response();
    let v = format!(
        "{}={}; Path=/; Max-Age=31536000; SameSite=Lax{}",
        crate::extract::lang_cookie_name(secure),
        if lang == Lang::Zh { "zh" } else { "en" },
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
