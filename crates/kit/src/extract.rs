//! Request extractors: JSON bodies that fail as problems, the bearer token of
//! the API, the session cookie of the pages, CSRF-checked forms, the language,
//! the client's address and the Idempotency-Key header.

use crate::i18n::Lang;
use crate::problem::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::net::SocketAddr;
use yizhan_core::{Arg, Code, Error, Msg};

pub const SESSION_COOKIE: &str = "yz_session";
pub const CSRF_COOKIE: &str = "yz_csrf";
pub const LANG_COOKIE: &str = "lang";

/// The session cookie's name: over HTTPS with the `__Host-` prefix, so no
/// subdomain or plain-HTTP page can set it.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-yz_session"
    } else {
        SESSION_COOKIE
    }
}

/// The anonymous CSRF cookie's name (see [`session_cookie_name`]).
pub fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-yz_csrf"
    } else {
        CSRF_COOKIE
    }
}

/// The language cookie's name (see [`session_cookie_name`]).
pub fn lang_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-lang"
    } else {
        LANG_COOKIE
    }
}
/// The longest Idempotency-Key accepted (the domains scope keys further for their own stores).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 64;

/// The value of one cookie. A name sent twice counts as absent: a cookie
/// planted beside the real one (from a subdomain, another path) never wins.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string());
    let first = found.next()?;
    match found.next() {
        Some(_) => None,
        None => Some(first),
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A JSON body. Wrong content type → 415, too large → 413, not JSON → 400
/// `malformed_json`, wrong types or unknown fields → 422 `validation_failed`
/// naming the field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The body of a JSON request: checks the content type and the size limit.
pub async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            ct == "application/json" || ct.ends_with("+json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError(Error::new(Code::UnsupportedMediaType, "error.request.not_json")));
    }
    any_bytes(req, state).await
}

/// The body of a request, whatever its type, within the size limit.
pub async fn any_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state).await.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(Error::new(Code::PayloadTooLarge, "error.request.too_large"))
        } else {
            ApiError(Error::new(Code::MalformedJson, "error.request.unreadable"))
        }
    })
}

/// Where a JSON value holds a NUL character, if anywhere (no text column of
/// either engine stores one, and PostgreSQL refuses it outright).
fn nul_at(v: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => Some(path.to_string()),
        Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| nul_at(x, &format!("{path}[{i}]"))),
        Value::Object(o) => o.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                return Some(path.to_string());
            }
            nul_at(x, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") })
        }),
        _ => None,
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    use serde_json::error::Category;
    // A body that is JSON but carries a NUL is refused naming the field.
    if bytes.windows(2).any(|w| w == b"\\u") {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
            if let Some(at) = nul_at(&v, "") {
                let field = if at.is_empty() { "body".to_string() } else { at };
                return Err(ApiError(Error::field(&field, "error.field.control_characters")));
            }
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => malformed(&inner),
                Category::Data => {
                    let detail = inner.to_string();
                    let detail = detail.split(" at line ").next().unwrap_or(&detail).to_string();
                    tracing::debug!(%path, %detail, "request body does not fit");
                    let at = if path == "." || path.is_empty() { None } else { Some(path) };
                    // serde names a missing or unknown field only in its message: "missing field `amount`".
                    let named = |prefix: &str| {
                        let rest = detail.strip_prefix(prefix)?;
                        Some(rest.split('`').next().unwrap_or("").to_string())
                    };
                    // The path ends at the unknown field, and at the parent of a missing one.
                    let within = |f: String| match &at {
                        Some(p) if *p == f || p.ends_with(&format!(".{f}")) => p.clone(),
                        Some(p) => format!("{p}.{f}"),
                        None => f,
                    };
                    let (field, key) = if let Some(f) = named("missing field `") {
                        (within(f), "error.field.required")
                    } else if let Some(f) = named("unknown field `") {
                        (within(f), "error.field.unknown")
                    } else {
                        (at.clone().unwrap_or_else(|| "body".into()), "error.field.invalid")
                    };
                    ApiError(Error::field(&field, key))
                }
            });
        }
    };
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError(
        Error::new(Code::MalformedJson, "error.request.bad_json")
            .with("line", Arg::Int(e.line() as i64))
            .with("column", Arg::Int(e.column() as i64)),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::from_request(&parts.headers, &parts.extensions))
    }
}

/// The CSRF token of this browser (set by the csrf middleware), as a page
/// puts it in its forms: masked with a fresh random pad each time, so a
/// compressed page never carries the same secret bytes twice (BREACH).
#[derive(Clone, Debug)]
pub struct Csrf(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Csrf {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<Csrf>() {
            Some(Csrf(t)) if !t.is_empty() => Csrf(mask_csrf(t)),
            _ => Csrf(String::new()),
        })
    }
}

/// `hex(pad) ‖ hex(token XOR pad)` with a random pad as long as the token.
pub fn mask_csrf(token: &str) -> String {
    let t = token.as_bytes();
    let mut pad = vec![0u8; t.len()];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut pad);
    let masked: Vec<u8> = t.iter().zip(&pad).map(|(a, b)| a ^ b).collect();
    format!("{}{}", hex::encode(&pad), hex::encode(masked))
}

