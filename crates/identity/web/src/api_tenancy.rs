//! Cities, organisations, staff, and staff reading a resident's data.

use crate::{ApiAdmin, ApiUser, IdentityRoom};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_identity::{OrgKind, Role};
use yizhan_kit::extract::{ApiJson, ApiQuery};
use yizhan_kit::problem::{ApiResult, Problem};

pub fn router() -> OpenApiRouter<IdentityRoom> {
    OpenApiRouter::new()
        .routes(routes!(create_city, list_cities))
        .routes(routes!(create_org, list_orgs))
        .routes(routes!(add_member, list_members))
        .routes(routes!(read_resident))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CityReq {
    pub name: String,
    /// Capability keys offered in this city (wallet, city, health, shopping, live, mobility, credit).
    #[serde(default)]
    pub services: Vec<String>,
}

/// Create a city (platform administrators).
#[utoipa::path(post, path = "/api/v1/cities", tag = "tenancy", request_body = CityReq,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn create_city(
    State(s): State<IdentityRoom>,
    ApiAdmin(p): ApiAdmin,
    ApiJson(req): ApiJson<CityReq>,
) -> ApiResult<(StatusCode, Json<yizhan_identity::City>)> {
    Ok((StatusCode::CREATED, Json(s.identity.create_city(&p, &req.name, req.services).await?)))
}

/// All cities.
#[utoipa::path(get, path = "/api/v1/cities", tag = "tenancy",
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem)))]
async fn list_cities(State(s): State<IdentityRoom>, _u: ApiUser) -> ApiResult<Json<Vec<yizhan_identity::City>>> {
    Ok(Json(s.identity.list_cities().await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgReq {
    pub city_id: String,
    /// city_department, hospital, merchant, mobility_operator or court.
    #[schema(value_type = String)]
    pub kind: OrgKind,
    pub name: String,
}

/// Create an organisation in a city (platform administrators).
#[utoipa::path(post, path = "/api/v1/orgs", tag = "tenancy", request_body = OrgReq,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn create_org(
    State(s): State<IdentityRoom>,
    ApiAdmin(p): ApiAdmin,
    ApiJson(req): ApiJson<OrgReq>,
) -> ApiResult<(StatusCode, Json<yizhan_identity::Org>)> {
    Ok((StatusCode::CREATED, Json(s.identity.create_org(&p, &req.city_id, req.kind, &req.name).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct OrgQuery {
    pub city_id: Option<String>,
}

/// Organisations, optionally of one city.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "tenancy", params(OrgQuery),
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem)))]
async fn list_orgs(
    State(s): State<IdentityRoom>,
    _u: ApiUser,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<Vec<yizhan_identity::Org>>> {
    Ok(Json(s.identity.list_orgs(q.city_id.as_deref()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberReq {
    pub user_id: String,
    /// admin or operator.
    #[schema(value_type = String)]
    pub role: Role,
}

/// Add staff to an organisation (platform administrators and the organisation's admins).
#[utoipa::path(post, path = "/api/v1/orgs/{id}/members", tag = "tenancy", request_body = MemberReq,
    params(("id" = String, Path, description = "organisation id")),
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn add_member(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MemberReq>,
) -> ApiResult<(StatusCode, Json<yizhan_identity::Member>)> {
    Ok((StatusCode::CREATED, Json(s.identity.add_member(&p, &id, &req.user_id, req.role).await?)))
}

/// Staff of an organisation (its staff and platform administrators).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/members", tag = "tenancy",
    params(("id" = String, Path, description = "organisation id")),
    responses((status = 200, body = Vec<Object>), (status = 403, body = Problem)))]
async fn list_members(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<yizhan_identity::Member>>> {
    Ok(Json(s.identity.list_members(&p, &id).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct ReadQuery {
    /// Why staff reads this person's data; shown to the person in their access log.
    pub reason: Option<String>,
    /// Also reveal the full identity number (logged separately).
    pub include_id_number: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct StaffViewDoc {
    #[schema(value_type = Object)]
    pub resident: yizhan_identity::StaffView,
}

/// Staff of an organisation read a resident's profile; the read is written to the resident's access log.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/residents/{user_id}", tag = "tenancy",
    params(("id" = String, Path, description = "organisation id"), ("user_id" = String, Path), ReadQuery),
    responses((status = 200, body = StaffViewDoc), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn read_resident(
    State(s): State<IdentityRoom>,
    ApiUser(p): ApiUser,
    Path((id, user_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> ApiResult<Json<StaffViewDoc>> {
    let reason = q.reason.unwrap_or_default();
    let view = s.identity.staff_read_profile(&p, &id, &user_id, &reason, q.include_id_number.unwrap_or(false)).await?;
    Ok(Json(StaffViewDoc { resident: view }))
}
