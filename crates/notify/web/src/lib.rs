//! The notify room's HTTP side: the inbox (page and API) with its unread count,
//! and the operator's view of the sandbox outbox.

mod api;
mod texts;

use askama::Template;
use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use yizhan_identity::Identity;
use yizhan_identity_web::{person_layout, PageUser};
use yizhan_kit::authz::{r, Access, RouteRule};
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::page::{failure_page, filters, render, Layout, NavItem, Tile};
use yizhan_kit::{Deps, Lang, Mounted, Room};
use yizhan_notify::{Notification, Notify, OutboxKind, OUTBOX_LIST_MAX};

/// What the notify room's handlers use.
#[derive(Clone, FromRef)]
pub struct NotifyRoom {
    pub identity: Identity,
    pub notify: Notify,
}

pub static ROOM: Room = Room {
    name: "notify",
    prefixes: &["/api/v1/me/notifications", "/inbox", "/admin/outbox"],
    texts: texts::TEXTS,
    access: ACCESS,
    tiles: &[Tile {
        order: 80,
        key: "inbox",
        href: "/inbox",
        icon: "inbox",
        label_key: "service.inbox",
        everywhere: true,
    }],
    nav: &[NavItem { order: 20, href: "/inbox", label_key: "nav.inbox", shows_unread: true }],
    city_services: &[],
    codes: &[],
    links: &[],
    migrations: &[&yizhan_notify::MIGRATIONS],
    mount,
};

static ACCESS: &[RouteRule] = &[
    r("GET", "/api/v1/me/notifications", Access::Resident),
    r("POST", "/api/v1/me/notifications/read", Access::Resident),
];

fn mount(d: &Deps) -> Result<Mounted, String> {
    let room = NotifyRoom { identity: d.get()?, notify: d.get()? };
    let pages = Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/read", post(inbox_read))
        .route("/admin/outbox", get(outbox))
        .with_state(room.clone());
    Ok(Mounted::new(api::router().with_state(room), pages))
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    l: Layout,
    items: Vec<Item>,
}

/// A notification as the inbox shows it, in the reader's language.
struct Item {
    title: String,
    body: String,
    link: Option<String>,
    unread: bool,
    created_at_ms: i64,
}

/// The page a notification is about, from the room that owns its kind.
pub fn link_of(n: &Notification) -> Option<String> {
    n.target.as_ref().and_then(|t| yizhan_kit::room::link(&t.kind, &t.id))
}

async fn inbox(State(s): State<NotifyRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/inbox", &p).await;
    match s.notify.inbox(&p.user_id, 100).await {
        Ok(items) => {
            let items = items
                .into_iter()
                .map(|n| Item {
                    title: yizhan_kit::i18n::render(lang, &n.title),
                    body: yizhan_kit::i18n::render(lang, &n.body),
                    link: link_of(&n),
                    unread: n.read_at_ms.is_none(),
                    created_at_ms: n.created_at_ms,
                })
                .collect();
            render(&InboxPage { l, items })
        }
        Err(e) => failure_page(lang, &e),
    }
}

async fn inbox_read(State(s): State<NotifyRoom>, PageUser(p): PageUser, _form: CsrfForm) -> Response {
    let _ = s.notify.mark_read(&p.user_id, None).await;
    Redirect::to("/inbox").into_response()
}

#[derive(Template)]
#[template(path = "outbox.html")]
struct OutboxPage {
    l: Layout,
    items: Vec<OutboxRow>,
}

/// One sandbox message as the operator sees it.
struct OutboxRow {
    kind_key: &'static str,
    to: String,
    subject: Option<String>,
    text: String,
    at_ms: i64,
}

/// The sandbox outbox, newest first: what the sandbox mailer and SMS sender
/// "sent" (sign-in codes among them), for the platform's administrators only.
async fn outbox(State(s): State<NotifyRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/admin/outbox", &p).await;
    if let Err(e) = s.identity.require_admin(&p).await {
        return failure_page(lang, &e);
    }
    match s.notify.outbox(OUTBOX_LIST_MAX).await {
        Ok(items) => {
            let items = items
                .into_iter()
                .map(|m| OutboxRow {
                    kind_key: match m.kind {
                        OutboxKind::Mail => "notify.outbox.kind.mail",
                        OutboxKind::Sms => "notify.outbox.kind.sms",
                    },
                    to: m.to,
                    subject: m.subject,
                    text: m.text,
                    at_ms: m.at_ms,
                })
                .collect();
            render(&OutboxPage { l, items })
        }
        Err(e) => failure_page(lang, &e),
    }
}
