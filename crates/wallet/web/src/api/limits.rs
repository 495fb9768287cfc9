//! The wallet's limits: what the caller may top up, pay and withdraw per
//! transaction and per day at their verification level, what they used today;
//! and the platform admin's change of one limit.

use super::*;
use yizhan_identity_web::ApiAdmin;
use yizhan_pay::{LimitRule, LimitUse, MyLimits, Operation};

pub fn router() -> OpenApiRouter<WalletRoom> {
    OpenApiRouter::new().routes(routes!(my_limits, set_limit))
}

#[derive(Serialize, ToSchema)]
pub struct LimitUseDoc {
    /// "topup", "payment" (all money sent to someone: transfers, QR, pay codes, red packets, bills) or "withdrawal".
    pub operation: String,
    /// The most one transaction may be, fen (0: not allowed at this level).
    pub per_transaction: i64,
    /// The most all of today's transactions may add up to, fen.
    pub per_day: i64,
    /// Used of the daily limit today (China time), fen.
    pub used_today: i64,
    /// What is left of the daily limit today, fen.
    pub remaining_today: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LimitRuleDoc {
    /// 0 registered, 1 real name verified, 2 verified in person.
    pub level: i64,
    pub operation: String,
    /// Fen.
    pub per_transaction: i64,
    /// Fen.
    pub per_day: i64,
    /// When an admin last changed it (epoch milliseconds; 0 for the defaults).
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct LimitsResp {
    /// The caller's verification level, which their limits follow.
    pub level: i64,
    /// When today's usage resets: the next 00:00 China time (epoch milliseconds).
    pub resets_at: i64,
    /// The caller's limits and today's use of them.
    pub limits: Vec<LimitUseDoc>,
    /// Every level's limits, as the operator set them (what verifying would give).
    pub levels: Vec<LimitRuleDoc>,
}

impl From<LimitUse> for LimitUseDoc {
    fn from(l: LimitUse) -> Self {
        LimitUseDoc {
            operation: l.operation.as_str().to_string(),
            per_transaction: l.per_tx_fen,
            per_day: l.per_day_fen,
            used_today: l.used_today_fen,
            remaining_today: l.remaining_today_fen,
        }
    }
}

impl From<LimitRule> for LimitRuleDoc {
    fn from(r: LimitRule) -> Self {
        LimitRuleDoc {
            level: r.level,
            operation: r.operation,
            per_transaction: r.per_tx_fen,
            per_day: r.per_day_fen,
            updated_at: r.updated_at_ms,
        }
    }
}

impl LimitsResp {
    pub fn new(mine: MyLimits, table: Vec<LimitRule>) -> Self {
        LimitsResp {
            level: mine.level,
            resets_at: mine.resets_at_ms,
            limits: mine.limits.into_iter().map(LimitUseDoc::from).collect(),
            levels: table.into_iter().map(LimitRuleDoc::from).collect(),
        }
    }
}

/// My wallet limits at my verification level, what I used of them today, and every level's limits.
#[utoipa::path(get, path = "/api/v1/wallet/limits", tag = "wallet",
    responses((status = 200, body = LimitsResp)))]
pub(crate) async fn my_limits(State(s): State<WalletRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<LimitsResp>> {
    let mine = s.pay.my_limits(&p.user_id).await.map_err(pay_err)?;
    let table = s.pay.limit_table().await.map_err(pay_err)?;
    Ok(Json(LimitsResp::new(mine, table)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimitReq {
    /// 0 registered, 1 real name verified, 2 verified in person.
    #[schema(minimum = 0, maximum = 2)]
    pub level: i64,
    /// "topup", "payment" or "withdrawal".
    #[schema(pattern = "^(topup|payment|withdrawal)$")]
    pub operation: String,
    /// Fen, 0 (not allowed) up to the platform's largest amount, at most `per_day`.
    #[serde(default)]
    #[schema(value_type = i64, minimum = 0, maximum = 100_000_000)]
    pub per_transaction: Value,
    /// Fen, 0 up to 100 times the platform's largest amount.
    #[serde(default)]
    #[schema(value_type = i64, minimum = 0, maximum = 10_000_000_000_i64)]
    pub per_day: Value,
}

/// A whole number of fen for a limit (0 allowed).
fn limit_fen(field: &str, v: &Value) -> Result<i64, Error> {
    v.as_i64().ok_or_else(|| Error::field(field, "wallet.whole_number"))
}

/// Set one limit (platform administrators only); the change is recorded.
#[utoipa::path(put, path = "/api/v1/wallet/limits", tag = "wallet", request_body = SetLimitReq,
    responses((status = 200, body = LimitRuleDoc), (status = 422, body = Problem)))]
pub(crate) async fn set_limit(
    State(s): State<WalletRoom>,
    ApiAdmin(p): ApiAdmin,
    ApiJson(req): ApiJson<SetLimitReq>,
) -> ApiResult<Json<LimitRuleDoc>> {
    // Every field's problem at once.
    let (op, per_tx, per_day) = match (
        Operation::parse(&req.operation),
        limit_fen("per_transaction", &req.per_transaction),
        limit_fen("per_day", &req.per_day),
    ) {
        (Ok(op), Ok(per_tx), Ok(per_day)) => (op, per_tx, per_day),
        (op, per_tx, per_day) => {
            let fields = [op.err(), per_tx.err(), per_day.err()].into_iter().flatten().flat_map(|e| e.fields).collect();
            return Err(ApiError(Error::fields(fields)));
        }
    };
    let rule = s.pay.set_limit(&p, req.level, op, per_tx, per_day).await.map_err(limit_err)?;
    Ok(Json(rule.into()))
}

/// Pay names the caps' fields in its own words; the API's are `per_transaction`, `per_day`.
fn limit_err(mut e: Error) -> ApiError {
    for f in &mut e.fields {
        match f.field.as_str() {
            "per_tx_fen" => f.field = "per_transaction".into(),
            "per_day_fen" => f.field = "per_day".into(),
            _ => {}
        }
    }
    ApiError(e)
}
