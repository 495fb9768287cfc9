//! Proof over the API: a person's plates (bound with a registration the
//! verifier checked) and disputes; city-department staff verifying a person
//! or a vehicle at a counter and deciding disputes.

use crate::{ApiUser, IdentityRoom};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_core::Error;
use yizhan_identity::{Claim, DisputeKind};
use yizhan_kit::extract::{ApiJson, ApiQuery};
use yizhan_kit::problem::{ApiResult, Problem};

pub fn router() -> OpenApiRouter<IdentityRoom> {
    OpenApiRouter::new()
        .routes(routes!(add_vehicle, list_vehicles))
        .routes(routes!(remove_vehicle))
        .routes(routes!(open_dispute, my_disputes))
        .routes(routes!(counter_verify))
        .routes(routes!(counter_vehicle))
        .routes(routes!(list_disputes))
        .routes(routes!(resolve_dispute))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleReq {
    /// A mainland plate, e.g. 浙A12345.
    pub plate: String,
    /// The vehicle registration certificate number (12 digits), checked by the verifier.
    pub certificate: String,
}

/// Bind my car's plate, proved by its registration certificate, so its fines reach me.
#[utoipa::path(post, path = "/api/v1/me/vehicles", tag = "me", request_body = VehicleReq,
    responses((status = 201, body = Object, description = "the vehicle"),
        (status = 409, body = Problem, description = "bound to another account (bound_elsewhere: open a dispute), or not verified yet"),
        (status = 422, body = Problem), (status = 503, body = Problem, description = "the verifier cannot be asked now")))]
async fn add_vehicle(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<VehicleReq>,
) -> ApiResult<(StatusCode, Json<yizhan_identity::Vehicle>)> {
    Ok((StatusCode::CREATED, Json(s.identity.bind_vehicle(&p.user_id, &req.plate, &req.certificate).await?)))
}

/// My plates.
#[utoipa::path(get, path = "/api/v1/me/vehicles", tag = "me",
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem)))]
async fn list_vehicles(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
) -> ApiResult<Json<Vec<yizhan_identity::Vehicle>>> {
    Ok(Json(s.identity.vehicles(&p.user_id).await?))
}

/// Unbind one of my plates (a car sold).
#[utoipa::path(delete, path = "/api/v1/me/vehicles/{plate}", tag = "me",
    params(("plate" = String, Path, description = "the plate, e.g. 浙A12345")),
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn remove_vehicle(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path(plate): Path<String>,
) -> ApiResult<StatusCode> {
    s.identity.remove_vehicle(&p.user_id, &plate).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeReq {
    /// id_number or plate.
    #[schema(value_type = String)]
    pub kind: DisputeKind,
    /// For an identity number: the real name and the number (asked of the verifier again).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub id_number: String,
    /// For a plate: the plate and its registration certificate number.
    #[serde(default)]
    pub plate: String,
    #[serde(default)]
    pub certificate: String,
}

/// Claim an identity number or a plate that is bound to another account; staff of a city department decide, the holder is told.
#[utoipa::path(post, path = "/api/v1/me/disputes", tag = "me", request_body = DisputeReq,
    responses((status = 201, body = Object, description = "the dispute"),
        (status = 409, body = Problem, description = "nothing to dispute, or another number on this account"),
        (status = 422, body = Problem, description = "invalid, or the verifier does not match"),
        (status = 503, body = Problem, description = "the verifier cannot be asked now")))]
async fn open_dispute(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<DisputeReq>,
) -> ApiResult<(StatusCode, Json<yizhan_identity::Dispute>)> {
    let claim = match req.kind {
        DisputeKind::IdNumber => Claim::IdNumber { name: &req.name, id_number: &req.id_number },
        DisputeKind::Plate => Claim::Plate { plate: &req.plate, certificate: &req.certificate },
    };
    Ok((StatusCode::CREATED, Json(s.identity.open_dispute(&p.user_id, claim).await?)))
}

