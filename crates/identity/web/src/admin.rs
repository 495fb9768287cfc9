//! `/admin`: platform administrators create cities and organisations and add
//! their staff, the same operations as the API, on a page.

use crate::{person_layout, IdentityRoom, PageUser};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use yizhan_core::{Error, Result};
use yizhan_identity::{City, Org, OrgKind, Principal, Role};
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::page::{failure_page, render_status, Layout};
use yizhan_kit::room::city_services;
use yizhan_kit::Lang;

pub fn router() -> Router<IdentityRoom> {
    Router::new()
        .route("/admin", get(admin_page))
        .route("/admin/cities", post(create_city))
        .route("/admin/orgs", post(create_org))
        .route("/admin/staff", post(add_staff))
}

pub struct CityRow {
    pub city: City,
    pub orgs: Vec<Org>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    l: Layout,
    cities: Vec<CityRow>,
    orgs: Vec<Org>,
    kinds: &'static [OrgKind],
    services: &'static [&'static str],
}

async fn load(s: &IdentityRoom) -> Result<(Vec<CityRow>, Vec<Org>)> {
    let mut rows = Vec::new();
    for city in s.identity.list_cities().await? {
        let orgs = s.identity.list_orgs(Some(&city.id)).await?;
        rows.push(CityRow { city, orgs });
    }
    let all = rows.iter().flat_map(|r| r.orgs.clone()).collect();
    Ok((rows, all))
}

async fn show(s: &IdentityRoom, l: Layout, p: &Principal, status: StatusCode) -> Response {
    if let Err(e) = s.identity.require_admin(p).await {
        return failure_page(l.lang, &e);
    }
    match load(s).await {
        Ok((cities, orgs)) => {
            render_status(status, &AdminPage { l, cities, orgs, kinds: OrgKind::ALL, services: city_services() })
        }
        Err(e) => failure_page(l.lang, &e),
    }
}

async fn admin_page(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/admin", &p).await;
    show(&s, l, &p, StatusCode::OK).await
}

/// Run one admin action and show the page again with its outcome.
async fn after(s: &IdentityRoom, lang: Lang, csrf: &Csrf, p: &Principal, r: Result<()>) -> Response {
    let l = person_layout(&s.notify, lang, csrf, "/admin", p).await;
    match r {
        Ok(()) => show(s, l.ok(lang.t("admin.done")), p, StatusCode::OK).await,
        Err(e) => {
            let (l, status) = l.failed(&e);
            show(s, l, p, status).await
        }
    }
}

async fn create_city(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let services =
        city_services().iter().filter(|k| form.get(&format!("svc_{k}")) == "on").map(|k| k.to_string()).collect();
    let r = s.identity.create_city(&p, form.get("name"), services).await.map(|_| ());
    after(&s, lang, &csrf, &p, r).await
}

async fn create_org(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let r = async {
        let kind = OrgKind::parse(form.get("kind"))?;
        s.identity.create_org(&p, form.get("city_id"), kind, form.get("name")).await.map(|_| ())
    }
    .await;
    after(&s, lang, &csrf, &p, r).await
}

async fn add_staff(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let r = async {
        let role = Role::parse(form.get("role"))?;
        let person = s
            .identity
            .find_by_login(form.get("login"))
            .await?
            .ok_or_else(|| Error::field("login", "identity.login.unknown"))?;
        s.identity.add_member(&p, form.get("org_id"), &person.user_id, role).await.map(|_| ())
    }
    .await;
    after(&s, lang, &csrf, &p, r).await
}
