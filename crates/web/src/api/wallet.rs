//! The wallet: balances, top-up and withdrawal, transfers, QR codes, pay
//! codes, red packets, bills. Amounts are integer fen, everywhere. Every route
//! that moves money requires an `Idempotency-Key` (see `crate::idem`), and the
//! key also reaches Pay, so money moves once however often a request is sent.

use crate::extract::{any_bytes, ApiJson, ApiUser};
use crate::idem::{self, IdemCall, IdemJson};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_core::{Error, Fen};
use yizhan_identity::Role;
use yizhan_pay::{BillSpec, BillTo, Payee, RedPacketSpec, SplitMode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(wallet))
        .routes(routes!(topup))
        .routes(routes!(withdraw))
        .routes(routes!(transfer))
        .routes(routes!(transactions))
        .routes(routes!(statement))
        .routes(routes!(create_paycode))
        .routes(routes!(merchant_charge))
        .routes(routes!(my_qr))
        .routes(routes!(org_qr))
        .routes(routes!(qr_preview))
        .routes(routes!(qr_pay))
        .routes(routes!(create_red_packet))
        .routes(routes!(red_packet))
        .routes(routes!(claim_red_packet))
        .routes(routes!(bills))
        .routes(routes!(pay_bill))
        .routes(routes!(issue_bill))
        .routes(routes!(resident_bills))
        .routes(routes!(resident_transactions))
        .routes(routes!(add_vehicle))
        .routes(routes!(sandbox_notify))
}

/// The only currency.
pub const CURRENCY: &str = "CNY";
/// Header carrying the sandbox gateway's signature of a notification body.
pub const SANDBOX_SIGNATURE_HEADER: &str = "x-sandbox-signature";

// ---- input checks shared by the handlers ----

/// An amount to move, from JSON: a positive whole number of fen within the platform's limit.
pub fn amount_of(v: &Value) -> Result<i64, Error> {
    Fen::from_json(v).map(|f| f.0).map_err(|m| Error::field("amount", m))
}

pub fn check_currency(c: Option<&str>) -> Result<(), Error> {
    match c {
        None => Ok(()),
        Some(CURRENCY) => Ok(()),
        Some(_) => Err(Error::field("currency", "only CNY is supported")),
    }
}

/// Amount and currency together, so both problems are named at once.
fn money_in(amount: &Value, currency: Option<&str>) -> Result<i64, Error> {
    match (amount_of(amount), check_currency(currency)) {
        (Ok(a), Ok(())) => Ok(a),
        (Err(e), Ok(())) | (Ok(_), Err(e)) => Err(e),
        (Err(a), Err(c)) => Err(Error::fields(a.fields.into_iter().chain(c.fields).collect())),
    }
}

/// Pay names fields in its own words (`amount_fen`); the API's are `amount`, `due_at`.
pub fn pay_err(mut e: Error) -> ApiError {
    for f in &mut e.fields {
        let api = match f.field.as_str() {
            "amount_fen" | "total_fen" | "per_share_fen" => "amount",
            "due_at_ms" => "due_at",
            "idempotency_key" => "Idempotency-Key",
            _ => continue,
        };
        f.field = api.to_string();
    }
    ApiError(e)
}

fn int_param(name: &str, v: Option<&str>) -> Result<Option<i64>, Error> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| Error::field(name, "must be a whole number")),
    }
}

// ---- answers ----

#[derive(Serialize, ToSchema)]
pub struct WalletResp {
    /// Posted balance, fen.
    pub balance: i64,
    /// What can be spent now (balance less money on hold), fen.
    pub available: i64,
    /// Money on hold (withdrawals in flight), fen.
    pub pending: i64,
    pub currency: String,
}

impl From<yizhan_pay::Wallet> for WalletResp {
    fn from(w: yizhan_pay::Wallet) -> Self {
        WalletResp { balance: w.balance_fen, available: w.available_fen, pending: w.pending_fen, currency: w.currency }
    }
}

#[derive(Serialize, ToSchema)]
pub struct GatewayReceiptResp {
    pub transfer_id: String,
    pub amount: i64,
    pub gateway: String,
    /// The gateway's own reference, for reconciliation.
    pub gateway_ref: String,
    /// Epoch milliseconds.
    pub at: i64,
}

