//! The person's inbox over the API.

use crate::NotifyRoom;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_identity_web::ApiUser;
use yizhan_kit::extract::ApiJson;
use yizhan_kit::problem::{ApiResult, Problem};

pub fn router() -> OpenApiRouter<NotifyRoom> {
    OpenApiRouter::new().routes(routes!(notifications)).routes(routes!(notifications_read))
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
async fn notifications(State(s): State<NotifyRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<InboxResp>> {
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
    State(s): State<NotifyRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<ReadReq>,
) -> ApiResult<StatusCode> {
    s.notify.mark_read(&p.user_id, req.id.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
