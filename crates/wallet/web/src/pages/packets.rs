//! Red packets: send, share, open.

use super::*;

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/red-packets", get(packets_page).post(packet_create))
        .route("/red-packets/open", get(packet_open))
        .route("/red-packets/{id}", get(packet_page))
        .route("/red-packets/{id}/claim", post(packet_claim))
}

// ---- red packets ----

pub(crate) struct Line {
    id: String,
    amount_fen: Option<i64>,
    /// The sender (received) or the recipient (sent; empty for a group).
    who: String,
    greeting: String,
    share_count: i64,
    status: String,
    at_ms: i64,
}

#[derive(Template)]
#[template(path = "red_packets.html")]
pub(crate) struct PacketsPage {
    l: Layout,
    key: String,
    sent: Vec<Line>,
    received: Vec<Line>,
}

async fn lines(s: &WalletRoom, list: Vec<yizhan_pay::PacketLine>) -> Vec<Line> {
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        let who = match &p.other_user_id {
            Some(u) => s.identity.user_ref(u).await.map(|u| u.name).unwrap_or_else(|_| "—".into()),
            None => String::new(),
        };
        out.push(Line {
            id: p.packet_id,
            amount_fen: p.amount_fen,
            who,
            greeting: p.greeting,
            share_count: p.share_count,
            status: p.status,
            at_ms: p.at_ms,
        });
    }
    out
}

async fn packets_render(s: &WalletRoom, l: Layout, status: StatusCode, p: &Principal, key: String) -> Response {
    match s.pay.my_red_packets(&p.user_id).await {
        Ok(mine) => {
            let sent = lines(s, mine.sent).await;
            let received = lines(s, mine.received).await;
            render_status(status, &PacketsPage { l, key, sent, received })
        }
        Err(e) => l.failure(&e),
    }
}

pub(crate) async fn packets_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/red-packets", &p).await;
    packets_render(&s, l, StatusCode::OK, &p, form_key()).await
}

pub(crate) async fn packet_create(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let r = async {
        let total = yuan_field(form.get("amount"), "amount")?;
        let count = match non_empty(form.get("count")) {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| Error::field("count", "wallet.whole_number"))?),
        };
        let spec = red_packet_spec(
            non_empty(form.get("to")).map(str::to_string),
            count,
            &Value::from(total),
            non_empty(form.get("mode")),
            Some(form.get("greeting").to_string()),
            None,
        )?;
        let (pay, user, idem) = (s.pay.clone(), p.user_id.clone(), form.get("idem").to_string());
        to_completion(async move { pay.create_red_packet(&user, spec, &idem).await }).await
    }
    .await;
    match r {
        Ok(rp) => Redirect::to(&format!("/red-packets/{}", rp.id)).into_response(),
        Err(e) => {
            let l = person_layout(&s.notify, lang, &csrf, "/red-packets", &p).await;
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            packets_render(&s, l, status, &p, key).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct OpenQuery {
    id: Option<String>,
}

/// The id of a packet from what was pasted: the id itself or a link ending in it.
pub(crate) async fn packet_open(Query(q): Query<OpenQuery>) -> Response {
    let raw = q.id.unwrap_or_default();
    let id = raw.trim().trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Redirect::to("/red-packets").into_response();
    }
    Redirect::to(&format!("/red-packets/{id}")).into_response()
}

#[derive(Template)]
#[template(path = "red_packet.html")]
pub(crate) struct PacketPage {
    l: Layout,
    rp: RedPacketResp,
    can_claim: bool,
    key: String,
    /// The packet's address for others to open, with the scheme and host the person reached us on.
    link: String,
}

/// The address of a packet as the person's browser reached this server.
fn packet_link(s: &WalletRoom, headers: &axum::http::HeaderMap, id: &str) -> String {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let scheme = if s.config.secure_cookies { "https" } else { "http" };
    let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if host_ok {
        format!("{scheme}://{host}/red-packets/{id}")
    } else {
        format!("/red-packets/{id}")
    }
}

pub(crate) async fn packet_render(
    s: &WalletRoom,
    l: Layout,
    p: &Principal,
    id: &str,
    status: StatusCode,
    link: String,
) -> Response {
    let rp = match s.pay.red_packet(id).await {
        Ok(rp) => rp,
        Err(e) => return failure_page(l.lang, &e),
    };
    match packet_view(s, &p.user_id, rp).await {
        Ok(rp) => {
            // A personal packet is for its recipient; a group packet for anyone, its sender too.
            let for_me = !rp.personal || !rp.mine;
            let can_claim = for_me && rp.status == "open" && rp.my_share.is_none() && rp.claimed_count < rp.count;
            render_status(status, &PacketPage { l, rp, can_claim, key: form_key(), link })
        }
        Err(e) => failure_page(l.lang, &e),
    }
}

#[derive(Deserialize)]
pub(crate) struct PacketQuery {
    opened: Option<String>,
}

pub(crate) async fn packet_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    Query(q): Query<PacketQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/red-packets/{id}"), &p).await;
    // Just opened (the claim redirects here): say what I got.
    let got = match q.opened {
        Some(_) => s
            .pay
            .red_packet(&id)
            .await
            .ok()
            .and_then(|rp| rp.claims.iter().find(|c| c.user_id == p.user_id).map(|c| c.amount_fen)),
        None => None,
    };
    let l = match got {
        Some(fen) => l.ok(&say(lang, Msg::new("packet.got_msg").fen("amount", fen))),
        None => l,
    };
    packet_render(&s, l, &p, &id, StatusCode::OK, packet_link(&s, &headers, &id)).await
}

pub(crate) async fn packet_claim(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    _form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/red-packets/{id}"), &p).await;
    // One share per person is Pay's rule, so a double submit opens it once.
    let (pay, packet, user) = (s.pay.clone(), id.clone(), p.user_id.clone());
    match to_completion(async move { pay.claim(&packet, &user).await }).await {
        Ok(c) => Redirect::to(&format!("/red-packets/{}?opened=1", c.packet_id)).into_response(),
        Err(e) => {
            let (l, status) = failed(l, e);
            packet_render(&s, l, &p, &id, status, packet_link(&s, &headers, &id)).await
        }
    }
}
