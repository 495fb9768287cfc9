//! The wallet's pages: balance and QR code, top-up and withdrawal, paying a
//! scanned code, the one-time pay code, sending money, history, the monthly
//! statement, red packets and bills.
//!
//! Every form that moves money carries a hidden idempotency key drawn when the
//! page was rendered; it goes to Pay as the payment's key, so a double submit
//! (or a reload of the answer) moves money once and shows the same receipt.

pub mod balance;
pub mod bills;
pub mod packets;
pub mod pay;

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
pub(crate) use rand::RngCore;
pub(crate) use serde::Deserialize;
pub(crate) use serde_json::Value;
pub(crate) use yizhan_core::money::{parse_yuan, yuan};
pub(crate) use yizhan_core::{Error, Msg};
pub(crate) use yizhan_identity::Principal;
pub(crate) use yizhan_identity_web::{person_layout, PageUser};
pub(crate) use yizhan_kit::extract::{Csrf, CsrfForm};
pub(crate) use yizhan_kit::page::{failure_page, filters, render, render_status, Layout};
pub(crate) use yizhan_kit::Lang;

pub fn router() -> Router<WalletRoom> {
    Router::new().merge(balance::router()).merge(pay::router()).merge(packets::router()).merge(bills::router())
}

/// A fresh idempotency key for a form that moves money.
fn form_key() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("web-{}", hex::encode(b))
}

/// An amount typed in yuan ("12.50"), in fen.
fn yuan_field(s: &str, field: &str) -> Result<i64, Error> {
    parse_yuan(s).ok_or_else(|| Error::field(field, "wallet.amount_yuan_hint"))
}

/// A message in the reader's language.
fn say(lang: Lang, m: Msg) -> String {
    yizhan_kit::i18n::render(lang, &m)
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// The words for a ledger category, or the category itself if the catalogue has none.
fn category_label(lang: Lang, category: &str) -> String {
    let key = format!("category.{category}");
    if yizhan_kit::i18n::lookup(lang, &key) != yizhan_kit::i18n::MISSING {
        lang.t(&key).to_string()
    } else {
        category.to_string()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_fields_parse_or_name_the_field() {
        assert_eq!(yuan_field("12.50", "amount").unwrap(), 1250);
        assert_eq!(yuan_field(" 3 ", "amount").unwrap(), 300);
        for bad in ["", "abc", "1.234", "-1", "1e3"] {
            assert_eq!(yuan_field(bad, "amount").unwrap_err().fields[0].field, "amount", "{bad}");
        }
        assert!(form_key().len() <= yizhan_pay::MAX_IDEMPOTENCY_KEY_CHARS);
        assert_ne!(form_key(), form_key());
    }

    #[test]
    fn every_category_has_words() {
        use yizhan_pay::category::*;
        yizhan_kit::i18n::install(&[("wallet", crate::texts::TEXTS)]).unwrap();
        for c in [TOPUP, WITHDRAWAL, P2P, QR, PAYCODE, RED_PACKET, RED_PACKET_REFUND, BILL] {
            assert_ne!(category_label(Lang::Zh, c), c, "{c}");
        }
        for k in yizhan_pay::BillKind::ALL {
            assert_ne!(category_label(Lang::Zh, k.as_str()), k.as_str(), "{k:?}");
        }
    }
}
