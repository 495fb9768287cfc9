//! The credit API: the person's own score, history, records, contests,
//! improvements and perks; a court's defaulter list; an organisation's
//! review of contested records and its yes-or-no perk checks.

use crate::CreditRoom;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use yizhan_core::{Error, Msg};
use yizhan_credit::{Contest, Decision, Outcome, Plan, Record, ScoreView};
use yizhan_identity_web::ApiUser;
use yizhan_kit::extract::ApiJson;
use yizhan_kit::i18n::render;
use yizhan_kit::problem::{ApiResult, Problem};
use yizhan_kit::Lang;

pub fn router() -> OpenApiRouter<CreditRoom> {
    OpenApiRouter::new()
        .routes(routes!(opt_in))
        .routes(routes!(opt_out))
        .routes(routes!(score))
        .routes(routes!(history))
        .routes(routes!(records))
        .routes(routes!(contest))
        .routes(routes!(improve))
        .routes(routes!(perks))
        .routes(routes!(defaulters))
        .routes(routes!(org_contests))
        .routes(routes!(decide))
        .routes(routes!(perk_check))
        .routes(routes!(consents, set_consents))
        .routes(routes!(pay_later))
        .routes(routes!(switch_pay_later))
        .routes(routes!(repay_pay_later))
}

#[derive(Serialize, ToSchema)]
pub struct GroupDoc {
    /// history, capacity, behaviour, identity or connections
    pub key: String,
    pub name: String,
    pub weight_pct: i64,
    pub points: i64,
    pub max: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CharacteristicDoc {
    pub key: String,
    pub group: String,
    pub name: String,
    /// The input's value (a count, a level).
    pub value: i64,
    pub points: i64,
    pub max: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ReasonDoc {
    /// The characteristic (or `defaulter`).
    pub code: String,
    pub points_lost: i64,
    /// In plain words, in the request's language.
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct ListingDoc {
    pub court: String,
    pub case_number: String,
    pub listed_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ScoreDoc {
    /// 350 to 950.
    pub score: i64,
    /// low, fair, good, very_good or excellent
    pub band: String,
    pub band_name: String,
    pub model_version: String,
    /// sha256 of the published model file this score was computed with.
    pub model_hash: String,
    pub computed_at: i64,
    pub groups: Vec<GroupDoc>,
    pub characteristics: Vec<CharacteristicDoc>,
    /// At most four, the most points lost first.
    pub reasons: Vec<ReasonDoc>,
    pub listings: Vec<ListingDoc>,
    /// During a staged rollout of a new model: what it would give (it does not count yet).
    pub staged: Option<StagedDoc>,
}

#[derive(Serialize, ToSchema)]
pub struct StagedDoc {
    pub model_version: String,
    pub model_hash: String,
    pub score: i64,
    pub band: String,
    pub band_name: String,
}

impl ScoreDoc {
    pub fn of(s: &ScoreView, lang: Lang) -> ScoreDoc {
        let e = &s.explained;
        ScoreDoc {
            score: s.score,
            band_name: lang.tk("credit.band", &s.band).to_string(),
            band: s.band.clone(),
            model_version: s.model_version.clone(),
            model_hash: s.model_hash.clone(),
            computed_at: s.computed_at_ms,
            groups: e
                .groups
                .iter()
                .map(|g| GroupDoc {
                    key: g.key.clone(),
                    name: lang.tk("credit.group", &g.key).to_string(),
                    weight_pct: g.weight_pct,
                    points: g.points,
                    max: g.max,
                })
                .collect(),
            characteristics: e
                .characteristics
                .iter()
                .map(|c| CharacteristicDoc {
                    key: c.key.clone(),
                    group: c.group.clone(),
                    name: lang.tk("credit.char", &c.key).to_string(),
                    value: c.value,
                    points: c.points,
                    max: c.max,
                })
                .collect(),
            reasons: e
                .reasons
                .iter()
                .map(|r| ReasonDoc { code: r.code.clone(), points_lost: r.points_lost, text: render(lang, &r.msg) })
                .collect(),
            listings: s
                .listings
                .iter()
                .map(|l| ListingDoc {
                    court: l.court_name.clone(),
                    case_number: l.case_ref.clone(),
                    listed_at: l.listed_at_ms,
                })
                .collect(),
            staged: s.staged.as_ref().map(|t| StagedDoc {
                model_version: t.model_version.clone(),
                model_hash: t.model_hash.clone(),
                score: t.score,
                band_name: lang.tk("credit.band", &t.band).to_string(),
                band: t.band.clone(),
            }),
        }
    }
}

/// Turn on my credit score (nothing is computed before). With no record it is 600.
/// 409 `credit_not_opted_in` when an opt-out from another request lands
/// between turning it on and reading the score.
#[utoipa::path(post, path = "/api/v1/credit/opt-in", tag = "credit",
    responses((status = 200, body = ScoreDoc), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "Turned off again by another request meanwhile")))]
async fn opt_in(State(s): State<CreditRoom>, lang: Lang, ApiUser(p): ApiUser) -> ApiResult<Json<ScoreDoc>> {
    Ok(Json(ScoreDoc::of(&s.credit.opt_in(&p.user_id).await?, lang)))
}

#[derive(Serialize, ToSchema)]
pub struct PerkEndedDoc {
    pub key: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct OptedOutDoc {
    /// The perks I had that ended.
    pub perks_ended: Vec<PerkEndedDoc>,
    pub scores_deleted: u64,
    pub records_deleted: u64,
}

/// Turn off my credit score: the score, its history and my records are deleted.
#[utoipa::path(post, path = "/api/v1/credit/opt-out", tag = "credit",
    responses((status = 200, body = OptedOutDoc), (status = 401, body = Problem)))]
