//! Accounts over the API: register, log in and out, the person's own profile,
//! real-name verification, the home city.

use crate::{ApiUser, IdentityRoom};
use axum::extract::State;
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
        .routes(routes!(register))
        .routes(routes!(verify))
        .routes(routes!(resend))
        .routes(routes!(password_reset))
        .routes(routes!(password_reset_confirm))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(real_name))
        .routes(routes!(set_city))
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
    /// Always false: the login is proved by the code sent to it (`POST /api/v1/auth/verify`).
    pub login_verified: bool,
}

/// Create an account; a 6-digit code goes to the login (a text message to a
/// mobile number, a mail to an address). Until the login is proved the
/// account can sign in and look around, but is not found by its login and
/// cannot pay. A login another account holds gets the same answer (its owner is told).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", security(()), request_body = RegisterReq,
    responses((status = 201, body = RegisterResp), (status = 422, body = Problem),
        (status = 429, body = Problem, description = "Too many new accounts from this address; Retry-After says when")))]
async fn register(
    State(s): State<IdentityRoom>,
    ClientAddr(addr): ClientAddr,
    lang: Lang,
    ApiJson(req): ApiJson<RegisterReq>,
) -> ApiResult<(StatusCode, Json<RegisterResp>)> {
    s.identity.count_registration(&addr).await?;
    let sign_up = yizhan_identity::SignUp {
        login: &req.login,
        password: &req.password,
        name: &req.name,
        client_addr: &addr,
        lang: lang.code(),
    };
    let r = s.identity.sign_up(sign_up).await?;
    Ok((StatusCode::CREATED, Json(RegisterResp { user_id: r.user_id, login_verified: r.login_verified })))
}

/// The signed-in caller, if the request carries a live token (else nobody).
async fn caller(s: &IdentityRoom, headers: &HeaderMap) -> Option<String> {
    let token = bearer(headers)?;
    s.identity.authenticate(token).await.ok().map(|p| p.user_id)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyReq {
    /// The login registered with.
    pub login: String,
    /// The 6-digit code sent to it.
    pub code: String,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyResp {
    pub login_verified: bool,
}

/// Prove the login with the code sent to it (10 minutes, 5 tries, once).
/// With a bearer token, the code of that account's registration; the first
/// account to prove a login owns it.
#[utoipa::path(post, path = "/api/v1/auth/verify", tag = "auth", security(()), request_body = VerifyReq,
    responses((status = 200, body = VerifyResp),
        (status = 400, body = Problem),
        (status = 422, body = Problem, description = "code_invalid: the same answer to a wrong login, a wrong, used, expired or dead code"),
        (status = 429, body = Problem, description = "too many codes checked from this address; Retry-After says when")))]
async fn verify(
    State(s): State<IdentityRoom>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<VerifyReq>,
) -> ApiResult<Json<VerifyResp>> {
    let me = caller(&s, &headers).await;
    s.identity.prove_login(&req.login, &req.code, &addr, me.as_deref()).await?;
    Ok(Json(VerifyResp { login_verified: true }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginOnlyReq {
    /// A mainland mobile number or an e-mail address.
    pub login: String,
}

/// Send a new registration code (the one before stops working). Accepted
/// whether or not anyone registered the login.
#[utoipa::path(post, path = "/api/v1/auth/resend", tag = "auth", security(()), request_body = LoginOnlyReq,
    responses((status = 202, description = "accepted"), (status = 400, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem, description = "too many codes to this login or from this address; Retry-After says when")))]
async fn resend(
    State(s): State<IdentityRoom>,
    ClientAddr(addr): ClientAddr,
    lang: Lang,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginOnlyReq>,
) -> ApiResult<StatusCode> {
    let me = caller(&s, &headers).await;
    s.identity.resend_code(&req.login, &addr, lang.code(), me.as_deref()).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Forgot the password: a code to set a new one goes to the login if an
/// account proved it. Accepted whether or not one did.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", security(()), request_body = LoginOnlyReq,
    responses((status = 202, description = "accepted"), (status = 400, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem, description = "too many codes to this login or from this address; Retry-After says when")))]
