//! The wallet's main page (balance, the person's QR code), top-up and withdrawal, history and the monthly statement with its chart.

use super::*;

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/wallet", get(wallet_page))
        .route("/wallet/topup", post(topup))
        .route("/wallet/withdraw", post(withdraw))
        .route("/wallet/history", get(history))
        .route("/wallet/transfers/{id}", get(|| async { Redirect::to("/wallet/history") }))
        .route("/wallet/statement", get(statement))
}

// ---- /wallet ----

#[derive(Template)]
#[template(path = "wallet.html")]
pub(crate) struct WalletPage {
    l: Layout,
    w: yizhan_pay::Wallet,
    qr_svg: String,
    topup_key: String,
    withdraw_key: String,
    receipt: Option<yizhan_pay::GatewayReceipt>,
}

pub(crate) async fn wallet_render(
    s: &WalletRoom,
    l: Layout,
    p: &Principal,
    status: StatusCode,
    receipt: Option<yizhan_pay::GatewayReceipt>,
    kept: Option<(Funding, String)>,
) -> Response {
    let w = match s.pay.wallet(&p.user_id).await {
        Ok(w) => w,
        Err(e) => return failure_page(l.lang, &e),
    };
    let qr_svg = match s.pay.my_qr(&p.user_id).await.and_then(|q| yizhan_pay::qrimage::qr_svg(&q, 6)) {
        Ok(svg) => strip_xml_declaration(svg),
        Err(e) => return failure_page(l.lang, &e),
    };
    let (topup_key, withdraw_key) = match kept {
        Some((Funding::TopUp, k)) => (k, form_key()),
        Some((Funding::Withdraw, k)) => (form_key(), k),
        None => (form_key(), form_key()),
    };
    render_status(status, &WalletPage { l, w, qr_svg, topup_key, withdraw_key, receipt })
}

pub(crate) async fn wallet_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet", &p).await;
    wallet_render(&s, l, &p, StatusCode::OK, None, None).await
}

pub(crate) async fn topup(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    funding(&s, lang, &csrf, &p, &form, Funding::TopUp).await
}

pub(crate) async fn withdraw(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    funding(&s, lang, &csrf, &p, &form, Funding::Withdraw).await
}

/// Money in from a card, or out to one: the two wallet forms differ only here.
#[derive(Clone, Copy)]
pub(crate) enum Funding {
    TopUp,
    Withdraw,
}

pub(crate) async fn funding(
    s: &WalletRoom,
    lang: Lang,
    csrf: &Csrf,
    p: &Principal,
    form: &CsrfForm,
    way: Funding,
) -> Response {
    let l = person_layout(&s.notify, lang, csrf, "/wallet", p).await;
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        let (card, idem) = (non_empty(form.get("card")).map(str::to_string), form.get("idem").to_string());
        let (pay, user) = (s.pay.clone(), p.user_id.clone());
        to_completion(async move {
            match way {
                Funding::TopUp => pay.topup(&user, amount, card.as_deref(), &idem).await,
                Funding::Withdraw => pay.withdraw(&user, amount, card.as_deref(), &idem).await,
            }
        })
        .await
    }
    .await;
    match r {
        Ok(rc) => {
            let done = match way {
                Funding::TopUp => "wallet.topup_done_msg",
                Funding::Withdraw => "wallet.withdraw_done_msg",
            };
            let msg = say(lang, Msg::new(done).fen("amount", rc.amount_fen));
            wallet_render(s, l.ok(&msg), p, StatusCode::OK, Some(rc), None).await
        }
        Err(e) => {
            let key = key_after(&e, form);
            let (l, status) = failed(l, e);
            wallet_render(s, l, p, status, None, Some((way, key))).await
        }
    }
}

// ---- /wallet/history ----

pub struct HistoryRow {
    pub line: yizhan_pay::HistoryLine,
    /// Who is on the other side, in the reader's words.
    pub who: String,
    /// What it was: the category, or the kind of the bill paid.
    pub label: String,
    pub signed: String,
}

/// The other side of a history line in the reader's language.
fn counterpart_words(lang: Lang, c: &yizhan_pay::Counterpart) -> String {
    use yizhan_pay::Counterpart::*;
    match c {
        Person(n) | Org(n) => n.clone(),
        Card(gw) if gw == "sandbox" => lang.t("history.card_sandbox").to_string(),
        Card(_) => lang.t("history.card").to_string(),
        RedPacket => lang.t("history.red_packet").to_string(),
        Platform => lang.t("history.platform").to_string(),
    }
}

#[derive(Template)]
#[template(path = "wallet_history.html")]
pub(crate) struct HistoryPage {
    l: Layout,
    rows: Vec<HistoryRow>,
    next_cursor: Option<i64>,
    first_page: bool,
}

#[derive(Deserialize)]
pub(crate) struct CursorQuery {
    cursor: Option<String>,
}

pub(crate) async fn history(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<CursorQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/history", &p).await;
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
                    let label = match line.bill_kind {
                        Some(k) => category_label(lang, k.as_str()),
                        None => category_label(lang, &line.category),
                    };
                    HistoryRow { who: counterpart_words(lang, &line.counterpart), label, signed, line }
                })
                .collect();
            render(&HistoryPage { l, rows, next_cursor: page.next_cursor, first_page: cursor.is_none() })
        }
        Err(e) => failure_page(lang, &e),
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
pub(crate) struct StatementPage {
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
pub(crate) struct MonthQuery {
    year: Option<String>,
    month: Option<String>,
}

pub(crate) async fn statement(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<MonthQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/statement", &p).await;
    let r = async {
        let (y, m) = crate::api::balance::month_of(&s, q.year.as_deref(), q.month.as_deref())?;
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
            failure_page(lang, &e)
        }
    }
}
