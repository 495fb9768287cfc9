//! The wallet's pages: balance and QR code, top-up and withdrawal, paying a
//! scanned code, the one-time pay code, sending money, history, the monthly
//! statement, red packets and bills.
//!
//! Every form that moves money carries a hidden idempotency key drawn when the
//! page was rendered; it goes to Pay as the payment's key, so a double submit
//! (or a reload of the answer) moves money once and shows the same receipt.

use super::{error_page, filters, render, render_status, Layout};
use crate::api::wallet::{packet_view, pay_err, paycode_images, red_packet_spec, RedPacketResp};
use crate::extract::{Csrf, CsrfForm, PageUser};
use crate::i18n::{Lang, CATALOG};
use crate::problem::status_of;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use yizhan_core::money::{parse_yuan, yuan};
use yizhan_core::Error;
use yizhan_identity::Principal;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/wallet", get(wallet_page))
        .route("/wallet/topup", post(topup))
        .route("/wallet/withdraw", post(withdraw))
        .route("/wallet/pay", get(pay_form).post(pay_submit))
        .route("/wallet/pay/preview", post(pay_preview))
        .route("/wallet/paycode", get(paycode))
        .route("/wallet/send", get(send_form).post(send_submit))
        .route("/wallet/history", get(history))
        .route("/wallet/transfers/{id}", get(|| async { Redirect::to("/wallet/history") }))
        .route("/wallet/statement", get(statement))
        .route("/red-packets", get(packets_page).post(packet_create))
        .route("/red-packets/open", get(packet_open))
        .route("/red-packets/{id}", get(packet_page))
        .route("/red-packets/{id}/claim", post(packet_claim))
        .route("/bills", get(bills_page))
        .route("/bills/{id}", get(|| async { Redirect::to("/bills") }))
        .route("/bills/{id}/pay", post(bill_pay))
}

/// A fresh idempotency key for a form that moves money.
fn form_key() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("web-{}", hex::encode(b))
}

/// An amount typed in yuan ("12.50"), in fen.
fn yuan_field(s: &str, field: &str) -> Result<i64, Error> {
    parse_yuan(s).ok_or_else(|| Error::field(field, "enter an amount in yuan, such as 12.50"))
}