async fn password_reset(
    State(s): State<IdentityRoom>,
    ClientAddr(addr): ClientAddr,
    lang: Lang,
    ApiJson(req): ApiJson<LoginOnlyReq>,
) -> ApiResult<StatusCode> {
    s.identity.request_password_reset(&req.login, &addr, lang.code()).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmReq {
    pub login: String,
    /// The 6-digit code sent to the login.
    pub code: String,
    /// The new password.
    pub password: String,
}

/// Set a new password with the code: every session ends; the account is told
/// (inbox, and a mail or text message to the login).
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", security(()), request_body = ResetConfirmReq,
    responses((status = 204), (status = 400, body = Problem),
        (status = 422, body = Problem, description = "code_invalid (one answer for every wrong login or code), or the new password is not allowed"),
        (status = 429, body = Problem, description = "too many codes checked from this address; Retry-After says when")))]
async fn password_reset_confirm(
    State(s): State<IdentityRoom>,
    ClientAddr(addr): ClientAddr,
    lang: Lang,
    ApiJson(req): ApiJson<ResetConfirmReq>,
) -> ApiResult<StatusCode> {
    s.identity.confirm_password_reset(&req.login, &req.code, &req.password, &addr, lang.code()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginReq {
    pub login: String,
    pub password: String,
    /// When the second factor is on: the 6-digit code of the authenticator app, or a recovery code.
    #[serde(default)]
    pub totp: Option<String>,
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
    responses((status = 200, body = LoginResp),
        (status = 401, body = Problem, description = "invalid_credentials; or, after the right password, totp_required, totp_invalid or totp_replayed"),
        (status = 429, body = Problem)))]
async fn login(
    State(s): State<IdentityRoom>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginReq>,
) -> ApiResult<Json<LoginResp>> {
    let attempt = yizhan_identity::LoginAttempt {
        login: &req.login,
        password: &req.password,
        client_addr: &addr,
        user_agent: crate::user_agent(&headers),
        totp: req.totp.as_deref(),
    };
    let sess = s.identity.sign_in(attempt).await?;
    Ok(Json(LoginResp { token: sess.token, expires_at: sess.expires_at_ms, user_id: sess.user_id }))
}

/// Revoke the token of this request.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(State(s): State<IdentityRoom>, _u: ApiUser, headers: HeaderMap) -> ApiResult<StatusCode> {
    if let Some(t) = bearer(&headers) {
        s.identity.logout(t).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// My profile (identity number masked).
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Object, description = "profile"), (status = 401, body = Problem)))]
async fn me(State(s): State<IdentityRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<yizhan_identity::Profile>> {
    Ok(Json(s.identity.profile(&p.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealNameReq {
    pub name: String,
    /// 18-character resident identity number (GB 11643).
    pub id_number: String,
}

/// Verify my real name with a resident identity number: the identity verifier is asked first.
#[utoipa::path(post, path = "/api/v1/me/real-name", tag = "me", request_body = RealNameReq,
    responses((status = 200, body = Object, description = "profile"),
        (status = 409, body = Problem, description = "bound to another account (bound_elsewhere: open a dispute), or another number is on this account"),
        (status = 422, body = Problem, description = "invalid, or the verifier does not match the name and number"),
        (status = 503, body = Problem, description = "the verifier cannot be asked now (verifier_unavailable)")))]
async fn real_name(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<RealNameReq>,
) -> ApiResult<Json<yizhan_identity::Profile>> {
    Ok(Json(s.identity.verify_real_name(&p.user_id, &req.name, &req.id_number).await?))
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
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<SetCityReq>,
) -> ApiResult<StatusCode> {
    s.identity.set_home_city(&p.user_id, &req.city_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
