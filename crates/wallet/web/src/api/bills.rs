//! Bills and fines: a resident's bills and paying one, a department issuing one, staff reading a resident's bills or (support) transactions (car plates are bound in the identity room).

use super::balance::HistoryResp;
use super::*;

pub fn router() -> OpenApiRouter<WalletRoom> {
    OpenApiRouter::new()
        .routes(routes!(bills))
        .routes(routes!(pay_bill))
        .routes(routes!(issue_bill))
        .routes(routes!(resident_bills))
        .routes(routes!(resident_transactions))
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

/// My bills and fines, newest first.
#[utoipa::path(get, path = "/api/v1/bills", tag = "bills",
    responses((status = 200, body = Vec<BillDoc>), (status = 401, body = Problem)))]
pub(crate) async fn bills(State(s): State<WalletRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<Vec<BillDoc>>> {
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

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PayBillReq {
    /// The payment PIN, required when I set one (wrong tries are counted:
    /// 422 `wrong_pin`, then 429 for a while).
    pub pin: Option<String>,
}

/// Pay one of my bills from the wallet. The body may be left out when no payment PIN is set.
#[utoipa::path(post, path = "/api/v1/bills/{id}/pay", tag = "bills", request_body(content = PayBillReq, description = "optional"),
    params(("id" = String, Path), ("Idempotency-Key" = String, Header, description = "unique per payment")),
    responses((status = 201, body = BillReceiptResp), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
pub(crate) async fn pay_bill(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    r: IdemMaybeJson<PayBillReq>,
) -> Response {
    money(&s, &p, r, |st, p, key, b: PayBillReq| async move {
        st.pay.check_payment_pin(&p.user_id, b.pin.as_deref()).await?;
        Ok(BillReceiptResp::from(st.pay.pay_bill(&p.user_id, &id, &key).await?))
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
pub(crate) async fn issue_bill(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    r: IdemJson<IssueBillReq>,
) -> Response {
    money(&s, &p, r, |st, p, key, req: IssueBillReq| async move {
        let amount_fen = money_in(&req.amount, req.currency.as_deref())?;
        let to = match (req.id_number, req.plate) {
            (Some(n), None) => BillTo::IdNumber(n),
            (None, Some(p)) => BillTo::Plate(p),
            _ => return Err(Error::field("id_number", "wallet.bill_to_one")),
        };
        let kind = yizhan_pay::BillKind::parse(req.kind.trim())?;
        let spec = BillSpec { to, kind, amount_fen, due_at_ms: req.due_at, description: req.description };
        Ok(BillDoc::from(st.pay.issue_bill(&p, &id, spec, &key).await?))
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
pub(crate) async fn resident_bills(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path((id, user_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReasonQuery>,
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
pub(crate) async fn resident_transactions(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(user_id): Path<String>,
    ApiQuery(q): ApiQuery<SupportReadQuery>,
) -> ApiResult<Json<HistoryResp>> {
    let cursor = int_param("cursor", q.cursor.as_deref())?;
    let reason = q.reason.unwrap_or_default();
    Ok(Json(s.pay.staff_read_history(&p, &user_id, &reason, cursor).await.map_err(pay_err)?.into()))
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
