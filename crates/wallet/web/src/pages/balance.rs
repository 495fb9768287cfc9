//! The wallet's main page (balance, the person's QR code), top-up and withdrawal, history and the monthly statement with its chart.

use super::confirm::{confirm_page, confirming, done, pin_checked, Confirmation};
use super::*;

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/wallet", get(wallet_page))
        .route("/wallet/topup", post(topup))
        .route("/wallet/withdraw", post(withdraw))
        .route("/wallet/limits", post(set_limit))
        .route("/wallet/history", get(history))
        .route("/wallet/history/{id}", get(history_entry))
        .route("/wallet/transfers/{id}", get(|Path(id): Path<String>| async move { Redirect::to(&transfer_href(&id)) }))
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
    limits: LimitsView,
    /// Every level's limits, for a platform admin to change.
    admin_limits: Vec<AdminLimitRow>,
}

/// One of the person's limits, in their words.
pub(crate) struct LimitLine {
    operation: &'static str,
    title: String,
    /// "Up to ¥200.00 at a time", or that it is not available.
    per_tx: String,
    allowed: bool,
    /// "Today ¥100.00 of ¥500.00, ¥400.00 left".
    today: String,
    /// Of the daily limit, 0..=100.
    used_pct: i64,
}

/// The person's limits today.
pub(crate) struct LimitsView {
    level: String,
    lines: Vec<LimitLine>,
    resets: String,
    /// How to raise them, at levels below the highest.
    raise: Option<String>,
}

/// One limit on the admin's form.
pub(crate) struct AdminLimitRow {
    level: i64,
    level_label: String,
    operation: String,
    operation_label: String,
    per_tx_yuan: String,
    per_day_yuan: String,
}

fn level_label(lang: Lang, level: i64) -> String {
    lang.t(&format!("wallet.limits.level{}", level.clamp(0, yizhan_pay::limits::MAX_LEVEL))).to_string()
}

fn limits_view(lang: Lang, m: yizhan_pay::MyLimits) -> LimitsView {
    let lines = m
        .limits
        .into_iter()
        .map(|u| LimitLine {
            operation: u.operation.as_str(),
            title: lang.t(&format!("wallet.limits.op.{}", u.operation.as_str())).to_string(),
            allowed: u.per_tx_fen > 0 && u.per_day_fen > 0,
            per_tx: if u.per_tx_fen > 0 && u.per_day_fen > 0 {
                say(lang, Msg::new("wallet.limits.per_tx").fen("amount", u.per_tx_fen))
            } else {
                lang.t("wallet.limits.not_allowed").to_string()
            },
            today: say(
                lang,
                Msg::new("wallet.limits.today")
                    .fen("used", u.used_today_fen)
                    .fen("limit", u.per_day_fen)
                    .fen("remaining", u.remaining_today_fen),
            ),
            used_pct: if u.per_day_fen > 0 { (u.used_today_fen.min(u.per_day_fen) * 100) / u.per_day_fen } else { 100 },
        })
        .collect();
    let raise = match m.level {
        0 => Some(lang.t("pay.limit.raise.verify").to_string()),
        1 => Some(lang.t("pay.limit.raise.counter").to_string()),
        _ => None,
    };
    LimitsView {
        level: level_label(lang, m.level),
        lines,
        resets: say(lang, Msg::new("wallet.limits.resets").time("time", m.resets_at_ms)),
        raise,
    }
}

fn admin_rows(lang: Lang, table: Vec<yizhan_pay::LimitRule>) -> Vec<AdminLimitRow> {
    table
        .into_iter()
        .map(|r| AdminLimitRow {
            level_label: level_label(lang, r.level),
            level: r.level,
            operation_label: lang.t(&format!("wallet.limits.op.{}", r.operation)).to_string(),
            operation: r.operation,
            per_tx_yuan: yuan(r.per_tx_fen),
            per_day_yuan: yuan(r.per_day_fen),
        })
        .collect()
}

pub(crate) async fn wallet_render(
    s: &WalletRoom,
    l: Layout,
    p: &Principal,
    status: StatusCode,
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
    let limits = match s.pay.my_limits(&p.user_id).await {
        Ok(m) => limits_view(l.lang, m),
        Err(e) => return failure_page(l.lang, &e),
    };
    let admin_limits = if s.identity.require_admin(p).await.is_ok() {
        match s.pay.limit_table().await {
            Ok(t) => admin_rows(l.lang, t),
            Err(e) => return failure_page(l.lang, &e),
        }
    } else {
        Vec::new()
    };
    let (topup_key, withdraw_key) = match kept {
        Some((Funding::TopUp, k)) => (k, form_key()),
        Some((Funding::Withdraw, k)) => (form_key(), k),
        None => (form_key(), form_key()),
    };
    render_status(status, &WalletPage { l, w, qr_svg, topup_key, withdraw_key, limits, admin_limits })
}

