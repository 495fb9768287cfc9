//! The credit pages: the score (gauge, history chart, factors, reasons, what
//! would raise it, perks, court listings), the records with their contests,
//! and the staff page for contested records. Forms post and redirect.

use crate::svg;
use crate::CreditRoom;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use yizhan_core::{Error, Msg};
use yizhan_credit::{Decision, Outcome, Plan};
use yizhan_identity::{Principal, Role};
use yizhan_identity_web::{person_layout, PageUser};
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::i18n::render as say;
use yizhan_kit::page::{filters, render, Layout};
use yizhan_kit::Lang;

pub fn router() -> Router<CreditRoom> {
    Router::new()
        .route("/credit", get(score_page))
        .route("/credit/opt-in", post(opt_in))
        .route("/credit/opt-out", get(opt_out_page).post(opt_out))
        .route("/credit/consents", post(consents))
        .route("/credit/pay-later", post(switch_pay_later))
        .route("/credit/pay-later/{id}/repay", post(repay))
        .route("/credit/perks", get(perks_page))
        .route("/credit/records", get(records_page))
        .route("/credit/records/{id}", get(record_link))
        .route("/credit/records/{id}/contest", post(contest))
        .route("/credit/staff", get(staff_page))
        .route("/credit/staff/{org}/{record}", post(decide))
}

pub struct Row {
    pub key: String,
    pub name: String,
    pub detail: String,
    pub points: i64,
    pub max: i64,
    /// Each characteristic of the group, in words: its name, value and points.
    pub chars: Vec<String>,
    /// The records behind the group, in words with their count (none for a
    /// group no record feeds).
    pub records: Option<String>,
}

pub struct PlanRow {
    pub title: String,
    pub steps: Vec<String>,
    pub reaches: bool,
}

pub struct PerkRow {
    pub key: String,
    pub name: String,
    pub needs: String,
    pub also: Option<String>,
    pub has: bool,
}

#[derive(Template)]
#[template(path = "credit.html")]
struct ScorePage {
    l: Layout,
    opted_in: bool,
    ended: Vec<String>,
    score: i64,
    band: String,
    gauge: String,
    chart: String,
    groups: Vec<Row>,
    reasons: Vec<String>,
    plans: Vec<PlanRow>,
    /// "You have n of m perks".
    perks_summary: String,
    listings: Vec<String>,
    model: String,
    /// The person is staff of an organisation: a link to its contested records.
    staff: bool,
    /// During a staged rollout: the staged model's score, in words.
    staged: Option<String>,
    address_consent: bool,
    education_consent: bool,
    /// Each optional source and whether it is used, in words.
    address_state: String,
    education_state: String,
    pay_later: Option<PayLaterBox>,
}

pub struct StatementRow {
    pub id: String,
    pub text: String,
    pub open: bool,
}

pub struct PayLaterBox {
    pub has_perk: bool,
    pub on: bool,
    pub summary: String,
    pub statements: Vec<StatementRow>,
}

#[derive(Deserialize)]
struct EndedQuery {
    ended: Option<String>,
}

fn plan_row(lang: Lang, p: &Plan, title_key: &str, name: &str) -> PlanRow {
    PlanRow {
        title: say(
            lang,
            &Msg::new(title_key.to_string())
                .text(if title_key.ends_with("band") { "band" } else { "perk" }, name)
                .int("score", p.target_score),
        ),
        steps: p
            .steps
            .iter()
            .map(|s| {
                let gain = say(lang, &Msg::new("credit.improve.gain").int("gain", s.gain));
                say(lang, &Msg::new("credit.improve.step").text("step", say(lang, &s.msg)).text("gain", gain))
            })
            .collect(),
        reaches: p.reaches,
    }
}

