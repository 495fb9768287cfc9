//! The credit room's HTTP side: the person's score (with a gauge and a
//! history chart drawn on the server), factors, reasons, what would raise it,
//! records and contests, perks; court uploads of defaulter lists; staff
//! review of contested records; perk checks for organisations (yes or no).

mod api;
mod pages;
mod svg;
mod texts;

use axum::extract::FromRef;
use yizhan_credit::Credit;
use yizhan_identity::Identity;
use yizhan_kit::authz::{r, Access, RouteRule};
use yizhan_kit::page::Tile;
use yizhan_kit::{Deps, Mounted, Room};
use yizhan_notify::Notify;

/// What the credit room's handlers use.
#[derive(Clone, FromRef)]
pub struct CreditRoom {
    pub identity: Identity,
    pub notify: Notify,
    pub credit: Credit,
}

pub static ROOM: Room = Room {
    name: "credit",
    prefixes: &["/credit", "/api/v1/credit", "/api/v1/orgs/{id}/defaulters", "/api/v1/orgs/{id}/credit"],
    texts: texts::TEXTS,
    access: ACCESS,
    tiles: &[Tile {
        order: 60,
        key: "credit",
        href: "/credit",
        icon: "bars",
        label_key: "service.credit",
        everywhere: false,
    }],
    nav: &[],
    city_services: &["credit"],
    codes: &[yizhan_credit::codes::ALL],
    links: &[("credit_record", "/credit/records/{id}"), ("paylater_statement", "/credit")],
    migrations: &[&yizhan_credit::MIGRATIONS],
    mount,
};

static ACCESS: &[RouteRule] = &[
    r("POST", "/api/v1/credit/opt-in", Access::Resident),
    r("POST", "/api/v1/credit/opt-out", Access::Resident),
    r("GET", "/api/v1/credit/score", Access::Resident),
    r("GET", "/api/v1/credit/history", Access::Resident),
    r("GET", "/api/v1/credit/records", Access::Resident),
    r("POST", "/api/v1/credit/records/{record_id}/contest", Access::Resident),
    r("GET", "/api/v1/credit/improve", Access::Resident),
    r("GET", "/api/v1/credit/perks", Access::Resident),
    r("POST", "/api/v1/orgs/{id}/defaulters", Access::OrgStaff),
    r("GET", "/api/v1/orgs/{id}/credit/contests", Access::OrgStaff),
    r("POST", "/api/v1/orgs/{id}/credit/contests/{record_id}", Access::OrgStaff),
    r("POST", "/api/v1/orgs/{id}/credit/perk-checks", Access::OrgStaff),
    r("GET", "/api/v1/credit/consents", Access::Resident),
    r("POST", "/api/v1/credit/consents", Access::Resident),
    r("GET", "/api/v1/credit/pay-later", Access::Resident),
    r("POST", "/api/v1/credit/pay-later", Access::Resident),
    r("POST", "/api/v1/credit/pay-later/statements/{statement_id}/repay", Access::Resident),
];

fn mount(d: &Deps) -> Result<Mounted, String> {
    let room = CreditRoom { identity: d.get()?, notify: d.get()?, credit: d.get()? };
    Ok(Mounted::new(api::router().with_state(room.clone()), pages::router().with_state(room)))
}
