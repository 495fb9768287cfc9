//! The identity room's HTTP side. People register, log in and out, verify
//! their real name (through the identity verifier) and bind their car plates
//! with proof, choose a home city and open disputes; city-department staff
//! verify people and vehicles at a counter and decide disputes; platform administrators create
//! cities and organisations and add staff; staff read a resident's profile
//! (written to the resident's access log by the domain). It also owns the
//! extractors every room uses to know who is calling: `ApiUser` and
//! `ApiAdmin` (bearer token) and `PageUser` (session cookie).

mod account;
mod admin;
mod api_auth;
mod api_sessions;
mod api_tenancy;
mod api_verify;
mod codes;
mod counter;
mod devices;
mod pages;
mod setup;
mod texts;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::router::OpenApiRouter;
use yizhan_core::{Code, Ctx, Error, Msg, Result};
use yizhan_identity::{Identity, Principal};
use yizhan_kit::authz::{r, Access, RouteRule};
use yizhan_kit::extract::{bearer, cookie, Csrf};
use yizhan_kit::page::{Layout, NavItem, WebConfig};
use yizhan_kit::problem::ApiError;
use yizhan_kit::{Deps, Lang, Mounted, Room};
use yizhan_notify::{Message, Notify, Target};

pub use account::{AccountLifecycle, Accounts};
pub use pages::{session_cookie, SESSION_COOKIE};

/// What the identity room's handlers use.
#[derive(Clone, FromRef)]
pub struct IdentityRoom {
    pub ctx: Ctx,
    pub identity: Identity,
    pub notify: Notify,
    pub config: WebConfig,
    /// The export and deletion of whole accounts (composed by the app).
    pub accounts: Accounts,
}

pub static ROOM: Room = Room {
    name: "identity",
    prefixes: &[
        "/",
        "/api/v1/auth",
        "/api/v1/me",
        "/api/v1/cities",
        "/api/v1/orgs",
        "/login",
        "/register",
        "/forgot-password",
        "/logout",
        "/profile",
        "/admin",
        "/export",
        "/account",
        "/counter",
        "/setup",
    ],
    texts: texts::TEXTS,
    access: ACCESS,
    tiles: &[],
    nav: &[NavItem { order: 90, href: "/profile", label_key: "nav.profile", shows_unread: false }],
    city_services: &[],
    codes: &[yizhan_identity::codes::ALL],
    links: &[("profile", "/profile")],
    migrations: &[&yizhan_identity::MIGRATIONS],
    mount,
};

static ACCESS: &[RouteRule] = &[
    r("POST", "/api/v1/auth/register", Access::Public),
    r("POST", "/api/v1/auth/login", Access::Public),
    r("POST", "/api/v1/auth/verify", Access::Public),
    r("POST", "/api/v1/auth/resend", Access::Public),
    r("POST", "/api/v1/auth/password-reset", Access::Public),
    r("POST", "/api/v1/auth/password-reset/confirm", Access::Public),
    r("POST", "/api/v1/auth/logout", Access::Resident),
    r("GET", "/api/v1/me", Access::Resident),
    r("DELETE", "/api/v1/me", Access::Resident),
    r("GET", "/api/v1/me/export", Access::Resident),
    r("POST", "/api/v1/me/real-name", Access::Resident),
    r("PUT", "/api/v1/me/city", Access::Resident),
    r("GET", "/api/v1/me/sessions", Access::Resident),
    r("DELETE", "/api/v1/me/sessions", Access::Resident),
    r("DELETE", "/api/v1/me/sessions/{id}", Access::Resident),
    r("POST", "/api/v1/me/password", Access::Resident),
    r("POST", "/api/v1/me/totp", Access::Resident),
    r("POST", "/api/v1/me/totp/confirm", Access::Resident),
    r("POST", "/api/v1/me/totp/disable", Access::Resident),
    r("POST", "/api/v1/me/totp/recovery-codes", Access::Resident),
    r("POST", "/api/v1/me/login", Access::Resident),
    r("POST", "/api/v1/me/login/confirm", Access::Resident),
    r("POST", "/api/v1/cities", Access::PlatformAdmin),
    r("GET", "/api/v1/cities", Access::Resident),
    r("POST", "/api/v1/orgs", Access::PlatformAdmin),
    r("GET", "/api/v1/orgs", Access::Resident),
    r("POST", "/api/v1/orgs/{id}/members", Access::OrgAdmin),
    r("GET", "/api/v1/orgs/{id}/members", Access::OrgStaff),
    r("GET", "/api/v1/orgs/{id}/residents/{user_id}", Access::OrgStaff),
    r("POST", "/api/v1/me/vehicles", Access::Resident),
    r("GET", "/api/v1/me/vehicles", Access::Resident),
    r("DELETE", "/api/v1/me/vehicles/{plate}", Access::Resident),
    r("POST", "/api/v1/me/disputes", Access::Resident),
    r("GET", "/api/v1/me/disputes", Access::Resident),
    r("POST", "/api/v1/orgs/{id}/counter/verifications", Access::OrgStaff),
    r("POST", "/api/v1/orgs/{id}/counter/vehicles", Access::OrgStaff),
    r("GET", "/api/v1/orgs/{id}/disputes", Access::OrgStaff),
    r("POST", "/api/v1/orgs/{id}/disputes/{dispute_id}", Access::OrgStaff),
];