async fn score_page(
    State(s): State<CreditRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<EndedQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/credit", &p).await;
    let staff = match s.identity.memberships(&p.user_id).await {
        Ok(m) => !m.is_empty(),
        Err(e) => return l.failure(&e),
    };
    let m = s.credit.model();
    // Perks named after an opt-out, from the model's own list only.
    let ended: Vec<String> = q
        .ended
        .unwrap_or_default()
        .split(',')
        .filter(|k| m.perk(k).is_some())
        .map(|k| lang.tk("credit.perk", k).to_string())
        .collect();
    let mut page = ScorePage {
        l,
        opted_in: false,
        ended,
        score: 0,
        band: String::new(),
        gauge: String::new(),
        chart: String::new(),
        groups: Vec::new(),
        reasons: Vec::new(),
        plans: Vec::new(),
        perks_summary: String::new(),
        listings: Vec::new(),
        model: String::new(),
        staff,
        staged: None,
        address_consent: false,
        education_consent: false,
        address_state: String::new(),
        education_state: String::new(),
        pay_later: None,
    };
    match s.credit.is_opted_in(&p.user_id).await {
        Ok(false) => return render(&page),
        Ok(true) => {}
        Err(e) => return page.l.failure(&e),
    }
    let result = async {
        let v = s.credit.score(&p.user_id).await?;
        let h = s.credit.history(&p.user_id).await?;
        let imp = s.credit.improve(&p.user_id).await?;
        let perks = s.credit.perks(&p.user_id).await?;
        let consents = s.credit.consents(&p.user_id).await?;
        let records = s.credit.records(&p.user_id).await?;
        Ok::<_, Error>((v, h, imp, perks, consents, records))
    }
    .await;
    let (v, h, imp, perks, consents, records) = match result {
        Ok(x) => x,
        Err(e) => return page.l.failure(&e),
    };
    let edges: Vec<i64> = m.bands.iter().skip(1).map(|b| b.from).collect();
    page.opted_in = true;
    page.score = v.score;
    page.band = lang.tk("credit.band", &v.band).to_string();
    page.gauge = svg::gauge(v.score, m.min_score, m.max_score, &edges);
    let pts: Vec<(i64, i64)> = h.iter().map(|p| (p.computed_at_ms, p.score)).collect();
    page.chart = svg::history(&pts, m.min_score, m.max_score);
    page.groups = v
        .explained
        .groups
        .iter()
        .map(|g| {
            let chars: Vec<&yizhan_credit::model::CharScore> =
                v.explained.characteristics.iter().filter(|c| c.group == g.key).collect();
            let behind = records.iter().filter(|r| feeds_group(&r.kind, &chars)).count() as i64;
            let fed =
                chars.iter().any(|c| yizhan_credit::Kind::ALL.iter().any(|k| k.feeds().contains(&c.key.as_str())));
            Row {
                key: g.key.clone(),
                name: lang.tk("credit.group", &g.key).to_string(),
                detail: say(
                    lang,
                    &Msg::new("credit.group.points")
                        .int("points", g.points)
                        .int("max", g.max)
                        .int("weight", g.weight_pct),
                ),
                points: g.points,
                max: g.max.max(1),
                chars: chars
                    .iter()
                    .map(|c| {
                        say(
                            lang,
                            &Msg::new("credit.char.points")
                                .key_arg("name", format!("credit.char.{}", c.key))
                                .int("value", c.value)
                                .int("points", c.points)
                                .int("max", c.max),
                        )
                    })
                    .collect(),
                records: fed.then(|| say(lang, &Msg::new("credit.group.records").int("n", behind))),
            }
        })
        .collect();
    page.reasons = v.explained.reasons.iter().map(|r| say(lang, &r.msg)).collect();
    if let Some(b) = &imp.next_band {
        page.plans.push(plan_row(lang, b, "credit.improve.next_band", lang.tk("credit.band", &b.target)));
    }
    if let Some(b) = &imp.next_perk {
        page.plans.push(plan_row(lang, b, "credit.improve.next_perk", lang.tk("credit.perk", &b.target)));
    }
    page.perks_summary = say(
        lang,
        &Msg::new("credit.perks.summary")
            .int("has", perks.iter().filter(|k| k.has).count() as i64)
            .int("all", perks.len() as i64),
    );
    page.listings = v
        .listings
        .iter()
        .map(|x| {
            say(
                lang,
                &Msg::new("credit.listing")
                    .text("court", x.court_name.clone())
                    .text("case", x.case_ref.clone())
                    .time("at", x.listed_at_ms),
            )
        })
        .collect();
    page.address_consent = consents.address;
    page.education_consent = consents.education;
    let state = |source: &str, used: bool| {
        let msg = Msg::new("credit.consents.state")
            .key_arg("source", format!("credit.char.{source}_verified"))
            .key_arg("state", if used { "credit.consents.granted" } else { "credit.consents.not_granted" });
        say(lang, &msg)
    };
    page.address_state = state("address", consents.address);
    page.education_state = state("education", consents.education);
    page.staged = v.staged.as_ref().map(|t| {
        say(
            lang,
            &Msg::new("credit.model.staged_score")
                .text("version", t.model_version.clone())
                .int("score", t.score)
                .key_arg("band", format!("credit.band.{}", t.band)),
        )
    });
    // The line lives in the wallet; without it wired the section is left out.
    if let Ok(pl) = s.credit.pay_later(&p.user_id).await {
        page.pay_later = Some(PayLaterBox {
            has_perk: pl.has_perk,
            on: pl.on,
            summary: say(
                lang,
                &Msg::new("credit.pay_later.summary")
                    .fen("limit", pl.line.ledger_limit_fen)
                    .fen("owed", pl.line.owed_fen)
                    .fen("available", pl.line.available_credit_fen)
                    .fen("band_limit", pl.band_limit_fen),
            ),
            statements: pl
                .line
                .statements
                .iter()
                .map(|st| StatementRow {
                    id: st.id.clone(),
                    text: say(
                        lang,
                        &Msg::new(format!("credit.pay_later.statement.{}", st.status))
                            .text("period", st.period.clone())
                            .fen("amount", st.amount_fen)
                            .time("due", st.due_at_ms)
                            .int("days", st.days_late),
                    ),
                    open: st.status == "open",
                })
                .collect(),
        });
    }
    page.model = say(
        lang,
        &Msg::new("credit.model").text("version", v.model_version.clone()).text("hash", v.model_hash[..12].to_string()),
    );
    render(&page)
}