async fn opt_out(State(s): State<CreditRoom>, lang: Lang, ApiUser(p): ApiUser) -> ApiResult<Json<OptedOutDoc>> {
    let out = s.credit.opt_out(&p.user_id).await?;
    Ok(Json(OptedOutDoc {
        perks_ended: out
            .perks_ended
            .iter()
            .map(|k| PerkEndedDoc { key: k.clone(), name: lang.tk("credit.perk", k).to_string() })
            .collect(),
        scores_deleted: out.scores_deleted,
        records_deleted: out.records_deleted,
    }))
}

/// My score: band, factor groups with points and maximum, reasons, model version.
#[utoipa::path(get, path = "/api/v1/credit/score", tag = "credit",
    responses((status = 200, body = ScoreDoc), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "The credit score is not turned on")))]
async fn score(State(s): State<CreditRoom>, lang: Lang, ApiUser(p): ApiUser) -> ApiResult<Json<ScoreDoc>> {
    Ok(Json(ScoreDoc::of(&s.credit.score(&p.user_id).await?, lang)))
}

#[derive(Serialize, ToSchema)]
pub struct HistoryDoc {
    pub score: i64,
    pub band: String,
    /// What caused it: opt_in, record, contest, contest_decided, court_listing, refresh, recompute, consent
    pub cause: String,
    pub model_version: String,
    pub model_hash: String,
    pub computed_at: i64,
}

