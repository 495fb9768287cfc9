//! Errors as RFC 9457 `application/problem+json`. The one table that maps the
//! platform's public error codes to HTTP statuses lives here.

use crate::i18n::Lang;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use yizhan_core::{Class, Code, Error, FieldError, Msg};

/// The one mapping from public error code to HTTP status, by the code's
/// class: the API and the pages both answer with it.
pub fn status_of(code: Code) -> StatusCode {
    match code.class() {
        Class::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Class::Malformed => StatusCode::BAD_REQUEST,
        Class::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Class::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Class::Unauthenticated => StatusCode::UNAUTHORIZED,
        Class::Forbidden => StatusCode::FORBIDDEN,
        Class::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Class::NotFound => StatusCode::NOT_FOUND,
        Class::Conflict => StatusCode::CONFLICT,
        Class::Gone => StatusCode::GONE,
        Class::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
        Class::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        Class::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The body of a problem response.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:yizhan:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short, translated summary of the problem type.
    pub title: String,
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// For validation problems: the offending fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<FieldErrorDoc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldErrorDoc {
    pub field: String,
    pub message: String,
}

impl FieldErrorDoc {
    fn of(f: &FieldError, lang: Lang) -> Self {
        FieldErrorDoc { field: f.field.clone(), message: crate::i18n::render(lang, &f.msg) }
    }
}

/// A domain error on its way out as HTTP.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Carried in the response extensions so the language middleware can render
/// the title, the detail and the fields' messages in the request's language.
#[derive(Clone, Debug)]
pub struct ProblemMarker(pub Problem, pub Option<u64>, pub Option<Words>);

/// The messages behind a problem, to render again in another language.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Words {
    pub detail: Msg,
    pub fields: Vec<FieldError>,
}

impl ApiError {
    pub fn problem(&self, lang: Lang) -> Problem {
        let code = self.0.code;
        Problem {
            type_uri: format!("urn:yizhan:problem:{}", code.as_str()),
            title: lang.t(&format!("error.{}", code.as_str())).to_string(),
            status: status_of(code).as_u16(),
            detail: crate::i18n::render(lang, &self.0.msg),
            code: code.as_str().to_string(),
            fields: self.0.fields.iter().map(|f| FieldErrorDoc::of(f, lang)).collect(),
        }
    }
}

pub fn problem_response(p: Problem, retry_after_s: Option<u64>) -> Response {
    problem_response_with(p, retry_after_s, None)
}

pub fn problem_response_with(p: Problem, retry_after_s: Option<u64>, words: Option<Words>) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&p).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    if let Some(s) = retry_after_s {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp.extensions_mut().insert(ProblemMarker(p, retry_after_s, words));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.0.code == Code::Internal {
            // The full chain goes to the log, never to the client.
            tracing::error!(error = %self.0, "internal error");
        }
        let words = Words { detail: self.0.msg.clone(), fields: self.0.fields.clone() };
        problem_response_with(self.problem(Lang::En), self.0.retry_after_s, Some(words))
    }
}

/// Middleware: re-render problem titles in the request's language.
pub async fn localize(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let lang = Lang::from_request(req.headers(), req.extensions());
    let resp = next.run(req).await;
    if lang == Lang::En {
        return resp;
    }
    match resp.extensions().get::<ProblemMarker>().cloned() {
        Some(ProblemMarker(mut p, retry, words)) => {
            p.title = lang.t(&format!("error.{}", p.code)).to_string();
            if let Some(w) = &words {
                p.detail = crate::i18n::render(lang, &w.detail);
                p.fields = w.fields.iter().map(|f| FieldErrorDoc::of(f, lang)).collect();
            }
            let mut new = problem_response_with(p, retry, words);
            for (k, v) in resp.headers() {
                if k != header::CONTENT_LENGTH && !new.headers().contains_key(k) {
                    new.headers_mut().insert(k.clone(), v.clone());
                }
            }
            new
        }
        None => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_an_error_status() {
        for c in Code::ALL {
            let s = status_of(*c);
            assert!(s.is_client_error() || s.is_server_error(), "{c} → {s}");
        }
    }
}
