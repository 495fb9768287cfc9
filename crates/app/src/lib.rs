//! The app: joins the rooms into one router and one OpenAPI document (at
//! `/api/openapi.json`), adds health and metrics and the home screen, and
//! composes the export and deletion of an account across the rooms (the
//! identity room serves them). Nothing here holds a domain rule.

pub mod account;
mod booking_notices;
pub mod document;
pub mod keys;
mod pages;
pub mod state;
pub mod testing;
mod texts;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use yizhan_core::MigrationSet;
use yizhan_kit::room::{self, Joined, Room};
use yizhan_kit::{metrics, problem, security, Deps, Lang};

pub use state::{AppState, Services};
use yizhan_identity_web::{AccountLifecycle, Accounts};
pub use yizhan_kit::WebConfig;

/// The rooms, joined in this order. A new capability adds its room here.
pub static ROOMS: &[&Room] = &[
    &yizhan_identity_web::ROOM,
    &yizhan_audit_web::ROOM,
    &yizhan_notify_web::ROOM,
    &yizhan_wallet_web::ROOM,
    &yizhan_credit_web::ROOM,
    &yizhan_booking_web::ROOM,
    &yizhan_city_web::ROOM,
    &ROOM,
];

/// The app's own room: the home screen, the export and deletion of an
/// account, and the kit's words. The services a city may already list before
/// their room exists are named here too.
pub static ROOM: Room = Room {
    name: "app",
    prefixes: &["/home", "/lang", "/static", "/healthz", "/metrics", "/api/openapi.json"],
    texts: texts::TEXTS,
    access: &[],
    tiles: &[],
    nav: &[yizhan_kit::page::NavItem { order: 10, href: "/home", label_key: "nav.home", shows_unread: false }],
    city_services: &["health", "shopping", "live", "mobility"],
    codes: &[],
    links: &[],
    migrations: &[&yizhan_idempotency::MIGRATIONS],
    mount: |_| Ok(yizhan_kit::Mounted::new(OpenApiRouter::new(), Router::new())),
};

/// The kit's words (frame, errors) as a room of their own in the catalogue.
static KIT: Room = Room {
    name: "kit",
    prefixes: &[],
    texts: yizhan_kit::texts::TEXTS,
    access: &[],
    tiles: &[],
    nav: &[],
    city_services: &[],
    codes: &[],
    links: &[],
    migrations: &[],
    mount: |_| Ok(yizhan_kit::Mounted::new(OpenApiRouter::new(), Router::new())),
};

/// Every room's lists, joined; a duplicate is refused.
pub fn joined() -> Result<Joined, String> {
    let mut all: Vec<&'static Room> = vec![&KIT];
    all.extend(ROOMS.iter().copied());
    room::join(&all)
}

/// Join the rooms and make their lists (texts, tabs, tiles, services, links)
/// the ones pages read. Panics when two rooms claim the same entry: a build
/// that must not start.
pub fn install() {
    let joined = joined().unwrap_or_else(|e| panic!("the rooms do not join: {e}"));
    room::install(&joined).unwrap_or_else(|e| panic!("the rooms' lists do not install: {e}"));
}

/// Every room's migrations, in the order the rooms are joined.
pub fn all_migrations() -> Vec<&'static MigrationSet> {
    match joined() {
        Ok(j) => j.migrations,
        Err(e) => panic!("the rooms do not join: {e}"),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "yizhan API", version = "1", description = "One account, one wallet, every service. Errors are application/problem+json (RFC 9457) with a stable `code`."),
    components(schemas(yizhan_kit::problem::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
    }
}

/// How notifications render in mail: the joined catalogue (installed by `app`).
pub fn mail_renderer() -> yizhan_notify::Renderer {
    install();
    Arc::new(|lang: &str, m: &yizhan_core::Msg| yizhan_kit::i18n::render(Lang::parse(lang).unwrap_or_default(), m))
}

/// The services every room may ask for, by type.
pub fn deps(state: &AppState) -> Deps {
    Deps::new()
        .with(state.ctx.clone())
        .with(state.identity.clone())
        .with(state.audit.clone())
        .with(state.notify.clone())
        .with(state.ledger.clone())
        .with(state.pay.clone())
        .with(state.idempotency.clone())
        .with(state.credit.clone())
        .with(state.booking.clone())
        .with(state.city.clone())
        .with(state.config.clone())
        .with::<Accounts>(Arc::new(Composed(state.clone())))
}

