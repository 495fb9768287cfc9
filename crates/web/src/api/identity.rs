//! Accounts: register, log in and out, the person's own data.

use crate::account;
use crate::extract::{bearer, ApiJson, ApiUser, ClientAddr};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me, delete_me))
        .routes(routes!(real_name))
        .routes(routes!(access_log))
        .routes(routes!(export))
        .routes(routes!(set_city))
        .routes(routes!(notifications))
        .routes(routes!(notifications_read))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterReq {
    /// A mainland mobile number or an e-mail address.
    pub login: String,
    pub password: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegisterResp {
    pub user_id: String,
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", security(()), request_body = RegisterReq,
    responses((status = 201, body = RegisterResp), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn register(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<RegisterReq>,
) -> ApiResult<(StatusCode, Json<RegisterResp>)> {
    let user_id = account::register(&s, &req.login, &req.password, &req.name).await?;
    Ok((StatusCode::CREATED, Json(RegisterResp { user_id })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginReq {
    pub login: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResp {
    /// Send as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// Expiry, epoch milliseconds.
    pub expires_at: i64,
    pub user_id: String,
}

/// Log in; returns a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()), request_body = LoginReq,
    responses((status = 200, body = LoginResp), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn login(
    State(s): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<LoginReq>,
) -> ApiResult<Json<LoginResp>> {
    let sess = s.identity.login(&req.login, &req.password, &addr).await?;
    Ok(Json(LoginResp { token: sess.token, expires_at: sess.expires_at_ms, user_id: sess.user_id }))
}

/// Revoke the token of this request.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(State(s): State<AppState>, _u: ApiUser, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(t) = bearer(&headers) {
        s.identity.logout(t).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// My profile (identity number masked).
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Object, description = "profile"), (status = 401, body = Problem)))]
async fn me(State(s): State<AppState>, ApiUser(p): ApiUser) -> ApiResult<Json<yizhan_identity::Profile>> {
    Ok(Json(s.identity.profile(&p.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealNameReq {
    pub name: String,
    /// 18-character resident identity number (GB 11643).
    pub id_number: String,
}

/// Verify my real name with a resident identity number.
#[utoipa::path(post, path = "/api/v1/me/real-name", tag = "me", request_body = RealNameReq,
    responses((status = 200, body = Object, description = "profile"), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn real_name(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<RealNameReq>,
) -> ApiResult<Json<yizhan_identity::Profile>> {
    Ok(Json(s.identity.verify_real_name(&p.user_id, &req.name, &req.id_number).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    /// Entries before this sequence number (for the next page).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessLogResp {
    #[schema(value_type = Vec<Object>)]
    pub entries: Vec<yizhan_audit::AccessEntry>,
    /// Whether the hash chain verifies (no entry removed or altered).
    pub chain_ok: bool,
    pub next_before: Option<i64>,
}

/// Who read my data: the append-only, hash-chained access log.
#[utoipa::path(get, path = "/api/v1/me/access-log", tag = "me", params(PageQuery),
    responses((status = 200, body = AccessLogResp), (status = 401, body = Problem)))]
async fn access_log(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<AccessLogResp>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let entries = s.audit.list(&p.user_id, limit, q.before).await?;
    let chain = s.audit.verify(&p.user_id).await?;
    let next_before = if entries.len() as i64 == limit { entries.last().map(|e| e.seq) } else { None };
    Ok(Json(AccessLogResp { entries, chain_ok: chain.ok, next_before }))
}

/// Everything the platform holds about me, as JSON; each section says whether it survives deletion.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "me",
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
async fn export(State(s): State<AppState>, ApiUser(p): ApiUser) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(account::export(&s, &p.user_id).await?))
}

/// Delete my account: erase what may be erased, keep what law or money requires.
#[utoipa::path(delete, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Object, description = "what was erased and what was kept"), (status = 401, body = Problem)))]
async fn delete_me(State(s): State<AppState>, ApiUser(p): ApiUser) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(account::delete(&s, &p.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCityReq {
    pub city_id: String,
}

/// Choose my home city (its services appear on the home screen).
#[utoipa::path(put, path = "/api/v1/me/city", tag = "me", request_body = SetCityReq,
    responses((status = 204), (status = 404, body = Problem)))]
async fn set_city(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<SetCityReq>,
) -> ApiResult<StatusCode> {
    s.identity.set_home_city(&p.user_id, &req.city_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct InboxResp {
    pub unread: i64,
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<yizhan_notify::Notification>,
}

/// My inbox with the unread count.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "me",
    responses((status = 200, body = InboxResp), (status = 401, body = Problem)))]
async fn notifications(State(s): State<AppState>, ApiUser(p): ApiUser) -> ApiResult<Json<InboxResp>> {
    let items = s.notify.inbox(&p.user_id, 100).await?;
    let unread = s.notify.unread_count(&p.user_id).await?;
    Ok(Json(InboxResp { unread, items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadReq {
    /// One notification, or all when absent.
    pub id: Option<String>,
}

/// Mark one or all of my notifications as read.
#[utoipa::path(post, path = "/api/v1/me/notifications/read", tag = "me", request_body = ReadReq,
    responses((status = 204), (status = 401, body = Problem)))]
async fn notifications_read(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<ReadReq>,
) -> ApiResult<StatusCode> {
    s.notify.mark_read(&p.user_id, req.id.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
