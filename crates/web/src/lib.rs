//! The web adapter: the only crate that knows HTTP. JSON under `/api/v1`
//! (documented at `/api/openapi.json`, generated from the handlers),
//! server-rendered pages, health and metrics. Handlers translate between HTTP
//! and the domain crates' APIs and hold no business rules.

pub mod account;
pub mod api;
pub mod authz;
pub mod extract;
pub mod i18n;
pub mod idem;
pub mod metrics;
pub mod pages;
pub mod problem;
pub mod security;
pub mod state;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use yizhan_core::MigrationSet;

pub use state::{AppState, Services, WebConfig};

/// Every domain's migrations, in dependency order.
pub fn all_migrations() -> Vec<&'static MigrationSet> {
    vec![
        &yizhan_identity::MIGRATIONS,
        &yizhan_audit::MIGRATIONS,
        &yizhan_notify::MIGRATIONS,
        &yizhan_ledger::MIGRATIONS,
        &yizhan_pay::MIGRATIONS,
        &yizhan_idempotency::MIGRATIONS,
    ]
}

/// The whole application: API, OpenAPI document, pages, health, metrics.
pub fn app(state: AppState, ready: Arc<AtomicBool>) -> Router {
    let (api_router, openapi) = api::router().split_for_parts();
    let openapi_json = Arc::new(openapi.to_pretty_json().unwrap_or_default());
    let secure = state.config.secure_cookies;
    let metrics = state.metrics.clone();
    let request_id = axum::http::HeaderName::from_static("x-request-id");

    Router::new()
        .merge(api_router)
        .merge(pages::router())
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", get(move || healthz(ready.clone())))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        .layer(axum::middleware::from_fn(problem::localize))
        .layer(axum::middleware::from_fn(security::csrf_cookie))
        .layer(axum::Extension(security::SecureCookies(secure)))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, security::MakeId))
        .with_state(state)
}

async fn healthz(ready: Arc<AtomicBool>) -> impl IntoResponse {
    if ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "starting"})))
    }
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    let size = s.ctx.db.pool.size() as f64;
    let idle = s.ctx.db.pool.num_idle() as f64;
    let l = s.ledger.stats();
    let body = s.metrics.render(&[
        ("yizhan_db_pool_connections", "gauge", "Open database connections.", size),
        ("yizhan_db_pool_idle", "gauge", "Idle database connections.", idle),
        ("yizhan_ledger_batches_total", "counter", "Ledger group commits (database transactions).", l.batches as f64),
        ("yizhan_ledger_commands_total", "counter", "Ledger commands answered.", l.commands as f64),
        ("yizhan_ledger_transfer_rows_total", "counter", "Transfer rows written.", l.rows as f64),
        (
            "yizhan_ledger_batch_retries_total",
            "counter",
            "Batches tried again after a transient failure.",
            l.retries as f64,
        ),
        (
            "yizhan_ledger_failed_batches_total",
            "counter",
            "Batches whose every command got the error.",
            l.failed_batches as f64,
        ),
    ]);
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body)
}

async fn not_found(lang: i18n::Lang, uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        problem::ApiError(yizhan_core::Error::not_found("route")).into_response()
    } else {
        pages::error_page(lang, StatusCode::NOT_FOUND, lang.t("error.not_found"))
    }
}
