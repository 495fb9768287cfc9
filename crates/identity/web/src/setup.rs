//! The first start's setup page: the link `yizhan serve` prints while no
//! platform administrator exists opens it; the operator creates the first
//! administrator and the first city (with every city service the platform
//! has). It refuses when an administrator exists or the link is unknown,
//! used or expired. Done, it answers 303 to a page that says so.

use crate::IdentityRoom;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::page::{failure_page, render, render_status, Layout};
use yizhan_kit::Lang;

pub fn router() -> Router<IdentityRoom> {
    Router::new().route("/setup", get(setup_form).post(setup_submit)).route("/setup/done", get(setup_done))
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    l: Layout,
    token: String,
    login: String,
    name: String,
    city: String,
    /// The city services the first city gets.
    services: String,
}

#[derive(Template)]
#[template(path = "setup_done.html")]
struct SetupDonePage {
    l: Layout,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn page(l: Layout, status: StatusCode, token: &str, form: Option<&CsrfForm>) -> Response {
    let get = |k: &str| form.map(|f| f.get(k).to_string()).unwrap_or_default();
    let services = yizhan_kit::room::city_services().join(", ");
    let p =
        SetupPage { l, token: token.to_string(), login: get("login"), name: get("name"), city: get("city"), services };
    render_status(status, &p)
}

async fn setup_form(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match s.identity.check_setup_token(&token).await {
        Ok(()) => page(Layout::anon(lang, &csrf, "/setup"), StatusCode::OK, &token, None),
        Err(e) => failure_page(lang, &e),
    }
}

async fn setup_submit(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, form: CsrfForm) -> Response {
    let token = form.get("token").to_string();
    let services = yizhan_kit::room::city_services().iter().map(|s| s.to_string()).collect();
    let done = s
        .identity
        .complete_setup(&token, form.get("login"), form.get("password"), form.get("name"), form.get("city"), services)
        .await;
    match done {
        Ok(_) => Redirect::to("/setup/done").into_response(),
        // A link that no longer opens the page: the page it would have shown.
        Err(e) if e.fields.is_empty() && e.code != yizhan_core::Code::AlreadyExists => failure_page(lang, &e),
        Err(e) => {
            let (l, status) = Layout::anon(lang, &csrf, "/setup").failed(&e);
            page(l, status, &token, Some(&form))
        }
    }
}

async fn setup_done(lang: Lang, csrf: Csrf) -> Response {
    render(&SetupDonePage { l: Layout::anon(lang, &csrf, "/setup") })
}
