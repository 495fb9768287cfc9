//! Idempotent requests over HTTP. Every route that moves money takes an
//! `Idempotency-Key` header; the first request with a key runs and its answer
//! is stored (per caller), a retry with the same key and the same request gets
//! the stored answer back (`Idempotent-Replayed: true`), the same key with
//! another request is 422 `idempotency_key_reused`, and a retry while the first
//! is still running is 409 `idempotency_in_progress`. A server error is not
//! stored, so a retry runs again — which is safe because the key also reaches
//! Pay, whose ledger transfers are idempotent on it: money moves once even if
//! an answer is lost.
//!
//! The work runs in its own task, so a client that hangs up mid-request
//! does not leave the key claimed and the payment half done.

use crate::extract::{any_bytes, json_bytes, parse_json, IdemKey};
use crate::problem::{problem_response, problem_response_with, ApiError, Problem, ProblemMarker, Words};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use yizhan_core::{Code, Error};
use yizhan_idempotency::Idempotency;
use yizhan_idempotency::{request_hash, Begin, Lease};

pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Largest answer stored for a replay.
const MAX_STORED_BODY: usize = 1024 * 1024;

/// A JSON request that moves money: its body, its Idempotency-Key, and the
/// hash of method, path and body that tells it from another request.
pub struct IdemJson<T> {
    pub body: T,
    pub key: String,
    pub hash: String,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for IdemJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let IdemKey(key) = IdemKey::from_request_parts(&mut parts, state).await?;
        let (method, path) = (parts.method.to_string(), parts.uri.path().to_string());
        let bytes = json_bytes(Request::from_parts(parts, body), state).await?;
        let hash = request_hash(&method, &path, &bytes);
        Ok(IdemJson { body: parse_json(&bytes)?, key, hash })
    }
}

/// A request that moves money and carries no body (the path says it all).
pub struct IdemCall {
    pub key: String,
    pub hash: String,
}

impl<S: Send + Sync> FromRequest<S> for IdemCall {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let IdemKey(key) = IdemKey::from_request_parts(&mut parts, state).await?;
        let (method, path) = (parts.method.to_string(), parts.uri.path().to_string());
        let bytes = any_bytes(Request::from_parts(parts, body), state).await?;
        Ok(IdemCall { key, hash: request_hash(&method, &path, &bytes) })
    }
}

/// Run `work` at most once per (scope, key): see the module documentation.
/// The work may store its answer with its own writes: the domain code it
/// calls takes [`yizhan_idempotency::take_domain_answer`] and writes it in its
/// transaction; then the answer costs no write here.
pub async fn run<Fut, R>(s: &Idempotency, scope: &str, key: &str, hash: &str, work: Fut) -> Response
where
    Fut: Future<Output = R> + Send + 'static,
    R: IntoResponse + Send + 'static,
{
    let (s, scope, key, hash) = (s.clone(), scope.to_string(), key.to_string(), hash.to_string());
    let task = tokio::spawn(async move { run_here(&s, &scope, &key, &hash, work).await });
    match task.await {
        Ok(r) => r,
        Err(e) => ApiError(Error::internal(anyhow::anyhow!("idempotent request task failed: {e}"))).into_response(),
    }
}

