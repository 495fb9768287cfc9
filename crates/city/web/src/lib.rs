//! The city services room's HTTP side: a city's catalogue, a service and its
//! slots, applying (with a booking for an appointment service), the
//! resident's applications, and the department's publishing and queue.

mod pages;
mod texts;

use askama::Template;
use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_booking::{SlotView, DAY_MS};
use yizhan_city::{Application, CityHall, CityService, Invitation, NewService, QueueItem, Status};
use yizhan_core::{Ctx, Error};
use yizhan_identity::{Identity, Role};
use yizhan_identity_web::{person_layout, ApiUser, PageUser};
use yizhan_kit::authz::{r, Access, RouteRule};
use yizhan_kit::extract::Csrf;
use yizhan_kit::extract::{ApiJson, ApiQuery};
use yizhan_kit::page::{failure_page, filters, render, Layout, Tile};
use yizhan_kit::problem::{ApiResult, Problem};
use yizhan_kit::Lang;
use yizhan_kit::{Deps, Mounted, Room};
use yizhan_notify::Notify;

#[derive(Clone, FromRef)]
pub struct CityRoom {
    pub ctx: Ctx,
    pub identity: Identity,
    pub hall: CityHall,
    pub notify: Notify,
}

pub static ROOM: Room = Room {
    name: "city",
    prefixes: &[
        "/city",
        "/api/v1/cities/{id}/services",
        "/api/v1/services",
        "/api/v1/appointments",
        "/api/v1/me/applications",
        "/api/v1/me/invitations",
        "/api/v1/me/uploads",
        "/api/v1/orgs/{id}/services",
        "/api/v1/orgs/{id}/applications",
        "/api/v1/orgs/{id}/uploads",
    ],
    texts: texts::TEXTS,
    access: &[
        r("GET", "/api/v1/cities/{id}/services", Access::Public),
        r("GET", "/api/v1/services/{id}", Access::Public),
        r("GET", "/api/v1/services/{id}/slots", Access::Public),
        r("POST", "/api/v1/services/{id}/applications", Access::Resident),
        r("GET", "/api/v1/services/{id}/draft", Access::Resident),
        r("PUT", "/api/v1/services/{id}/draft", Access::Resident),
        r("DELETE", "/api/v1/services/{id}/draft", Access::Resident),
        r("POST", "/api/v1/services/{id}/uploads", Access::Resident),
        r("GET", "/api/v1/me/uploads/{id}", Access::Resident),
        r("GET", "/api/v1/orgs/{id}/uploads/{upload_id}", Access::OrgStaff),
        r("POST", "/api/v1/appointments", Access::Resident),
        r("GET", "/api/v1/me/applications", Access::Resident),
        r("POST", "/api/v1/me/applications/{id}/answers", Access::Resident),
        r("POST", "/api/v1/orgs/{id}/services", Access::OrgAdmin),
        r("GET", "/api/v1/orgs/{id}/applications", Access::OrgStaff),
        r("GET", "/api/v1/orgs/{id}/applications/{application_id}", Access::OrgStaff),
        r("POST", "/api/v1/orgs/{id}/applications/{application_id}/status", Access::OrgStaff),
        r("POST", "/api/v1/orgs/{id}/applications/{application_id}/deposit-return", Access::OrgStaff),
        r("POST", "/api/v1/me/invitations", Access::Resident),
        r("GET", "/api/v1/me/invitations", Access::Resident),
        r("GET", "/api/v1/me/invitations/{id}", Access::Resident),
        r("POST", "/api/v1/me/invitations/{id}/confirm", Access::Resident),
        r("POST", "/api/v1/me/invitations/{id}/decline", Access::Resident),
    ] as &[RouteRule],
    tiles: &[Tile {
        order: 40,
        key: yizhan_city::CAPABILITY,
        href: "/city",
        icon: "list",
        label_key: "service.city",
        everywhere: false,
    }],
    nav: &[],
    city_services: &[yizhan_city::CAPABILITY],
    codes: &[yizhan_city::codes::ALL],
    links: &[
        ("invitation", "/city/invitations/{id}"),
        ("appointment", "/city/appointments"),
        ("application", "/city/applications/{id}"),
        (yizhan_city::STAFF_APPLICATION, "/city/staff/applications/{id}"),
    ],
    migrations: &[&yizhan_city::MIGRATIONS],
    mount,
};