/// Which records feed one of these characteristics (the records behind a group).
fn feeds_group(kind: &str, chars: &[&yizhan_credit::model::CharScore]) -> bool {
    yizhan_credit::Kind::parse(kind).is_ok_and(|k| chars.iter().any(|c| k.feeds().contains(&c.key.as_str())))
}

/// A failed action, shown in the person's own frame (header and tabs kept).
async fn failed(s: &CreditRoom, lang: Lang, csrf: &Csrf, path: &str, p: &Principal, e: &Error) -> Response {
    person_layout(&s.notify, lang, csrf, path, p).await.failure(e)
}

async fn opt_in(State(s): State<CreditRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser, _f: CsrfForm) -> Response {
    match s.credit.opt_in(&p.user_id).await {
        Ok(_) => Redirect::to("/credit").into_response(),
        Err(e) => failed(&s, lang, &csrf, "/credit", &p, &e).await,
    }
}

async fn consents(State(s): State<CreditRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser, f: CsrfForm) -> Response {
    let kind = match f.get("source") {
        "address" => yizhan_credit::Kind::Address,
        "education" => yizhan_credit::Kind::Education,
        _ => {
            let e = Error::field("source", "credit.consent.source_invalid");
            return failed(&s, lang, &csrf, "/credit", &p, &e).await;
        }
    };
    match s.credit.set_consent(&p.user_id, kind, f.get("grant") == "1").await {
        Ok(_) => Redirect::to("/credit#credit-consents").into_response(),
        Err(e) => failed(&s, lang, &csrf, "/credit", &p, &e).await,
    }
}

async fn switch_pay_later(
    State(s): State<CreditRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    f: CsrfForm,
) -> Response {
    match s.credit.switch_pay_later(&p.user_id, f.get("on") == "1").await {
        Ok(_) => Redirect::to("/credit#credit-pay-later").into_response(),
        Err(e) => failed(&s, lang, &csrf, "/credit", &p, &e).await,
    }
}

async fn repay(
    State(s): State<CreditRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _f: CsrfForm,
) -> Response {
    match s.credit.repay_pay_later(&p.user_id, &id).await {
        Ok(_) => Redirect::to("/credit#credit-pay-later").into_response(),
        Err(e) => failed(&s, lang, &csrf, "/credit", &p, &e).await,
    }
}

#[derive(Template)]
#[template(path = "opt_out.html")]
struct OptOutPage {
    l: Layout,
    /// The perks the person has now, which end with the score.
    ending: Vec<String>,
}

