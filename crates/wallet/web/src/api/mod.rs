//! The wallet: balances, top-up and withdrawal, transfers, QR codes, pay
//! codes, red packets, bills. Amounts are integer fen, everywhere. Every route
//! that moves money requires an `Idempotency-Key` (see `crate::idem`), and the
//! key also reaches Pay, so money moves once however often a request is sent.

pub mod balance;
pub mod bills;
pub mod codes;
pub mod limits;
pub mod packets;

pub(crate) use crate::WalletRoom;
pub(crate) use axum::extract::{Path, Request, State};
pub(crate) use axum::http::{header, HeaderMap, StatusCode};
pub(crate) use axum::response::{IntoResponse, Response};
pub(crate) use axum::Json;
pub(crate) use serde::{Deserialize, Serialize};
pub(crate) use serde_json::Value;
pub(crate) use std::collections::HashMap;
pub(crate) use utoipa::{IntoParams, ToSchema};
pub(crate) use utoipa_axum::{router::OpenApiRouter, routes};
pub(crate) use yizhan_core::{Error, Fen};
pub(crate) use yizhan_identity::{Principal, Role};
pub(crate) use yizhan_identity_web::ApiUser;
pub(crate) use yizhan_kit::extract::{any_bytes, ApiJson, ApiQuery};
pub(crate) use yizhan_kit::idem::{self, IdemCall, IdemJson};
pub(crate) use yizhan_kit::problem::{ApiError, ApiResult, Problem};
pub(crate) use yizhan_pay::{BillSpec, BillTo, Charge, Payee, RedPacketSpec, SplitMode};

pub fn router() -> OpenApiRouter<WalletRoom> {
    OpenApiRouter::new()
        .merge(balance::router())
        .merge(codes::router())
        .merge(packets::router())
        .merge(bills::router())
        .merge(limits::router())
}

// ---- input checks shared by the handlers ----

/// An amount to move, from JSON: a positive whole number of fen within the platform's limit.
pub fn amount_of(v: &Value) -> Result<i64, Error> {
    if let Some(i) = v.as_i64() {
        return yizhan_ledger::amount_check("amount", i);
    }
    match Fen::from_json(v) {
        Ok(f) => Ok(f.0),
        Err(_) => Err(Error::field_msg("amount", amount_json_msg(v))),
    }
}

/// What is wrong with an amount that is not a whole number of fen in range.
fn amount_json_msg(v: &Value) -> yizhan_core::Msg {
    match v {
        Value::Number(n) if n.is_f64() => yizhan_core::Msg::new("wallet.amount.fraction"),
        Value::Number(_) => yizhan_core::Msg::new("ledger.amount.too_large").fen("max", Fen::MAX_AMOUNT),
        _ => yizhan_core::Msg::new("wallet.amount.not_integer"),
    }
}

pub fn check_currency(c: Option<&str>) -> Result<(), Error> {
    match c {
        None => Ok(()),
        Some(CURRENCY) => Ok(()),
        Some(_) => Err(Error::field("currency", "ledger.currency_only_cny")),
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
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| Error::field(name, "wallet.whole_number")),
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
    /// True when the platform runs the sandbox gateway: top-ups and
    /// withdrawals only pretend, no real money enters or leaves.
    pub sandbox: bool,
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

#[derive(Serialize, ToSchema)]
pub struct PayeeDoc {
    /// "user" or "org".
    pub kind: String,
    pub id: String,
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

/// A 201 answer with its JSON.
type Created<T> = ApiResult<(StatusCode, Json<T>)>;

// ---- money handlers ----

/// A request that moves money: its body (nothing for a bare call), its
/// `Idempotency-Key` and the hash of the request.
pub(crate) trait MoneyRequest {
    type Body: Send + 'static;
    fn parts(self) -> (Self::Body, String, String);
}

impl<T: Send + 'static> MoneyRequest for IdemJson<T> {
    type Body = T;
    fn parts(self) -> (T, String, String) {
        (self.body, self.key, self.hash)
    }
}

/// A money request whose JSON body may be left out (then `T::default()`).
pub(crate) struct IdemMaybeJson<T> {
    body: T,
    key: String,
    hash: String,
}

impl<T: serde::de::DeserializeOwned + Default, S: Send + Sync> axum::extract::FromRequest<S> for IdemMaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let yizhan_kit::extract::IdemKey(key) =
            yizhan_kit::extract::IdemKey::from_request_parts(&mut parts, state).await?;
        let (method, path) = (parts.method.to_string(), parts.uri.path().to_string());
        let bytes = any_bytes(Request::from_parts(parts, body), state).await?;
        let hash = yizhan_idempotency::request_hash(&method, &path, &bytes);
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            T::default()
        } else {
            yizhan_kit::extract::parse_json(&bytes)?
        };
        Ok(IdemMaybeJson { body, key, hash })
    }
}

impl<T: Send + 'static> MoneyRequest for IdemMaybeJson<T> {
    type Body = T;
    fn parts(self) -> (T, String, String) {
        (self.body, self.key, self.hash)
    }
}

impl MoneyRequest for IdemCall {
    type Body = ();
    fn parts(self) -> ((), String, String) {
        ((), self.key, self.hash)
    }
}

/// A money handler in one call: `work` (given the room, the caller, the
/// request's key and its body) runs at most once per caller and key (see
/// `crate::idem`; a replay answers what the first run answered); its answer
/// is 201 with the JSON, its error a problem with fields named as the API
/// names them.
pub(crate) async fn money<Q, T, F, Fut>(s: &WalletRoom, p: &Principal, r: Q, work: F) -> Response
where
    Q: MoneyRequest,
    F: FnOnce(WalletRoom, Principal, String, Q::Body) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    T: Serialize + Send + 'static,
{
    let (body, key, hash) = r.parts();
    // An async block does nothing until polled: `idem::run` decides whether it runs.
    let answer = work(s.clone(), p.clone(), key.clone(), body);
    idem::run(&s.idempotency, &p.user_id, &key, &hash, async move {
        answer.await.map(|v| (StatusCode::CREATED, Json(v))).map_err(pay_err)
    })
    .await
}

/// The only currency.
pub const CURRENCY: &str = "CNY";

/// Header carrying the sandbox gateway's signature of a notification body.
pub const SANDBOX_SIGNATURE_HEADER: &str = "x-sandbox-signature";

impl WalletResp {
    /// A wallet's balances, and whether the gateway behind them is the sandbox.
    pub fn new(w: yizhan_pay::Wallet, sandbox: bool) -> Self {
        WalletResp {
            balance: w.balance_fen,
            available: w.available_fen,
            pending: w.pending_fen,
            currency: w.currency,
            sandbox,
        }
    }
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

impl From<&Payee> for PayeeDoc {
    fn from(p: &Payee) -> Self {
        PayeeDoc { kind: p.kind_str().to_string(), id: p.id().to_string() }
    }
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
