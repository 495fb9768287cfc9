//! The operations on a whole account that span rooms, over the API: the
//! export of everything held about a person, and deletion.

use crate::{account, AppState};
use axum::extract::State;
use axum::Json;
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_identity_web::ApiUser;
use yizhan_kit::problem::{ApiResult, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export)).routes(routes!(delete_me))
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
