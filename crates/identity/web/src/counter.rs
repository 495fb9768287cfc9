//! `/counter`: staff of a city department at a counter verify a person from
//! their card, bind a plate from its registration (as the traffic police),
//! and decide the open disputes. Every action is the domain's, audited there.

use crate::{person_layout, IdentityRoom, PageUser};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use yizhan_core::{Error, Result};
use yizhan_identity::{OrgKind, Principal, StaffDispute};
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::page::{failure_page, filters, render_status, Layout};
use yizhan_kit::Lang;

pub fn router() -> Router<IdentityRoom> {
    Router::new()
        .route("/counter", get(counter_page))
        .route("/counter/verify", post(verify))
        .route("/counter/vehicles", post(vehicle))
        .route("/counter/disputes/{id}", post(resolve))
}

pub struct DeptOrg {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "counter.html")]
struct CounterPage {
    l: Layout,
    orgs: Vec<DeptOrg>,
    org_id: String,
    disputes: Vec<StaffDispute>,
    /// A number or plate bound to another account was shown: confirm to move it.
    confirm_move: bool,
    login: String,
    name: String,
    plate: String,
}

/// The city departments the person is staff of (a platform admin: every one).
async fn departments(s: &IdentityRoom, p: &Principal) -> Result<Vec<DeptOrg>> {
    if p.is_admin {
        let orgs = s.identity.list_orgs(None).await?;
        return Ok(orgs
            .into_iter()
            .filter(|o| o.kind == OrgKind::CityDepartment)
            .map(|o| DeptOrg { id: o.id, name: o.name })
            .collect());
    }
    let ms = s.identity.memberships(&p.user_id).await?;
    Ok(ms
        .into_iter()
        .filter(|m| m.org_kind == OrgKind::CityDepartment)
        .map(|m| DeptOrg { id: m.org_id, name: m.org_name })
        .collect())
}

#[derive(Default)]
struct Sticky {
    confirm_move: bool,
    login: String,
    name: String,
    plate: String,
}

async fn show(
    s: &IdentityRoom,
    l: Layout,
    p: &Principal,
    org_id: &str,
    status: StatusCode,
    sticky: Sticky,
) -> Response {
    let orgs = match departments(s, p).await {
        Ok(o) => o,
        Err(e) => return failure_page(l.lang, &e),
    };
    let Some(org_id) = orgs.iter().find(|o| o.id == org_id).or(orgs.first()).map(|o| o.id.clone()) else {
        return failure_page(l.lang, &Error::forbidden("identity.counter.city_department_only"));
    };
    let disputes = match s.identity.list_disputes(p, &org_id, None, None).await {
        Ok(page) => page.items,
        Err(e) => return failure_page(l.lang, &e),
    };
    let page = CounterPage {
        l,
        orgs,
        org_id,
        disputes,
        confirm_move: sticky.confirm_move,
        login: sticky.login,
        name: sticky.name,
        plate: sticky.plate,
    };
    render_status(status, &page)
}

async fn counter_page(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/counter", &p).await;
    show(&s, l, &p, "", StatusCode::OK, Sticky::default()).await
}

async fn after(s: &IdentityRoom, lang: Lang, csrf: &Csrf, p: &Principal, form: &CsrfForm, r: Result<()>) -> Response {
    let l = person_layout(&s.notify, lang, csrf, "/counter", p).await;
    let org_id = form.get("org_id");
    match r {
        Ok(()) => show(s, l.ok(lang.t("admin.done")), p, org_id, StatusCode::OK, Sticky::default()).await,
        Err(e) => {
            let sticky = Sticky {
                confirm_move: e.code == yizhan_identity::codes::BOUND_ELSEWHERE,
                login: form.get("login").to_string(),
                name: form.get("name").to_string(),
                plate: form.get("plate").to_string(),
            };
            let (l, status) = l.failed(&e);
            show(s, l, p, org_id, status, sticky).await
        }
    }
}

async fn person(s: &IdentityRoom, login: &str) -> Result<String> {
    Ok(s.identity.find_by_login(login).await?.ok_or_else(|| Error::field("login", "identity.login.unknown"))?.user_id)
}

async fn verify(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let r = async {
        let user_id = person(&s, form.get("login")).await?;
        let moving = form.get("move_binding") == "on";
        s.identity
            .counter_verify(&p, form.get("org_id"), &user_id, form.get("name"), form.get("id_number"), moving)
            .await
            .map(|_| ())
    }
    .await;
    after(&s, lang, &csrf, &p, &form, r).await
}

async fn vehicle(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let r = async {
        let user_id = person(&s, form.get("login")).await?;
        let moving = form.get("move_binding") == "on";
        s.identity
            .counter_bind_vehicle(&p, form.get("org_id"), &user_id, form.get("plate"), form.get("certificate"), moving)
            .await
            .map(|_| ())
    }
    .await;
    after(&s, lang, &csrf, &p, &form, r).await
}

async fn resolve(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Response {
    let uphold = form.get("decision") == "uphold";
    let r = s.identity.resolve_dispute(&p, form.get("org_id"), &id, uphold).await.map(|_| ());
    after(&s, lang, &csrf, &p, &form, r).await
}
