//! JSON under `/api/v1`. Each handler is annotated for the OpenAPI document,
//! which is generated from these annotations by the router itself, so a
//! route cannot exist without being documented.

pub mod identity;
pub mod tenancy;
pub mod wallet;

use crate::state::AppState;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "yizhan API", version = "1", description = "One account, one wallet, every service. Errors are application/problem+json (RFC 9457) with a stable `code`."),
    components(schemas(crate::problem::Problem)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(identity::router())
        .merge(tenancy::router())
        .merge(wallet::router())
}
