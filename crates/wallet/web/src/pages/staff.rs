//! Screens for the staff of an organisation: where they work and their tools
//! (`/wallet/staff`), the till that charges a customer's pay code, the shop's
//! receiving page with its QR code and today's payments arriving, and the
//! page that issues bills and fines and shows how they stand.
//!
//! Every page asks the identity room first whether the person is staff of the
//! organisation in the URL; an outsider gets the same refusal whether or not
//! the organisation exists.

use super::*;
use yizhan_core::time::{days_from_civil, is_valid_date, CST_OFFSET_MS, DAY_MS};
use yizhan_identity::{Membership, OrgKind, Role};
use yizhan_pay::{BillKind, BillSpec, BillTo, PayCodeState, TillCharge};

pub fn router() -> Router<WalletRoom> {
    Router::new()
        .route("/wallet/staff", get(staff_home))
        .route("/wallet/orgs/{org}/cashier", get(cashier_form).post(cashier_charge))
        .route("/wallet/orgs/{org}/cashier/{key}", get(cashier_result))
        .route("/wallet/orgs/{org}/receive", get(receive_page))
        .route("/wallet/orgs/{org}/receive/feed", get(receive_feed))
        .route("/wallet/orgs/{org}/bills", get(org_bills_page).post(org_bill_issue))
}

/// How often the till's result page asks again while the customer decides.
const TILL_REFRESH_S: i64 = 3;
/// The bills the issuing page lists.
const ORG_BILLS_SHOWN: i64 = 100;

/// The organisation, if the person is its staff (at least an operator).
async fn staff_org(s: &WalletRoom, p: &Principal, org_id: &str) -> Result<yizhan_identity::Org, Error> {
    s.identity.require_staff(p, org_id, Role::Operator).await?;
    s.identity.org(org_id).await
}

// ---- /wallet/staff: where I work ----

pub(crate) struct Tool {
    pub href: String,
    pub label_key: &'static str,
    pub icon: &'static str,
}

pub(crate) struct Workplace {
    pub m: Membership,
    pub kind_key: String,
    pub role_key: String,
    pub tools: Vec<Tool>,
}

/// The tools of a workplace, the one its staff use most first.
fn tools_of(m: &Membership) -> Vec<Tool> {
    let org = &m.org_id;
    let cashier = Tool { href: format!("/wallet/orgs/{org}/cashier"), label_key: "staff.tool.cashier", icon: "scan" };
    let receive = Tool { href: format!("/wallet/orgs/{org}/receive"), label_key: "staff.tool.receive", icon: "purse" };
    let bills = Tool { href: format!("/wallet/orgs/{org}/bills"), label_key: "staff.tool.bills", icon: "receipt" };
    match m.org_kind {
        OrgKind::Merchant | OrgKind::MobilityOperator => vec![cashier, receive, bills],
        OrgKind::CityDepartment => vec![
            bills,
            Tool { href: "/counter".into(), label_key: "staff.tool.counter", icon: "list" },
            receive,
            cashier,
        ],
        OrgKind::Hospital | OrgKind::Court => vec![bills, receive, cashier],
    }
}

#[derive(Template)]
#[template(path = "staff.html")]
pub(crate) struct StaffPage {
    l: Layout,
    places: Vec<Workplace>,
}

pub(crate) async fn staff_home(State(s): State<WalletRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/wallet/staff", &p).await;
    match s.identity.memberships(&p.user_id).await {
        Ok(ms) => {
            let places = ms
                .into_iter()
                .map(|m| Workplace {
                    kind_key: format!("kind.{}", m.org_kind.as_str()),
                    role_key: format!("role.{}", m.role.as_str()),
                    tools: tools_of(&m),
                    m,
                })
                .collect();
            render(&StaffPage { l, places })
        }
        Err(e) => l.failure(&e),
    }
}

// ---- the till: charge a customer's pay code ----

#[derive(Template)]
#[template(path = "cashier.html")]
pub(crate) struct CashierPage {
    l: Layout,
    org_id: String,
    org_name: String,
    amount: String,
    key: String,
}