#[derive(Deserialize)]
pub(crate) struct SavedQuery {
    saved: Option<String>,
}

pub(crate) async fn wallet_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<SavedQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet", &p).await;
    // After an admin changed a limit (post/redirect/get).
    let l = match q.saved.as_deref() {
        Some("limits") => l.ok(lang.t("wallet.limits.saved")),
        _ => l,
    };
    wallet_render(&s, l, &p, StatusCode::OK, None).await
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

/// A top-up moves money at once; a withdrawal first shows the confirmation
/// screen (the card masked, the amount, the fee, the PIN when set). Either,
/// done, answers 303 to the transfer's page.
pub(crate) async fn funding(
    s: &WalletRoom,
    lang: Lang,
    csrf: &Csrf,
    p: &Principal,
    form: &CsrfForm,
    way: Funding,
) -> Response {
    let l = person_layout(&s.notify, lang, csrf, "/wallet", p).await;
    let card = non_empty(form.get("card")).map(str::to_string);
    if matches!(way, Funding::Withdraw) && !confirming(form) {
        let checked = async {
            let amount = yuan_field(form.get("amount"), "amount")?;
            s.pay.preview_withdrawal(&p.user_id, amount, card.as_deref()).await
        }
        .await;
        return match checked {
            Ok(w) => {
                let fields = vec![
                    ("idem", form.get("idem").to_string()),
                    ("amount", form.get("amount").to_string()),
                    ("card", form.get("card").to_string()),
                ];
                let c = Confirmation::withdrawal(lang, w);
                confirm_page(l, "wallet.withdraw", "/wallet/withdraw", fields, c, "/wallet#withdraw")
            }
            Err(e) => {
                let (l, status) = failed(l, e);
                wallet_render(s, l, p, status, Some((way, form.get("idem").to_string()))).await
            }
        };
    }
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        if matches!(way, Funding::Withdraw) {
            pin_checked(s, &p.user_id, form).await?;
        }
        let idem = form.get("idem").to_string();
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
        Ok(rc) => done(&rc.transfer_id),
        Err(e) => {
            let key = key_after(&e, form);
            let (l, status) = failed(l, e);
            wallet_render(s, l, p, status, Some((way, key))).await
        }
    }
}

