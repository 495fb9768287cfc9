//! Red packets: send one to a person or a group, see it, open it.

use super::*;

pub fn router() -> OpenApiRouter<WalletRoom> {
    OpenApiRouter::new()
        .routes(routes!(create_red_packet))
        .routes(routes!(red_packet))
        .routes(routes!(claim_red_packet))
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
pub async fn packet_view(s: &WalletRoom, user_id: &str, rp: yizhan_pay::RedPacket) -> Result<RedPacketResp, Error> {
    if rp.sender_user_id != user_id && rp.to_user_id.as_deref().is_some_and(|to| to != user_id) {
        return Err(Error::forbidden("pay.packet.not_yours"));
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

pub(crate) async fn name_of(s: &WalletRoom, cache: &mut HashMap<String, String>, user_id: &str) -> String {
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
pub(crate) async fn create_red_packet(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    r: IdemJson<RedPacketReq>,
) -> Response {
    money(&s, &p, r, |st, p, key, b: RedPacketReq| async move {
        let spec = red_packet_spec(b.to, b.count, &b.amount, b.mode.as_deref(), b.greeting, b.currency.as_deref())?;
        let rp = st.pay.create_red_packet(&p.user_id, spec, &key).await?;
        packet_view(&st, &p.user_id, rp).await
    })
    .await
}

/// A red packet and who opened it.
#[utoipa::path(get, path = "/api/v1/red-packets/{id}", tag = "red packets",
    params(("id" = String, Path)),
    responses((status = 200, body = RedPacketResp), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub(crate) async fn red_packet(
    State(s): State<WalletRoom>,
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
pub(crate) async fn claim_red_packet(
    State(s): State<WalletRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    r: IdemCall,
) -> Response {
    money(&s, &p, r, |st, p, _key, ()| async move {
        let c = st.pay.claim(&id, &p.user_id).await?;
        Ok(ClaimResp { packet_id: c.packet_id, amount: c.amount_fen, transfer_id: c.transfer_id })
    })
    .await
}
