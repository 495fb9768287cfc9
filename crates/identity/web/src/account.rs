//! The account as a whole: the export of everything held about a person and
//! the deletion of the account, as pages and over the API. What each room
//! holds is gathered by the app, which gives the room an `Accounts`.

use crate::{person_layout, session_cookie, ApiUser, IdentityRoom, PageUser};
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_core::{Error, Msg, Result};
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::i18n::render as render_msg;
use yizhan_kit::page::{failure_page, render, render_status, Layout, MessagePage};
use yizhan_kit::problem::{ApiResult, Problem};
use yizhan_kit::Lang;

/// The export and the deletion of a whole account, across every room: each
/// room exports and erases its own part (the app composes them).
#[async_trait::async_trait]
pub trait AccountLifecycle: Send + Sync {
    /// Everything held about the person, each section saying whether it is kept after deletion.
    async fn export(&self, user_id: &str) -> Result<serde_json::Value>;
    /// Erase what may be erased, keep what law or money requires; refused while money is held.
    async fn delete(&self, user_id: &str) -> Result<serde_json::Value>;
}

/// What the identity room is given to export and delete accounts.
pub type Accounts = Arc<dyn AccountLifecycle>;

pub fn pages() -> Router<IdentityRoom> {
    Router::new().route("/export", get(export)).route("/account/delete", get(delete_form).post(delete_submit))
}

pub fn api() -> OpenApiRouter<IdentityRoom> {
    OpenApiRouter::new().routes(routes!(export_me)).routes(routes!(delete_me))
}

/// Everything the platform holds about me, as JSON; each section says whether it survives deletion.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "me",
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
async fn export_me(State(s): State<IdentityRoom>, ApiUser(p): ApiUser) -> ApiResult<impl IntoResponse> {
    // Everything about a person: never kept by a cache on the way.
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(s.accounts.export(&p.user_id).await?)))
}

/// Delete my account: erase what may be erased, keep what law or money requires.
#[utoipa::path(delete, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = Object, description = "what was erased and what was kept"), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "`deposit_held`: a city service still holds a deposit (return what was lent first); money still in the wallet")))]
async fn delete_me(State(s): State<IdentityRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(s.accounts.delete(&p.user_id).await?))
}

async fn export(State(s): State<IdentityRoom>, lang: Lang, PageUser(p): PageUser) -> Response {
    match s.accounts.export(&p.user_id).await {
        Ok(v) => {
            let body = serde_json::to_string_pretty(&v).unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/json; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"yizhan-export.json\""),
                    (header::CACHE_CONTROL, "no-store"),
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

fn is_confirm_word(typed: &str) -> bool {
    let typed = typed.trim();
    [Lang::En, Lang::Zh].iter().any(|l| typed.eq_ignore_ascii_case(l.t(CONFIRM_WORD)))
}

async fn delete_form(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/account/delete", &p).await;
    render(&DeletePage { l })
}

async fn delete_submit(
    State(s): State<IdentityRoom>,
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
    match s.accounts.delete(&p.user_id).await {
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
        Err(e) => {
            // Refused (money still in the wallet, a red packet still open): the
            // same page, the reason in the person's language, the status from the table.
            let (l, status) = person_layout(&s.notify, lang, &csrf, "/account/delete", &p).await.failed(&e);
            render_status(status, &DeletePage { l })
        }
    }
}

/// The word a person types to confirm deleting their account: "DELETE" or
/// "注销"; either language's word is accepted, whichever the page showed.
const CONFIRM_WORD: &str = "delete.confirm_word";