async fn run_here<Fut, R>(s: &Idempotency, scope: &str, key: &str, hash: &str, work: Fut) -> Response
where
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    match s.begin(scope, key, hash).await {
        Err(e) => ApiError(e).into_response(),
        Ok(Begin::Mismatch) => {
            ApiError(Error::new(Code::IdempotencyKeyReused, "idempotency.key.reused")).into_response()
        }
        Ok(Begin::InProgress) => {
            ApiError(Error::new(Code::IdempotencyInProgress, "idempotency.request.in_progress")).into_response()
        }
        Ok(Begin::Replay { status, body }) => replay(status, body),
        Ok(Begin::Rerun(lease)) => {
            // The domain keeps the answer under the same key: it answers the
            // rerun from there, doing nothing twice; nothing is stored.
            let mut resp = match AssertUnwindSafe(work).catch_unwind().await {
                Ok(r) => r.into_response(),
                Err(_) => ApiError(Error::internal(anyhow::anyhow!("the request handler panicked"))).into_response(),
            };
            drop(lease);
            resp.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            resp
        }
        Ok(Begin::Fresh(lease)) => {
            // On offer to the domain: written with its work, it is the stored answer.
            let domain_answer = s.domain_answer(&lease);
            let offered = yizhan_idempotency::offering(domain_answer.clone(), AssertUnwindSafe(work).catch_unwind());
            let resp = match offered.await {
                Ok(r) => r.into_response(),
                Err(_) => {
                    forget(s, scope, key, &lease).await;
                    return ApiError(Error::internal(anyhow::anyhow!("the request handler panicked"))).into_response();
                }
            };
            if domain_answer.was_written() && resp.status().is_success() {
                // Committed with the work: nothing more to store.
                forget(s, scope, key, &lease).await;
                return resp;
            }
            let (parts, body) = resp.into_parts();
            let bytes = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
                Ok(b) => b,
                Err(e) => {
                    forget(s, scope, key, &lease).await;
                    return ApiError(Error::internal(anyhow::anyhow!("answer not readable: {e}"))).into_response();
                }
            };
            // A server error, an answer that says "try again" (409 conflict, 429), or
            // one that says the work goes on elsewhere (202 accepted) is not stored:
            // the retry runs again, and learns how it stands.
            let transient = parts.status == axum::http::StatusCode::CONFLICT
                || parts.status == axum::http::StatusCode::TOO_MANY_REQUESTS
                || parts.status == axum::http::StatusCode::ACCEPTED;
            if parts.status.is_server_error() || transient {
                forget(s, scope, key, &lease).await;
            } else {
                match s.complete(scope, key, &lease, parts.status.as_u16(), &stored_body(&parts, &bytes)).await {
                    Ok(true) => {}
                    // Taken over as stale while it ran: the new holder answers; ours is not stored.
                    Ok(false) => tracing::warn!("idempotent answer not stored: the key was taken over"),
                    Err(e) => {
                        // The work is done; a retry will run it again and the domain's own key
                        // answers it without moving money twice.
                        tracing::warn!(code = %e.code, error = %e.msg, "idempotent answer not stored");
                        forget(s, scope, key, &lease).await;
                    }
                }
            }
            Response::from_parts(parts, axum::body::Body::from(bytes))
        }
    }
}

async fn forget(s: &Idempotency, scope: &str, key: &str, lease: &Lease) {
    if let Err(e) = s.release(scope, key, lease).await {
        tracing::warn!(code = %e.code, error = %e.msg, "idempotency key not released");
    }
}

/// The stored answer again, as it was first sent (a problem's title follows the caller's language).
fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if status.is_client_error() || status.is_server_error() {
        if let Ok(StoredProblem { problem, words }) = serde_json::from_str::<StoredProblem>(&body) {
            // The messages go along, so the replay speaks the caller's language.
            problem_response_with(problem, None, Some(words))
        } else {
            match serde_json::from_str::<Problem>(&body) {
                Ok(p) => problem_response(p, None),
                Err(_) => (status, body).into_response(),
            }
        }
    } else if body.is_empty() {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
    };
    resp.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    resp
}

/// A refused request's answer as stored for a replay: the problem and the
/// messages behind it (so a replay renders them in the caller's language).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredProblem {
    problem: Problem,
    words: Words,
}

/// What is stored of an answer: its body, or for a problem the problem with its messages.
fn stored_body(parts: &axum::http::response::Parts, bytes: &[u8]) -> String {
    if let Some(ProblemMarker(p, _, Some(words))) = parts.extensions.get::<ProblemMarker>() {
        let stored = StoredProblem { problem: p.clone(), words: words.clone() };
        if let Ok(s) = serde_json::to_string(&stored) {
            return s;
        }
    }
    String::from_utf8_lossy(bytes).to_string()
}

/// Run work that moves money to its end in a task of its own, so a client
/// that hangs up (the request future dropped) cannot leave it half done —
/// the page's answer to the API's `run`.
pub async fn to_completion<T, Fut>(work: Fut) -> yizhan_core::Result<T>
where
    T: Send + 'static,
    Fut: Future<Output = yizhan_core::Result<T>> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(r) => r,
        Err(e) => Err(Error::internal(anyhow::anyhow!("money work task failed: {e}"))),
    }
}
