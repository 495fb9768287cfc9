//! The booking room's HTTP side: holding a place, a person's appointments,
//! cancelling, staff check-in and the calendar file. Finding slots and
//! booking with a form go through the room that offers the service (the
//! city room for its catalogue), which knows what the form is.

mod texts;

use axum::extract::{FromRef, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_booking::lottery::LotteryView;
use yizhan_booking::{Appointment, Booking, Hold, WaitEntry};
use yizhan_core::Error;
use yizhan_identity::{Identity, Principal, Role};
use yizhan_identity_web::ApiUser;
use yizhan_kit::authz::{r, Access, RouteRule};
use yizhan_kit::extract::{ApiJson, ApiQuery};
use yizhan_kit::problem::{ApiResult, Problem};
use yizhan_kit::{Deps, Lang, Mounted, Room};

#[derive(Clone, FromRef)]
pub struct BookingRoom {
    pub identity: Identity,
    pub booking: Booking,
}

pub static ROOM: Room = Room {
    name: "booking",
    prefixes: &["/api/v1/holds", "/api/v1/me/appointments", "/api/v1/appointments/{id}", "/api/v1/slots", "/cal"],
    texts: texts::TEXTS,
    access: &[
        r("POST", "/api/v1/holds", Access::Resident),
        r("POST", "/api/v1/holds/{id}/release", Access::Resident),
        r("GET", "/api/v1/me/appointments", Access::Resident),
        r("GET", "/api/v1/me/appointments/feed", Access::Resident),
        r("POST", "/api/v1/me/appointments/feed", Access::Resident),
        r("DELETE", "/api/v1/me/appointments/feed", Access::Resident),
        r("GET", "/api/v1/appointments/{id}", Access::Resident),
        r("POST", "/api/v1/appointments/{id}/cancel", Access::Resident),
        // Staff of the organisation that owns the service (checked on the appointment).
        r("POST", "/api/v1/appointments/{id}/check-in", Access::Resident),
        r("GET", "/api/v1/appointments/{id}/ics", Access::Resident),
        r("POST", "/api/v1/slots/{id}/waitlist", Access::Resident),
        r("GET", "/api/v1/slots/{id}/waitlist", Access::Resident),
        r("POST", "/api/v1/slots/{id}/lottery/entries", Access::Resident),
        r("GET", "/api/v1/slots/{id}/lottery", Access::Resident),
    ] as &[RouteRule],
    tiles: &[],
    nav: &[],
    city_services: &[],
    codes: &[yizhan_booking::codes::ALL],
    links: &[],
    migrations: &[&yizhan_booking::MIGRATIONS],
    mount,
};

fn mount(d: &Deps) -> Result<Mounted, String> {
    let room = BookingRoom { identity: d.get()?, booking: d.get()? };
    let api = OpenApiRouter::new()
        .routes(routes!(hold))
        .routes(routes!(release_hold))
        .routes(routes!(my_appointments))
        .routes(routes!(appointment))
        .routes(routes!(cancel))
        .routes(routes!(check_in))
        .routes(routes!(ics))
        .routes(routes!(join_waitlist, waitlist_entry))
        .routes(routes!(lottery_view))
        .routes(routes!(enter_lottery))
        .routes(routes!(feed_status, renew_feed, revoke_feed))
        .with_state(room.clone());
    // The feed itself: no login (calendar apps fetch it), the secret token is the key.
    let pages = Router::new().route("/cal/{file}", axum::routing::get(feed)).with_state(room);
    Ok(Mounted::new(api, pages))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldReq {
    pub slot_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct HoldResp {
    pub id: String,
    pub slot_id: String,
    /// When the place is freed unless booked, epoch ms.
    pub expires_at: i64,
}

impl From<Hold> for HoldResp {
    fn from(h: Hold) -> HoldResp {
        HoldResp { id: h.id, slot_id: h.slot_id, expires_at: h.expires_at_ms }
    }
}

/// Hold a place in a slot while I fill in the form (its length set per service).
#[utoipa::path(post, path = "/api/v1/holds", tag = "booking", request_body = HoldReq,
    responses((status = 201, body = HoldResp),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "booking_blocked: too many missed appointments"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "slot_full, already_booked, slot_not_released, lottery_only"),
        (status = 410, body = Problem, description = "booking_closed"),
        (status = 422, body = Problem)))]
async fn hold(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<HoldReq>,
) -> ApiResult<(StatusCode, Json<HoldResp>)> {
    Ok((StatusCode::CREATED, Json(s.booking.hold(&p.user_id, &req.slot_id).await?.into())))
}

