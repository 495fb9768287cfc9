//! The person's own access log over the API.

use crate::AuditRoom;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_identity_web::ApiUser;
use yizhan_kit::extract::ApiQuery;
use yizhan_kit::problem::{ApiResult, Problem};

pub fn router() -> OpenApiRouter<AuditRoom> {
    OpenApiRouter::new().routes(routes!(access_log))
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
    State(s): State<AuditRoom>,
    ApiUser(p): ApiUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<AccessLogResp>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let entries = s.audit.list(&p.user_id, limit, q.before).await?;
    let chain = s.audit.verify(&p.user_id).await?;
    let next_before = if entries.len() as i64 == limit { entries.last().map(|e| e.seq) } else { None };
    Ok(Json(AccessLogResp { entries, chain_ok: chain.ok, next_before }))
}
