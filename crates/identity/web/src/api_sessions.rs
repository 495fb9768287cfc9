//! The person's sessions and password over the API: list the devices signed
//! in, end one or all but this one, change the password, turn on a second
//! factor (TOTP).

use crate::{ApiUser, IdentityRoom};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_kit::extract::{bearer, ApiJson, ClientAddr};
use yizhan_kit::problem::{ApiResult, Problem};
use yizhan_kit::Lang;

pub fn router() -> OpenApiRouter<IdentityRoom> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, end_other_sessions))
        .routes(routes!(end_session))
        .routes(routes!(change_password))
        .routes(routes!(start_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(disable_totp))
        .routes(routes!(recovery_codes))
        .routes(routes!(change_login))
        .routes(routes!(confirm_login))
}

/// One live session (see `yizhan_identity::SessionInfo`).
#[derive(Serialize, ToSchema)]
pub struct SessionResp {
    /// Opaque id, for `DELETE /api/v1/me/sessions/{id}`.
    pub id: String,
    /// Browser and system, from the User-Agent; empty when unknown.
    pub device: String,
    /// The address it was opened from, masked to its network (no place database is used).
    pub network: String,
    /// Whether that network is the one this request comes from.
    pub this_network: bool,
    /// The session of this request.
    pub current: bool,
    pub created_at_ms: i64,
    /// Updated at most every five minutes.
    pub last_seen_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SessionsResp {
    pub sessions: Vec<SessionResp>,
}

#[derive(Serialize, ToSchema)]
pub struct EndedResp {
    /// How many sessions ended.
    pub ended: u64,
}

fn token(headers: &HeaderMap) -> &str {
    bearer(headers).unwrap_or_default()
}

/// My live sessions (at most 100, the newest used first), this one marked.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me",
    responses((status = 200, body = SessionsResp), (status = 401, body = Problem)))]
async fn list_sessions(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Json<SessionsResp>> {
    let list = s.identity.sessions(&p.user_id, token(&headers), &addr).await?;
    let sessions = list
        .into_iter()
        .map(|i| SessionResp {
            id: i.id,
            device: i.device,
            network: i.network,
            this_network: i.this_network,
            current: i.current,
            created_at_ms: i.created_at_ms,
            last_seen_ms: i.last_seen_ms,
            expires_at_ms: i.expires_at_ms,
        })
        .collect();
    Ok(Json(SessionsResp { sessions }))
}

/// End every session of mine but this one.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "me",
    responses((status = 200, body = EndedResp), (status = 401, body = Problem)))]
async fn end_other_sessions(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    headers: HeaderMap,
) -> ApiResult<Json<EndedResp>> {
    let ended = s.identity.end_other_sessions(&p.user_id, token(&headers)).await?;
    Ok(Json(EndedResp { ended }))
}

/// End one session of mine (this one too, like logging out).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me",
    params(("id" = String, Path, description = "a session id from the list")),
    responses((status = 204), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "no live session of mine has this id")))]
async fn end_session(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.identity.end_session(&p.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReq {
    pub current_password: String,
    pub new_password: String,
}

/// Change my password: the current one is needed; every other session ends and I am told.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = PasswordReq,
    responses((status = 204), (status = 401, body = Problem),
        (status = 422, body = Problem, description = "the current password is wrong, or the new one is not allowed"),
        (status = 429, body = Problem, description = "too many wrong current passwords; Retry-After says when")))]
async fn change_password(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PasswordReq>,
) -> ApiResult<StatusCode> {
    s.identity.change_password(&p.user_id, token(&headers), &req.current_password, &req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct TotpStartResp {
    /// The secret in base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/yizhan:LOGIN?secret=...&issuer=yizhan`, for a QR code.
    pub otpauth_uri: String,
}

/// Start turning on a second factor (TOTP): a new pending secret until a code confirms it.
#[utoipa::path(post, path = "/api/v1/me/totp", tag = "me",
    responses((status = 200, body = TotpStartResp), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "the second factor is already on")))]