fn non_empty(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// The words for a ledger category, or the category itself if the catalogue has none.
fn category_label(lang: Lang, category: &str) -> String {
    let key = format!("category.{category}");
    if CATALOG.iter().any(|(k, _, _)| *k == key) {
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

// ---- /wallet ----

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage {
    l: Layout,
    w: yizhan_pay::Wallet,
    qr_svg: String,
    topup_key: String,
    withdraw_key: String,
    receipt: Option<yizhan_pay::GatewayReceipt>,
}

async fn wallet_render(
    s: &AppState,
    l: Layout,
    p: &Principal,
    status: StatusCode,
    receipt: Option<yizhan_pay::GatewayReceipt>,
    kept: Option<(Funding, String)>,
) -> Response {
    let w = match s.pay.wallet(&p.user_id).await {
        Ok(w) => w,
        Err(e) => return error_page(l.lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    };
    let qr_svg = match s.pay.my_qr(&p.user_id).await.and_then(|q| yizhan_pay::qrimage::qr_svg(&q, 6)) {
        Ok(svg) => strip_xml_declaration(svg),
        Err(e) => return error_page(l.lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    };
    let (topup_key, withdraw_key) = match kept {
        Some((Funding::TopUp, k)) => (k, form_key()),
        Some((Funding::Withdraw, k)) => (form_key(), k),
        None => (form_key(), form_key()),
    };
    render_status(status, &WalletPage { l, w, qr_svg, topup_key, withdraw_key, receipt })
}

async fn wallet_page(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet", &p).await;
    wallet_render(&s, l, &p, StatusCode::OK, None, None).await
}

async fn topup(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser, form: CsrfForm) -> Response {
    funding(&s, lang, &csrf, &p, &form, Funding::TopUp).await
}

async fn withdraw(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    funding(&s, lang, &csrf, &p, &form, Funding::Withdraw).await
}

/// Money in from a card, or out to one: the two wallet forms differ only here.
#[derive(Clone, Copy)]
enum Funding {
    TopUp,
    Withdraw,
}

async fn funding(s: &AppState, lang: Lang, csrf: &Csrf, p: &Principal, form: &CsrfForm, way: Funding) -> Response {
    let l = Layout::user(s, lang, csrf, "/wallet", p).await;
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        let (card, idem) = (non_empty(form.get("card")), form.get("idem"));
        match way {
            Funding::TopUp => s.pay.topup(&p.user_id, amount, card, idem).await,
            Funding::Withdraw => s.pay.withdraw(&p.user_id, amount, card, idem).await,
        }
    }
    .await;
    match r {
        Ok(rc) => {
            let done = match way {
                Funding::TopUp => "wallet.topup_done",
                Funding::Withdraw => "wallet.withdraw_done",
            };
            let msg = format!("{} ¥{}", lang.t(done), yuan(rc.amount_fen));
            wallet_render(s, l.ok(&msg), p, StatusCode::OK, Some(rc), None).await
        }
        Err(e) => {
            let key = key_after(&e, form);
            let (l, status) = failed(l, e);
            wallet_render(s, l, p, status, None, Some((way, key))).await
        }
    }
}

// ---- /wallet/pay: paste or scan a code, see whom it pays, pay ----

#[derive(Template)]
#[template(path = "wallet_pay.html")]
struct PayPage {
    l: Layout,
    payload: String,
    preview: Option<yizhan_pay::QrPreview>,
    amount: String,
    key: String,
    receipt: Option<yizhan_pay::Receipt>,
}

fn pay_page(
    l: Layout,
    status: StatusCode,
    payload: String,
    preview: Option<yizhan_pay::QrPreview>,
    key: String,
) -> Response {
    let amount = preview.as_ref().and_then(|p| p.amount_fen).map(yuan).unwrap_or_default();
    render_status(status, &PayPage { l, payload, preview, amount, key, receipt: None })
}

async fn pay_form(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/pay", &p).await;
    pay_page(l, StatusCode::OK, String::new(), None, form_key())
}

async fn pay_preview(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/pay", &p).await;
    let payload = form.get("payload").trim().to_string();
    match s.pay.qr_preview(&payload).await {
        Ok(preview) => pay_page(l, StatusCode::OK, payload, Some(preview), form_key()),
        Err(e) => {
            let (l, status) = failed(l, e);
            pay_page(l, status, payload, None, form_key())
        }
    }
}

async fn pay_submit(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/pay", &p).await;
    let payload = form.get("payload").trim().to_string();
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        s.pay.qr_pay(&p.user_id, &payload, amount, form.get("idem")).await
    }
    .await;
    match r {
        Ok(rc) => {
            let msg = format!("{} ¥{} → {}", lang.t("pay.done"), yuan(rc.amount_fen), rc.payee_name);
            let page = PayPage {
                l: l.ok(&msg),
                payload: String::new(),
                preview: None,
                amount: String::new(),
                key: form_key(),
                receipt: Some(rc),
            };
            render(&page)
        }
        Err(e) => {
            let preview = s.pay.qr_preview(&payload).await.ok();
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            pay_page(l, status, payload, preview, key)
        }
    }
}

// ---- /wallet/paycode ----

#[derive(Template)]
#[template(path = "wallet_paycode.html")]
struct PayCodePage {
    l: Layout,
    code: String,
    expires_at_ms: i64,
    ttl_s: i64,
    qr_svg: String,
    barcode_svg: String,
}

async fn paycode(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/paycode", &p).await;
    let made = async {
        let pc = s.pay.create_paycode(&p.user_id).await?;
        let (qr, bar) = paycode_images(&pc.code)?;
        Ok::<_, Error>((pc, qr, bar))
    }
    .await;
    match made {
        Ok((pc, qr, bar)) => render(&PayCodePage {
            l,
            ttl_s: (pc.expires_at_ms - s.ctx.now_ms()) / 1000,
            code: pc.code,
            expires_at_ms: pc.expires_at_ms,
            qr_svg: strip_xml_declaration(qr),
            barcode_svg: strip_xml_declaration(bar),
        }),
        Err(e) => error_page(lang, status_of(e.code), &e.detail),
    }
}

// ---- /wallet/send ----

#[derive(Template)]
#[template(path = "wallet_send.html")]
struct SendPage {
    l: Layout,
    to: String,
    amount: String,
    memo: String,
    key: String,
    receipt: Option<yizhan_pay::Receipt>,
}

async fn send_form(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/send", &p).await;
    render(&SendPage {
        l,
        to: String::new(),
        amount: String::new(),
        memo: String::new(),
        key: form_key(),
        receipt: None,
    })
}

async fn send_submit(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/send", &p).await;
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        s.pay.transfer_to_user(&p.user_id, form.get("to"), amount, form.get("memo"), form.get("idem")).await
    }
    .await;
    match r {
        Ok(rc) => {
            let msg = format!("{} ¥{} → {}", lang.t("send.done"), yuan(rc.amount_fen), rc.payee_name);
            render(&SendPage {
                l: l.ok(&msg),
                to: String::new(),
                amount: String::new(),
                memo: String::new(),
                key: form_key(),
                receipt: Some(rc),
            })
        }
        Err(e) => {
            // The same key again when the outcome is unknown: a resubmit cannot pay twice.
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            let page = SendPage {
                l,
                to: form.get("to").to_string(),
                amount: form.get("amount").to_string(),
                memo: form.get("memo").to_string(),
                key,
                receipt: None,
            };
            render_status(status, &page)
        }
    }
}

// ---- /wallet/history ----

pub struct HistoryRow {
    pub line: yizhan_pay::HistoryLine,
    pub label: String,
    pub signed: String,
}

#[derive(Template)]
#[template(path = "wallet_history.html")]
struct HistoryPage {
    l: Layout,
    rows: Vec<HistoryRow>,
    next_cursor: Option<i64>,
    first_page: bool,
}

#[derive(Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
}

async fn history(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<CursorQuery>,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/history", &p).await;
    let cursor = q.cursor.as_deref().and_then(|c| c.trim().parse::<i64>().ok());
    match s.pay.history(&p.user_id, cursor).await {
        Ok(page) => {
            let rows = page
                .items
                .into_iter()
                .map(|line| {
                    let change = if line.posted_change_fen != 0 {
                        line.posted_change_fen
                    } else if line.direction == "in" {
                        line.amount_fen
                    } else {
                        -line.amount_fen
                    };
                    let signed = if change > 0 { format!("+{}", yuan(change)) } else { yuan(change) };
                    HistoryRow { label: category_label(lang, &line.category), signed, line }
                })
                .collect();
            render(&HistoryPage { l, rows, next_cursor: page.next_cursor, first_page: cursor.is_none() })
        }
        Err(e) => error_page(lang, status_of(e.code), &e.detail),
    }
}

// ---- /wallet/statement ----

pub struct Bar {
    pub label: String,
    pub money_in: i64,
    pub money_out: i64,
    pub in_width: i64,
    pub out_width: i64,
    pub y: i64,
}

#[derive(Template)]
#[template(path = "wallet_statement.html")]
struct StatementPage {
    l: Layout,
    st: yizhan_pay::Statement,
    bars: Vec<Bar>,
    chart_height: i64,
    prev: (i64, u32),
    next: (i64, u32),
}

/// Chart geometry: bars start after the label column and share the rest.
pub const CHART_LABEL_PX: i64 = 110;
pub const CHART_BAR_PX: i64 = 200;
pub const CHART_ROW_PX: i64 = 44;

#[derive(Deserialize)]
struct MonthQuery {
    year: Option<String>,
    month: Option<String>,
}

async fn statement(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<MonthQuery>,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/wallet/statement", &p).await;
    let r = async {
        let (y, m) = crate::api::wallet::month_of(&s, q.year.as_deref(), q.month.as_deref())?;
        s.pay.statement(&p.user_id, y, m).await
    }
    .await;
    match r {
        Ok(st) => {
            let max = st.lines.iter().map(|l| l.in_fen.max(l.out_fen)).max().unwrap_or(0).max(1);
            let scale = |v: i64| if v == 0 { 0 } else { (v * CHART_BAR_PX / max).max(2) };
            let bars: Vec<Bar> = st
                .lines
                .iter()
                .zip(0i64..)
                .map(|(line, i)| Bar {
                    label: category_label(lang, &line.category),
                    money_in: line.in_fen,
                    money_out: line.out_fen,
                    in_width: scale(line.in_fen),
                    out_width: scale(line.out_fen),
                    y: i * CHART_ROW_PX,
                })
                .collect();
            let chart_height = (bars.len() as i64).max(1) * CHART_ROW_PX;
            let prev = if st.month == 1 { (st.year - 1, 12) } else { (st.year, st.month - 1) };
            let next = if st.month == 12 { (st.year + 1, 1) } else { (st.year, st.month + 1) };
            render(&StatementPage { l, st, bars, chart_height, prev, next })
        }
        Err(e) => {
            let e = pay_err(e).0;
            error_page(lang, status_of(e.code), &e.detail)
        }
    }
}

// ---- red packets ----

#[derive(Template)]
#[template(path = "red_packets.html")]
struct PacketsPage {
    l: Layout,
    key: String,
}

async fn packets_page(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/red-packets", &p).await;
    render(&PacketsPage { l, key: form_key() })
}

async fn packet_create(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let r = async {
        let total = yuan_field(form.get("amount"), "amount")?;
        let count = match non_empty(form.get("count")) {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| Error::field("count", "must be a whole number"))?),
        };
        let spec = red_packet_spec(
            non_empty(form.get("to")).map(str::to_string),
            count,
            &Value::from(total),
            non_empty(form.get("mode")),
            Some(form.get("greeting").to_string()),
            None,
        )?;
        s.pay.create_red_packet(&p.user_id, spec, form.get("idem")).await
    }
    .await;
    match r {
        Ok(rp) => Redirect::to(&format!("/red-packets/{}", rp.id)).into_response(),
        Err(e) => {
            let l = Layout::user(&s, lang, &csrf, "/red-packets", &p).await;
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            render_status(status, &PacketsPage { l, key })
        }
    }
}