/// The export and deletion of an account, composed across the rooms' domains.
struct Composed(AppState);

#[async_trait::async_trait]
impl AccountLifecycle for Composed {
    async fn export(&self, user_id: &str) -> yizhan_core::Result<serde_json::Value> {
        account::export(&self.0, user_id).await
    }

    async fn delete(&self, user_id: &str) -> yizhan_core::Result<serde_json::Value> {
        account::delete(&self.0, user_id).await
    }
}

/// The whole application: API, OpenAPI document, pages, health, metrics.
///
/// Panics when two rooms claim the same text, route, tile or prefix, or a
/// room lacks a service it needs: a build that cannot start.
pub fn app(state: AppState, ready: Arc<AtomicBool>) -> Router {
    install();
    // A sandbox gateway moves no real money: every page says so, and /healthz too.
    let sandbox = state.pay.gateway_is_sandbox();
    yizhan_kit::page::install_notice(sandbox.then_some(SANDBOX_BAND));
    let deps = deps(&state);
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let mut pages = pages::router().with_state(state.clone());
    for r in ROOMS {
        let m = (r.mount)(&deps).unwrap_or_else(|e| panic!("room {} cannot mount: {e}", r.name));
        api = api.merge(m.api);
        pages = pages.merge(m.pages);
    }
    let (api_router, openapi) = api.split_for_parts();
    let access = joined().map(|j| j.access).unwrap_or_default();
    let doc = document::complete(serde_json::to_value(&openapi).unwrap_or_default(), &access);
    let openapi_json = Arc::new(serde_json::to_string_pretty(&doc).unwrap_or_default());
    let secure = state.config.secure_cookies;
    let metrics = state.metrics.clone();
    let timeout = std::time::Duration::from_millis(state.config.request_timeout_ms);
    let request_id = axum::http::HeaderName::from_static("x-request-id");

    Router::new()
        .merge(api_router)
        .merge(pages)
        .merge(yizhan_kit::page::router(state.config.clone()))
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", get(move || healthz(ready.clone(), sandbox)))
        .merge(Router::new().route("/metrics", get(metrics_text)).with_state(state.clone()))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(timeout, security::timeout))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        .layer(axum::middleware::from_fn(security::refuse_nul))
        .layer(axum::middleware::from_fn(problem::localize))
        .layer(axum::middleware::from_fn(security::csrf_cookie))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::Extension(security::CsrfKey::new(state.ctx.vault.clone())))
        .layer(axum::Extension(security::SecureCookies(secure)))
        .layer(axum::Extension(yizhan_kit::extract::TrustedProxies(Arc::new(state.config.trusted_proxies.clone()))))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, security::MakeId))
        // Outermost: pages and JSON go compressed (brotli or gzip) to a client
        // that asks, after every other layer has seen the plain body.
        .layer(CompressionLayer::new().br(true).gzip(true))
}

/// The wallet room's words for the band every page shows while the gateway is the sandbox.
pub const SANDBOX_BAND: &str = "wallet.sandbox_band";

async fn healthz(ready: Arc<AtomicBool>, sandbox: bool) -> impl IntoResponse {
    if ready.load(Ordering::SeqCst) {
        (StatusCode::OK, Json(serde_json::json!({"status": "ok", "sandbox": sandbox})))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"status": "starting"})))
    }
}

async fn metrics_text(State(s): State<AppState>, req: axum::extract::Request) -> axum::response::Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    if !metrics::may_read(peer, req.headers(), &s.config.metrics_allow, s.config.metrics_token.as_deref()) {
        return problem::ApiError(yizhan_core::Error::forbidden("error.metrics.forbidden")).into_response();
    }
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
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"))], body).into_response()
}

async fn not_found(lang: Lang, uri: axum::http::Uri) -> axum::response::Response {
    if uri.path().starts_with("/api/") {
        problem::ApiError(yizhan_core::Error::not_found("route")).into_response()
    } else {
        yizhan_kit::page::failure_page(
            lang,
            &yizhan_core::Error::new(yizhan_core::Code::NotFound, "error.not_found.page"),
        )
    }
}
