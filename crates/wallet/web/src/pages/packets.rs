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

#[derive(Template)]
#[template(path = "red_packets.html")]
pub(crate) struct PacketsPage {
    l: Layout,
    key: String,
}

pub(crate) async fn packets_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/red-packets", &p).await;
    render(&PacketsPage { l, key: form_key() })
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
            render_status(status, &PacketsPage { l, key })
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
}

pub(crate) async fn packet_render(s: &WalletRoom, l: Layout, p: &Principal, id: &str, status: StatusCode) -> Response {
    let rp = match s.pay.red_packet(id).await {
        Ok(rp) => rp,
        Err(e) => return failure_page(l.lang, &e),
    };
    match packet_view(s, &p.user_id, rp).await {
        Ok(rp) => {
            // A personal packet is for its recipient; a group packet for anyone, its sender too.
            let for_me = !rp.personal || !rp.mine;
            let can_claim = for_me && rp.status == "open" && rp.my_share.is_none() && rp.claimed_count < rp.count;
            render_status(status, &PacketPage { l, rp, can_claim, key: form_key() })
        }
        Err(e) => failure_page(l.lang, &e),
    }
}

pub(crate) async fn packet_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/red-packets/{id}"), &p).await;
    packet_render(&s, l, &p, &id, StatusCode::OK).await
}

pub(crate) async fn packet_claim(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/red-packets/{id}"), &p).await;
    // One share per person is Pay's rule, so a double submit opens it once.
    let (pay, packet, user) = (s.pay.clone(), id.clone(), p.user_id.clone());
    match to_completion(async move { pay.claim(&packet, &user).await }).await {
        Ok(c) => {
            let msg = say(lang, Msg::new("packet.got_msg").fen("amount", c.amount_fen));
            packet_render(&s, l.ok(&msg), &p, &id, StatusCode::OK).await
        }
        Err(e) => {
            let (l, status) = failed(l, e);
            packet_render(&s, l, &p, &id, status).await
        }
    }
}
