//! The wallet's pages: balance and QR code, top-up and withdrawal, paying a
//! scanned code, the one-time pay code, sending money, history, the monthly
//! statement, red packets and bills.
//!
//! Every form that moves money carries a hidden idempotency key drawn when the
//! page was rendered; it goes to Pay as the payment's key, so a double submit
//! moves money once. Money moved, the answer is 303 to the transfer's page
//! (post/redirect/get): a reload shows the page again and posts nothing.

pub mod balance;
pub mod bills;
pub mod confirm;
pub mod packets;
pub mod pay;
pub mod paycode;
pub mod staff;

pub(crate) use crate::forms::{category_label, form_key, yuan_field};

pub(crate) use crate::api::codes::paycode_images;
pub(crate) use crate::api::packets::{packet_view, red_packet_spec, RedPacketResp};
pub(crate) use crate::api::pay_err;
pub(crate) use crate::WalletRoom;
pub(crate) use askama::Template;
pub(crate) use axum::extract::{Path, Query, State};
pub(crate) use axum::http::StatusCode;
pub(crate) use axum::response::{IntoResponse, Redirect, Response};
pub(crate) use axum::routing::{get, post};
pub(crate) use axum::Router;
pub(crate) use serde::Deserialize;
pub(crate) use serde_json::Value;
pub(crate) use yizhan_core::money::yuan;
pub(crate) use yizhan_core::{Error, Msg};
pub(crate) use yizhan_identity::Principal;
pub(crate) use yizhan_identity_web::{person_layout, PageUser};
pub(crate) use yizhan_kit::extract::{Csrf, CsrfForm};
pub(crate) use yizhan_kit::idem::to_completion;
pub(crate) use yizhan_kit::page::{failure_page, filters, render, render_status, Layout};
pub(crate) use yizhan_kit::Lang;

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .merge(balance::router())
        .merge(pay::router())
        .merge(paycode::router())
        .merge(packets::router())
        .merge(bills::router())
        .merge(staff::router())
        .route(JSQR_HREF, get(jsqr))
}

/// The QR decoder the scan buttons load where the browser has no
/// BarcodeDetector (jsQR 1.4.0; `static/README.md` says how to refetch it).
/// The version is in the name, so it is cached for a year.
pub const JSQR_HREF: &str = "/wallet/static/jsqr-1.4.0.js";
const JSQR_JS: &str = include_str!("../../static/jsQR-1.4.0.js");

async fn jsqr() -> Response {
    use axum::http::header;
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        JSQR_JS,
    )
        .into_response()
}

/// A message in the reader's language.
fn say(lang: Lang, m: Msg) -> String {
    yizhan_kit::i18n::render(lang, &m)
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// A domain error on a page: the flash message and the status.
/// The idempotency key the form carries after a failure: the same one when the
/// outcome is unknown (a server error, a gateway timeout), so a resubmit cannot
/// move money a second time; a fresh one when the request was refused for good.
fn key_after(e: &Error, form: &CsrfForm) -> String {
    match e.code {
        yizhan_core::Code::Internal | yizhan_core::Code::GatewayTimeout if !form.get("idem").is_empty() => {
            form.get("idem").to_string()
        }
        _ => form_key(),
    }
}

/// A failed money action, its fields named as the API names them.
fn failed(l: Layout, e: Error) -> (Layout, StatusCode) {
    l.failed(&pay_err(e).0)
}

fn strip_xml_declaration(svg: String) -> String {
    match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg,
    }
}