fn mount(d: &Deps) -> std::result::Result<Mounted, String> {
    let room =
        IdentityRoom { ctx: d.get()?, identity: d.get()?, notify: d.get()?, config: d.get()?, accounts: d.get()? };
    let api = OpenApiRouter::new()
        .merge(api_auth::router())
        .merge(api_sessions::router())
        .merge(api_tenancy::router())
        .merge(api_verify::router())
        .merge(account::api())
        .with_state(room.clone());
    let pages = pages::router()
        .merge(admin::router())
        .merge(counter::router())
        .merge(account::pages())
        .merge(devices::router())
        .merge(codes::router())
        .merge(setup::router())
        .with_state(room);
    Ok(Mounted::new(api, pages))
}

/// Create an account and welcome its owner (in the inbox, and by e-mail when the login is one).
pub async fn register_with_welcome(
    identity: &Identity,
    notify: &Notify,
    login: &str,
    password: &str,
    name: &str,
) -> Result<String> {
    let user_id = identity.register(login, password, name).await?;
    let email = login.contains('@').then_some(login);
    notify
        .send(
            &user_id,
            email,
            Message {
                kind: "welcome".into(),
                title: Msg::new("notify.welcome_title"),
                body: Msg::new("notify.welcome_body"),
                target: Some(Target::new("profile", &user_id)),
            },
        )
        .await?;
    Ok(user_id)
}

/// The raw User-Agent header (the domain keeps only a short label made from it).
pub(crate) fn user_agent(headers: &axum::http::HeaderMap) -> &str {
    headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The frame of a logged-in person's page: their name and unread messages.
pub async fn person_layout(notify: &Notify, lang: Lang, csrf: &Csrf, path: &str, p: &Principal) -> Layout {
    let unread = notify.unread_count(&p.user_id).await.unwrap_or(0);
    Layout::person(lang, csrf, path, &p.name, unread)
}

/// An authenticated API caller (`Authorization: Bearer TOKEN`).
pub struct ApiUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for ApiUser
where
    Identity: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> std::result::Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError(Error::new(Code::Unauthorized, "identity.session.missing")))?;
        Ok(ApiUser(Identity::from_ref(state).authenticate(token).await?))
    }
}

/// A platform administrator.
pub struct ApiAdmin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for ApiAdmin
where
    Identity: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> std::result::Result<Self, Self::Rejection> {
        let ApiUser(p) = ApiUser::from_request_parts(parts, state).await?;
        Identity::from_ref(state).require_admin(&p).await?;
        Ok(ApiAdmin(p))
    }
}

/// A logged-in person on a page (session cookie); otherwise a redirect to the login page.
pub struct PageUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for PageUser
where
    Identity: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> std::result::Result<Self, Self::Rejection> {
        let name = yizhan_kit::extract::session_cookie_name(yizhan_kit::security::secure_of(&parts.extensions));
        let Some(token) = cookie(&parts.headers, name) else {
            return Err(Redirect::to("/login").into_response());
        };
        match Identity::from_ref(state).authenticate(&token).await {
            Ok(p) => Ok(PageUser(p)),
            Err(_) => Err(Redirect::to("/login").into_response()),
        }
    }
}
