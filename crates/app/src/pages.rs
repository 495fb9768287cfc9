//! The app's page: the home screen, every room's tiles filtered by the
//! person's city.

use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use yizhan_identity_web::{person_layout, PageUser};
use yizhan_kit::extract::Csrf;
use yizhan_kit::page::{failure_page, filters, render, Layout, Tile};
use yizhan_kit::room;
use yizhan_kit::Lang;

pub fn router() -> Router<AppState> {
    Router::new().route("/home", get(home))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    l: Layout,
    name: String,
    city_name: Option<String>,
    tiles: Vec<&'static Tile>,
    /// The organisations the person works for: their tools come first.
    work: Vec<String>,
}

async fn home(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let profile = match s.identity.profile(&p.user_id).await {
        Ok(pr) => pr,
        Err(e) => return failure_page(lang, &e),
    };
    let city_services: Vec<String> = match &profile.home_city_id {
        Some(id) => s.identity.city(id).await.map(|c| c.services).unwrap_or_default(),
        None => Vec::new(),
    };
    // Without a home city, every capability of the platform shows; a city shows what it offers.
    let no_city = profile.home_city_id.is_none();
    let tiles = room::tiles()
        .iter()
        .copied()
        .filter(|t| t.everywhere || no_city || city_services.iter().any(|k| k == t.key))
        .collect();
    let work = s.identity.memberships(&p.user_id).await.unwrap_or_default().into_iter().map(|m| m.org_name).collect();
    let l = person_layout(&s.notify, lang, &csrf, "/home", &p).await;
    render(&HomePage { l, name: profile.name, city_name: profile.home_city_name, tiles, work })
}