pub(crate) async fn cashier_form(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(org): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/wallet/orgs/{org}/cashier"), &p).await;
    match staff_org(&s, &p, &org).await {
        Ok(o) => render(&CashierPage { l, org_id: o.id, org_name: o.name, amount: String::new(), key: form_key() }),
        Err(e) => l.failure(&e),
    }
}

pub(crate) async fn cashier_charge(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(org): Path<String>,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/wallet/orgs/{org}/cashier"), &p).await;
    let o = match staff_org(&s, &p, &org).await {
        Ok(o) => o,
        Err(e) => return l.failure(&e),
    };
    let idem = form.get("idem").to_string();
    let r = async {
        let amount = yuan_field(form.get("amount"), "amount")?;
        let (pay, who, org, code, idem) =
            (s.pay.clone(), p.clone(), o.id.clone(), form.get("code").replace(' ', ""), idem.clone());
        to_completion(async move { pay.merchant_charge(&who, &org, &code, amount, &idem).await }).await
    }
    .await;
    match r {
        Ok(_) => Redirect::to(&format!("/wallet/orgs/{}/cashier/{}", o.id, idem)).into_response(),
        Err(e) => {
            let key = key_after(&e, &form);
            let (l, status) = failed(l, e);
            let page = CashierPage { l, org_id: o.id, org_name: o.name, amount: form.get("amount").to_string(), key };
            render_status(status, &page)
        }
    }
}

#[derive(Template)]
#[template(path = "cashier_result.html")]
pub(crate) struct CashierResult {
    l: Layout,
    org_id: String,
    org_name: String,
    c: TillCharge,
    state: &'static str,
    refresh_s: Option<i64>,
    /// Failed: why, in the reader's words.
    failure: String,
}