/// Give a held place back.
#[utoipa::path(post, path = "/api/v1/holds/{id}/release", tag = "booking",
    params(("id" = String, Path, description = "hold id")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn release_hold(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.booking.release_hold(&p.user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    /// At most this many (default 50, at most 500).
    pub limit: Option<i64>,
}

/// My appointments, latest slot first.
#[utoipa::path(get, path = "/api/v1/me/appointments", tag = "booking", params(ListQuery),
    responses((status = 200, body = Vec<Object>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn my_appointments(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Appointment>>> {
    Ok(Json(s.booking.person_appointments(&p.user_id, q.limit.unwrap_or(50)).await?))
}

/// The appointment, for its person or staff of the service's organisation.
async fn visible(s: &BookingRoom, p: &Principal, id: &str) -> Result<Appointment, Error> {
    let a = s.booking.appointment(id).await?;
    if s.booking.is_party(&a, &p.user_id).await? {
        return Ok(a);
    }
    let service = s.booking.service(&a.service_id).await?;
    match s.identity.require_staff(p, &service.owner_id, Role::Operator).await {
        Ok(_) => Ok(a),
        // Outsiders learn nothing of whether it exists.
        Err(_) => Err(Error::not_found("appointment")),
    }
}

/// One appointment (mine, one also for me, or of my organisation's service).
#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "booking",
    params(("id" = String, Path, description = "appointment id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn appointment(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Appointment>> {
    Ok(Json(visible(&s, &p, &id).await?))
}

/// Cancel my appointment before the service's deadline; the place goes to the waiting list or back.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/cancel", tag = "booking",
    params(("id" = String, Path, description = "appointment id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "cancel_too_late, appointment_status")))]
async fn cancel(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Appointment>> {
    Ok(Json(s.booking.cancel(&p.user_id, &id).await?))
}

/// Check a person in at the counter (staff of the service's organisation): hands out a queue number.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/check-in", tag = "booking",
    params(("id" = String, Path, description = "appointment id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "appointment_not_now, appointment_status")))]
async fn check_in(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Appointment>> {
    let a = s.booking.appointment(&id).await?;
    let service = s.booking.service(&a.service_id).await?;
    s.identity.require_staff(&p, &service.owner_id, Role::Operator).await?;
    Ok(Json(s.booking.check_in(&id).await?))
}

/// The appointment as a calendar file (RFC 5545).
#[utoipa::path(get, path = "/api/v1/appointments/{id}/ics", tag = "booking",
    params(("id" = String, Path, description = "appointment id")),
    responses((status = 200, content_type = "text/calendar", body = String),
        (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn ics(
    State(s): State<BookingRoom>,
    lang: Lang,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = visible(&s, &p, &id).await?;
    let body = yizhan_booking::ics::appointment(
        &a,
        lang.t("booking.ics.summary"),
        lang.t("booking.ics.location"),
        "yizhan",
        s.booking.ctx().now_ms(),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"appointment-{}.ics\"", a.id)),
        ],
        body,
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct WaitingResp {
    pub slot_id: String,
    /// My place on the list (1 = next to be offered a freed place).
    pub position: i64,
}

/// Join a full slot's waiting list: a freed place is offered to the first on it, as a hold with a deadline.
#[utoipa::path(post, path = "/api/v1/slots/{id}/waitlist", tag = "booking",
    params(("id" = String, Path, description = "slot id")),
    responses((status = 201, body = WaitingResp), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "booking_blocked"), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "slot_not_full, already_waiting, slot_not_released"),
        (status = 410, body = Problem, description = "booking_closed")))]
async fn join_waitlist(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<WaitingResp>)> {
    let position = s.booking.join_waitlist(&p.user_id, &id).await?;
    Ok((StatusCode::CREATED, Json(WaitingResp { slot_id: id, position })))
}

/// Where I stand on a slot's waiting list: my position, or the offer (a hold
/// to book before its deadline, e.g. with `POST /api/v1/appointments`).
#[utoipa::path(get, path = "/api/v1/slots/{id}/waitlist", tag = "booking",
    params(("id" = String, Path, description = "slot id")),
    responses((status = 200, body = Object, description = "state, position, hold_id, offer_expires_at_ms"),
        (status = 401, body = Problem), (status = 404, body = Problem, description = "not on the list")))]
async fn waitlist_entry(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<WaitEntry>> {
    match s.booking.waitlist_entry(&p.user_id, &id).await? {
        Some(e) => Ok(Json(e)),
        None => Err(Error::not_found("waitlist_entry").into()),
    }
}

/// Ask for a place in a lottery slot during its request window (once per person).
#[utoipa::path(post, path = "/api/v1/slots/{id}/lottery/entries", tag = "booking",
    params(("id" = String, Path, description = "slot id")),
    responses((status = 201, body = Object, description = "the lottery as after my request"),
        (status = 401, body = Problem), (status = 403, body = Problem, description = "booking_blocked"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "lottery_not_open, already_requested, slot_not_released, slot_not_full (not a lottery)")))]
async fn enter_lottery(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<LotteryView>)> {
    s.booking.request_lottery(&p.user_id, &id).await?;
    Ok((StatusCode::CREATED, Json(s.booking.lottery_view(&id, Some(&p.user_id)).await?)))
}

/// A lottery slot: the seed published in advance, the request window, how
/// many asked, whether I did; after the window, the draw's result for me and
/// the allocation log anyone can re-run (seed, sorted entrants, skipped, winners).
#[utoipa::path(get, path = "/api/v1/slots/{id}/lottery", tag = "booking",
    params(("id" = String, Path, description = "slot id")),
    responses((status = 200, body = Object), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "slot_not_full: the slot is not drawn by lottery")))]
async fn lottery_view(
    State(s): State<BookingRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<LotteryView>> {
    Ok(Json(s.booking.lottery_view(&id, Some(&p.user_id)).await?))
}

#[derive(Serialize, ToSchema)]
pub struct FeedStatus {
    /// Whether a feed URL is live.
    pub active: bool,
    /// When the live URL was made, epoch ms.
    pub created_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedUrl {
    /// The secret path of the feed (`/cal/{token}.ics`), shown this once:
    /// only a keyed hash of the token is kept.
    pub path: String,
    pub created_at: i64,
}

/// The path of a person's calendar feed for a token.
pub fn feed_path(token: &str) -> String {
    format!("/cal/{token}.ics")
}

/// Whether my calendar feed URL is live.
#[utoipa::path(get, path = "/api/v1/me/appointments/feed", tag = "booking",
    responses((status = 200, body = FeedStatus), (status = 401, body = Problem)))]
async fn feed_status(State(s): State<BookingRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<FeedStatus>> {
    let at = s.booking.feed_created_at(&p.user_id).await?;
    Ok(Json(FeedStatus { active: at.is_some(), created_at: at }))
}

/// A new secret calendar feed URL for my appointments (the one before stops working).
#[utoipa::path(post, path = "/api/v1/me/appointments/feed", tag = "booking",
    responses((status = 201, body = FeedUrl), (status = 401, body = Problem)))]
async fn renew_feed(State(s): State<BookingRoom>, ApiUser(p): ApiUser) -> ApiResult<(StatusCode, Json<FeedUrl>)> {
    let token = s.booking.renew_feed(&p.user_id).await?;
    let created_at = s.booking.feed_created_at(&p.user_id).await?.unwrap_or_else(|| s.booking.ctx().now_ms());
    Ok((StatusCode::CREATED, Json(FeedUrl { path: feed_path(&token), created_at })))
}

/// Revoke my calendar feed URL: it answers 404 from now on.
#[utoipa::path(delete, path = "/api/v1/me/appointments/feed", tag = "booking",
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn revoke_feed(State(s): State<BookingRoom>, ApiUser(p): ApiUser) -> ApiResult<StatusCode> {
    if s.booking.revoke_feed(&p.user_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("calendar_feed").into())
    }
}

/// `GET /cal/{token}.ics`: the person's upcoming appointments as one
/// calendar (RFC 5545), for calendar apps to subscribe to. No login; the
/// token is the key. Anything but a live token is 404, and nothing but the
/// appointments' times and statuses is in it.
async fn feed(State(s): State<BookingRoom>, lang: Lang, Path(file): Path<String>) -> Response {
    let answer = async {
        let token = file.strip_suffix(".ics").ok_or_else(|| Error::not_found("calendar_feed"))?;
        let person = s.booking.feed_person(token).await?;
        let list = s.booking.feed_appointments(&person).await?;
        let events: Vec<(Appointment, String, String)> = list
            .into_iter()
            .map(|a| (a, lang.t("booking.ics.summary").to_string(), lang.t("booking.ics.location").to_string()))
            .collect();
        Ok::<_, Error>(yizhan_booking::ics::feed(
            &events,
            lang.t("booking.feed.name"),
            "yizhan",
            s.booking.ctx().now_ms(),
        ))
    };
    match answer.await {
        Ok(body) => (
            [(header::CONTENT_TYPE, "text/calendar; charset=utf-8"), (header::CACHE_CONTROL, "private, no-cache")],
            body,
        )
            .into_response(),
        Err(e) => yizhan_kit::problem::ApiError::from(e).into_response(),
    }
}