#[derive(Deserialize)]
struct OpenQuery {
    id: Option<String>,
}

/// The id of a packet from what was pasted: the id itself or a link ending in it.
async fn packet_open(Query(q): Query<OpenQuery>) -> Response {
    let raw = q.id.unwrap_or_default();
    let id = raw.trim().trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Redirect::to("/red-packets").into_response();
    }
    Redirect::to(&format!("/red-packets/{id}")).into_response()
}

#[derive(Template)]
#[template(path = "red_packet.html")]
struct PacketPage {
    l: Layout,
    rp: RedPacketResp,
    can_claim: bool,
    key: String,
}

async fn packet_render(s: &AppState, l: Layout, p: &Principal, id: &str, status: StatusCode) -> Response {
    let rp = match s.pay.red_packet(id).await {
        Ok(rp) => rp,
        Err(e) => return error_page(l.lang, status_of(e.code), l.lang.t("error.not_found")),
    };
    match packet_view(s, &p.user_id, rp).await {
        Ok(rp) => {
            // A personal packet is for its recipient; a group packet for anyone, its sender too.
            let for_me = !rp.personal || !rp.mine;
            let can_claim = for_me && rp.status == "open" && rp.my_share.is_none() && rp.claimed_count < rp.count;
            render_status(status, &PacketPage { l, rp, can_claim, key: form_key() })
        }
        Err(e) => error_page(l.lang, status_of(e.code), &e.detail),
    }
}