/// A platform admin changes one limit from the wallet page (amounts in yuan).
pub(crate) async fn set_limit(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet", &p).await;
    let r = async {
        let op = yizhan_pay::Operation::parse(form.get("operation"))?;
        let level =
            form.get("level").trim().parse::<i64>().map_err(|_| Error::field("level", "wallet.whole_number"))?;
        let per_tx = yuan_field(form.get("per_tx"), "per_tx")?;
        let per_day = yuan_field(form.get("per_day"), "per_day")?;
        s.pay.set_limit(&p, level, op, per_tx, per_day).await
    }
    .await;
    match r {
        Ok(_) => Redirect::to("/wallet?saved=limits").into_response(),
        Err(e) => {
            let (l, status) = l.failed(&e);
            wallet_render(&s, l, &p, status, None).await
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
    /// The month as the form shows it ("2026-03").
    month: String,
    /// (type, its words, chosen) for the type menu.
    kinds: Vec<(&'static str, String, bool)>,
    /// The filter as a query string ("type=qr&month=2026-03"), for the paging links.
    filter_query: String,
}

#[derive(Deserialize)]
pub(crate) struct HistoryParams {
    cursor: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    month: Option<String>,
}

/// "2026-03" as (2026, 3); a month the form left empty is no filter.
pub(crate) fn month_param(month: Option<&str>) -> Result<Option<(i64, u32)>, Error> {
    let Some(m) = month.map(str::trim).filter(|m| !m.is_empty()) else { return Ok(None) };
    let bad = || Error::field("month", "pay.history.month_format");
    let (y, mo) = m.split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || mo.is_empty() || mo.len() > 2 {
        return Err(bad());
    }
    Ok(Some((y.parse().map_err(|_| bad())?, mo.parse().map_err(|_| bad())?)))
}

/// A history row's sign and amount (thousands grouped): a hold shows what it
/// holds, its release that nothing moved.
fn signed_change(line: &yizhan_pay::HistoryLine) -> String {
    let released = matches!(line.kind.as_str(), "void_pending" | "expire_pending");
    let change = if line.posted_change_fen != 0 || released {
        line.posted_change_fen
    } else if line.direction == "in" {
        line.amount_fen
    } else {
        -line.amount_fen
    };
    if change > 0 {
        format!("+{}", yizhan_core::money::yuan_grouped(change))
    } else {
        yizhan_core::money::yuan_grouped(change)
    }
}

fn line_label(lang: Lang, line: &yizhan_pay::HistoryLine) -> String {
    match line.bill_kind {
        Some(k) => category_label(lang, k.as_str()),
        None => category_label(lang, &line.category),
    }
}

pub(crate) async fn history(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<HistoryParams>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/history", &p).await;
    let cursor = q.cursor.as_deref().and_then(|c| c.trim().parse::<i64>().ok());
    let kind = q.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()).map(str::to_string);
    let month_text = q.month.as_deref().map(str::trim).unwrap_or_default().to_string();
    let r = async {
        let query =
            yizhan_pay::HistoryQuery { kind: kind.clone(), month: month_param(q.month.as_deref())?, limit: None };
        s.pay.history_where(&p.user_id, cursor, &query).await
    }
    .await;
    match r {
        Ok(page) => {
            // A hold that was settled on this page shows once, as its settlement
            // (a withdrawal is one line, not "on hold −10" and then "−10").
            let settled: std::collections::HashSet<String> =
                page.items.iter().filter_map(|l| l.pending_id.clone()).collect();
            let rows = page
                .items
                .into_iter()
                .filter(|line| !(line.kind == "pending" && settled.contains(&line.transfer_id)))
                .map(|line| HistoryRow {
                    who: counterpart_words(lang, &line.counterpart),
                    label: line_label(lang, &line),
                    signed: signed_change(&line),
                    line,
                })
                .collect();
            let mut filter_query = String::new();
            if let Some(k) = &kind {
                filter_query.push_str(&format!("type={}&", path_segment(k)));
            }
            if !month_text.is_empty() {
                filter_query.push_str(&format!("month={}&", path_segment(&month_text)));
            }
            let kinds = yizhan_pay::HISTORY_TYPES
                .iter()
                .map(|k| (*k, category_label(lang, k), kind.as_deref() == Some(*k)))
                .collect::<Vec<_>>();
            render(&HistoryPage {
                l,
                rows,
                next_cursor: page.next_cursor,
                first_page: cursor.is_none(),
                month: month_text,
                kinds,
                filter_query,
            })
        }
        Err(e) => {
            let e = pay_err(e).0;
            failure_page(lang, &e)
        }
    }
}

// ---- /wallet/history/{id}: one transfer ----

/// The page of one of the person's transfers.
pub(crate) fn transfer_href(id: &str) -> String {
    format!("/wallet/history/{}", path_segment(id))
}

/// A value as one path segment or query value: letters, digits and `-_.` as
/// they are, every other byte percent-encoded.
fn path_segment(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "wallet_transfer.html")]
pub(crate) struct EntryPage {
    l: Layout,
    e: yizhan_pay::HistoryEntry,
    label: String,
    /// The other side, a person's name masked.
    who: String,
    signed: String,
    status: String,
}

#[derive(Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

/// What the flash says on arriving here after the money moved.
fn done_message(lang: Lang, e: &yizhan_pay::HistoryEntry, who: &str) -> String {
    let amount = e.line.amount_fen;
    let key = match e.line.category.as_str() {
        "topup" => "wallet.topup_done_msg",
        "withdrawal" => "wallet.withdraw_done_msg",
        "p2p" => "send.done_msg",
        "bill" => "bills.paid_msg",
        _ => "pay.done_msg",
    };
    say(lang, Msg::new(key).fen("amount", amount).text("payee", who.to_string()))
}

pub(crate) async fn history_entry(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/history", &p).await;
    match s.pay.history_entry(&p.user_id, &id).await {
        Ok(e) => {
            let who = counterpart_words(lang, &e.counterpart_masked);
            let l = if q.done.as_deref() == Some("1") { l.ok(&done_message(lang, &e, &who)) } else { l };
            let page = EntryPage {
                label: line_label(lang, &e.line),
                signed: signed_change(&e.line),
                status: lang.t(&format!("history.status.{}", e.status.as_str())).to_string(),
                who,
                l,
                e,
            };
            render(&page)
        }
        Err(e) => failure_page(lang, &pay_err(e).0),
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
    next: Option<(i64, u32)>,
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
            // No statement of a month still to come.
            let now = yizhan_core::time::year_month_cst(s.ctx.now_ms());
            let next = (next <= now).then_some(next);
            render(&StatementPage { l, st, bars, chart_height, prev, next })
        }
        Err(e) => {
            let e = pay_err(e).0;
            failure_page(lang, &e)
        }
    }
}