/// Every score of mine, oldest first.
#[utoipa::path(get, path = "/api/v1/credit/history", tag = "credit",
    responses((status = 200, body = Vec<HistoryDoc>), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn history(State(s): State<CreditRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<Vec<HistoryDoc>>> {
    let h = s.credit.history(&p.user_id).await?;
    Ok(Json(
        h.into_iter()
            .map(|p| HistoryDoc {
                score: p.score,
                band: p.band,
                cause: p.cause,
                model_version: p.model_version,
                model_hash: p.model_hash,
                computed_at: p.computed_at_ms,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ContestDoc {
    pub id: String,
    pub record_id: String,
    pub reason: String,
    /// open, kept, corrected or removed
    pub status: String,
    pub opened_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

impl From<Contest> for ContestDoc {
    fn from(c: Contest) -> ContestDoc {
        ContestDoc {
            id: c.id,
            record_id: c.record_id,
            reason: c.reason,
            status: c.status,
            opened_at: c.opened_at_ms,
            decided_at: c.decided_at_ms,
            decided_by: c.decided_by_label,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecordDoc {
    pub id: String,
    /// bill, fine, pay_later, deposit, booking, address or education
    pub kind: String,
    /// on_time, late, overdue, kept, missed or verified
    pub outcome: String,
    pub days_late: i64,
    pub occurred_at: i64,
    pub source: String,
    pub source_org_name: Option<String>,
    pub source_ref: String,
    /// active (counted), contested (frozen) or removed
    pub status: String,
    /// Every contest of the record, oldest first: its steps.
    pub contests: Vec<ContestDoc>,
}

impl From<Record> for RecordDoc {
    fn from(r: Record) -> RecordDoc {
        RecordDoc {
            id: r.id,
            kind: r.kind,
            outcome: r.outcome,
            days_late: r.days_late,
            occurred_at: r.occurred_at_ms,
            source: r.source,
            source_org_name: r.source_org_name,
            source_ref: r.source_ref,
            status: r.status,
            contests: r.contests.into_iter().map(ContestDoc::from).collect(),
        }
    }
}

/// My records, newest first, with their contests.
#[utoipa::path(get, path = "/api/v1/credit/records", tag = "credit",
    responses((status = 200, body = Vec<RecordDoc>), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn records(State(s): State<CreditRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<Vec<RecordDoc>>> {
    Ok(Json(s.credit.records(&p.user_id).await?.into_iter().map(RecordDoc::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContestReq {
    /// Why the record is wrong (1 to 500 characters).
    pub reason: String,
}

/// Contest one of my records: it stops counting while the organisation that produced it reviews it.
#[utoipa::path(post, path = "/api/v1/credit/records/{record_id}/contest", tag = "credit", request_body = ContestReq,
    params(("record_id" = String, Path)),
    responses((status = 201, body = ContestDoc), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn contest(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    Path(record_id): Path<String>,
    ApiJson(req): ApiJson<ContestReq>,
) -> ApiResult<(StatusCode, Json<ContestDoc>)> {
    let c = s.credit.contest(&p.user_id, &record_id, &req.reason).await?;
    Ok((StatusCode::CREATED, Json(ContestDoc::from(c))))
}

#[derive(Serialize, ToSchema)]
pub struct StepDoc {
    pub code: String,
    pub more: i64,
    pub gain: i64,
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct PlanDoc {
    /// A band's or a perk's key.
    pub target: String,
    pub target_name: String,
    pub target_score: i64,
    pub points_needed: i64,
    pub steps: Vec<StepDoc>,
    /// Whether the steps reach the target.
    pub reaches: bool,
}

fn plan_doc(p: &Plan, prefix: &str, lang: Lang) -> PlanDoc {
    PlanDoc {
        target: p.target.clone(),
        target_name: lang.tk(prefix, &p.target).to_string(),
        target_score: p.target_score,
        points_needed: p.points_needed,
        steps: p
            .steps
            .iter()
            .map(|s| StepDoc { code: s.code.clone(), more: s.more, gain: s.gain, text: render(lang, &s.msg) })
            .collect(),
        reaches: p.reaches,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ImproveDoc {
    pub score: i64,
    pub next_band: Option<PlanDoc>,
    pub next_perk: Option<PlanDoc>,
}

/// What would raise my score: the smallest actionable changes to reach the next band and the next perk.
#[utoipa::path(get, path = "/api/v1/credit/improve", tag = "credit",
    responses((status = 200, body = ImproveDoc), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn improve(State(s): State<CreditRoom>, lang: Lang, ApiUser(p): ApiUser) -> ApiResult<Json<ImproveDoc>> {
    let i = s.credit.improve(&p.user_id).await?;
    Ok(Json(ImproveDoc {
        score: i.score,
        next_band: i.next_band.as_ref().map(|p| plan_doc(p, "credit.band", lang)),
        next_perk: i.next_perk.as_ref().map(|p| plan_doc(p, "credit.perk", lang)),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct PerkDoc {
    pub key: String,
    pub name: String,
    pub min_score: i64,
    /// A condition the organisation checks itself, in words.
    pub also_needs: Option<String>,
    /// I have it now.
    pub has: bool,
}

/// The perks, the score each needs, and which I have now.
#[utoipa::path(get, path = "/api/v1/credit/perks", tag = "credit",
    responses((status = 200, body = Vec<PerkDoc>), (status = 401, body = Problem)))]
async fn perks(State(s): State<CreditRoom>, lang: Lang, ApiUser(p): ApiUser) -> ApiResult<Json<Vec<PerkDoc>>> {
    let list = s.credit.perks(&p.user_id).await?;
    Ok(Json(
        list.into_iter()
            .map(|k| PerkDoc {
                name: lang.tk("credit.perk", &k.key).to_string(),
                also_needs: k.also_needs.map(|a| lang.tk("credit.perk.also", &a).to_string()),
                key: k.key,
                min_score: k.min_score,
                has: k.has,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct DefaulterReportDoc {
    pub lines: i64,
    pub listed: i64,
    pub lifted: i64,
    pub unmatched: i64,
}

/// A court's staff upload its current list of judgement defaulters as CSV
/// (`identity number,case number` per line; a header line is allowed). The
/// file replaces the court's list; a malformed line is reported by its number
/// (`fields`) and nothing of the file is applied. Numbers are matched through
/// the blind index and never stored.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/defaulters", tag = "credit",
    params(("id" = String, Path, description = "the court's organisation id")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = DefaulterReportDoc), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem, description = "Not a court, or a malformed line (nothing applied)")))]
async fn defaulters(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    body: String,
) -> ApiResult<Json<DefaulterReportDoc>> {
    let r = s.credit.upload_defaulters(&p, &id, &body).await?;
    Ok(Json(DefaulterReportDoc { lines: r.lines, listed: r.listed, lifted: r.lifted, unmatched: r.unmatched }))
}

#[derive(Serialize, ToSchema)]
pub struct OrgContestDoc {
    pub contest: ContestDoc,
    pub record: RecordDoc,
}

/// Staff: the open contests of our records (each read is in the person's access log).
#[utoipa::path(get, path = "/api/v1/orgs/{id}/credit/contests", tag = "credit",
    params(("id" = String, Path, description = "organisation id")),
    responses((status = 200, body = Vec<OrgContestDoc>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn org_contests(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<OrgContestDoc>>> {
    let list = s.credit.open_contests(&p, &id).await?;
    Ok(Json(
        list.into_iter()
            .map(|(c, r)| OrgContestDoc { contest: ContestDoc::from(c), record: RecordDoc::from(r) })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideReq {
    /// keep, correct or remove
    #[serde(default)]
    pub decision: String,
    /// For `correct`: on_time, late, overdue, kept or missed.
    pub outcome: Option<String>,
    /// For `correct` to late or overdue.
    pub days_late: Option<i64>,
}

pub fn decision_of(decision: &str, outcome: Option<&str>, days_late: Option<i64>) -> yizhan_core::Result<Decision> {
    match decision {
        "keep" => Ok(Decision::Keep),
        "remove" => Ok(Decision::Remove),
        "correct" => {
            let o = Outcome::parse(outcome.unwrap_or_default())?;
            Ok(Decision::Correct(o, days_late.unwrap_or(0)))
        }
        _ => Err(Error::field_msg("decision", Msg::new("credit.decision.invalid"))),
    }
}

/// Staff of the organisation that produced a contested record decide it; the score is recomputed and the person told.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/credit/contests/{record_id}", tag = "credit", request_body = DecideReq,
    params(("id" = String, Path, description = "organisation id"), ("record_id" = String, Path)),
    responses((status = 200, body = ContestDoc), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn decide(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    Path((id, record_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<DecideReq>,
) -> ApiResult<Json<ContestDoc>> {
    // Who may decide is checked before what they decided.
    s.identity.require_staff(&p, &id, yizhan_identity::Role::Operator).await?;
    let d = decision_of(req.decision.trim(), req.outcome.as_deref(), req.days_late)?;
    Ok(Json(ContestDoc::from(s.credit.decide(&p, &id, &record_id, d).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerkCheckReq {
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub perk: String,
}

#[derive(Serialize, ToSchema)]
pub struct PerkCheckDoc {
    /// Yes or no: the organisation never learns the score.
    pub granted: bool,
}

/// Staff ask whether a person has a perk: yes or no only, written to the person's access log.
#[utoipa::path(post, path = "/api/v1/orgs/{id}/credit/perk-checks", tag = "credit", request_body = PerkCheckReq,
    params(("id" = String, Path, description = "organisation id")),
    responses((status = 200, body = PerkCheckDoc), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn perk_check(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PerkCheckReq>,
) -> ApiResult<Json<PerkCheckDoc>> {
    let granted = s.credit.org_can(&p, &id, req.user_id.trim(), req.perk.trim()).await?;
    Ok(Json(PerkCheckDoc { granted }))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentsDoc {
    /// Use my verified address (when a source reports one).
    pub address: bool,
    /// Use my verified education (when a source reports one).
    pub education: bool,
}

/// The optional sources I consent to; each is used only with its own consent.
#[utoipa::path(get, path = "/api/v1/credit/consents", tag = "credit",
    responses((status = 200, body = ConsentsDoc), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn consents(State(s): State<CreditRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<ConsentsDoc>> {
    let c = s.credit.consents(&p.user_id).await?;
    Ok(Json(ConsentsDoc { address: c.address, education: c.education }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentsReq {
    pub address: Option<bool>,
    pub education: Option<bool>,
}

/// Grant or withdraw consent for an optional source; the score is recomputed with or without it.
#[utoipa::path(post, path = "/api/v1/credit/consents", tag = "credit", request_body = ConsentsReq,
    responses((status = 200, body = ConsentsDoc), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn set_consents(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<ConsentsReq>,
) -> ApiResult<Json<ConsentsDoc>> {
    if let Some(v) = req.address {
        s.credit.set_consent(&p.user_id, yizhan_credit::Kind::Address, v).await?;
    }
    if let Some(v) = req.education {
        s.credit.set_consent(&p.user_id, yizhan_credit::Kind::Education, v).await?;
    }
    let c = s.credit.consents(&p.user_id).await?;
    Ok(Json(ConsentsDoc { address: c.address, education: c.education }))
}

#[derive(Serialize, ToSchema)]
pub struct StatementDoc {
    pub id: String,
    /// The China month it closes ("2026-11").
    pub period: String,
    /// Yuan, two decimals.
    pub amount: String,
    pub amount_fen: i64,
    pub due_at: i64,
    /// open or paid
    pub status: String,
    pub paid_at: Option<i64>,
    pub days_late: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PayLaterDoc {
    /// My score reaches the pay-later perk now.
    pub has_perk: bool,
    pub min_score: i64,
    /// The limit my band allows now (fen).
    pub band_limit_fen: i64,
    /// I switched the line on.
    pub on: bool,
    /// The wallet's limit now: my band's, never below what I use (fen).
    pub limit_fen: i64,
    pub owed_fen: i64,
    pub available_credit_fen: i64,
    /// Newest first.
    pub statements: Vec<StatementDoc>,
}

fn pay_later_doc(v: yizhan_credit::PayLaterView) -> PayLaterDoc {
    PayLaterDoc {
        has_perk: v.has_perk,
        min_score: v.min_score,
        band_limit_fen: v.band_limit_fen,
        on: v.on,
        limit_fen: v.line.ledger_limit_fen,
        owed_fen: v.line.owed_fen,
        available_credit_fen: v.line.available_credit_fen,
        statements: v
            .line
            .statements
            .into_iter()
            .map(|s| StatementDoc {
                amount: yizhan_core::money::yuan(s.amount_fen),
                id: s.id,
                period: s.period,
                amount_fen: s.amount_fen,
                due_at: s.due_at_ms,
                status: s.status,
                paid_at: s.paid_at_ms,
                days_late: s.days_late,
            })
            .collect(),
    }
}

/// My pay-later line: the limit my band allows, what I owe, my monthly statements.
#[utoipa::path(get, path = "/api/v1/credit/pay-later", tag = "credit",
    responses((status = 200, body = PayLaterDoc), (status = 401, body = Problem), (status = 409, body = Problem)))]
async fn pay_later(State(s): State<CreditRoom>, ApiUser(p): ApiUser) -> ApiResult<Json<PayLaterDoc>> {
    Ok(Json(pay_later_doc(s.credit.pay_later(&p.user_id).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchReq {
    pub on: bool,
}

/// Switch my pay-later line on (with the perk) or off (no new spending on credit; what I owe stays owed).
#[utoipa::path(post, path = "/api/v1/credit/pay-later", tag = "credit", request_body = SwitchReq,
    responses((status = 200, body = PayLaterDoc), (status = 401, body = Problem),
        (status = 409, body = Problem, description = "Not opted in, or the score does not reach the perk"),
        (status = 422, body = Problem)))]
async fn switch_pay_later(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    ApiJson(req): ApiJson<SwitchReq>,
) -> ApiResult<Json<PayLaterDoc>> {
    Ok(Json(pay_later_doc(s.credit.switch_pay_later(&p.user_id, req.on).await?)))
}

/// Repay a statement from my card (once: a retry pays nothing more).
#[utoipa::path(post, path = "/api/v1/credit/pay-later/statements/{statement_id}/repay", tag = "credit",
    params(("statement_id" = String, Path)),
    responses((status = 200, body = PayLaterDoc), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn repay_pay_later(
    State(s): State<CreditRoom>,
    ApiUser(p): ApiUser,
    Path(statement_id): Path<String>,
) -> ApiResult<Json<PayLaterDoc>> {
    Ok(Json(pay_later_doc(s.credit.repay_pay_later(&p.user_id, &statement_id).await?)))
}
