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
use yizhan_kit::i18n::render;
use yizhan_kit::problem::{ApiResult, Problem};
use yizhan_kit::Lang;

pub fn router() -> OpenApiRouter<NotifyRoom> {
    OpenApiRouter::new().routes(routes!(notifications)).routes(routes!(notifications_read))
}

#[derive(Serialize, ToSchema)]
pub struct InboxResp {
    pub unread: i64,
    pub items: Vec<NotificationDoc>,
}

/// One notification, its words in both languages and in the request's.
#[derive(Serialize, ToSchema)]
pub struct NotificationDoc {
    pub id: String,
    /// Which capability and event, e.g. `pay.received`.
    pub kind: String,
    /// Title and body in the request's language.
    pub title: String,
    pub body: String,
    pub title_en: String,
    pub title_zh: String,
    pub body_en: String,
    pub body_zh: String,
    /// The page this notification is about, if any.
    pub link: Option<String>,
    /// Epoch milliseconds.
    pub created_at_ms: i64,
    pub read_at_ms: Option<i64>,
}

impl NotificationDoc {
    fn of(n: yizhan_notify::Notification, lang: Lang) -> NotificationDoc {
        NotificationDoc {
            title: render(lang, &n.title),
            body: render(lang, &n.body),
            title_en: render(Lang::En, &n.title),
            title_zh: render(Lang::Zh, &n.title),
            body_en: render(Lang::En, &n.body),
            body_zh: render(Lang::Zh, &n.body),
            link: crate::link_of(&n),
            id: n.id,
            kind: n.kind,
            created_at_ms: n.created_at_ms,
            read_at_ms: n.read_at_ms,
        }
    }
}

/// My inbox with the unread count.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "me",
    responses((status = 200, body = InboxResp), (status = 401, body = Problem)))]
async fn notifications(State(s): State<NotifyRoom>, lang: Lang, ApiUser(p): ApiUser) -> ApiResult<Json<InboxResp>> {
    let items = s.notify.inbox(&p.user_id, 100).await?;
    let unread = s.notify.unread_count(&p.user_id).await?;
    Ok(Json(InboxResp { unread, items: items.into_iter().map(|n| NotificationDoc::of(n, lang)).collect() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadReq {
    /// One notification, or all when absent.
    pub id: Option<String>,
}

/// Mark one or all of my notifications as read.
#[utoipa::path(post, path = "/api/v1/me/notifications/read", tag = "me", request_body = ReadReq,
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem, description = "No such notification of mine")))]
async fn notifications_read(
    State(s): State<NotifyRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<ReadReq>,
) -> ApiResult<StatusCode> {
    s.notify.mark_read(&p.user_id, req.id.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