pub(crate) async fn cashier_result(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path((org, key)): Path<(String, String)>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/wallet/orgs/{org}/cashier/{key}"), &p).await;
    let o = match staff_org(&s, &p, &org).await {
        Ok(o) => o,
        Err(e) => return l.failure(&e),
    };
    match s.pay.till_charge(&p, &o.id, &key).await {
        Ok(c) => {
            let waiting = matches!(c.state, PayCodeState::AwaitingConfirmation | PayCodeState::Charging);
            let failure =
                c.failure_code.as_deref().map(|code| lang.tk_or("error", code).to_string()).unwrap_or_default();
            let page = CashierResult {
                l,
                org_id: o.id,
                org_name: o.name,
                state: c.state.as_str(),
                refresh_s: waiting.then_some(TILL_REFRESH_S),
                failure,
                c,
            };
            let mut r = render(&page);
            r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => l.failure(&e),
    }
}

// ---- the shop's receiving page ----

#[derive(Template)]
#[template(path = "receive.html")]
pub(crate) struct ReceivePage {
    l: Layout,
    org_id: String,
    org_name: String,
    qr_svg: String,
    /// The fixed amount the code asks for, as typed.
    amount: String,
    fixed_fen: Option<i64>,
    today: FeedAnswer,
}

#[derive(serde::Serialize)]
pub(crate) struct FeedItem {
    id: String,
    amount: String,
    from: String,
    what: String,
    at: String,
}

/// Today's payments, worded for the page (the script only places the words).
#[derive(serde::Serialize)]
pub(crate) struct FeedAnswer {
    total: String,
    count: String,
    items: Vec<FeedItem>,
}

fn feed_answer(lang: Lang, r: yizhan_pay::ReceivedToday) -> FeedAnswer {
    FeedAnswer {
        total: format!("¥{}", yizhan_core::money::yuan_grouped(r.total_fen)),
        count: say(lang, Msg::new("receive.count").int("count", r.count)),
        items: r
            .items
            .into_iter()
            .map(|i| FeedItem {
                id: i.transfer_id,
                amount: format!("+¥{}", yizhan_core::money::yuan_grouped(i.amount_fen)),
                from: i.from_name,
                what: category_label(lang, &i.category),
                at: yizhan_core::time::fmt_cst(i.at_ms),
            })
            .collect(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ReceiveQuery {
    amount: Option<String>,
}

pub(crate) async fn receive_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(org): Path<String>,
    Query(q): Query<ReceiveQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/wallet/orgs/{org}/receive"), &p).await;
    let o = match staff_org(&s, &p, &org).await {
        Ok(o) => o,
        Err(e) => return l.failure(&e),
    };
    let amount = q.amount.unwrap_or_default().trim().to_string();
    let (mut refused, mut fixed_fen) = (None, None);
    if !amount.is_empty() {
        match yuan_field(&amount, "amount") {
            Ok(a) => fixed_fen = Some(a),
            Err(e) => refused = Some(e),
        }
    }
    let payload = match s.pay.org_qr(&o.id, fixed_fen).await {
        Ok(payload) => Ok(payload),
        // An amount no payment may have: the page says so and shows the open code.
        Err(e) if e.code == yizhan_core::Code::ValidationFailed && fixed_fen.is_some() => {
            fixed_fen = None;
            refused = Some(e);
            s.pay.org_qr(&o.id, None).await
        }
        Err(e) => Err(e),
    };
    let r = async {
        let svg = strip_xml_declaration(yizhan_pay::qrimage::qr_svg(&payload?, 6)?);
        let today = s.pay.received_today(&p, &o.id).await?;
        Ok::<_, Error>((svg, today))
    }
    .await;
    let l = match &refused {
        Some(e) => l.error(e),
        None => l,
    };
    match r {
        Ok((qr_svg, today)) => render(&ReceivePage {
            today: feed_answer(lang, today),
            l,
            org_id: o.id,
            org_name: o.name,
            qr_svg,
            amount,
            fixed_fen,
        }),
        Err(e) => l.failure(&e),
    }
}

/// Today's payments as JSON, for the receiving page's script.
pub(crate) async fn receive_feed(
    State(s): State<WalletRoom>,
    lang: Lang,
    PageUser(p): PageUser,
    Path(org): Path<String>,
) -> Response {
    match s.pay.received_today(&p, &org).await {
        Ok(r) => ([(axum::http::header::CACHE_CONTROL, "no-store")], axum::Json(feed_answer(lang, r))).into_response(),
        Err(e) => failure_page(lang, &e),
    }
}

// ---- issuing bills and fines ----

pub(crate) struct KindOption {
    value: &'static str,
    label: String,
}

pub(crate) struct IssuedRow {
    b: yizhan_pay::Bill,
    kind_label: String,
    /// "paid", "overdue" or "open".
    standing: &'static str,
}

#[derive(Template)]
#[template(path = "org_bills.html")]
pub(crate) struct OrgBillsPage {
    l: Layout,
    org_id: String,
    org_name: String,
    kinds: Vec<KindOption>,
    rows: Vec<IssuedRow>,
    open: usize,
    paid: usize,
    overdue: usize,
    issued: Option<String>,
    form: IssueForm,
    key: String,
    /// What is wrong with each field, when more than one is.
    problems: Vec<String>,
}

#[derive(Default)]
pub(crate) struct IssueForm {
    by: String,
    to: String,
    kind: String,
    amount: String,
    due: String,
    description: String,
}

/// The end of a date typed as YYYY-MM-DD (23:59:59.999 China time).
fn due_field(s: &str) -> Result<i64, Error> {
    let bad = || Error::field("due", "staff.bills.due_hint");
    let mut parts = s.trim().splitn(3, '-');
    let y: i64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let m: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let d: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    if !(2000..=9999).contains(&y) || !is_valid_date(y, m, d) {
        return Err(bad());
    }
    Ok((days_from_civil(y, m, d) + 1) * DAY_MS - CST_OFFSET_MS - 1)
}

/// The issuing form's side of the page: what was just issued, or what was typed and what is wrong with it.
struct IssueState {
    issued: Option<String>,
    form: IssueForm,
    key: String,
    problems: Vec<String>,
}

async fn org_bills_render(
    s: &WalletRoom,
    l: Layout,
    status: StatusCode,
    p: &Principal,
    o: yizhan_identity::Org,
    st: IssueState,
) -> Response {
    let IssueState { issued, form, key, problems } = st;
    let lang = l.lang;
    let bills = match s.pay.org_bills(p, &o.id, ORG_BILLS_SHOWN).await {
        Ok(b) => b,
        Err(e) => return l.failure(&e),
    };
    let rows: Vec<IssuedRow> = bills
        .into_iter()
        .map(|b| IssuedRow {
            kind_label: category_label(lang, b.kind.as_str()),
            standing: match (b.status.as_str(), b.late) {
                ("paid", _) => "paid",
                (_, true) => "overdue",
                _ => "open",
            },
            b,
        })
        .collect();
    let count = |w: &str| rows.iter().filter(|r| r.standing == w).count();
    let (open, paid, overdue) = (count("open"), count("paid"), count("overdue"));
    // Fines only come from city departments and courts.
    let may_fine = matches!(o.kind, OrgKind::CityDepartment | OrgKind::Court);
    let kinds = BillKind::ALL
        .iter()
        .filter(|k| may_fine || **k != BillKind::Fine)
        .map(|k| KindOption { value: k.as_str(), label: category_label(lang, k.as_str()) })
        .collect();
    let issued = issued.filter(|id| rows.iter().any(|r| &r.b.id == id));
    let page = OrgBillsPage {
        l,
        org_id: o.id,
        org_name: o.name,
        kinds,
        rows,
        open,
        paid,
        overdue,
        issued,
        form,
        key,
        problems,
    };
    render_status(status, &page)
}

#[derive(Deserialize)]
pub(crate) struct IssuedQuery {
    issued: Option<String>,
}

pub(crate) async fn org_bills_page(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(org): Path<String>,
    Query(q): Query<IssuedQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/wallet/orgs/{org}/bills"), &p).await;
    let o = match staff_org(&s, &p, &org).await {
        Ok(o) => o,
        Err(e) => return l.failure(&e),
    };
    let l = match &q.issued {
        Some(_) => l.ok(lang.t("staff.bills.issued")),
        None => l,
    };
    let form = IssueForm { by: "id_number".into(), ..IssueForm::default() };
    let st = IssueState { issued: q.issued, form, key: form_key(), problems: Vec::new() };
    org_bills_render(&s, l, StatusCode::OK, &p, o, st).await
}

pub(crate) async fn org_bill_issue(
    State(s): State<WalletRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(org): Path<String>,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, &format!("/wallet/orgs/{org}/bills"), &p).await;
    let o = match staff_org(&s, &p, &org).await {
        Ok(o) => o,
        Err(e) => return l.failure(&e),
    };
    let typed = IssueForm {
        by: form.get("by").to_string(),
        to: form.get("to").trim().to_string(),
        kind: form.get("kind").to_string(),
        amount: form.get("amount").to_string(),
        due: form.get("due").to_string(),
        description: form.get("description").to_string(),
    };
    let spec = bill_spec(&typed);
    let r = match spec {
        Ok(spec) => {
            let (pay, who, org_id, idem) = (s.pay.clone(), p.clone(), o.id.clone(), form.get("idem").to_string());
            to_completion(async move { pay.issue_bill(&who, &org_id, spec, &idem).await }).await
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(bill) => Redirect::to(&format!("/wallet/orgs/{}/bills?issued={}", o.id, bill.id)).into_response(),
        Err(e) => {
            let key = key_after(&e, &form);
            let problems = if e.fields.len() > 1 {
                e.fields.iter().map(|f| say(lang, f.msg.clone())).collect()
            } else {
                Vec::new()
            };
            let (l, status) = failed(l, e);
            org_bills_render(&s, l, status, &p, o, IssueState { issued: None, form: typed, key, problems }).await
        }
    }
}

/// The bill the form describes, every bad field named.
fn bill_spec(typed: &IssueForm) -> Result<BillSpec, Error> {
    let to = match typed.by.as_str() {
        "plate" => BillTo::Plate(typed.to.clone()),
        _ => BillTo::IdNumber(typed.to.clone()),
    };
    let mut fields = Vec::new();
    let kind = BillKind::parse(&typed.kind).map_err(|e| fields.extend(e.fields)).ok();
    let amount_fen = yuan_field(&typed.amount, "amount").map_err(|e| fields.extend(e.fields)).ok();
    let due_at_ms = due_field(&typed.due).map_err(|e| fields.extend(e.fields)).ok();
    match (kind, amount_fen, due_at_ms) {
        (Some(kind), Some(amount_fen), Some(due_at_ms)) => {
            Ok(BillSpec { to, kind, amount_fen, due_at_ms, description: typed.description.clone() })
        }
        _ => Err(Error::fields(fields)),
    }
}