fn mount(d: &Deps) -> Result<Mounted, String> {
    let room = CityRoom { ctx: d.get()?, identity: d.get()?, hall: d.get()?, notify: d.get()? };
    let pages = Router::new()
        .route("/city", get(catalogue_page))
        .route("/city/services/{id}", get(service_page))
        .route("/city/services/{id}/hold", post(pages::hold_slot))
        .route("/city/holds/{id}", get(pages::form_page::<false>))
        .route("/city/holds/{id}/check", post(pages::check_answers::<false>))
        .route("/city/holds/{id}/book", post(pages::confirm::<false>))
        .route("/city/appointments", get(pages::appointments_page))
        .route("/city/appointments/{id}/cancel", post(pages::cancel))
        .route("/city/appointments/{id}/ics", get(pages::ics))
        .route("/city/slots/{id}", get(pages::slot_page))
        .route("/city/slots/{id}/waitlist", post(pages::join_waitlist))
        .route("/city/slots/{id}/lottery", post(pages::enter_lottery))
        .route("/city/invitations", get(pages::invitations_page))
        .route("/city/invitations/{id}", get(pages::invitation_page))
        .route("/city/invitations/{id}/confirm", post(pages::confirm_invitation))
        .route("/city/invitations/{id}/decline", post(pages::decline_invitation))
        .route("/city/holds/{id}/draft", post(pages::save_draft::<false>))
        .route(
            "/city/holds/{id}/upload",
            post(pages::upload_file::<false>).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/city/services/{id}/apply", get(pages::form_page::<true>))
        .route("/city/services/{id}/apply/check", post(pages::check_answers::<true>))
        .route("/city/services/{id}/apply/submit", post(pages::confirm::<true>))
        .route("/city/services/{id}/apply/draft", post(pages::save_draft::<true>))
        .route(
            "/city/services/{id}/apply/upload",
            post(pages::upload_file::<true>).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/city/applications", get(pages::applications_page))
        .route("/city/applications/{id}", get(pages::application_page))
        .route(
            "/city/applications/{id}/answers",
            post(pages::answer_application).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .route("/city/uploads", get(pages::my_uploads))
        .route("/city/uploads/{id}", get(pages::my_upload))
        .route("/city/appointments/feed", post(pages::renew_feed))
        .route("/city/appointments/feed/revoke", post(pages::revoke_feed))
        .route("/city/staff", get(pages::staff_page))
        .route("/city/staff/appointments/{id}/check-in", post(pages::staff_check_in))
        .route("/city/staff/applications/{id}/deposit-return", post(pages::staff_return_deposit))
        .route("/city/staff/applications/{id}", get(pages::staff_application))
        .route("/city/staff/applications/{id}/uploads/{upload_id}", get(pages::staff_application_upload))
        .with_state(room.clone());
    let api = OpenApiRouter::new()
        .routes(routes!(catalogue))
        .routes(routes!(service))
        .routes(routes!(slots))
        .routes(routes!(apply))
        .routes(routes!(book))
        .routes(routes!(my_applications))
        .routes(routes!(resubmit))
        .routes(routes!(publish))
        .routes(routes!(queue))
        .routes(routes!(staff_read))
        .routes(routes!(set_status))
        .routes(routes!(return_deposit))
        .routes(routes!(invite, my_invitations))
        .routes(routes!(my_invitation))
        .routes(routes!(confirm_invitation))
        .routes(routes!(decline_invitation))
        .routes(routes!(get_draft, save_draft, delete_draft))
        .routes(routes!(my_upload))
        .routes(routes!(staff_upload))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(upload))
                // Files are larger than the platform's usual body limit.
                .layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)),
        )
        .with_state(room);
    Ok(Mounted::new(api, pages))
}

#[derive(Serialize, ToSchema)]
pub struct CategoryDoc {
    /// The category's key (`city.category.<key>` in the catalogue of texts).
    pub key: String,
    #[schema(value_type = Vec<Object>)]
    pub services: Vec<CityService>,
}

#[derive(Serialize, ToSchema)]
pub struct CatalogueResp {
    pub city_id: String,
    pub categories: Vec<CategoryDoc>,
}

/// A city's services, by category (empty when the city has not switched city services on).
#[utoipa::path(get, path = "/api/v1/cities/{id}/services", tag = "city",
    params(("id" = String, Path, description = "city id")),
    responses((status = 200, body = CatalogueResp), (status = 404, body = Problem)))]