async fn packet_page(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, &format!("/red-packets/{id}"), &p).await;
    packet_render(&s, l, &p, &id, StatusCode::OK).await
}

async fn packet_claim(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, &format!("/red-packets/{id}"), &p).await;
    // One share per person is Pay's rule, so a double submit opens it once.
    match s.pay.claim(&id, &p.user_id).await {
        Ok(c) => {
            let msg = format!("{} ¥{}", lang.t("packet.got"), yuan(c.amount_fen));
            packet_render(&s, l.ok(&msg), &p, &id, StatusCode::OK).await
        }
        Err(e) => {
            let (l, status) = failed(l, e);
            packet_render(&s, l, &p, &id, status).await
        }
    }
}

// ---- bills ----

pub struct BillRow {
    pub bill: yizhan_pay::Bill,
    pub kind_label: String,
    pub key: String,
}

#[derive(Template)]
#[template(path = "bills.html")]
struct BillsPage {
    l: Layout,
    rows: Vec<BillRow>,
    receipt: Option<yizhan_pay::BillReceipt>,
}

async fn bills_render(
    s: &AppState,
    l: Layout,
    p: &Principal,
    status: StatusCode,
    receipt: Option<yizhan_pay::BillReceipt>,
) -> Response {
    match s.pay.bills(&p.user_id).await {
        Ok(list) => {
            let rows = list
                .into_iter()
                .map(|bill| BillRow { kind_label: category_label(l.lang, bill.kind.as_str()), bill, key: form_key() })
                .collect();
            render_status(status, &BillsPage { l, rows, receipt })
        }
        Err(e) => error_page(l.lang, StatusCode::INTERNAL_SERVER_ERROR, &e.detail),
    }
}

async fn bills_page(State(s): State<AppState>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/bills", &p).await;
    bills_render(&s, l, &p, StatusCode::OK, None).await
}

async fn bill_pay(
    State(s): State<AppState>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Response {
    let l = Layout::user(&s, lang, &csrf, "/bills", &p).await;
    match s.pay.pay_bill(&p.user_id, &id, form.get("idem")).await {
        Ok(rc) => {
            let msg = format!("{} ¥{} → {}", lang.t("bills.paid_done"), yuan(rc.amount_fen), rc.payee_org_name);
            bills_render(&s, l.ok(&msg), &p, StatusCode::OK, Some(rc)).await
        }
        Err(e) => {
            let (l, status) = failed(l, e);
            bills_render(&s, l, &p, status, None).await
        }
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
        for c in [TOPUP, WITHDRAWAL, P2P, QR, PAYCODE, RED_PACKET, RED_PACKET_REFUND, BILL] {
            assert_ne!(category_label(Lang::Zh, c), c, "{c}");
        }
        for k in yizhan_pay::BillKind::ALL {
            assert_ne!(category_label(Lang::Zh, k.as_str()), k.as_str(), "{k:?}");
        }
    }
}