async fn start_totp(State(s): State<IdentityRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<TotpStartResp>> {
    let e = s.identity.start_totp(&p.user_id).await?;
    Ok(Json(TotpStartResp { secret: e.secret, otpauth_uri: e.otpauth_uri }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmReq {
    /// The 6-digit code the app shows now.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct TotpConfirmResp {
    /// Ten one-time recovery codes, shown only now.
    pub recovery_codes: Vec<String>,
}

/// Confirm the pending secret with a current code: the second factor is on; log-ins then need `totp`.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "me", request_body = TotpConfirmReq,
    responses((status = 200, body = TotpConfirmResp), (status = 401, body = Problem, description = "wrong code (totp_invalid)"),
        (status = 404, body = Problem, description = "no enrolment was started"),
        (status = 409, body = Problem, description = "the second factor is already on")))]
async fn confirm_totp(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<TotpConfirmReq>,
) -> ApiResult<Json<TotpConfirmResp>> {
    let recovery_codes = s.identity.confirm_totp(&p.user_id, &req.code).await?;
    Ok(Json(TotpConfirmResp { recovery_codes }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpOffReq {
    /// The account password.
    pub password: String,
    /// A current 6-digit code, or an unused recovery code.
    pub code: String,
}

/// Turn my second factor off (the password and a code needed); I am told.
#[utoipa::path(post, path = "/api/v1/me/totp/disable", tag = "me", request_body = TotpOffReq,
    responses((status = 204), (status = 400, body = Problem),
        (status = 401, body = Problem, description = "wrong code (totp_invalid, totp_replayed, totp_required)"),
        (status = 404, body = Problem, description = "the second factor is not on"),
        (status = 422, body = Problem, description = "wrong password"),
        (status = 429, body = Problem, description = "too many wrong passwords; Retry-After says when")))]
async fn disable_totp(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<TotpOffReq>,
) -> ApiResult<StatusCode> {
    s.identity.disable_totp(&p.user_id, &req.password, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New recovery codes (the old ones stop working), with a current code.
#[utoipa::path(post, path = "/api/v1/me/totp/recovery-codes", tag = "me", request_body = TotpConfirmReq,
    responses((status = 200, body = TotpConfirmResp), (status = 400, body = Problem),
        (status = 401, body = Problem, description = "wrong code (totp_invalid, totp_replayed, totp_required)"),
        (status = 404, body = Problem, description = "the second factor is not on"),
        (status = 422, body = Problem)))]
async fn recovery_codes(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<TotpConfirmReq>,
) -> ApiResult<Json<TotpConfirmResp>> {
    let recovery_codes = s.identity.regenerate_recovery_codes(&p.user_id, &req.code).await?;
    Ok(Json(TotpConfirmResp { recovery_codes }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginChangeReq {
    /// The new mobile number or e-mail address.
    pub login: String,
    /// The account password.
    pub password: String,
}

/// Start changing my login: a code goes to the new one (a login another
/// account holds gets the same answer and no code).
#[utoipa::path(post, path = "/api/v1/me/login", tag = "me", request_body = LoginChangeReq,
    responses((status = 202, description = "a code was sent to the new login"), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 422, body = Problem, description = "wrong password, or the login is not valid"),
        (status = 429, body = Problem, description = "too many codes or wrong passwords; Retry-After says when")))]
async fn change_login(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ClientAddr(addr): ClientAddr,
    lang: Lang,
    ApiJson(req): ApiJson<LoginChangeReq>,
) -> ApiResult<StatusCode> {
    s.identity.start_login_change(&p.user_id, &req.login, &req.password, &addr, lang.code()).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Serialize, ToSchema)]
pub struct LoginChangedResp {
    /// The new login.
    pub login: String,
    pub login_verified: bool,
}

/// Finish changing my login with the code sent to the new one; the old one is told.
#[utoipa::path(post, path = "/api/v1/me/login/confirm", tag = "me", request_body = TotpConfirmReq,
    responses((status = 200, body = LoginChangedResp), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 422, body = Problem, description = "code_invalid"),
        (status = 429, body = Problem, description = "too many codes checked from this address; Retry-After says when")))]
async fn confirm_login(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ClientAddr(addr): ClientAddr,
    lang: Lang,
    ApiJson(req): ApiJson<TotpConfirmReq>,
) -> ApiResult<Json<LoginChangedResp>> {
    let login = s.identity.confirm_login_change(&p.user_id, &req.code, &addr, lang.code()).await?;
    Ok(Json(LoginChangedResp { login, login_verified: true }))
}