/// The disputes I opened, newest first.
#[utoipa::path(get, path = "/api/v1/me/disputes", tag = "me",
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem)))]
async fn my_disputes(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
) -> ApiResult<Json<Vec<yizhan_identity::Dispute>>> {
    Ok(Json(s.identity.my_disputes(&p.user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterVerifyReq {
    /// The person at the counter.
    pub user_id: String,
    /// The name and number on the card shown.
    pub name: String,
    pub id_number: String,
    /// Move the number to this person when another account holds it.
    #[serde(default)]
    pub move_binding: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CounterVerifyResp {
    pub user_id: String,
    /// 2: verified in person.
    pub verification_level: i64,
}

/// Staff of a city department verify a person in person from their card (level 2); written to the person's access log.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/counter/verifications", tag = "tenancy", request_body = CounterVerifyReq,
    params(("id" = String, Path, description = "organisation id (a city department)")),
    responses((status = 200, body = CounterVerifyResp), (status = 403, body = Problem),
        (status = 409, body = Problem, description = "bound to another account (shown; move_binding moves it), or not a city department"),
        (status = 422, body = Problem)))]
async fn counter_verify(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CounterVerifyReq>,
) -> ApiResult<Json<CounterVerifyResp>> {
    let profile = s.identity.counter_verify(&p, &id, &req.user_id, &req.name, &req.id_number, req.move_binding).await?;
    Ok(Json(CounterVerifyResp { user_id: profile.user_id, verification_level: profile.verification_level }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterVehicleReq {
    pub user_id: String,
    pub plate: String,
    /// The registration certificate number seen (12 digits).
    pub certificate: String,
    #[serde(default)]
    pub move_binding: bool,
}

/// Staff of a city department (the traffic police) bind a plate to a person from the registration they see; written to the access log.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/counter/vehicles", tag = "tenancy", request_body = CounterVehicleReq,
    params(("id" = String, Path, description = "organisation id (a city department)")),
    responses((status = 201, body = Object, description = "the vehicle"), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn counter_vehicle(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CounterVehicleReq>,
) -> ApiResult<(StatusCode, Json<yizhan_identity::Vehicle>)> {
    let v =
        s.identity.counter_bind_vehicle(&p, &id, &req.user_id, &req.plate, &req.certificate, req.move_binding).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize, IntoParams)]
pub struct DisputeQuery {
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// At most 100 (default 50).
    pub limit: Option<i64>,
}

/// Open disputes, oldest first, for staff of a city department.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/disputes", tag = "tenancy",
    params(("id" = String, Path, description = "organisation id (a city department)"), DisputeQuery),
    responses((status = 200, body = Object, description = "items and next_cursor"), (status = 403, body = Problem),
        (status = 409, body = Problem)))]
async fn list_disputes(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DisputeQuery>,
) -> ApiResult<Json<yizhan_identity::DisputePage>> {
    Ok(Json(s.identity.list_disputes(&p, &id, q.after.as_deref(), q.limit).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveReq {
    /// uphold (the binding moves to the claimant) or reject.
    pub decision: String,
}

/// Decide a dispute; both persons are told and both access logs have it.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/disputes/{dispute_id}", tag = "tenancy", request_body = ResolveReq,
    params(("id" = String, Path, description = "organisation id (a city department)"), ("dispute_id" = String, Path)),
    responses((status = 200, body = Object, description = "the dispute"), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn resolve_dispute(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path((id, dispute_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<ResolveReq>,
) -> ApiResult<Json<yizhan_identity::StaffDispute>> {
    let uphold = match req.decision.as_str() {
        "uphold" => true,
        "reject" => false,
        _ => return Err(Error::field("decision", "identity.dispute.decision_invalid").into()),
    };
    Ok(Json(s.identity.resolve_dispute(&p, &id, &dispute_id, uphold).await?))
}