/// The token a masked form field carries, if it is one.
pub fn unmask_csrf(given: &str) -> Option<Vec<u8>> {
    let raw = hex::decode(given).ok()?;
    if raw.is_empty() || raw.len() % 2 != 0 {
        return None;
    }
    let (pad, masked) = raw.split_at(raw.len() / 2);
    Some(pad.iter().zip(masked).map(|(a, b)| a ^ b).collect())
}

/// Whether a form's field carries this browser's token, masked or not.
pub fn csrf_matches(expected: &str, given: &str) -> bool {
    if expected.is_empty() {
        return false;
    }
    let plain = constant_time_eq(expected.as_bytes(), given.as_bytes());
    let masked = unmask_csrf(given).is_some_and(|t| constant_time_eq(expected.as_bytes(), &t));
    plain | masked
}

/// A submitted form whose `csrf` field matches this browser's token: bound to
/// its session when logged in, its CSRF cookie otherwise.
pub struct CsrfForm(pub HashMap<String, String>);

impl CsrfForm {
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequest<S> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let expected = crate::security::expected_csrf(req.headers(), req.extensions()).unwrap_or_default();
        let axum::Form(map) = axum::Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, e.body_text()).into_response())?;
        let given = map.get("csrf").map(String::as_str).unwrap_or("");
        if !csrf_matches(&expected, given) {
            return Err(ApiError(Error::new(Code::CsrfFailed, "error.request.form_expired")).into_response());
        }
        Ok(CsrfForm(map))
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client's address, for rate limits: the socket peer, or, when the peer
/// is a trusted proxy (`TrustedProxies`, from the operator), the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub struct ClientAddr(pub String);

/// The reverse proxies whose `X-Forwarded-For` is believed (set by the app).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<std::net::IpAddr>>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let trusted = parts.extensions.get::<TrustedProxies>().cloned().unwrap_or_default();
        let addr = match peer {
            Some(ip) => client_ip(ip, &parts.headers, &trusted.0).to_string(),
            None => "local".to_string(),
        };
        Ok(ClientAddr(addr))
    }
}

/// Walk `X-Forwarded-For` from the right (the entry our proxy added) while the
/// hop is a trusted proxy; the first other address is the client. A header
/// from anyone else, or one that does not parse, is ignored.
pub fn client_ip(peer: std::net::IpAddr, headers: &HeaderMap, trusted: &[std::net::IpAddr]) -> std::net::IpAddr {
    let canon = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    };
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|t| canon(*t) == canon(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .take(64)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// The `Idempotency-Key` header every request that moves money must carry.
pub struct IdemKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdemKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let v = parts.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
        if v.is_empty() {
            return Err(ApiError(Error::new(Code::IdempotencyKeyRequired, "idempotency.key.missing")));
        }
        let max = MAX_IDEMPOTENCY_KEY_CHARS;
        if v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError(Error::field_msg(
                "Idempotency-Key",
                Msg::new("idempotency.key.invalid").int("max", max as i64),
            )));
        }
        Ok(IdemKey(v.to_string()))
    }
}

/// A query string. A value that does not fit (a word where a number goes, an
/// unknown choice) is 422 `validation_failed` naming the parameter, as a
/// problem like every other refusal.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(e) => {
                // axum names the parameter first: "Failed to deserialize query string: limit: invalid digit".
                let text = e.body_text();
                let rest = text.split_once("query string: ").map_or(text.as_str(), |(_, r)| r);
                let field = match rest.split_once(": ") {
                    Some((f, _)) if !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => f,
                    _ => "query",
                };
                Err(ApiError(Error::field(field, "error.field.invalid")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy = [ip("10.0.0.2")];
        // From the proxy: the address it saw.
        assert_eq!(client_ip(ip("10.0.0.2"), &xff("203.0.113.5"), &proxy), ip("203.0.113.5"));
        // A client that sends its own header through the proxy cannot pick its address.
        assert_eq!(client_ip(ip("10.0.0.2"), &xff("1.2.3.4, 203.0.113.5"), &proxy), ip("203.0.113.5"));
        // Two proxies in a row are both skipped.
        let two = [ip("10.0.0.2"), ip("10.0.0.3")];
        assert_eq!(client_ip(ip("10.0.0.2"), &xff("198.51.100.7, 10.0.0.3"), &two), ip("198.51.100.7"));
        // From anyone else the header means nothing.
        assert_eq!(client_ip(ip("198.51.100.9"), &xff("10.9.9.9"), &proxy), ip("198.51.100.9"));
        // No header, or garbage: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxy), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), &xff("not-an-ip"), &proxy), ip("10.0.0.2"));
        // An IPv4-mapped peer matches its IPv4 entry.
        assert_eq!(client_ip(ip("::ffff:10.0.0.2"), &xff("203.0.113.5"), &proxy), ip("203.0.113.5"));
    }
}