impl From<yizhan_pay::GatewayReceipt> for GatewayReceiptResp {
    fn from(r: yizhan_pay::GatewayReceipt) -> Self {
        GatewayReceiptResp {
            transfer_id: r.transfer_id,
            amount: r.amount_fen,
            gateway: r.gateway,
            gateway_ref: r.gateway_ref,
            at: r.at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PayeeDoc {
    /// "user" or "org".
    pub kind: String,
    pub id: String,
}

impl From<&Payee> for PayeeDoc {
    fn from(p: &Payee) -> Self {
        PayeeDoc { kind: p.kind_str().to_string(), id: p.id().to_string() }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReceiptResp {
    pub transfer_id: String,
    pub amount: i64,
    pub category: String,
    pub payee: PayeeDoc,
    pub payee_name: String,
    pub at: i64,
}

impl From<yizhan_pay::Receipt> for ReceiptResp {
    fn from(r: yizhan_pay::Receipt) -> Self {
        ReceiptResp {
            transfer_id: r.transfer_id,
            amount: r.amount_fen,
            category: r.category,
            payee: PayeeDoc::from(&r.payee),
            payee_name: r.payee_name,
            at: r.at_ms,
        }
    }
}

type Created<T> = ApiResult<(StatusCode, Json<T>)>;

fn created<T>(r: yizhan_core::Result<impl Into<T>>) -> Created<T> {
    r.map(|v| (StatusCode::CREATED, Json(v.into()))).map_err(pay_err)
}

// ---- wallet ----

/// My wallet's balances (fen).
#[utoipa::path(get, path = "/api/v1/wallet", tag = "wallet",
    responses((status = 200, body = WalletResp), (status = 401, body = Problem)))]
async fn wallet(State(s): State<AppState>, ApiUser(p): ApiUser) -> ApiResult<Json<WalletResp>> {
    Ok(Json(s.pay.wallet(&p.user_id).await.map_err(pay_err)?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardMoneyReq {
    /// Fen, a positive whole number.
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    /// A card number; the sandbox's default card when absent.
    pub card: Option<String>,
    /// "CNY" if given.
    pub currency: Option<String>,
}

/// Top up my wallet from a card.
#[utoipa::path(post, path = "/api/v1/wallet/topup", tag = "wallet", request_body = CardMoneyReq,
    params(("Idempotency-Key" = String, Header, description = "unique per payment; a retry with the same key moves money once")),
    responses((status = 201, body = GatewayReceiptResp), (status = 400, body = Problem), (status = 402, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 504, body = Problem)))]
async fn topup(State(s): State<AppState>, ApiUser(p): ApiUser, r: IdemJson<CardMoneyReq>) -> Response {
    let (st, key) = (s.clone(), r.key.clone());
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let amount = money_in(&r.body.amount, r.body.currency.as_deref())?;
        created::<GatewayReceiptResp>(st.pay.topup(&p.user_id, amount, r.body.card.as_deref(), &key).await)
    })
    .await
}

/// Withdraw from my wallet to a card.
#[utoipa::path(post, path = "/api/v1/wallet/withdraw", tag = "wallet", request_body = CardMoneyReq,
    params(("Idempotency-Key" = String, Header, description = "unique per withdrawal")),
    responses((status = 201, body = GatewayReceiptResp), (status = 400, body = Problem), (status = 402, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 504, body = Problem)))]
