//! The audit room's HTTP side: a person sees who read their data, with the
//! access log's chain checked on every view (the page and the API).

mod api;
mod texts;

use askama::Template;
use axum::extract::{FromRef, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use yizhan_audit::Audit;
use yizhan_identity::Identity;
use yizhan_identity_web::{person_layout, PageUser};
use yizhan_kit::authz::{r, Access, RouteRule};
use yizhan_kit::extract::Csrf;
use yizhan_kit::page::{failure_page, filters, render, Layout, NavItem, Tile};
use yizhan_kit::{Deps, Lang, Mounted, Room};
use yizhan_notify::Notify;

/// What the audit room's handlers use.
#[derive(Clone, FromRef)]
pub struct AuditRoom {
    pub identity: Identity,
    pub audit: Audit,
    pub notify: Notify,
}

pub static ROOM: Room = Room {
    name: "audit",
    prefixes: &["/api/v1/me/access-log", "/access-log"],
    texts: texts::TEXTS,
    access: &[r("GET", "/api/v1/me/access-log", Access::Resident)] as &[RouteRule],
    tiles: &[Tile {
        order: 90,
        key: "access",
        href: "/access-log",
        icon: "eye",
        label_key: "service.access",
        everywhere: true,
    }],
    nav: &[NavItem { order: 30, href: "/access-log", label_key: "nav.access", shows_unread: false }],
    city_services: &[],
    codes: &[],
    links: &[],
    migrations: &[&yizhan_audit::MIGRATIONS],
    mount,
};

fn mount(d: &Deps) -> Result<Mounted, String> {
    let room = AuditRoom { identity: d.get()?, audit: d.get()?, notify: d.get()? };
    let pages = Router::new().route("/access-log", get(access_log)).with_state(room.clone());
    Ok(Mounted::new(api::router().with_state(room), pages))
}

#[derive(Template)]
#[template(path = "access_log.html")]
struct AccessPage {
    l: Layout,
    entries: Vec<yizhan_audit::AccessEntry>,
    chain_ok: bool,
}

impl AccessPage {
    /// What was read, in the reader's language: "transactions" → `access.field.transactions`.
    /// A kind no room has words for yet shows as it is stored.
    fn what_text<'a>(&self, what: &'a str) -> &'a str {
        self.l.lang.tk_or("access.field", what)
    }
}

async fn access_log(State(s): State<AuditRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/access-log", &p).await;
    match (s.audit.list(&p.user_id, 200, None).await, s.audit.verify(&p.user_id).await) {
        (Ok(entries), Ok(chain)) => render(&AccessPage { l, entries, chain_ok: chain.ok }),
        (Err(e), _) | (_, Err(e)) => failure_page(lang, &e),
    }
}