async fn catalogue(State(s): State<CityRoom>, Path(id): Path<String>) -> ApiResult<Json<CatalogueResp>> {
    let mut categories: Vec<CategoryDoc> = Vec::new();
    for svc in s.hall.catalogue(&id).await? {
        match categories.last_mut() {
            Some(c) if c.key == svc.category => c.services.push(svc),
            _ => categories.push(CategoryDoc { key: svc.category.clone(), services: vec![svc] }),
        }
    }
    Ok(Json(CatalogueResp { city_id: id, categories }))
}

/// One service: description, required documents, fee, how it is delivered, its form.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "city",
    params(("id" = String, Path, description = "service id")),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
async fn service(State(s): State<CityRoom>, Path(id): Path<String>) -> ApiResult<Json<CityService>> {
    Ok(Json(s.hall.service(&id).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct SlotQuery {
    /// From this instant, epoch ms (default now).
    pub from: Option<i64>,
    /// Until this instant, epoch ms (default a week after `from`; at most 62 days).
    pub to: Option<i64>,
}

/// The slots of an appointment service, each with its capacity and the places that remain.
#[utoipa::path(get, path = "/api/v1/services/{id}/slots", tag = "city",
    params(("id" = String, Path, description = "service id"), SlotQuery),
    responses((status = 200, body = Vec<Object>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn slots(
    State(s): State<CityRoom>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<SlotQuery>,
) -> ApiResult<Json<Vec<SlotView>>> {
    let svc = s.hall.service(&id).await?;
    let Some(bs) = svc.booking_service_id else { return Ok(Json(Vec::new())) };
    let from = q.from.unwrap_or_else(|| s.ctx.now_ms());
    let to = q.to.unwrap_or(from.saturating_add(7 * DAY_MS));
    Ok(Json(s.hall.booking().slots(&bs, from, to).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyReq {
    /// The answers to the service's form.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub form: Value,
}

/// Apply to a service that is worked online.
#[utoipa::path(post, path = "/api/v1/services/{id}/applications", tag = "city", request_body = ApplyReq,
    params(("id" = String, Path, description = "service id")),
    responses((status = 201, body = Object), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "an answer is missing or wrong (one message per field); \
            `insufficient_funds` or `limit_exceeded`: the wallet cannot pay the fee or hold the deposit (nothing is kept)"),
        (status = 500, body = Problem, description = "the wallet did not answer: the application stays `pending` and is finished shortly")))]
async fn apply(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ApplyReq>,
) -> ApiResult<(StatusCode, Json<Application>)> {
    Ok((StatusCode::CREATED, Json(s.hall.apply(&p.user_id, &id, &req.form, None).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookReq {
    pub hold_id: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub form: Value,
}

/// Book the held place with the service's form: the appointment and its application.
#[utoipa::path(post, path = "/api/v1/appointments", tag = "city", request_body = BookReq,
    responses((status = 201, body = Object, description = "the application, with its appointment_id"),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 410, body = Problem, description = "booking_hold_expired"),
        (status = 422, body = Problem, description = "an answer is missing or wrong (one message per field)")))]
async fn book(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<BookReq>,
) -> ApiResult<(StatusCode, Json<Application>)> {
    let hold = s.hall.booking().get_hold(&req.hold_id).await?;
    if hold.person_id != p.user_id {
        return Err(Error::not_found("booking_hold").into());
    }
    let svc = s.hall.service_by_booking(&hold.service_id).await?;
    Ok((StatusCode::CREATED, Json(s.hall.apply(&p.user_id, &svc.id, &req.form, Some(&req.hold_id)).await?)))
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// At most this many (default 50, at most 200).
    pub limit: Option<i64>,
}

/// My applications, newest first.
#[utoipa::path(get, path = "/api/v1/me/applications", tag = "city", params(ListQuery),
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn my_applications(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Application>>> {
    Ok(Json(s.hall.my_applications(&p.user_id, q.limit.unwrap_or(50)).await?))
}

/// Answer again when the department asked for more information.
#[utoipa::path(post, path = "/api/v1/me/applications/{id}/answers", tag = "city", request_body = ApplyReq,
    params(("id" = String, Path, description = "application id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn resubmit(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ApplyReq>,
) -> ApiResult<Json<Application>> {
    Ok(Json(s.hall.resubmit(&p.user_id, &id, &req.form).await?))
}

/// Publish a service of the department's city, with its booking rules and counters' hours for an appointment.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/services", tag = "city", request_body = Object,
    params(("id" = String, Path, description = "organisation id (a city department)")),
    responses((status = 201, body = Object), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn publish(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<CityService>)> {
    // Who may publish is answered before what was sent.
    s.identity.require_staff(&p, &id, Role::Admin).await?;
    let req: NewService = serde_json::from_value(body).map_err(|_| Error::field("service", "city.schema.object"))?;
    Ok((StatusCode::CREATED, Json(s.hall.publish(&p, &id, &req).await?)))
}

/// The department's queue of applications (no answers: opening one is logged).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/applications", tag = "city", params(("id" = String, Path, description = "organisation id"), ListQuery),
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn queue(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<QueueItem>>> {
    Ok(Json(s.hall.queue(&p, &id, q.limit.unwrap_or(50)).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct ReadQuery {
    /// Why staff open it (written to the resident's access log).
    pub why: Option<String>,
}

/// Open an application (written to the resident's access log first).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/applications/{application_id}", tag = "city",
    params(("id" = String, Path, description = "organisation id"), ("application_id" = String, Path), ReadQuery),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn staff_read(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path((id, application_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> ApiResult<Json<Application>> {
    s.identity.require_staff(&p, &id, Role::Operator).await?;
    let a = s.hall.staff_read(&p, &application_id, q.why.as_deref().unwrap_or("")).await?;
    if a.org_id != id {
        return Err(Error::not_found("application").into());
    }
    Ok(Json(a))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReq {
    /// in_review, more_info_needed, approved, rejected or completed.
    pub status: String,
    /// To the resident (required when asking for more information).
    #[serde(default)]
    pub note: String,
}

/// Move an application on; the resident is told.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/applications/{application_id}/status", tag = "city",
    request_body = StatusReq,
    params(("id" = String, Path, description = "organisation id"), ("application_id" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_status(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path((id, application_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Application>> {
    s.identity.require_staff(&p, &id, Role::Operator).await?;
    let req: StatusReq = serde_json::from_value(body).map_err(|_| Error::field("status", "city.status.unknown"))?;
    let to = Status::parse(&req.status).ok_or_else(|| Error::field("status", "city.status.unknown"))?;
    s.hall.require_in_org(&id, &application_id).await?;
    Ok(Json(s.hall.set_status(&p, &application_id, to, &req.note).await?))
}

/// The resident handed back what was lent (the library card): the deposit held is returned to their wallet.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/applications/{application_id}/deposit-return", tag = "city",
    params(("id" = String, Path, description = "organisation id"), ("application_id" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "no_deposit_held")))]
async fn return_deposit(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path((id, application_id)): Path<(String, String)>,
) -> ApiResult<Json<Application>> {
    s.identity.require_staff(&p, &id, Role::Operator).await?;
    s.hall.require_in_org(&id, &application_id).await?;
    Ok(Json(s.hall.return_deposit(&p, &application_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteReq {
    /// My hold on a slot of a two-person service.
    pub hold_id: String,
    /// The answers to the service's form.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub form: Value,
    /// The partner's login (phone number or e-mail).
    pub partner_login: String,
}

/// Book a two-person service (a marriage registration): send my answers for
/// my held slot and invite my partner; the slot stays held for both until the
/// hold ends. Both need a verified real name.
#[utoipa::path(post, path = "/api/v1/me/invitations", tag = "city", request_body = InviteReq,
    responses((status = 201, body = Object, description = "the invitation, waiting for the partner"),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "real_name_required"), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "application_status: already sent for this hold"),
        (status = 410, body = Problem, description = "booking_hold_expired"),
        (status = 422, body = Problem, description = "an answer or the partner's login is missing or wrong")))]
async fn invite(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<InviteReq>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    Ok((StatusCode::CREATED, Json(s.hall.invite(&p.user_id, &req.hold_id, &req.form, &req.partner_login).await?)))
}

/// Invitations to book together, sent by me or to me, newest first.
#[utoipa::path(get, path = "/api/v1/me/invitations", tag = "city", params(ListQuery),
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn my_invitations(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Invitation>>> {
    Ok(Json(s.hall.invitations(&p.user_id, q.limit.unwrap_or(50)).await?))
}

/// One invitation I sent or received.
#[utoipa::path(get, path = "/api/v1/me/invitations/{id}", tag = "city",
    params(("id" = String, Path, description = "invitation id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn my_invitation(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Invitation>> {
    Ok(Json(s.hall.invitation(&p.user_id, &id).await?))
}

/// Confirm an invitation sent to me (with my verified real name), before
/// the hold ends: the place is booked as one appointment for both of us.
#[utoipa::path(post, path = "/api/v1/me/invitations/{id}/confirm", tag = "city",
    params(("id" = String, Path, description = "invitation id")),
    responses((status = 200, body = Object, description = "the invitation, booked, with its appointment_id"),
        (status = 401, body = Problem), (status = 403, body = Problem, description = "real_name_required"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "application_status: no longer waiting"),
        (status = 410, body = Problem, description = "invitation_expired, booking_hold_expired: the place was freed"),
        (status = 422, body = Problem, description = "insufficient_funds: the inviter's wallet cannot pay the fee")))]
async fn confirm_invitation(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Invitation>> {
    Ok(Json(s.hall.confirm_invitation(&p.user_id, &id).await?))
}

/// Decline an invitation sent to me: the place is freed at once.
#[utoipa::path(post, path = "/api/v1/me/invitations/{id}/decline", tag = "city",
    params(("id" = String, Path, description = "invitation id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 410, body = Problem, description = "invitation_expired")))]
async fn decline_invitation(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Invitation>> {
    Ok(Json(s.hall.decline_invitation(&p.user_id, &id).await?))
}

/// The body limit of an upload: the largest file and the form around it.
pub const UPLOAD_BODY_LIMIT: usize = yizhan_city::uploads::MAX_UPLOAD_BYTES + 64 * 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftReq {
    /// The answers so far (the form's questions only; checked when submitted).
    #[schema(value_type = Object)]
    pub form: Value,
}

/// My draft of the service's form, to resume.
#[utoipa::path(get, path = "/api/v1/services/{id}/draft", tag = "city",
    params(("id" = String, Path, description = "service id")),
    responses((status = 200, body = Object), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "no draft, or no such service")))]
async fn get_draft(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<yizhan_city::drafts::Draft>> {
    s.hall.visible_service(&id).await?;
    Ok(Json(s.hall.draft(&p.user_id, &id).await?.ok_or_else(|| Error::not_found("draft"))?))
}

/// Save my answers so far as the service's draft (one per service; replaces the one before).
#[utoipa::path(put, path = "/api/v1/services/{id}/draft", tag = "city", request_body = DraftReq,
    params(("id" = String, Path, description = "service id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 422, body = Problem, description = "an unknown question, or too big")))]
async fn save_draft(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DraftReq>,
) -> ApiResult<Json<yizhan_city::drafts::Draft>> {
    Ok(Json(s.hall.save_draft(&p.user_id, &id, &req.form).await?))
}

/// Throw my draft of the service's form away.
#[utoipa::path(delete, path = "/api/v1/services/{id}/draft", tag = "city",
    params(("id" = String, Path, description = "service id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn delete_draft(State(s): State<CityRoom>, ApiUser(p): ApiUser, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if s.hall.delete_draft(&p.user_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("draft").into())
    }
}

#[derive(Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The form's question the file answers (an `x-upload` question).
    pub field: String,
}

/// Attach a file to a question of the service's form (`multipart/form-data`
/// with one part named `file`): JPEG, PNG or PDF as the question accepts, up
/// to 5 MiB, its type told by its content. Answer the question with the id.
#[utoipa::path(post, path = "/api/v1/services/{id}/uploads", tag = "city",
    request_body(content = String, content_type = "multipart/form-data", description = "a part named `file`"),
    params(("id" = String, Path, description = "service id"), UploadQuery),
    responses((status = 201, body = Object, description = "the upload: id, field, file_name, content_type, size_bytes, sha256"),
        (status = 400, body = Problem, description = "the multipart body cannot be read"),
        (status = 401, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem, description = "not an accepted type, empty, too big or too many")))]
async fn upload(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    m: yizhan_kit::multipart::Multipart,
) -> ApiResult<(StatusCode, Json<yizhan_city::uploads::Upload>)> {
    let Some(file) = m.part("file") else { return Err(Error::field("file", "city.upload.empty").into()) };
    let u = s
        .hall
        .upload(
            &p.user_id,
            &id,
            &q.field,
            file.file_name.as_deref().unwrap_or(""),
            file.content_type.as_deref(),
            &file.data,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(u)))
}

/// A file as its own response: its checked type, never rendered inline as a page.
pub(crate) fn file_response(u: &yizhan_city::uploads::Upload, data: Vec<u8>) -> Response {
    use axum::response::IntoResponse;
    (
        [
            (axum::http::header::CONTENT_TYPE, u.content_type.clone()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", u.file_name.replace(['"', '\\'], "")),
            ),
            (axum::http::header::CACHE_CONTROL, "private, no-store".to_string()),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        data,
    )
        .into_response()
}

/// A file I uploaded.
#[utoipa::path(get, path = "/api/v1/me/uploads/{id}", tag = "city",
    params(("id" = String, Path, description = "upload id")),
    responses((status = 200, content_type = "application/octet-stream", body = String, description = "the file"),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn my_upload(State(s): State<CityRoom>, ApiUser(p): ApiUser, Path(id): Path<String>) -> ApiResult<Response> {
    let (u, data) = s.hall.read_my_upload(&p.user_id, &id).await?;
    Ok(file_response(&u, data))
}

/// A resident's file attached to my department's service (written to their access log first).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/uploads/{upload_id}", tag = "city",
    params(("id" = String, Path, description = "organisation id"), ("upload_id" = String, Path), ReadQuery),
    responses((status = 200, content_type = "application/octet-stream", body = String, description = "the file"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn staff_upload(
    State(s): State<CityRoom>,
    ApiUser(p): ApiUser,
    Path((id, upload_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReadQuery>,
) -> ApiResult<Response> {
    s.identity.require_staff(&p, &id, Role::Operator).await?;
    let (u, data) = s.hall.staff_read_upload(&p, &id, &upload_id, q.why.as_deref().unwrap_or("")).await?;
    Ok(file_response(&u, data))
}

// ---- pages ----

#[derive(Template)]
#[template(path = "city_catalogue.html")]
struct CataloguePage {
    l: Layout,
    groups: Vec<(String, Vec<CityService>)>,
    /// On some organisation's staff: a link to the department console.
    staff: bool,
}

/// The services of the resident's home city, by category.
async fn catalogue_page(State(s): State<CityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let profile = match s.identity.profile(&p.user_id).await {
        Ok(pr) => pr,
        Err(e) => return failure_page(lang, &e),
    };
    let services = match &profile.home_city_id {
        Some(city_id) => match s.hall.catalogue(city_id).await {
            Ok(v) => v,
            Err(e) => return failure_page(lang, &e),
        },
        None => Vec::new(),
    };
    let mut groups: Vec<(String, Vec<CityService>)> = Vec::new();
    for svc in services {
        match groups.last_mut() {
            Some((c, list)) if *c == svc.category => list.push(svc),
            _ => groups.push((svc.category.clone(), vec![svc])),
        }
    }
    let staff = s.identity.memberships(&p.user_id).await.map(|m| !m.is_empty()).unwrap_or(false);
    render(&CataloguePage { l, groups, staff })
}

#[derive(Template)]
#[template(path = "city_service.html")]
struct ServicePage {
    l: Layout,
    svc: CityService,
    slots: Vec<SlotView>,
    /// Places are drawn by lottery: each slot links to its page.
    lottery: bool,
    /// Online applications' fees are paid from the wallet when submitted.
    fees_from_wallet: bool,
}

/// One service: what it is, what to bring, its fee, and the week's open slots.
async fn service_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let svc = match s.hall.service(&id).await {
        Ok(v) => v,
        Err(e) => return failure_page(lang, &e),
    };
    let now = s.ctx.now_ms();
    let mut lottery = false;
    let slots = match &svc.booking_service_id {
        Some(bs) => {
            lottery = matches!(s.hall.booking().service(bs).await,
                Ok(b) if b.rules.allocation == yizhan_booking::Allocation::Lottery);
            match s.hall.booking().slots(bs, now, now + 7 * DAY_MS).await {
                // A lottery's slots are shown before their release: its seed is published then.
                Ok(v) => v.into_iter().filter(|v| v.released || lottery).take(100).collect(),
                Err(e) => return failure_page(lang, &e),
            }
        }
        None => Vec::new(),
    };
    render(&ServicePage { l, svc, slots, lottery, fees_from_wallet: s.hall.takes_fees() })
}