/// Before turning it off: what is deleted and which perks end.
async fn opt_out_page(State(s): State<CreditRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/credit", &p).await;
    match s.credit.is_opted_in(&p.user_id).await {
        Ok(true) => {}
        Ok(false) => return Redirect::to("/credit").into_response(),
        Err(e) => return l.failure(&e),
    }
    match s.credit.perks(&p.user_id).await {
        Ok(perks) => {
            let ending = perks.iter().filter(|k| k.has).map(|k| lang.tk("credit.perk", &k.key).to_string()).collect();
            render(&OptOutPage { l, ending })
        }
        Err(e) => l.failure(&e),
    }
}

async fn opt_out(State(s): State<CreditRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser, _f: CsrfForm) -> Response {
    match s.credit.opt_out(&p.user_id).await {
        Ok(out) => Redirect::to(&format!("/credit?ended={}", out.perks_ended.join(","))).into_response(),
        Err(e) => failed(&s, lang, &csrf, "/credit", &p, &e).await,
    }
}

#[derive(Template)]
#[template(path = "perks.html")]
struct PerksPage {
    l: Layout,
    opted_in: bool,
    perks: Vec<PerkRow>,
}

/// The perks, which the person has now and what score each needs; every
/// check an organisation makes is in the person's access log.
async fn perks_page(State(s): State<CreditRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/credit/perks", &p).await;
    let r =
        async { Ok::<_, Error>((s.credit.is_opted_in(&p.user_id).await?, s.credit.perks(&p.user_id).await?)) }.await;
    let (opted_in, perks) = match r {
        Ok(x) => x,
        Err(e) => return l.failure(&e),
    };
    let perks = perks
        .iter()
        .map(|k| PerkRow {
            key: k.key.clone(),
            name: lang.tk("credit.perk", &k.key).to_string(),
            needs: say(lang, &Msg::new("credit.perk.needs").int("score", k.min_score)),
            also: k.also_needs.as_ref().map(|a| lang.tk("credit.perk.also", a).to_string()),
            has: k.has,
        })
        .collect();
    render(&PerksPage { l, opted_in, perks })
}

pub struct RecordRow {
    pub id: String,
    pub kind: String,
    pub outcome: String,
    pub source: Option<String>,
    pub occurred_at_ms: i64,
    pub status: String,
    pub contestable: bool,
    pub steps: Vec<String>,
}

fn outcome_text(lang: Lang, outcome: &str, days_late: i64) -> String {
    say(lang, &Msg::new(format!("credit.outcome.{outcome}")).int("days", days_late))
}

#[derive(Template)]
#[template(path = "records.html")]
struct RecordsPage {
    l: Layout,
    /// The factor group the list is narrowed to (its name), if any.
    group: Option<String>,
    rows: Vec<RecordRow>,
}

#[derive(Deserialize)]
struct RecordsQuery {
    group: Option<String>,
}

/// A notification's link to a record: the records page, at that record.
async fn record_link(Path(id): Path<String>) -> Redirect {
    let id: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(64).collect();
    Redirect::to(&format!("/credit/records#record-{id}"))
}

async fn records_page(
    State(s): State<CreditRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<RecordsQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/credit/records", &p).await;
    let list = match s.credit.records(&p.user_id).await {
        Ok(x) => x,
        Err(e) => return l.failure(&e),
    };
    // Narrowed to a factor group of the model: the records that feed one of its characteristics.
    let m = s.credit.model();
    let group = q.group.as_deref().and_then(|g| m.groups.iter().find(|x| x.key == g)).map(|g| g.key.clone());
    let scored = match &group {
        Some(_) => match s.credit.score(&p.user_id).await {
            Ok(v) => Some(v.explained),
            Err(e) => return l.failure(&e),
        },
        None => None,
    };
    let rows = list
        .into_iter()
        .filter(|r| match (&group, &scored) {
            (Some(g), Some(x)) => {
                let chars: Vec<_> = x.characteristics.iter().filter(|c| &c.group == g).collect();
                feeds_group(&r.kind, &chars)
            }
            _ => true,
        })
        .map(|r| {
            let org = r.source_org_name.clone().unwrap_or_default();
            let mut steps = Vec::new();
            for c in &r.contests {
                steps.push(say(
                    lang,
                    &Msg::new("credit.contest.opened").time("at", c.opened_at_ms).text("org", org.clone()),
                ));
                if let Some(at) = c.decided_at_ms {
                    steps.push(say(
                        lang,
                        &Msg::new("credit.contest.step_decided")
                            .time("at", at)
                            .text("who", c.decided_by_label.clone().unwrap_or_default())
                            .key_arg("decision", format!("credit.contest.status.{}", c.status)),
                    ));
                }
            }
            RecordRow {
                kind: lang.tk("credit.kind", &r.kind).to_string(),
                outcome: outcome_text(lang, &r.outcome, r.days_late),
                source: r
                    .source_org_name
                    .as_ref()
                    .map(|o| say(lang, &Msg::new("credit.record.source").text("org", o.clone()))),
                occurred_at_ms: r.occurred_at_ms,
                status: lang.tk("credit.record.status", &r.status).to_string(),
                contestable: r.status == "active" && r.source_org_id.is_some(),
                steps,
                id: r.id,
            }
        })
        .collect();
    let group =
        group.map(|g| say(lang, &Msg::new("credit.records.behind").key_arg("group", format!("credit.group.{g}"))));
    render(&RecordsPage { l, group, rows })
}

