//! QR codes (the person's and a shop's, as JSON, SVG or PNG), previewing and paying a scanned code, one-time pay codes and the cashier's charge.

use super::*;

pub fn router() -> OpenApiRouter<WalletRoom> {
    OpenApiRouter::new()
        .routes(routes!(create_paycode))
        .routes(routes!(paycode_status))
        .routes(routes!(confirm_paycode))
        .routes(routes!(decline_paycode))
        .routes(routes!(set_pin))
        .routes(routes!(merchant_charge))
        .routes(routes!(my_qr))
        .routes(routes!(org_qr))
        .routes(routes!(qr_preview))
        .routes(routes!(qr_pay))
}

// ---- pay codes and QR codes ----

#[derive(Serialize, ToSchema)]
pub struct PayCodeResp {
    /// The code's opaque id, for `GET /api/v1/paycodes/{id}/status` (the
    /// digits are a bearer credential: never put them in a URL).
    pub id: String,
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
pub(crate) async fn create_paycode(State(s): State<WalletRoom>, ApiUser(p): ApiUser) -> Created<PayCodeResp> {
    let pc = s.pay.create_paycode(&p.user_id).await.map_err(pay_err)?;
    let (qr_svg, barcode_svg) = paycode_images(&pc.code)?;
    Ok((
        StatusCode::CREATED,
        Json(PayCodeResp { id: pc.id, code: pc.code, expires_at: pc.expires_at_ms, qr_svg, barcode_svg }),
    ))
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

/// A charge above the platform's threshold, waiting for the customer.
#[derive(Serialize, ToSchema)]
pub struct ChargePendingResp {
    /// Always "awaiting_confirmation": no money moved yet. Send the same
    /// request again (same Idempotency-Key and body) to learn the outcome.
    pub status: String,
    pub amount: i64,
    pub payee: PayeeDoc,
    pub payee_name: String,
    /// Epoch milliseconds; with no answer by then, the charge lapses (410 `code_expired`).
    pub confirm_expires_at: i64,
}

/// A cashier charges a customer's pay code (staff of the organisation).
/// Above the platform's confirmation threshold nothing moves at once: the
/// answer is 202 `awaiting_confirmation` and the customer confirms or declines
/// on their screen; the till asks again with the same request (same
/// Idempotency-Key and body) until it answers 201 (paid), 402
/// `paycode_declined`, or 410 `code_expired` (no answer in time).
#[utoipa::path(post, path = "/api/v1/merchant/charge", tag = "merchant", request_body = ChargeReq,
    params(("Idempotency-Key" = String, Header, description = "unique per charge; the same again to ask how it stands")),
    responses((status = 201, body = ReceiptResp), (status = 202, body = ChargePendingResp),
        (status = 402, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 410, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn merchant_charge(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    r: IdemJson<ChargeReq>,
) -> Response {
    let (b, key, hash) = (r.body, r.key, r.hash);
    let (st, who, k) = (s.clone(), p.clone(), key.clone());
    // A 202 is not stored by `idem::run`: the same request again reaches Pay and answers how it stands.
    idem::run(&s.idempotency, &p.user_id, &key, &hash, async move {
        let amount = money_in(&b.amount, b.currency.as_deref()).map_err(pay_err)?;
        let charge = st.pay.merchant_charge(&who, &b.org_id, &b.code, amount, &k).await.map_err(pay_err)?;
        Ok::<Response, ApiError>(match charge {
            Charge::Paid(r) => (StatusCode::CREATED, Json(ReceiptResp::from(r))).into_response(),
            Charge::AwaitingConfirmation(pc) => {
                (StatusCode::ACCEPTED, Json(ChargePendingResp::from(pc))).into_response()
            }
        })
    })
    .await
}

impl From<yizhan_pay::PendingCharge> for ChargePendingResp {
    fn from(p: yizhan_pay::PendingCharge) -> Self {
        ChargePendingResp {
            status: "awaiting_confirmation".into(),
            amount: p.amount_fen,
            payee: PayeeDoc::from(&p.payee),
            payee_name: p.payee_name,
            confirm_expires_at: p.confirm_expires_at_ms,
        }
    }
}

// ---- the customer's side of a pay code ----

#[derive(Serialize, ToSchema)]
pub struct PayCodeStatusResp {
    pub id: String,
    /// waiting, charging, awaiting_confirmation, paid, declined, expired or failed.
    pub state: String,
    /// When the code itself stops being chargeable (epoch milliseconds).
    pub expires_at: i64,
    /// The cashier's charge, once there is one (fen).
    pub amount: Option<i64>,
    pub payee: Option<PayeeDoc>,
    pub payee_name: Option<String>,
    /// awaiting_confirmation: answer before this (epoch milliseconds).
    pub confirm_expires_at: Option<i64>,
    /// awaiting_confirmation: whether confirming needs the payment PIN.
    pub pin_required: bool,
    /// paid: the transaction and when it was made.
    pub transfer_id: Option<String>,
    pub paid_at: Option<i64>,
    /// failed: the error code the money could not move with.
    pub failure_code: Option<String>,
}

impl From<yizhan_pay::PayCodeStatus> for PayCodeStatusResp {
    fn from(s: yizhan_pay::PayCodeStatus) -> Self {
        PayCodeStatusResp {
            id: s.id,
            state: s.state.as_str().into(),
            expires_at: s.expires_at_ms,
            amount: s.amount_fen,
            payee: s.payee.as_ref().map(PayeeDoc::from),
            payee_name: s.payee_name,
            confirm_expires_at: s.confirm_expires_at_ms,
            pin_required: s.pin_required,
            transfer_id: s.transfer_id,
            paid_at: s.paid_at_ms,
            failure_code: s.failure_code,
        }
    }
}

/// How my pay code stands: waiting for a cashier, a charge awaiting my
/// confirmation, paid, declined, expired. Someone else's code is not found.
#[utoipa::path(get, path = "/api/v1/paycodes/{id}/status", tag = "wallet",
    params(("id" = String, Path, description = "the id returned when the code was made")),
    responses((status = 200, body = PayCodeStatusResp), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn paycode_status(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<PayCodeStatusResp>> {
    Ok(Json(s.pay.paycode_status(&p.user_id, &id).await.map_err(pay_err)?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmReq {
    /// The payment PIN, if one is set.
    pub pin: Option<String>,
}

/// Confirm a charge of my pay code that awaits my confirmation: the money
/// moves (once; confirming again answers the same receipt).
#[utoipa::path(post, path = "/api/v1/paycodes/{id}/confirm", tag = "wallet", request_body = ConfirmReq,
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "unique per attempt")),
    responses((status = 201, body = ReceiptResp), (status = 401, body = Problem), (status = 402, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 410, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn confirm_paycode(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    r: IdemJson<ConfirmReq>,
) -> Response {
    money(&s, &p, r, |st, p, _key, b: ConfirmReq| async move {
        Ok(ReceiptResp::from(st.pay.confirm_paycode(&p.user_id, &id, b.pin.as_deref()).await?))
    })
    .await
}

/// Decline a charge of my pay code that awaits my confirmation: nothing moves.
#[utoipa::path(post, path = "/api/v1/paycodes/{id}/decline", tag = "wallet",
    params(("id" = String, Path)),
    responses((status = 200, body = PayCodeStatusResp), (status = 401, body = Problem), (status = 402, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 410, body = Problem)))]
pub(crate) async fn decline_paycode(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<PayCodeStatusResp>> {
    Ok(Json(s.pay.decline_paycode(&p.user_id, &id).await.map_err(pay_err)?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinReq {
    /// The account password.
    pub password: String,
    /// Six digits, not all one digit nor a run like 123456.
    pub pin: String,
}

/// Set or change my payment PIN, asked when I confirm a large pay code charge.
#[utoipa::path(post, path = "/api/v1/wallet/pin", tag = "wallet", request_body = PinReq,
    responses((status = 204, description = "set"), (status = 401, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
pub(crate) async fn set_pin(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    ApiJson(b): ApiJson<PinReq>,
) -> ApiResult<StatusCode> {
    s.pay.set_payment_pin(&p.user_id, &b.password, &b.pin).await.map_err(pay_err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct QrQuery {
    /// "png" or "svg" returns the image itself; "json" (the default) the payload and an inline SVG.
    #[param(pattern = "^(json|svg|png)?$")]
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

pub(crate) fn qr_answer(payload: String, amount: Option<i64>, format: Option<&str>) -> ApiResult<Response> {
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
        Some(_) => Err(Error::field("format", "wallet.qr_format").into()),
    }
}

/// My personal QR code, for others to pay me.
#[utoipa::path(get, path = "/api/v1/qr/me", tag = "qr", params(QrQuery),
    responses((status = 200, description = "JSON by default; `format=png` or `format=svg` returns the image",
        content((QrResp = "application/json"), (String = "image/svg+xml"), (Vec<u8> = "image/png"))),
        (status = 401, body = Problem)))]
pub(crate) async fn my_qr(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    ApiQuery(q): ApiQuery<QrQuery>,
) -> ApiResult<Response> {
    if q.amount.is_some() {
        return Err(Error::field("amount", "wallet.personal_no_amount").into());
    }
    let payload = s.pay.my_qr(&p.user_id).await.map_err(pay_err)?;
    qr_answer(payload, None, q.format.as_deref())
}

/// An organisation's merchant QR code, optionally for a fixed amount (its staff).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/qr", tag = "qr",
    params(("id" = String, Path, description = "organisation id"), QrQuery),
    responses((status = 200, description = "JSON by default; `format=png` or `format=svg` returns the image",
        content((QrResp = "application/json"), (String = "image/svg+xml"), (Vec<u8> = "image/png"))),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub(crate) async fn org_qr(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<QrQuery>,
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
    /// From the platform's records, not from the code: a person's name with
    /// all but its last character hidden, a shop's name in full.
    pub payee_name: String,
    /// A fixed-amount code must be paid with exactly this (fen).
    pub amount: Option<i64>,
    /// Fee on top, fen.
    pub fee: i64,
    /// Paying asks for the payment PIN (`pin` in `POST /api/v1/qr/pay`).
    pub pin_required: bool,
}

/// Whom a scanned code pays, before paying. One's own code is refused here (422 `self_payment`).
#[utoipa::path(post, path = "/api/v1/qr/preview", tag = "qr", request_body = PreviewReq,
    responses((status = 200, body = PreviewResp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub(crate) async fn qr_preview(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<PreviewReq>,
) -> ApiResult<Json<PreviewResp>> {
    let v = s.pay.preview_qr_payment(&p.user_id, &req.payload).await.map_err(pay_err)?;
    Ok(Json(PreviewResp {
        payee: PayeeDoc::from(&v.payee),
        payee_name: v.payee_name,
        amount: v.amount_fen,
        fee: v.fee_fen,
        pin_required: v.pin_required,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrPayReq {
    pub payload: String,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub amount: Value,
    pub currency: Option<String>,
    /// The payment PIN, required when the payer set one (wrong tries are
    /// counted: 422 `wrong_pin`, then 429 for a while).
    pub pin: Option<String>,
}

/// Pay a scanned QR code.
#[utoipa::path(post, path = "/api/v1/qr/pay", tag = "qr", request_body = QrPayReq,
    params(("Idempotency-Key" = String, Header, description = "unique per payment")),
    responses((status = 201, body = ReceiptResp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn qr_pay(State(s): State<WalletRoom>, ApiUser(p): ApiUser, r: IdemJson<QrPayReq>) -> Response {
    money(&s, &p, r, |st, p, key, b: QrPayReq| async move {
        let amount = money_in(&b.amount, b.currency.as_deref())?;
        st.pay.check_payment_pin(&p.user_id, b.pin.as_deref()).await?;
        Ok(ReceiptResp::from(st.pay.qr_pay(&p.user_id, &b.payload, amount, &key).await?))
    })
    .await
}
