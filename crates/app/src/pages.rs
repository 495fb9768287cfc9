//! The app's pages: the home screen (every room's tiles, filtered by the
//! person's city), and the export and deletion of an account.

use crate::{account, AppState};
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use yizhan_core::{Error, Msg};
use yizhan_identity_web::{person_layout, session_cookie, PageUser};
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::i18n::render as render_msg;
use yizhan_kit::page::{failure_page, render, render_status, Layout, MessagePage, Tile};
use yizhan_kit::room;
use yizhan_kit::Lang;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/home", get(home))
        .route("/export", get(export))
        .route("/account/delete", get(delete_form).post(delete_submit))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    l: Layout,
    name: String,
    city_name: Option<String>,
    tiles: Vec<&'static Tile>,
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
    let l = person_layout(&s.notify, lang, &csrf, "/home", &p).await;
    render(&HomePage { l, name: profile.name, city_name: profile.home_city_name, tiles })
}

async fn export(State(s): State<AppState>, lang: Lang, PageUser(p): PageUser) -> Response {
    match account::export(&s, &p.user_id).await {
        Ok(v) => {
            let body = serde_json::to_string_pretty(&v).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"yizhan-export.json\""),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => failure_page(lang, &e),
    }
}

#[derive(Template)]
#[template(path = "delete.html")]
struct DeletePage {
    l: Layout,
}

impl DeletePage {
    /// "Type DELETE to confirm", with the word in the reader's language.
    fn confirm_label(&self) -> String {
        render_msg(self.l.lang, &Msg::new("delete.confirm").key_arg("word", CONFIRM_WORD))
    }
}

/// The word a person types to confirm deleting their account: "DELETE" or
/// "注销" — either language's word is accepted, whichever the page showed.
const CONFIRM_WORD: &str = "delete.confirm_word";

fn is_confirm_word(typed: &str) -> bool {
    let typed = typed.trim();
    [Lang::En, Lang::Zh].iter().any(|l| typed.eq_ignore_ascii_case(l.t(CONFIRM_WORD)))
}

async fn delete_form(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/delete", &p).await;
    render(&DeletePage { l })
}

async fn delete_submit(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    if !is_confirm_word(form.get("confirm")) {
        let l = person_layout(&s.notify, lang, &csrf, "/account/delete", &p).await;
        let e = Error::field_msg("confirm", Msg::new("delete.confirm_wrong").key_arg("word", CONFIRM_WORD));
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &DeletePage { l: l.error(&e) });
    }
    match account::delete(&s, &p.user_id).await {
        Ok(_) => {
            let l = Layout::anon(lang, &csrf, "/");
            let mut r = render(&MessagePage {
                l,
                title: lang.t("delete.title").to_string(),
                message: lang.t("delete.done").to_string(),
            });
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&s.config, "", 0));
            r
        }
        Err(e) => failure_page(lang, &e),
    }
}