async fn contest(
    State(s): State<CreditRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Response {
    match s.credit.contest(&p.user_id, &id, form.get("reason")).await {
        Ok(c) => Redirect::to(&format!("/credit/records#record-{}", c.record_id)).into_response(),
        Err(e) => failed(&s, lang, &csrf, "/credit/records", &p, &e).await,
    }
}

pub struct StaffRow {
    pub org_id: String,
    pub org_name: String,
    pub record_id: String,
    pub kind: String,
    pub outcome: String,
    /// The organisation's own reference of the record, in words.
    pub source_ref_text: String,
    pub reason: String,
    pub opened_at_ms: i64,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage {
    l: Layout,
    rows: Vec<StaffRow>,
}

#[derive(Deserialize)]
struct DecidedQuery {
    decided: Option<String>,
}

/// The open contests of every organisation the person is staff of.
async fn staff_page(
    State(s): State<CreditRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Query(q): Query<DecidedQuery>,
) -> Response {
    let mut l = person_layout(&s.notify, lang, &csrf, "/credit/staff", &p).await;
    // After a decision: what was decided, from the statuses' own words only.
    if let Some(d) = q.decided.as_deref().filter(|d| ["kept", "corrected", "removed"].contains(d)) {
        let msg = Msg::new("credit.staff.decided").key_arg("decision", format!("credit.contest.status.{d}"));
        l = l.ok(&say(lang, &msg));
    }
    let orgs = match s.identity.memberships(&p.user_id).await {
        Ok(m) => m,
        Err(e) => return l.failure(&e),
    };
    if orgs.is_empty() {
        return l.failure(&Error::forbidden("identity.staff.not_member"));
    }
    let mut rows = Vec::new();
    for m in orgs {
        let list = match s.credit.open_contests(&p, &m.org_id).await {
            Ok(x) => x,
            Err(e) => return l.failure(&e),
        };
        for (c, r) in list {
            rows.push(StaffRow {
                org_id: m.org_id.clone(),
                org_name: m.org_name.clone(),
                record_id: r.id.clone(),
                kind: lang.tk("credit.kind", &r.kind).to_string(),
                outcome: outcome_text(lang, &r.outcome, r.days_late),
                source_ref_text: say(lang, &Msg::new("credit.staff.ref").text("ref", r.source_ref.clone())),
                reason: c.reason.clone(),
                opened_at_ms: c.opened_at_ms,
            });
        }
    }
    render(&StaffPage { l, rows })
}

async fn decide(
    State(s): State<CreditRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path((org, record)): Path<(String, String)>,
    form: CsrfForm,
) -> Response {
    let d = match form.get("decision") {
        "keep" => Decision::Keep,
        "remove" => Decision::Remove,
        "on_time" => Decision::Correct(Outcome::OnTime, 0),
        _ => {
            let e = Error::field("decision", "credit.decision.invalid");
            return failed(&s, lang, &csrf, "/credit/staff", &p, &e).await;
        }
    };
    let r = async {
        s.identity.require_staff(&p, &org, Role::Operator).await?;
        s.credit.decide(&p, &org, &record, d).await
    }
    .await;
    match r {
        Ok(c) => Redirect::to(&format!("/credit/staff?decided={}", c.status)).into_response(),
        Err(e) => failed(&s, lang, &csrf, "/credit/staff", &p, &e).await,
    }
}
