//! Safe by default: security headers on every response, a CSRF cookie for
//! every browser, a request id on every request.

use crate::extract::{cookie, Csrf, CSRF_COOKIE};
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;

pub const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
    connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub async fn headers(req: Request, next: Next) -> Response {
    let is_page = !req.uri().path().starts_with("/api/") && !req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"),
    );
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    if is_page && !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry personal data: never in a shared cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn random_token() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Give every browser a CSRF token (double-submit cookie, SameSite=Strict,
/// HttpOnly); forms echo it in a hidden field and `CsrfForm` compares the two.
pub async fn csrf_cookie(mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|v| v.len() == 48);
    let (token, fresh) = match existing {
        Some(t) => (t, false),
        None => (random_token(), true),
    };
    req.extensions_mut().insert(Csrf(token.clone()));
    let secure = req.extensions().get::<SecureCookies>().map(|s| s.0).unwrap_or(false);
    let mut resp = next.run(req).await;
    if fresh {
        let v =
            format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}", if secure { "; Secure" } else { "" });
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
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
        rand::rngs::OsRng.fill_bytes(&mut b);
        HeaderValue::from_str(&hex::encode(b)).ok().map(tower_http::request_id::RequestId::new)
    }
}
