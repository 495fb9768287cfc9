//! Safe by default: security headers on every response, a CSRF cookie for
//! every browser, a request id on every request.

use crate::extract::{cookie, csrf_cookie_name, session_cookie_name, Csrf};
use crate::i18n::Lang;
use crate::problem::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use std::sync::Arc;
use std::time::Duration;
use yizhan_core::{Code, Error, Vault};

pub const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
    connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub async fn headers(req: Request, next: Next) -> Response {
    // Pages and API answers alike carry personal data; only static files may be cached.
    let is_private = !req.uri().path().starts_with("/static/");
    let secure = secure_of(req.extensions());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if secure {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"),
    );
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    if is_private && !h.contains_key(header::CACHE_CONTROL) {
        // Never in a shared cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn random_token() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// The key CSRF tokens of logged-in browsers are made with (inserted by the
/// router; the app derives it from the Vault).
#[derive(Clone)]
pub struct CsrfKey(Arc<Vault>);

impl CsrfKey {
    pub fn new(vault: Arc<Vault>) -> CsrfKey {
        CsrfKey(vault)
    }

    /// The token bound to this session: a keyed hash of its cookie.
    pub fn token_for_session(&self, session: &str) -> String {
        hex::encode(self.0.mac("csrf", session.as_bytes()))
    }
}

/// The CSRF token a form from this browser must carry: for a session, the
/// keyed hash of its cookie (so a token is worth nothing with another
/// session); without one, the browser's random CSRF cookie. `None` when
/// there is nothing to compare with (no cookie, or no key for a session).
pub fn expected_csrf(headers: &HeaderMap, ext: &axum::http::Extensions) -> Option<String> {
    let secure = secure_of(ext);
    match cookie(headers, session_cookie_name(secure)).filter(|s| !s.is_empty()) {
        Some(session) => ext.get::<CsrfKey>().map(|k| k.token_for_session(&session)),
        None => cookie(headers, csrf_cookie_name(secure)).filter(|v| v.len() == 48),
    }
}

/// Give every browser a CSRF token (SameSite=Strict, HttpOnly cookie for an
/// anonymous browser; bound to the session for a logged-in one); forms echo
/// it in a hidden field and `CsrfForm` checks it.
pub async fn csrf_cookie(mut req: Request, next: Next) -> Response {
    let secure = secure_of(req.extensions());
    let name = csrf_cookie_name(secure);
    let has_cookie = cookie(req.headers(), name).filter(|v| v.len() == 48).is_some();
    let (token, fresh) = match expected_csrf(req.headers(), req.extensions()) {
        Some(t) => (t, false),
        None => (random_token(), true),
    };
    req.extensions_mut().insert(Csrf(token.clone()));
    let mut resp = next.run(req).await;
    // An anonymous browser without a cookie gets one; a logged-in one keeps
    // a random cookie too, for the pages it sees after logging out.
    if !has_cookie {
        let value = if fresh { token } else { random_token() };
        let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{}", if secure { "; Secure" } else { "" });
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Whether this request came through a router that marks cookies secure.
pub fn secure_of(ext: &axum::http::Extensions) -> bool {
    ext.get::<SecureCookies>().map(|s| s.0).unwrap_or(false)
}

/// Answer 503 `request_timeout` when the rest of the stack takes longer than
/// the limit. Dropping the handler's future abandons only what it awaits
/// inline: money moves in its own task (`idem::run`), which runs on to the
/// end and stores its answer for the retry.
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let lang = Lang::from_request(req.headers(), req.extensions());
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX), "request timed out");
            let e = Error::new(Code::RequestTimeout, "error.request_timeout");
            if is_api {
                ApiError(e).into_response()
            } else {
                crate::page::failure_page(lang, &e)
            }
        }
    }
}

/// Whether cookies get the `Secure` attribute (inserted by the router from config).
#[derive(Clone, Copy)]
pub struct SecureCookies(pub bool);

/// A request id: taken from `x-request-id` if the client sent a sane one, else new.
#[derive(Clone, Default)]
pub struct MakeId;

impl tower_http::request_id::MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _req: &axum::http::Request<B>) -> Option<tower_http::request_id::RequestId> {
        let mut b = [0u8; 8];
        // The thread's CSPRNG: no system call per request.
        rand::thread_rng().fill_bytes(&mut b);
        HeaderValue::from_str(&hex::encode(b)).ok().map(tower_http::request_id::RequestId::new)
    }
}

/// A percent-encoded NUL in the path or the query is refused before any
/// handler sees it (no text column stores one; PostgreSQL refuses it).
pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let has_nul = |s: &str| s.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0');
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        let field = if has_nul(uri.path()) { "path" } else { "query" };
        return crate::problem::ApiError(yizhan_core::Error::field(field, "error.field.control_characters"))
            .into_response();
    }
    next.run(req).await
}