async fn withdraw(State(s): State<AppState>, ApiUser(p): ApiUser, r: IdemJson<CardMoneyReq>) -> Response {
    let (st, key) = (s.clone(), r.key.clone());
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let amount = money_in(&r.body.amount, r.body.currency.as_deref())?;
        created::<GatewayReceiptResp>(st.pay.withdraw(&p.user_id, amount, r.body.card.as_deref(), &key).await)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferReq {
    /// The payee's login, or the payload of their QR code.
    pub to: String,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    pub memo: Option<String>,
    pub currency: Option<String>,
}

/// Send money to another person.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "wallet", request_body = TransferReq,
    params(("Idempotency-Key" = String, Header, description = "unique per transfer")),
    responses((status = 201, body = ReceiptResp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn transfer(State(s): State<AppState>, ApiUser(p): ApiUser, r: IdemJson<TransferReq>) -> Response {
    let (st, key) = (s.clone(), r.key.clone());
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let amount = money_in(&r.body.amount, r.body.currency.as_deref())?;
        let memo = r.body.memo.unwrap_or_default();
        created::<ReceiptResp>(st.pay.transfer_to_user(&p.user_id, &r.body.to, amount, &memo, &key).await)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct CursorQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryItemDoc {
    pub transfer_id: String,
    /// posted, pending, post_pending, void_pending, expire_pending
    pub kind: String,
    /// "in" or "out"
    pub direction: String,
    pub amount: i64,
    /// The change of the posted balance (0 for holds and their release).
    pub posted_change: i64,
    pub category: String,
    pub memo: String,
    pub counterparty: String,
    pub at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryResp {
    pub items: Vec<HistoryItemDoc>,
    pub next_cursor: Option<i64>,
}

impl From<yizhan_pay::HistoryPage> for HistoryResp {
    fn from(h: yizhan_pay::HistoryPage) -> Self {
        HistoryResp {
            items: h
                .items
                .into_iter()
                .map(|l| HistoryItemDoc {
                    transfer_id: l.transfer_id,
                    kind: l.kind,
                    direction: l.direction,
                    amount: l.amount_fen,
                    posted_change: l.posted_change_fen,
                    category: l.category,
                    memo: l.memo,
                    counterparty: l.counterparty_name,
                    at: l.at_ms,
                })
                .collect(),
            next_cursor: h.next_cursor,
        }
    }
}

/// My wallet's transfers, newest first, one page at a time.
#[utoipa::path(get, path = "/api/v1/wallet/transactions", tag = "wallet", params(CursorQuery),
    responses((status = 200, body = HistoryResp), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn transactions(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<CursorQuery>,
) -> ApiResult<Json<HistoryResp>> {
    let cursor = int_param("cursor", q.cursor.as_deref())?;
    Ok(Json(s.pay.history(&p.user_id, cursor).await.map_err(pay_err)?.into()))
}

#[derive(Deserialize, IntoParams)]
pub struct MonthQuery {
    /// Default: this year (China time).
    pub year: Option<String>,
    /// 1–12. Default: this month (China time).
    pub month: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StatementLineDoc {
    pub category: String,
    /// Money in, fen.
    #[serde(rename = "in")]
    pub money_in: i64,
    /// Money out, fen.
    #[serde(rename = "out")]
    pub money_out: i64,
    pub transfers: i64,
}

#[derive(Serialize, ToSchema)]
pub struct StatementResp {
    pub year: i64,
    pub month: u32,
    /// Start and end of the month, epoch ms ([from, to)).
    pub from: i64,
    pub to: i64,
    pub lines: Vec<StatementLineDoc>,
    pub total_in: i64,
    pub total_out: i64,
}

impl From<yizhan_pay::Statement> for StatementResp {
    fn from(st: yizhan_pay::Statement) -> Self {
        StatementResp {
            year: st.year,
            month: st.month,
            from: st.from_ms,
            to: st.to_ms,
            lines: st
                .lines
                .into_iter()
                .map(|l| StatementLineDoc {
                    category: l.category,
                    money_in: l.in_fen,
                    money_out: l.out_fen,
                    transfers: l.transfers,
                })
                .collect(),
            total_in: st.total_in_fen,
            total_out: st.total_out_fen,
        }
    }
}

/// The month a statement is for: given, or this month in China time.
pub fn month_of(s: &AppState, year: Option<&str>, month: Option<&str>) -> Result<(i64, u32), Error> {
    let (y0, m0) = yizhan_core::time::year_month_cst(s.ctx.now_ms());
    let year = int_param("year", year)?.unwrap_or(y0);
    let month = match int_param("month", month)? {
        None => m0,
        Some(m) => u32::try_from(m).map_err(|_| Error::field("month", "must be 1 to 12"))?,
    };
    Ok((year, month))
}

/// Money in and out of my wallet per category over one month.
#[utoipa::path(get, path = "/api/v1/wallet/statement", tag = "wallet", params(MonthQuery),
    responses((status = 200, body = StatementResp), (status = 422, body = Problem)))]
async fn statement(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<MonthQuery>,
) -> ApiResult<Json<StatementResp>> {
    let (year, month) = month_of(&s, q.year.as_deref(), q.month.as_deref())?;
    Ok(Json(s.pay.statement(&p.user_id, year, month).await.map_err(pay_err)?.into()))
}

// ---- pay codes and QR codes ----

#[derive(Serialize, ToSchema)]
pub struct PayCodeResp {
    /// 18 digits, shown once; a cashier scans or types it.
    pub code: String,
    /// Epoch milliseconds (60 seconds from now).
    pub expires_at: i64,
    /// The code as a QR image (SVG document).
    pub qr_svg: String,
    /// The code as a Code 128 barcode (SVG document).
    pub barcode_svg: String,
}

/// Draw a pay code as QR and barcode.
pub fn paycode_images(code: &str) -> Result<(String, String), Error> {
    Ok((yizhan_pay::qrimage::qr_svg(code, 6)?, yizhan_pay::qrimage::code128_svg(code, 2, 80)?))
}

/// A one-time pay code for a cashier to charge (valid 60 seconds).
#[utoipa::path(post, path = "/api/v1/paycodes", tag = "wallet",
    responses((status = 201, body = PayCodeResp), (status = 401, body = Problem)))]
async fn create_paycode(State(s): State<AppState>, ApiUser(p): ApiUser) -> Created<PayCodeResp> {
    let pc = s.pay.create_paycode(&p.user_id).await.map_err(pay_err)?;
    let (qr_svg, barcode_svg) = paycode_images(&pc.code)?;
    Ok((StatusCode::CREATED, Json(PayCodeResp { code: pc.code, expires_at: pc.expires_at_ms, qr_svg, barcode_svg })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeReq {
    /// The merchant organisation the cashier works for.
    pub org_id: String,
    /// The customer's 18-digit pay code.
    pub code: String,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    pub currency: Option<String>,
}

/// A cashier charges a customer's pay code (staff of the organisation).
#[utoipa::path(post, path = "/api/v1/merchant/charge", tag = "merchant", request_body = ChargeReq,
    params(("Idempotency-Key" = String, Header, description = "unique per charge")),
    responses((status = 201, body = ReceiptResp), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 410, body = Problem), (status = 422, body = Problem)))]
async fn merchant_charge(State(s): State<AppState>, ApiUser(p): ApiUser, r: IdemJson<ChargeReq>) -> Response {
    let (st, key) = (s.clone(), r.key.clone());
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let amount = money_in(&r.body.amount, r.body.currency.as_deref())?;
        created::<ReceiptResp>(st.pay.merchant_charge(&p, &r.body.org_id, &r.body.code, amount, &key).await)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct QrQuery {
    /// "png" or "svg" returns the image itself; JSON otherwise.
    pub format: Option<String>,
    /// A fixed amount in fen the payer must pay (merchant codes only).
    pub amount: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct QrResp {
    /// The EMVCo merchant-presented payload to encode or paste.
    pub payload: String,
    /// The payload drawn as a QR code (SVG document).
    pub svg: String,
    /// The fixed amount, if the code has one.
    pub amount: Option<i64>,
}

fn qr_answer(payload: String, amount: Option<i64>, format: Option<&str>) -> ApiResult<Response> {
    match format.map(str::trim).filter(|f| !f.is_empty()) {
        None | Some("json") => {
            let svg = yizhan_pay::qrimage::qr_svg(&payload, 8)?;
            Ok(Json(QrResp { payload, svg, amount }).into_response())
        }
        Some("svg") => {
            let svg = yizhan_pay::qrimage::qr_svg(&payload, 8)?;
            Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
        }
        Some("png") => {
            let png = yizhan_pay::qrimage::qr_png(&payload, 8)?;
            Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
        }
        Some(_) => Err(Error::field("format", "must be json, svg or png").into()),
    }
}

/// My personal QR code, for others to pay me.
#[utoipa::path(get, path = "/api/v1/qr/me", tag = "qr", params(QrQuery),
    responses((status = 200, body = QrResp, description = "JSON by default; `format=png` or `format=svg` returns the image"),
        (status = 401, body = Problem)))]
async fn my_qr(State(s): State<AppState>, ApiUser(p): ApiUser, Query(q): Query<QrQuery>) -> ApiResult<Response> {
    if q.amount.is_some() {
        return Err(Error::field("amount", "a personal code has no fixed amount").into());
    }
    let payload = s.pay.my_qr(&p.user_id).await.map_err(pay_err)?;
    qr_answer(payload, None, q.format.as_deref())
}

/// An organisation's merchant QR code, optionally for a fixed amount (its staff).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/qr", tag = "qr",
    params(("id" = String, Path, description = "organisation id"), QrQuery),
    responses((status = 200, body = QrResp, description = "JSON by default; `format=png` or `format=svg` returns the image"),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn org_qr(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    Query(q): Query<QrQuery>,
) -> ApiResult<Response> {
    s.identity.require_staff(&p, &id, Role::Operator).await?;
    let amount = match q.amount.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => {
            let v = a.parse::<i64>().map(Value::from).unwrap_or(Value::String(a.to_string()));
            Some(amount_of(&v)?)
        }
    };
    let payload = s.pay.org_qr(&id, amount).await.map_err(pay_err)?;
    qr_answer(payload, amount, q.format.as_deref())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewReq {
    /// The scanned payload.
    pub payload: String,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewResp {
    pub payee: PayeeDoc,
    /// From the platform's records, not from the code.
    pub payee_name: String,
    /// A fixed-amount code must be paid with exactly this (fen).
    pub amount: Option<i64>,
}

impl From<yizhan_pay::QrPreview> for PreviewResp {
    fn from(p: yizhan_pay::QrPreview) -> Self {
        PreviewResp { payee: PayeeDoc::from(&p.payee), payee_name: p.payee_name, amount: p.amount_fen }
    }
}

/// Whom a scanned code pays, before paying.
#[utoipa::path(post, path = "/api/v1/qr/preview", tag = "qr", request_body = PreviewReq,
    responses((status = 200, body = PreviewResp), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn qr_preview(
    State(s): State<AppState>,
    _u: ApiUser,
    ApiJson(req): ApiJson<PreviewReq>,
) -> ApiResult<Json<PreviewResp>> {
    Ok(Json(s.pay.qr_preview(&req.payload).await.map_err(pay_err)?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrPayReq {
    pub payload: String,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    pub currency: Option<String>,
}

/// Pay a scanned QR code.
#[utoipa::path(post, path = "/api/v1/qr/pay", tag = "qr", request_body = QrPayReq,
    params(("Idempotency-Key" = String, Header, description = "unique per payment")),
    responses((status = 201, body = ReceiptResp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn qr_pay(State(s): State<AppState>, ApiUser(p): ApiUser, r: IdemJson<QrPayReq>) -> Response {
    let (st, key) = (s.clone(), r.key.clone());
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let amount = money_in(&r.body.amount, r.body.currency.as_deref())?;
        created::<ReceiptResp>(st.pay.qr_pay(&p.user_id, &r.body.payload, amount, &key).await)
    })
    .await
}

// ---- red packets ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedPacketReq {
    /// For one person (their login); otherwise a group packet anyone with the link may open.
    pub to: Option<String>,
    /// Shares (1 for a packet to one person). Default 1.
    pub count: Option<i64>,
    /// The total, fen.
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    /// "fixed" (equal shares) or "lucky" (random shares). Default: fixed for one share, lucky for more.
    pub mode: Option<String>,
    pub greeting: Option<String>,
    pub currency: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ClaimDoc {
    pub name: String,
    pub amount: i64,
    pub at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RedPacketResp {
    pub id: String,
    pub sender_name: String,
    /// Whether I sent it.
    pub mine: bool,
    /// Whether it is for one person.
    pub personal: bool,
    pub mode: String,
    pub count: i64,
    /// The total, fen.
    pub amount: i64,
    pub greeting: String,
    /// funding, open, failed or refunded
    pub status: String,
    pub claimed_count: i64,
    pub claimed_amount: i64,
    pub refunded_amount: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub claims: Vec<ClaimDoc>,
    /// What I got from it, if I opened it.
    pub my_share: Option<i64>,
}

/// A packet as one person sees it; a packet for someone else is not shown.
pub async fn packet_view(s: &AppState, user_id: &str, rp: yizhan_pay::RedPacket) -> Result<RedPacketResp, Error> {
    if rp.sender_user_id != user_id && rp.to_user_id.as_deref().is_some_and(|to| to != user_id) {
        return Err(Error::forbidden("this red packet is for someone else"));
    }
    let mut names: HashMap<String, String> = HashMap::new();
    let sender_name = name_of(s, &mut names, &rp.sender_user_id).await;
    let mut claims = Vec::with_capacity(rp.claims.len());
    for c in &rp.claims {
        claims.push(ClaimDoc {
            name: name_of(s, &mut names, &c.user_id).await,
            amount: c.amount_fen,
            at: c.claimed_at_ms,
        });
    }
    Ok(RedPacketResp {
        my_share: rp.claims.iter().find(|c| c.user_id == user_id).map(|c| c.amount_fen),
        mine: rp.sender_user_id == user_id,
        personal: rp.to_user_id.is_some(),
        id: rp.id,
        sender_name,
        mode: rp.mode.as_str().to_string(),
        count: rp.count,
        amount: rp.total_fen,
        greeting: rp.greeting,
        status: rp.status,
        claimed_count: rp.claimed_count,
        claimed_amount: rp.claimed_fen,
        refunded_amount: rp.refunded_fen,
        created_at: rp.created_at_ms,
        expires_at: rp.expires_at_ms,
        claims,
    })
}

async fn name_of(s: &AppState, cache: &mut HashMap<String, String>, user_id: &str) -> String {
    if let Some(n) = cache.get(user_id) {
        return n.clone();
    }
    let n = s.identity.user_ref(user_id).await.map(|u| u.name).unwrap_or_else(|_| "—".into());
    cache.insert(user_id.to_string(), n.clone());
    n
}

/// What a red packet request asks for, checked.
pub fn red_packet_spec(
    to: Option<String>,
    count: Option<i64>,
    amount: &Value,
    mode: Option<&str>,
    greeting: Option<String>,
    currency: Option<&str>,
) -> Result<RedPacketSpec, Error> {
    let total_fen = money_in(amount, currency)?;
    let to_user = to.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let count = count.unwrap_or(1);
    let mode = match mode.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => SplitMode::parse(m)?,
        None if count == 1 => SplitMode::Fixed,
        None => SplitMode::Lucky,
    };
    Ok(RedPacketSpec { to_user, count, total_fen, mode, greeting: greeting.unwrap_or_default() })
}

/// Send a red packet: to one person, or a group packet of N shares.
#[utoipa::path(post, path = "/api/v1/red-packets", tag = "red packets", request_body = RedPacketReq,
    params(("Idempotency-Key" = String, Header, description = "unique per packet")),
    responses((status = 201, body = RedPacketResp), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn create_red_packet(State(s): State<AppState>, ApiUser(p): ApiUser, r: IdemJson<RedPacketReq>) -> Response {
    let (st, key) = (s.clone(), r.key.clone());
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let b = r.body;
        let spec = red_packet_spec(b.to, b.count, &b.amount, b.mode.as_deref(), b.greeting, b.currency.as_deref())?;
        let rp = st.pay.create_red_packet(&p.user_id, spec, &key).await.map_err(pay_err)?;
        let view = packet_view(&st, &p.user_id, rp).await?;
        Created::<RedPacketResp>::Ok((StatusCode::CREATED, Json(view)))
    })
    .await
}

/// A red packet and who opened it.
#[utoipa::path(get, path = "/api/v1/red-packets/{id}", tag = "red packets",
    params(("id" = String, Path)),
    responses((status = 200, body = RedPacketResp), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn red_packet(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<RedPacketResp>> {
    let rp = s.pay.red_packet(&id).await.map_err(pay_err)?;
    Ok(Json(packet_view(&s, &p.user_id, rp).await?))
}

#[derive(Serialize, ToSchema)]
pub struct ClaimResp {
    pub packet_id: String,
    /// What I got, fen.
    pub amount: i64,
    pub transfer_id: String,
}

/// Open a red packet: one share per person.
#[utoipa::path(post, path = "/api/v1/red-packets/{id}/claim", tag = "red packets",
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "unique per attempt")),
    responses((status = 201, body = ClaimResp), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 410, body = Problem)))]
async fn claim_red_packet(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    r: IdemCall,
) -> Response {
    let st = s.clone();
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let c = st.pay.claim(&id, &p.user_id).await.map_err(pay_err)?;
        Created::<ClaimResp>::Ok((
            StatusCode::CREATED,
            Json(ClaimResp { packet_id: c.packet_id, amount: c.amount_fen, transfer_id: c.transfer_id }),
        ))
    })
    .await
}

// ---- bills ----

#[derive(Serialize, ToSchema)]
pub struct BillDoc {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    /// fine, water, electricity, gas, heating, medical or fee
    pub kind: String,
    pub amount: i64,
    pub description: String,
    pub plate: Option<String>,
    pub due_at: i64,
    pub issued_at: i64,
    /// unpaid or paid
    pub status: String,
    pub paid_at: Option<i64>,
    pub transfer_id: Option<String>,
    /// Unpaid past its due time, or paid after it.
    pub late: bool,
}

impl From<yizhan_pay::Bill> for BillDoc {
    fn from(b: yizhan_pay::Bill) -> Self {
        BillDoc {
            id: b.id,
            org_id: b.org_id,
            org_name: b.org_name,
            kind: b.kind.as_str().to_string(),
            amount: b.amount_fen,
            description: b.description,
            plate: b.plate,
            due_at: b.due_at_ms,
            issued_at: b.issued_at_ms,
            status: b.status.as_str().to_string(),
            paid_at: b.paid_at_ms,
            transfer_id: b.transfer_id,
            late: b.late,
        }
    }
}

/// My bills and fines, newest first.
#[utoipa::path(get, path = "/api/v1/bills", tag = "bills",
    responses((status = 200, body = Vec<BillDoc>), (status = 401, body = Problem)))]
async fn bills(State(s): State<AppState>, ApiUser(p): ApiUser) -> ApiResult<Json<Vec<BillDoc>>> {
    let list = s.pay.bills(&p.user_id).await.map_err(pay_err)?;
    Ok(Json(list.into_iter().map(BillDoc::from).collect()))
}

#[derive(Serialize, ToSchema)]
pub struct BillReceiptResp {
    pub bill_id: String,
    pub transfer_id: String,
    pub amount: i64,
    pub paid_at: i64,
    pub payee_org_id: String,
    pub payee_org_name: String,
    pub late: bool,
}

impl From<yizhan_pay::BillReceipt> for BillReceiptResp {
    fn from(r: yizhan_pay::BillReceipt) -> Self {
        BillReceiptResp {
            bill_id: r.bill_id,
            transfer_id: r.transfer_id,
            amount: r.amount_fen,
            paid_at: r.paid_at_ms,
            payee_org_id: r.payee_org_id,
            payee_org_name: r.payee_org_name,
            late: r.late,
        }
    }
}

/// Pay one of my bills from the wallet.
#[utoipa::path(post, path = "/api/v1/bills/{id}/pay", tag = "bills",
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "unique per payment")),
    responses((status = 201, body = BillReceiptResp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn pay_bill(State(s): State<AppState>, ApiUser(p): ApiUser, Path(id): Path<String>, r: IdemCall) -> Response {
    let (st, key) = (s.clone(), r.key.clone());
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        created::<BillReceiptResp>(st.pay.pay_bill(&p.user_id, &id, &key).await)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueBillReq {
    /// The person's resident identity number (they must be real-name verified) …
    pub id_number: Option<String>,
    /// … or a car plate registered to them.
    pub plate: Option<String>,
    /// fine (city departments and courts only), water, electricity, gas, heating, medical or fee.
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    /// Due time, epoch milliseconds, in the future.
    pub due_at: i64,
    pub description: String,
    pub currency: Option<String>,
}

/// Staff of an organisation issue a bill or fine to a person (by identity number or plate).
/// Takes an `Idempotency-Key`, so a retried request issues one bill.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/bills", tag = "bills", request_body = IssueBillReq,
    params(("id" = String, Path, description = "organisation id"),
        ("Idempotency-Key" = String, Header, description = "unique per bill; a retry with the same key issues one bill")),
    responses((status = 201, body = BillDoc), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn issue_bill(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    r: IdemJson<IssueBillReq>,
) -> Response {
    let st = s.clone();
    let scope = p.user_id.clone();
    idem::run(&s, &scope, &r.key, &r.hash, async move {
        let req = r.body;
        let amount_fen = money_in(&req.amount, req.currency.as_deref())?;
        let to = match (req.id_number, req.plate) {
            (Some(n), None) => BillTo::IdNumber(n),
            (None, Some(p)) => BillTo::Plate(p),
            _ => return Err(Error::field("id_number", "give either id_number or plate").into()),
        };
        let kind = yizhan_pay::BillKind::parse(req.kind.trim())?;
        let spec = BillSpec { to, kind, amount_fen, due_at_ms: req.due_at, description: req.description };
        created::<BillDoc>(st.pay.issue_bill(&p, &id, spec).await)
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct ReasonQuery {
    /// Why staff reads this person's bills; shown to the person in their access log.
    pub reason: Option<String>,
}

/// Staff read a resident's bills from their organisation; the read is written to the resident's access log.
#[utoipa::path(get, path = "/api/v1/orgs/{id}/residents/{user_id}/bills", tag = "bills",
    params(("id" = String, Path, description = "organisation id"), ("user_id" = String, Path), ReasonQuery),
    responses((status = 200, body = Vec<BillDoc>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn resident_bills(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Path((id, user_id)): Path<(String, String)>,
    Query(q): Query<ReasonQuery>,
) -> ApiResult<Json<Vec<BillDoc>>> {
    let reason = q.reason.unwrap_or_default();
    let list = s.pay.staff_list_bills(&p, &id, &user_id, &reason).await.map_err(pay_err)?;
    Ok(Json(list.into_iter().map(BillDoc::from).collect()))
}

#[derive(Deserialize, IntoParams)]
pub struct SupportReadQuery {
    /// Why support reads this person's transactions; shown to the person in their access log.
    pub reason: Option<String>,
    pub cursor: Option<String>,
}

/// Platform support reads a person's wallet transactions; the read is written to the person's access log.
#[utoipa::path(get, path = "/api/v1/admin/users/{user_id}/transactions", tag = "wallet",
    params(("user_id" = String, Path), SupportReadQuery),
    responses((status = 200, body = HistoryResp), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn resident_transactions(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    Path(user_id): Path<String>,
    Query(q): Query<SupportReadQuery>,
) -> ApiResult<Json<HistoryResp>> {
    let cursor = int_param("cursor", q.cursor.as_deref())?;
    let reason = q.reason.unwrap_or_default();
    Ok(Json(s.pay.staff_read_history(&p, &user_id, &reason, cursor).await.map_err(pay_err)?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VehicleReq {
    /// A mainland plate, e.g. 浙A12345.
    pub plate: String,
}

#[derive(Serialize, ToSchema)]
pub struct VehicleResp {
    /// The plate, normalised.
    pub plate: String,
}

/// Register my car's plate, so its fines reach me.
#[utoipa::path(post, path = "/api/v1/me/vehicles", tag = "me", request_body = VehicleReq,
    responses((status = 201, body = VehicleResp), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn add_vehicle(
    State(s): State<AppState>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<VehicleReq>,
) -> Created<VehicleResp> {
    let plate = s.pay.register_vehicle(&p.user_id, &req.plate).await.map_err(pay_err)?;
    Ok((StatusCode::CREATED, Json(VehicleResp { plate })))
}

#[derive(Serialize, ToSchema)]
pub struct NotifyResp {
    pub id: String,
    /// Seen before: nothing was done this time.
    pub duplicate: bool,
    pub outcome: String,
}

/// The sandbox gateway's notifications (webhook). No token: the body must be
/// signed (`X-Sandbox-Signature`: hex HMAC-SHA256); a notification seen before changes nothing.
#[utoipa::path(post, path = "/api/v1/gateway/sandbox/notify", tag = "gateway", security(()),
    params(("X-Sandbox-Signature" = String, Header, description = "hex HMAC-SHA256 of the body")),
    request_body(content = Object, description = "the notification: id, kind, reference, amount_fen, gateway_ref"),
    responses((status = 200, body = NotifyResp), (status = 403, body = Problem), (status = 400, body = Problem)))]
async fn sandbox_notify(State(s): State<AppState>, headers: HeaderMap, req: Request) -> ApiResult<Json<NotifyResp>> {
    let sig = headers.get(SANDBOX_SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if sig.is_empty() {
        return Err(Error::forbidden("the notification is not signed").into());
    }
    if s.pay.gateway_name() != "sandbox" {
        return Err(Error::not_found("gateway").into());
    }
    let body = any_bytes(req, &()).await?;
    let ack = s.pay.gateway_notification(&body, &sig).await.map_err(pay_err)?;
    Ok(Json(NotifyResp { id: ack.id, duplicate: ack.duplicate, outcome: ack.outcome }))
}
