//! Balance, top-up and withdrawal through the funding gateway, transfers between people, history and monthly statements, and the sandbox gateway's signed notifications.

use super::*;

pub fn router() -> OpenApiRouter<WalletRoom> {
    OpenApiRouter::new()
        .routes(routes!(wallet))
        .routes(routes!(topup))
        .routes(routes!(withdraw))
        .routes(routes!(transfer))
        .routes(routes!(transfer_preview))
        .routes(routes!(transactions))
        .routes(routes!(transaction))
        .routes(routes!(statement))
        .routes(routes!(sandbox_notify))
}

// ---- wallet ----

/// My wallet's balances (fen).
#[utoipa::path(get, path = "/api/v1/wallet", tag = "wallet",
    responses((status = 200, body = WalletResp), (status = 401, body = Problem)))]
pub(crate) async fn wallet(State(s): State<WalletRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<WalletResp>> {
    let w = s.pay.wallet(&p.user_id).await.map_err(pay_err)?;
    Ok(Json(WalletResp::new(w, s.pay.gateway_is_sandbox())))
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
pub(crate) async fn topup(State(s): State<WalletRoom>, ApiUser(p): ApiUser, r: IdemJson<CardMoneyReq>) -> Response {
    money(&s, &p, r, |st, p, key, b: CardMoneyReq| async move {
        let amount = money_in(&b.amount, b.currency.as_deref())?;
        Ok(GatewayReceiptResp::from(st.pay.topup(&p.user_id, amount, b.card.as_deref(), &key).await?))
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawReq {
    /// Fen, a positive whole number.
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    /// A card number; the sandbox's default card when absent.
    pub card: Option<String>,
    /// "CNY" if given.
    pub currency: Option<String>,
    /// The payment PIN, required when I set one (wrong tries are counted:
    /// 422 `wrong_pin`, then 429 for a while).
    pub pin: Option<String>,
}

/// Withdraw from my wallet to a card.
#[utoipa::path(post, path = "/api/v1/wallet/withdraw", tag = "wallet", request_body = WithdrawReq,
    params(("Idempotency-Key" = String, Header, description = "unique per withdrawal")),
    responses((status = 201, body = GatewayReceiptResp), (status = 400, body = Problem), (status = 402, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem),
        (status = 504, body = Problem)))]
pub(crate) async fn withdraw(State(s): State<WalletRoom>, ApiUser(p): ApiUser, r: IdemJson<WithdrawReq>) -> Response {
    money(&s, &p, r, |st, p, key, b: WithdrawReq| async move {
        let amount = money_in(&b.amount, b.currency.as_deref())?;
        st.pay.check_payment_pin(&p.user_id, b.pin.as_deref()).await?;
        Ok(GatewayReceiptResp::from(st.pay.withdraw(&p.user_id, amount, b.card.as_deref(), &key).await?))
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
    /// The payment PIN, required when the payer set one.
    pub pin: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewPaymentReq {
    /// The payee's login, or the payload of their QR code.
    pub to: String,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentPreviewResp {
    pub payee: PayeeDoc,
    /// A person's name with all but its last character hidden; a shop's name in full.
    pub payee_name: String,
    /// A person's login, masked, when paid by login.
    pub login_masked: Option<String>,
    /// A fixed-amount code's amount, fen.
    pub amount: Option<i64>,
    /// Fee on top, fen.
    pub fee: i64,
    /// Confirming asks for the payment PIN.
    pub pin_required: bool,
}

/// Who a payment to this login or QR code goes to, before paying: the payer
/// checks the masked name. Paying oneself is refused here.
#[utoipa::path(post, path = "/api/v1/transfers/preview", tag = "wallet", request_body = PreviewPaymentReq,
    responses((status = 200, body = PaymentPreviewResp), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn transfer_preview(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<PreviewPaymentReq>,
) -> ApiResult<Json<PaymentPreviewResp>> {
    let v = s.pay.preview_payment(&p.user_id, &req.to).await.map_err(pay_err)?;
    Ok(Json(PaymentPreviewResp {
        payee: PayeeDoc::from(&v.payee),
        payee_name: v.payee_name,
        login_masked: v.login_masked,
        amount: v.amount_fen,
        fee: v.fee_fen,
        pin_required: v.pin_required,
    }))
}

/// Send money to another person.
#[utoipa::path(post, path = "/api/v1/transfers", tag = "wallet", request_body = TransferReq,
    params(("Idempotency-Key" = String, Header, description = "unique per transfer")),
    responses((status = 201, body = ReceiptResp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub(crate) async fn transfer(State(s): State<WalletRoom>, ApiUser(p): ApiUser, r: IdemJson<TransferReq>) -> Response {
    money(&s, &p, r, |st, p, key, b: TransferReq| async move {
        let amount = money_in(&b.amount, b.currency.as_deref())?;
        let memo = b.memo.unwrap_or_default();
        st.pay.check_payment_pin(&p.user_id, b.pin.as_deref()).await?;
        Ok(ReceiptResp::from(st.pay.transfer_to_user(&p.user_id, &b.to, amount, &memo, &key).await?))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct CursorQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct HistoryQueryParams {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this type: topup, withdrawal, p2p, qr, paycode, red_packet (with its refunds), bill.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only this month, China time: "2026-03".
    pub month: Option<String>,
    /// Lines per page, 1–200 (default 50). A filtered page may hold fewer
    /// while `next_cursor` is given: go on until it is null.
    pub limit: Option<String>,
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
    /// The kind of the bill paid, for category "bill".
    pub bill_kind: Option<String>,
    /// The payer's own note; empty when there is none.
    pub memo: String,
    pub counterparty: String,
    pub at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryResp {
    pub items: Vec<HistoryItemDoc>,
    pub next_cursor: Option<i64>,
}

/// My wallet's transfers, newest first, one page at a time; of one type or one month when asked.
#[utoipa::path(get, path = "/api/v1/wallet/transactions", tag = "wallet", params(HistoryQueryParams),
    responses((status = 200, body = HistoryResp), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn transactions(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    ApiQuery(q): ApiQuery<HistoryQueryParams>,
) -> ApiResult<Json<HistoryResp>> {
    let cursor = int_param("cursor", q.cursor.as_deref())?;
    let query = yizhan_pay::HistoryQuery {
        kind: q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_string),
        month: crate::pages::balance::month_param(q.month.as_deref())?,
        limit: int_param("limit", q.limit.as_deref())?,
    };
    Ok(Json(s.pay.history_where(&p.user_id, cursor, &query).await.map_err(pay_err)?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct TransactionResp {
    #[serde(flatten)]
    pub item: HistoryItemDoc,
    /// A person on the other side with all but the last character of the name hidden.
    pub counterparty_masked: String,
    /// Fee paid on top, fen.
    pub fee: i64,
    /// done, on_hold (a withdrawal waiting for the bank) or released (a hold given back).
    pub status: String,
}

/// One of my wallet's transfers in full (another person's is not found).
#[utoipa::path(get, path = "/api/v1/wallet/transactions/{id}", tag = "wallet", params(("id" = String, Path)),
    responses((status = 200, body = TransactionResp), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn transaction(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TransactionResp>> {
    let e = s.pay.history_entry(&p.user_id, &id).await.map_err(pay_err)?;
    Ok(Json(TransactionResp {
        counterparty_masked: e.counterpart_masked.name().to_string(),
        fee: e.fee_fen,
        status: e.status.as_str().to_string(),
        item: HistoryItemDoc::from(e.line),
    }))
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

/// The month a statement is for: given, or this month in China time.
pub fn month_of(s: &WalletRoom, year: Option<&str>, month: Option<&str>) -> Result<(i64, u32), Error> {
    let (y0, m0) = yizhan_core::time::year_month_cst(s.ctx.now_ms());
    let year = int_param("year", year)?.unwrap_or(y0);
    let month = match int_param("month", month)? {
        None => m0,
        Some(m) => u32::try_from(m).map_err(|_| Error::field("month", "pay.month_range"))?,
    };
    Ok((year, month))
}

/// Money in and out of my wallet per category over one month.
#[utoipa::path(get, path = "/api/v1/wallet/statement", tag = "wallet", params(MonthQuery),
    responses((status = 200, body = StatementResp), (status = 422, body = Problem)))]
pub(crate) async fn statement(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    ApiQuery(q): ApiQuery<MonthQuery>,
) -> ApiResult<Json<StatementResp>> {
    let (year, month) = month_of(&s, q.year.as_deref(), q.month.as_deref())?;
    Ok(Json(s.pay.statement(&p.user_id, year, month).await.map_err(pay_err)?.into()))
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
pub(crate) async fn sandbox_notify(
    State(s): State<WalletRoom>,
    headers: HeaderMap,
    req: Request,
) -> ApiResult<Json<NotifyResp>> {
    let sig = headers.get(SANDBOX_SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if sig.is_empty() {
        return Err(Error::forbidden("pay.gateway.unsigned").into());
    }
    if s.pay.gateway_name() != "sandbox" {
        return Err(Error::not_found("gateway").into());
    }
    let body = any_bytes(req, &()).await?;
    let ack = s.pay.gateway_notification(&body, &sig).await.map_err(pay_err)?;
    Ok(Json(NotifyResp { id: ack.id, duplicate: ack.duplicate, outcome: ack.outcome }))
}

impl From<yizhan_pay::HistoryLine> for HistoryItemDoc {
    fn from(l: yizhan_pay::HistoryLine) -> Self {
        HistoryItemDoc {
            transfer_id: l.transfer_id,
            kind: l.kind,
            direction: l.direction,
            amount: l.amount_fen,
            posted_change: l.posted_change_fen,
            category: l.category,
            bill_kind: l.bill_kind.map(|k| k.as_str().to_string()),
            memo: l.memo,
            counterparty: l.counterparty_name,
            at: l.at_ms,
        }
    }
}

impl From<yizhan_pay::HistoryPage> for HistoryResp {
    fn from(h: yizhan_pay::HistoryPage) -> Self {
        HistoryResp { items: h.items.into_iter().map(HistoryItemDoc::from).collect(), next_cursor: h.next_cursor }
    }
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
