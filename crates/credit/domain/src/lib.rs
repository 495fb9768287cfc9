//! The credit score: a person opts in; their records (from other rooms, through
//! [`Credit::record_event`]) and their verification level (from the identity
//! room) are the inputs of a published scorecard ([`model`]); every score is
//! stored with its inputs and the model's hash, explained by its factor groups
//! and reasons, and recomputed whenever a record changes. Records can be
//! contested (frozen while the producing organisation reviews), courts list
//! judgement defaulters, and other rooms ask for perks, learning yes or no.
//! Opting out deletes the score, its history and the records.

pub mod model;
pub mod paylater;
pub mod rollout;

pub use model::{Inputs, Model, Plan, Reason, Scored, Step, DEFAULTER_INPUT, INPUTS, MODEL_V1};
pub use paylater::{PayLaterState, PayLaterStatement, PayLaterView, PayLaterWallet};
pub use rollout::{BandShift, Comparison, StagedScore, StoredModel};

use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, RwLock};
use yizhan_audit::{Audit, NewAccess};
use yizhan_core::{Ctx, Error, FieldError, MigrationSet, Msg, Result};
use yizhan_identity::{Identity, OrgKind, Principal, Role};
use yizhan_notify::{Message, Notify, Target};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "credit",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_credit.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_paylater_models.sql")),
        ("0003", include_str!("../migrations/sqlite/0003_counted.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_credit.sql")),
        ("0002", include_str!("../migrations/postgres/0002_paylater_models.sql")),
        ("0003", include_str!("../migrations/postgres/0003_counted.sql")),
    ],
};

pub mod codes {
    use yizhan_core::{Class, Code};
    /// The person has not opted in to the credit score.
    pub const NOT_OPTED_IN: Code = Code::new("credit_not_opted_in", Class::Conflict);
    /// The record is already contested, or has no organisation to review it.
    pub const NOT_CONTESTABLE: Code = Code::new("credit_not_contestable", Class::Conflict);
    /// The contest was already decided.
    pub const CONTEST_DECIDED: Code = Code::new("credit_contest_decided", Class::Conflict);
    /// Only a court lists judgement defaulters.
    pub const NOT_A_COURT: Code = Code::new("credit_not_a_court", Class::Invalid);
    /// A defaulter file with a malformed line (nothing of it was applied).
    pub const DEFAULTER_FILE: Code = Code::new("credit_defaulter_file", Class::Invalid);
    /// The score does not reach the pay-later perk, or no wallet is wired.
    pub const NO_PAY_LATER: Code = Code::new("credit_no_pay_later", Class::Conflict);
    /// A model file that does not load (it names the first problem).
    pub const MODEL_INVALID: Code = Code::new("credit_model_invalid", Class::Invalid);
    pub const ALL: &[Code] =
        &[NOT_OPTED_IN, NOT_CONTESTABLE, CONTEST_DECIDED, NOT_A_COURT, DEFAULTER_FILE, NO_PAY_LATER, MODEL_INVALID];
}

pub(crate) const DAY_MS: i64 = 86_400_000;
const MONTH_MS: i64 = 30 * DAY_MS;
const YEAR_MS: i64 = 365 * DAY_MS;
pub const MAX_RECORDS: i64 = 1000;
pub const MAX_HISTORY: i64 = 366;
pub const MAX_CONTESTS_LIST: i64 = 200;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_REF_CHARS: usize = 200;
pub const MAX_DEFAULTER_LINES: usize = 100_000;
/// People per page of `recompute_all` (one write transaction each).
const RECOMPUTE_PAGE: i64 = 5000;
/// Pages of `recompute_all` counted at once (each on its own connection).
const RECOMPUTE_READERS: usize = 3;
/// Pages of `recompute_all` between WAL checkpoints (SQLite).
const RECOMPUTE_CHECKPOINT_PAGES: usize = 12;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bill,
    Fine,
    PayLater,
    Deposit,
    Booking,
    Address,
    Education,
}

impl Kind {
    pub const ALL: &'static [Kind] =
        &[Kind::Bill, Kind::Fine, Kind::PayLater, Kind::Deposit, Kind::Booking, Kind::Address, Kind::Education];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bill => "bill",
            Kind::Fine => "fine",
            Kind::PayLater => "pay_later",
            Kind::Deposit => "deposit",
            Kind::Booking => "booking",
            Kind::Address => "address",
            Kind::Education => "education",
        }
    }

    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| Error::field("kind", "credit.kind.invalid"))
    }

    /// The model inputs a counted record of this kind can move (as
    /// [`Tally::of`] counts them): its own counts, and the activity and
    /// tenure every record moves. What the pages list as "the records behind"
    /// a factor group.
    pub fn feeds(self) -> &'static [&'static str] {
        match self {
            Kind::Bill | Kind::Fine => {
                &["late_30_12m", "late_any_12m", "on_time_24m", "active_months_12m", "tenure_months"]
            }
            Kind::PayLater => &[
                "late_30_12m",
                "late_any_12m",
                "on_time_24m",
                "paylater_overdue_12m",
                "active_months_12m",
                "tenure_months",
            ],
            Kind::Deposit | Kind::Booking => &["missed_12m", "kept_24m", "active_months_12m", "tenure_months"],
            Kind::Address => &["address_verified", "active_months_12m", "tenure_months"],
            Kind::Education => &["education_verified", "active_months_12m", "tenure_months"],
        }
    }

    /// The outcomes a record of this kind may have, worst first.
    pub fn outcomes(self) -> &'static [Outcome] {
        match self {
            Kind::Bill | Kind::Fine | Kind::PayLater => &[Outcome::Overdue, Outcome::Late, Outcome::OnTime],
            Kind::Deposit | Kind::Booking => &[Outcome::Missed, Outcome::Kept],
            Kind::Address | Kind::Education => &[Outcome::Verified],
        }
    }
}

/// How it went. Paid late and overdue carry the days late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Paid or repaid by the due time.
    OnTime,
    /// Paid or repaid after the due time.
    Late,
    /// Not paid, past the due time.
    Overdue,
    /// A booking kept, a deposit returned.
    Kept,
    /// A booking missed (no-show), a deposit forfeited.
    Missed,
    /// An optional source confirmed (address, education).
    Verified,
}

impl Outcome {
    pub const ALL: &'static [Outcome] =
        &[Outcome::OnTime, Outcome::Late, Outcome::Overdue, Outcome::Kept, Outcome::Missed, Outcome::Verified];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::OnTime => "on_time",
            Outcome::Late => "late",
            Outcome::Overdue => "overdue",
            Outcome::Kept => "kept",
            Outcome::Missed => "missed",
            Outcome::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Result<Outcome> {
        Outcome::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::field("outcome", "credit.outcome.invalid"))
    }
}

/// A record another room (or an organisation) reports about a person.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub user_id: String,
    pub kind: Kind,
    pub outcome: Outcome,
    /// For `Late` and `Overdue`: whole days past the due time (at least 1).
    pub days_late: i64,
    pub occurred_at_ms: i64,
    /// Who reports it: a room's name ("wallet") or "org".
    pub source: String,
    /// The organisation that produced it (it reviews a contest).
    pub source_org_id: Option<String>,
    /// The source's own reference: a second report with the same one replaces the first.
    pub source_ref: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub id: String,
    pub kind: String,
    pub outcome: String,
    pub days_late: i64,
    pub occurred_at_ms: i64,
    pub source: String,
    pub source_org_id: Option<String>,
    pub source_org_name: Option<String>,
    pub source_ref: String,
    /// active, contested or removed
    pub status: String,
    /// Every contest of it, oldest first: the steps the person sees.
    pub contests: Vec<Contest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Contest {
    pub id: String,
    pub record_id: String,
    pub user_id: String,
    pub org_id: String,
    pub reason: String,
    /// open, kept, corrected or removed
    pub status: String,
    pub opened_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    pub decided_by_label: Option<String>,
}

/// What staff decide about a contested record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The record stands as it was.
    Keep,
    /// The record is corrected to this outcome (and days late).
    Correct(Outcome, i64),
    /// The record is removed.
    Remove,
}

/// A stored score, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreView {
    pub score: i64,
    pub band: String,
    pub model_version: String,
    pub model_hash: String,
    pub computed_at_ms: i64,
    pub inputs: Inputs,
    pub explained: Scored,
    /// The court listings the person is on (court name and case number).
    pub listings: Vec<Listing>,
    /// During a staged rollout: what the staged model would give (it does not count yet).
    pub staged: Option<StagedScore>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HistoryPoint {
    pub score: i64,
    pub band: String,
    pub model_version: String,
    pub model_hash: String,
    pub cause: String,
    pub computed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    pub org_id: String,
    pub court_name: String,
    pub case_ref: String,
    pub listed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PerkView {
    pub key: String,
    pub min_score: i64,
    pub also_needs: Option<String>,
    pub has: bool,
}

/// The answer to a perk check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Answer {
    Granted,
    Refused { reason: Msg },
}

impl Answer {
    pub fn granted(&self) -> bool {
        matches!(self, Answer::Granted)
    }
}

/// Who asks about a perk: a person's own app, or an organisation's staff.
#[derive(Debug, Clone)]
pub struct Asker {
    pub user_id: String,
    pub label: String,
    pub org_id: Option<String>,
    pub org_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptedOut {
    /// The perks the person had and no longer has.
    pub perks_ended: Vec<String>,
    pub scores_deleted: u64,
    pub records_deleted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaulterReport {
    pub lines: i64,
    /// Rows matched to a verified account and now listed.
    pub listed: i64,
    /// Listings of this court not in the file, now lifted.
    pub lifted: i64,
    /// Rows whose number is no verified account here.
    pub unmatched: i64,
}

/// The steps to the next band and to the next perk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Improve {
    pub score: i64,
    pub next_band: Option<Plan>,
    pub next_perk: Option<Plan>,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: String,
    kind: String,
    outcome: String,
    days_late: i64,
    occurred_at_ms: i64,
    source: String,
    source_org_id: Option<String>,
    source_ref: String,
    status: String,
}

#[derive(sqlx::FromRow)]
struct ScoreRow {
    score: i64,
    band: String,
    model_version: String,
    model_hash: String,
    inputs: String,
    computed_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct PersonRow {
    address_consent: i64,
    education_consent: i64,
    pay_later_on: i64,
}

/// The optional sources a person consents to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Consents {
    pub address: bool,
    pub education: bool,
}

/// What the inputs are computed from, per record (counted ones only).
#[derive(Debug, Clone)]
pub struct Counted {
    pub kind: Kind,
    pub outcome: Outcome,
    pub days_late: i64,
    pub occurred_at_ms: i64,
}

/// A person's counted records as one text (`credit_people.counted`): each
/// record `{kind}{outcome}{days_late}:{occurred_at_ms}` with kind and
/// outcome as their place in [`Kind::ALL`] and [`Outcome::ALL`], separated
/// by spaces, newest first. Only digits, `:` and spaces.
pub fn encode_counted(records: &[Counted]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(records.len() * 20);
    for (i, r) in records.iter().enumerate() {
        let k = Kind::ALL.iter().position(|k| *k == r.kind).unwrap_or(0);
        let o = Outcome::ALL.iter().position(|o| *o == r.outcome).unwrap_or(0);
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{k}{o}{}:{}", r.days_late, r.occurred_at_ms);
    }
    out
}

/// [`encode_counted`] read back; `None` for a text it did not write.
pub fn decode_counted(text: &str) -> Option<Vec<Counted>> {
    text.split_ascii_whitespace()
        .map(|r| {
            let b = r.as_bytes();
            let kind = *Kind::ALL.get(usize::from(b.first()?.checked_sub(b'0')?))?;
            let outcome = *Outcome::ALL.get(usize::from(b.get(1)?.checked_sub(b'0')?))?;
            let (days, at) = r.get(2..)?.split_once(':')?;
            Some(Counted { kind, outcome, days_late: days.parse().ok()?, occurred_at_ms: at.parse().ok()? })
        })
        .collect()
}

/// The counted records of a person, as the score counts them (active,
/// newest first, at most [`MAX_RECORDS`]), read in `tx`.
async fn counted_in(conn: &mut sqlx::AnyConnection, user_id: &str) -> Result<Vec<Counted>> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT kind, outcome, days_late, occurred_at_ms FROM credit_records
         WHERE user_id = $1 AND status = 'active' ORDER BY occurred_at_ms DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(MAX_RECORDS)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(k, o, days_late, occurred_at_ms)| {
            Ok(Counted { kind: Kind::parse(&k)?, outcome: Outcome::parse(&o)?, days_late, occurred_at_ms })
        })
        .collect()
}

/// Rebuild the person's [`encode_counted`] text after a change to their
/// records, in the change's transaction. The person's row is locked first
/// (on PostgreSQL), so two changes at once each count the other's record.
async fn refresh_counted(tx: &mut yizhan_core::Tx, user_id: &str) -> Result<()> {
    let locked = sqlx::query("UPDATE credit_people SET counted = counted WHERE user_id = $1")
        .bind(user_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if locked == 0 {
        return Ok(());
    }
    let text = encode_counted(&counted_in(tx.conn(), user_id).await?);
    sqlx::query("UPDATE credit_people SET counted = $2 WHERE user_id = $1")
        .bind(user_id)
        .bind(text)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// What the inputs count from a person's records, as of a moment (the
/// single recompute reads the records, the batch their counted text).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub late_30: i64,
    pub late_any: i64,
    pub on_time: i64,
    pub missed: i64,
    pub kept: i64,
    pub pay_later_overdue: i64,
    /// Distinct 30-day months with a record in the last 12.
    pub active_months: i64,
    /// The oldest record's time (records in the future are not counted).
    pub first_ms: Option<i64>,
    pub address: bool,
    pub education: bool,
}

impl Tally {
    pub fn of(records: &[Counted], now_ms: i64) -> Tally {
        let mut t = Tally::default();
        let mut months = BTreeSet::new();
        for r in records {
            let age = now_ms - r.occurred_at_ms;
            if age < 0 {
                continue;
            }
            let in_12m = age < YEAR_MS;
            let in_24m = age < 2 * YEAR_MS;
            t.first_ms = Some(t.first_ms.map_or(r.occurred_at_ms, |f: i64| f.min(r.occurred_at_ms)));
            if in_12m {
                months.insert(age / MONTH_MS);
            }
            match (r.kind, r.outcome) {
                (Kind::Bill | Kind::Fine | Kind::PayLater, Outcome::OnTime) if in_24m => t.on_time += 1,
                (Kind::Bill | Kind::Fine | Kind::PayLater, Outcome::Late | Outcome::Overdue) if in_12m => {
                    t.late_any += 1;
                    if r.days_late > 30 {
                        t.late_30 += 1;
                    }
                    if r.kind == Kind::PayLater && r.outcome == Outcome::Overdue {
                        t.pay_later_overdue += 1;
                    }
                }
                (Kind::Deposit | Kind::Booking, Outcome::Kept) if in_24m => t.kept += 1,
                (Kind::Deposit | Kind::Booking, Outcome::Missed) if in_12m => t.missed += 1,
                (Kind::Address, Outcome::Verified) => t.address = true,
                (Kind::Education, Outcome::Verified) => t.education = true,
                _ => {}
            }
        }
        t.active_months = months.len() as i64;
        t
    }

    /// The model's inputs: an optional source counts only with its consent.
    pub fn inputs(
        &self,
        verification_level: i64,
        address_consent: bool,
        education_consent: bool,
        listed: bool,
        now_ms: i64,
    ) -> Inputs {
        let tenure = self.first_ms.map_or(0, |f| (now_ms - f) / MONTH_MS);
        let mut i = Inputs::new();
        for (k, v) in [
            ("late_30_12m", self.late_30),
            ("late_any_12m", self.late_any),
            ("on_time_24m", self.on_time),
            ("missed_12m", self.missed),
            ("kept_24m", self.kept),
            ("paylater_overdue_12m", self.pay_later_overdue),
            ("active_months_12m", self.active_months),
            ("tenure_months", tenure),
            ("verification_level", verification_level),
            ("address_verified", i64::from(self.address && address_consent)),
            ("education_verified", i64::from(self.education && education_consent)),
            // Connections: no room reports contacts, and no one else's data is
            // ever used: everyone gets the model's first (neutral) bin.
            ("contacts_good", 0),
            (DEFAULTER_INPUT, i64::from(listed)),
        ] {
            i.insert(k.to_string(), v);
        }
        i
    }
}

/// The model's inputs from a person's counted records, their verification
/// level, consents and listing, as of `now_ms`. Pure, so the benchmark and
/// the tests use it as the service does.
pub fn inputs_of(
    records: &[Counted],
    verification_level: i64,
    address_consent: bool,
    education_consent: bool,
    listed: bool,
    now_ms: i64,
) -> Inputs {
    Tally::of(records, now_ms).inputs(verification_level, address_consent, education_consent, listed, now_ms)
}

#[derive(Clone)]
pub struct Credit {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Ctx,
    identity: Identity,
    audit: Audit,
    notify: Notify,
    /// The model that scores now (the build's, until an operator activates another).
    model: RwLock<Arc<Model>>,
    /// The model staged for a rollout: shown beside the score, counting for nothing.
    staged: RwLock<Option<Arc<Model>>>,
    /// Every model a stored score may name, by hash.
    models: RwLock<HashMap<String, Arc<Model>>>,
    /// The build's own model.
    builtin: Arc<Model>,
    /// The wallet side of the pay-later line (wired by the app).
    pay_later: OnceLock<Arc<dyn PayLaterWallet>>,
}

fn not_opted_in() -> Error {
    Error::new(codes::NOT_OPTED_IN, "credit.not_opted_in")
}

impl Credit {
    /// The service with the published model, loaded and checked now.
    pub fn new(ctx: Ctx, identity: Identity, audit: Audit, notify: Notify) -> Result<Credit> {
        let model = Arc::new(Model::v1()?);
        let mut models = HashMap::new();
        models.insert(model.hash.clone(), model.clone());
        Ok(Credit {
            inner: Arc::new(Inner {
                ctx,
                identity,
                audit,
                notify,
                model: RwLock::new(model.clone()),
                staged: RwLock::new(None),
                models: RwLock::new(models),
                builtin: model,
                pay_later: OnceLock::new(),
            }),
        })
    }

    /// The model that scores now.
    pub fn model(&self) -> Arc<Model> {
        self.inner.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The model a stored score names by its hash.
    pub fn model_by_hash(&self, hash: &str) -> Option<Arc<Model>> {
        self.inner.models.read().unwrap_or_else(|e| e.into_inner()).get(hash).cloned()
    }

    fn ctx(&self) -> &Ctx {
        &self.inner.ctx
    }

    async fn person(&self, user_id: &str) -> Result<Option<PersonRow>> {
        Ok(sqlx::query_as(
            "SELECT address_consent, education_consent, pay_later_on FROM credit_people WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.ctx().db.pool)
        .await?)
    }

    pub async fn is_opted_in(&self, user_id: &str) -> Result<bool> {
        Ok(self.person(user_id).await?.is_some())
    }

    /// Opt in: the first score is computed now (600 with no record).
    pub async fn opt_in(&self, user_id: &str) -> Result<ScoreView> {
        self.inner.identity.profile(user_id).await?;
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO credit_people (user_id, opted_in_at_ms, counted) VALUES ($1, $2, '')
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(self.ctx().now_ms())
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.recompute_with_cause(user_id, "opt_in").await?;
        self.score(user_id).await
    }

    /// Opt out: the score, its history, the records, the contests and the
    /// consents are deleted; the perks the person had are named.
    pub async fn opt_out(&self, user_id: &str) -> Result<OptedOut> {
        let had: Vec<String> = match self.latest(user_id).await? {
            Some(s) => self.model().perks.iter().filter(|p| s.score >= p.from).map(|p| p.key.clone()).collect(),
            None => Vec::new(),
        };
        let had_line = self.person(user_id).await?.is_some_and(|p| p.pay_later_on != 0);
        let mut tx = self.ctx().db.begin().await?;
        let scores = sqlx::query("DELETE FROM credit_scores WHERE user_id = $1")
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        let records = sqlx::query("DELETE FROM credit_records WHERE user_id = $1")
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM credit_contests WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        let was = sqlx::query("DELETE FROM credit_people WHERE user_id = $1")
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        if had_line {
            // No new spending on credit; what is owed stays owed (and billed).
            if let Some(w) = self.inner.pay_later.get() {
                w.set_line(user_id, None).await?;
            }
        }
        if was > 0 {
            self.tell(
                user_id,
                Msg::new("credit.notice.opted_out.title"),
                Msg::new("credit.notice.opted_out.body").int("count", had.len() as i64),
                None,
            )
            .await;
        }
        Ok(OptedOut { perks_ended: had, scores_deleted: scores, records_deleted: records })
    }

    /// Account deletion: everything of opt-out, and the court listings too.
    pub async fn erase(&self, user_id: &str) -> Result<u64> {
        let out = self.opt_out(user_id).await?;
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("DELETE FROM credit_defaulters WHERE user_id = $1")
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(out.scores_deleted + out.records_deleted + n)
    }

    /// Everything the credit room holds about a person.
    pub async fn export(&self, user_id: &str) -> Result<serde_json::Value> {
        let opted_in = self.is_opted_in(user_id).await?;
        let history = if opted_in { self.history(user_id).await? } else { Vec::new() };
        let records = if opted_in { self.records(user_id).await? } else { Vec::new() };
        let listings = self.listings(user_id).await?;
        Ok(serde_json::json!({
            "opted_in": opted_in,
            "history": history,
            "records": records,
            "court_listings": listings,
        }))
    }

    /// The optional sources the person consents to.
    pub async fn consents(&self, user_id: &str) -> Result<Consents> {
        let p = self.person(user_id).await?.ok_or_else(not_opted_in)?;
        Ok(Consents { address: p.address_consent != 0, education: p.education_consent != 0 })
    }

    /// Use an optional source (address, education) or stop using it.
    pub async fn set_consent(&self, user_id: &str, source: Kind, consent: bool) -> Result<ScoreView> {
        let column = match source {
            Kind::Address => "address_consent",
            Kind::Education => "education_consent",
            _ => return Err(Error::field("source", "credit.consent.source_invalid")),
        };
        if !self.is_opted_in(user_id).await? {
            return Err(not_opted_in());
        }
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(&format!("UPDATE credit_people SET {column} = $1 WHERE user_id = $2"))
            .bind(i64::from(consent))
            .bind(user_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.recompute_with_cause(user_id, "consent").await?;
        self.score(user_id).await
    }

    /// A record from another room or an organisation. Nothing is kept for a
    /// person who has not opted in (answers `None`); otherwise the record is
    /// stored (replacing one with the same source reference, unless that one
    /// is contested or removed) and the score recomputed before this returns.
    pub async fn record_event(&self, r: NewRecord) -> Result<Option<String>> {
        if !r.kind.outcomes().contains(&r.outcome) {
            return Err(Error::field("outcome", "credit.outcome.invalid"));
        }
        let days_late = match r.outcome {
            Outcome::Late | Outcome::Overdue => r.days_late.max(1),
            _ => 0,
        };
        let source_ref = r.source_ref.trim();
        if source_ref.is_empty() || source_ref.chars().count() > MAX_REF_CHARS || r.source.trim().is_empty() {
            return Err(Error::field("source_ref", "credit.record.ref_invalid"));
        }
        let now = self.ctx().now_ms();
        if r.occurred_at_ms > now {
            return Err(Error::field("occurred_at_ms", "credit.record.in_future"));
        }
        if !self.is_opted_in(&r.user_id).await? {
            return Ok(None);
        }
        let id = self.ctx().new_id();
        let mut tx = self.ctx().db.begin().await?;
        let stored: (String,) = sqlx::query_as(
            "INSERT INTO credit_records (id, user_id, kind, outcome, days_late, occurred_at_ms, source, source_org_id,
                 source_ref, status, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $10)
             ON CONFLICT (user_id, source, source_ref) DO UPDATE SET
                 outcome = CASE WHEN credit_records.status = 'active' THEN excluded.outcome ELSE credit_records.outcome END,
                 days_late = CASE WHEN credit_records.status = 'active' THEN excluded.days_late ELSE credit_records.days_late END,
                 occurred_at_ms = CASE WHEN credit_records.status = 'active' THEN excluded.occurred_at_ms ELSE credit_records.occurred_at_ms END,
                 updated_at_ms = excluded.updated_at_ms
             RETURNING id",
        )
        .bind(&id)
        .bind(&r.user_id)
        .bind(r.kind.as_str())
        .bind(r.outcome.as_str())
        .bind(days_late)
        .bind(r.occurred_at_ms)
        .bind(r.source.trim())
        .bind(&r.source_org_id)
        .bind(source_ref)
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
        refresh_counted(&mut tx, &r.user_id).await?;
        tx.commit().await?;
        self.recompute_with_cause(&r.user_id, "record").await?;
        Ok(Some(stored.0))
    }

    async fn counted(&self, user_id: &str) -> Result<Vec<Counted>> {
        let rows: Vec<RecordRow> = sqlx::query_as(
            "SELECT id, kind, outcome, days_late, occurred_at_ms, source, source_org_id, source_ref, status
             FROM credit_records WHERE user_id = $1 AND status = 'active' ORDER BY occurred_at_ms DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(MAX_RECORDS)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Counted {
                    kind: Kind::parse(&r.kind)?,
                    outcome: Outcome::parse(&r.outcome)?,
                    days_late: r.days_late,
                    occurred_at_ms: r.occurred_at_ms,
                })
            })
            .collect()
    }

    async fn is_listed(&self, user_id: &str) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM credit_defaulters WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.ctx().db.pool)
            .await?;
        Ok(n > 0)
    }

    /// The inputs as of now, or `None` for a person who has not opted in.
    pub async fn current_inputs(&self, user_id: &str) -> Result<Option<Inputs>> {
        let Some(p) = self.person(user_id).await? else { return Ok(None) };
        let records = self.counted(user_id).await?;
        let level = self.inner.identity.profile(user_id).await.map(|p| p.verification_level).unwrap_or(0);
        let listed = self.is_listed(user_id).await?;
        Ok(Some(inputs_of(
            &records,
            level,
            p.address_consent != 0,
            p.education_consent != 0,
            listed,
            self.ctx().now_ms(),
        )))
    }

    async fn latest(&self, user_id: &str) -> Result<Option<ScoreRow>> {
        Ok(sqlx::query_as(
            "SELECT score, band, model_version, model_hash, inputs, computed_at_ms FROM credit_scores
             WHERE user_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(&self.ctx().db.pool)
        .await?)
    }

    /// Compute the score now and store it when its inputs or model changed.
    /// `None` for a person who has not opted in.
    pub async fn recompute(&self, user_id: &str) -> Result<Option<i64>> {
        self.recompute_with_cause(user_id, "recompute").await
    }

    async fn recompute_with_cause(&self, user_id: &str, cause: &str) -> Result<Option<i64>> {
        let Some(inputs) = self.current_inputs(user_id).await? else { return Ok(None) };
        let model = self.model();
        let scored = model.score(&inputs);
        let json = serde_json::to_string(&inputs).map_err(Error::internal)?;
        if let Some(last) = self.latest(user_id).await? {
            if last.inputs == json && last.model_hash == model.hash {
                return Ok(Some(last.score));
            }
        }
        let mut tx = self.ctx().db.begin().await?;
        let (seq,): (i64,) =
            sqlx::query_as("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM credit_scores WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(tx.conn())
                .await?;
        let inserted = sqlx::query(
            "INSERT INTO credit_scores (id, user_id, seq, score, band, model_version, model_hash, inputs, cause,
                 computed_at_ms)
             VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.ctx().new_id())
        .bind(user_id)
        .bind(scored.score)
        .bind(&scored.band)
        .bind(&model.version)
        .bind(&model.hash)
        .bind(&json)
        .bind(cause)
        .bind(self.ctx().now_ms())
        .bind(seq)
        .execute(tx.conn())
        .await;
        match inserted {
            Ok(_) => tx.commit().await?,
            // A recomputation at the same moment stored the same inputs' score first.
            Err(e) if yizhan_core::error::is_unique_violation(&e) => drop(tx),
            Err(e) => return Err(e.into()),
        }
        self.sync_pay_later(user_id, scored.score).await?;
        Ok(Some(scored.score))
    }

    /// The person's score, brought up to date (a changed verification level
    /// or a record leaving its window stores a new score), and explained from
    /// the stored inputs with the model its hash names.
    pub async fn score(&self, user_id: &str) -> Result<ScoreView> {
        if self.recompute_with_cause(user_id, "refresh").await?.is_none() {
            return Err(not_opted_in());
        }
        let row = self.latest(user_id).await?.ok_or_else(not_opted_in)?;
        let inputs: Inputs = serde_json::from_str(&row.inputs).map_err(Error::internal)?;
        let model = self
            .model_by_hash(&row.model_hash)
            .ok_or_else(|| Error::internal(anyhow::anyhow!("no credit model with the stored hash")))?;
        let explained = model.score(&inputs);
        Ok(ScoreView {
            score: row.score,
            band: row.band,
            model_version: row.model_version,
            model_hash: row.model_hash,
            computed_at_ms: row.computed_at_ms,
            staged: self.staged_score(&inputs),
            inputs,
            explained,
            listings: self.listings(user_id).await?,
        })
    }

    /// Every stored score, oldest first (at most [`MAX_HISTORY`], the newest).
    pub async fn history(&self, user_id: &str) -> Result<Vec<HistoryPoint>> {
        if !self.is_opted_in(user_id).await? {
            return Err(not_opted_in());
        }
        let mut rows: Vec<HistoryPoint> = sqlx::query_as(
            "SELECT score, band, model_version, model_hash, cause, computed_at_ms FROM credit_scores
             WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(MAX_HISTORY)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Recompute every stored score of the person from its stored inputs and
    /// model: (stored, recomputed) pairs, which must be equal.
    pub async fn verify_history(&self, user_id: &str) -> Result<Vec<(i64, i64)>> {
        let rows: Vec<ScoreRow> = sqlx::query_as(
            "SELECT score, band, model_version, model_hash, inputs, computed_at_ms FROM credit_scores
             WHERE user_id = $1 ORDER BY seq",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let inputs: Inputs = serde_json::from_str(&r.inputs).map_err(Error::internal)?;
            let again = self.model_by_hash(&r.model_hash).map(|m| m.score(&inputs).score).unwrap_or(-1);
            out.push((r.score, again));
        }
        Ok(out)
    }

    /// The person's records, newest first, each with its contests.
    pub async fn records(&self, user_id: &str) -> Result<Vec<Record>> {
        if !self.is_opted_in(user_id).await? {
            return Err(not_opted_in());
        }
        let rows: Vec<RecordRow> = sqlx::query_as(
            "SELECT id, kind, outcome, days_late, occurred_at_ms, source, source_org_id, source_ref, status
             FROM credit_records WHERE user_id = $1 ORDER BY occurred_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(MAX_RECORDS)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let contests: Vec<Contest> = sqlx::query_as(
            "SELECT id, record_id, user_id, org_id, reason, status, opened_at_ms, decided_at_ms, decided_by_label
             FROM credit_contests WHERE user_id = $1 ORDER BY opened_at_ms, id LIMIT $2",
        )
        .bind(user_id)
        .bind(MAX_RECORDS)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let mut names: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        for r in rows {
            let source_org_name = match &r.source_org_id {
                Some(o) => {
                    if !names.contains_key(o) {
                        let n = self.inner.identity.org(o).await.map(|o| o.name).unwrap_or_default();
                        names.insert(o.clone(), n);
                    }
                    names.get(o).cloned()
                }
                None => None,
            };
            out.push(Record {
                contests: contests.iter().filter(|c| c.record_id == r.id).cloned().collect(),
                id: r.id,
                kind: r.kind,
                outcome: r.outcome,
                days_late: r.days_late,
                occurred_at_ms: r.occurred_at_ms,
                source: r.source,
                source_org_id: r.source_org_id,
                source_org_name,
                source_ref: r.source_ref,
                status: r.status,
            });
        }
        Ok(out)
    }

    async fn record_row(&self, user_id: &str, record_id: &str) -> Result<RecordRow> {
        sqlx::query_as(
            "SELECT id, kind, outcome, days_late, occurred_at_ms, source, source_org_id, source_ref, status
             FROM credit_records WHERE id = $1 AND user_id = $2",
        )
        .bind(record_id)
        .bind(user_id)
        .fetch_optional(&self.ctx().db.pool)
        .await?
        .ok_or_else(|| Error::not_found("credit_record"))
    }

    /// The person contests one of their records: it stops counting at once
    /// (the score is recomputed) while the organisation that produced it reviews it.
    pub async fn contest(&self, user_id: &str, record_id: &str, reason: &str) -> Result<Contest> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::field_msg(
                "reason",
                Msg::new("credit.contest.reason_len").int("max", MAX_REASON_CHARS as i64),
            ));
        }
        if !self.is_opted_in(user_id).await? {
            return Err(not_opted_in());
        }
        let r = self.record_row(user_id, record_id).await?;
        let Some(org_id) = r.source_org_id.clone() else {
            return Err(Error::new(codes::NOT_CONTESTABLE, "credit.contest.no_org"));
        };
        let id = self.ctx().new_id();
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query(
            "UPDATE credit_records SET status = 'contested', updated_at_ms = $1 WHERE id = $2 AND status = 'active'",
        )
        .bind(now)
        .bind(&r.id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::new(codes::NOT_CONTESTABLE, "credit.contest.not_active"));
        }
        sqlx::query(
            "INSERT INTO credit_contests (id, record_id, user_id, org_id, reason, status, opened_at_ms)
             VALUES ($1, $2, $3, $4, $5, 'open', $6)",
        )
        .bind(&id)
        .bind(&r.id)
        .bind(user_id)
        .bind(&org_id)
        .bind(reason)
        .bind(now)
        .execute(tx.conn())
        .await?;
        refresh_counted(&mut tx, user_id).await?;
        tx.commit().await?;
        self.recompute_with_cause(user_id, "contest").await?;
        self.contest_by_id(&id).await
    }

    async fn contest_by_id(&self, id: &str) -> Result<Contest> {
        sqlx::query_as(
            "SELECT id, record_id, user_id, org_id, reason, status, opened_at_ms, decided_at_ms, decided_by_label
             FROM credit_contests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.ctx().db.pool)
        .await?
        .ok_or_else(|| Error::not_found("credit_contest"))
    }

    /// The open contests of an organisation's records, for its staff, with
    /// each record. Each contest shown is written to the person's access log.
    pub async fn open_contests(&self, actor: &Principal, org_id: &str) -> Result<Vec<(Contest, Record)>> {
        let member = self.inner.identity.require_staff(actor, org_id, Role::Operator).await?;
        let org = self.inner.identity.org(org_id).await?;
        let contests: Vec<Contest> = sqlx::query_as(
            "SELECT id, record_id, user_id, org_id, reason, status, opened_at_ms, decided_at_ms, decided_by_label
             FROM credit_contests WHERE org_id = $1 AND status = 'open' ORDER BY opened_at_ms, id LIMIT $2",
        )
        .bind(org_id)
        .bind(MAX_CONTESTS_LIST)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let mut out = Vec::new();
        for c in contests {
            self.inner
                .audit
                .record(NewAccess {
                    subject_user_id: c.user_id.clone(),
                    actor_user_id: actor.user_id.clone(),
                    actor_label: member.user_name.clone(),
                    org_id: Some(org.id.clone()),
                    org_label: Some(org.name.clone()),
                    what: "credit_record".into(),
                    why: "credit_contest".into(),
                })
                .await?;
            let r = self.record_row(&c.user_id, &c.record_id).await?;
            let record = Record {
                id: r.id,
                kind: r.kind,
                outcome: r.outcome,
                days_late: r.days_late,
                occurred_at_ms: r.occurred_at_ms,
                source: r.source,
                source_org_id: r.source_org_id,
                source_org_name: Some(org.name.clone()),
                source_ref: r.source_ref,
                status: r.status,
                contests: Vec::new(),
            };
            out.push((c, record));
        }
        Ok(out)
    }

    /// Staff of the producing organisation decide a contest of `record_id`:
    /// keep, correct or remove; the score is recomputed and the person told.
    pub async fn decide(&self, actor: &Principal, org_id: &str, record_id: &str, d: Decision) -> Result<Contest> {
        let member = self.inner.identity.require_staff(actor, org_id, Role::Operator).await?;
        let c: Contest = sqlx::query_as(
            "SELECT id, record_id, user_id, org_id, reason, status, opened_at_ms, decided_at_ms, decided_by_label
             FROM credit_contests WHERE record_id = $1 AND org_id = $2 ORDER BY opened_at_ms DESC, id DESC LIMIT 1",
        )
        .bind(record_id)
        .bind(org_id)
        .fetch_optional(&self.ctx().db.pool)
        .await?
        .ok_or_else(|| Error::not_found("credit_contest"))?;
        if c.status != "open" {
            return Err(Error::new(codes::CONTEST_DECIDED, "credit.contest.decided"));
        }
        let r = self.record_row(&c.user_id, record_id).await?;
        let kind = Kind::parse(&r.kind)?;
        let (status, record_status, outcome, days_late) = match d {
            Decision::Keep => ("kept", "active", Outcome::parse(&r.outcome)?, r.days_late),
            Decision::Remove => ("removed", "removed", Outcome::parse(&r.outcome)?, r.days_late),
            Decision::Correct(o, days) => {
                if !kind.outcomes().contains(&o) {
                    return Err(Error::field("outcome", "credit.outcome.invalid"));
                }
                let days = if matches!(o, Outcome::Late | Outcome::Overdue) { days.max(1) } else { 0 };
                ("corrected", "active", o, days)
            }
        };
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query(
            "UPDATE credit_contests SET status = $1, decided_at_ms = $2, decided_by_user_id = $3, decided_by_label = $4
             WHERE id = $5 AND status = 'open'",
        )
        .bind(status)
        .bind(now)
        .bind(&actor.user_id)
        .bind(&member.user_name)
        .bind(&c.id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::new(codes::CONTEST_DECIDED, "credit.contest.decided"));
        }
        sqlx::query(
            "UPDATE credit_records SET status = $1, outcome = $2, days_late = $3, updated_at_ms = $4 WHERE id = $5",
        )
        .bind(record_status)
        .bind(outcome.as_str())
        .bind(days_late)
        .bind(now)
        .bind(record_id)
        .execute(tx.conn())
        .await?;
        refresh_counted(&mut tx, &c.user_id).await?;
        tx.commit().await?;
        let score = self.recompute_with_cause(&c.user_id, "contest_decided").await?;
        self.tell(
            &c.user_id,
            Msg::new("credit.notice.contest_decided.title"),
            Msg::new("credit.notice.contest_decided.body")
                .key_arg("decision", format!("credit.contest.status.{status}"))
                .int("score", score.unwrap_or(0)),
            Some(Target::new("credit_record", record_id)),
        )
        .await;
        self.contest_by_id(&c.id).await
    }

    /// The perks and the score each needs; `has` for those the person has now.
    pub async fn perks(&self, user_id: &str) -> Result<Vec<PerkView>> {
        let score = match self.is_opted_in(user_id).await? {
            true => Some(self.score(user_id).await?.score),
            false => None,
        };
        Ok(self
            .model()
            .perks
            .iter()
            .map(|p| PerkView {
                key: p.key.clone(),
                min_score: p.from,
                also_needs: p.also_needs.clone(),
                has: score.is_some_and(|s| s >= p.from),
            })
            .collect())
    }

    /// May the person have this perk? Every check is written to the person's
    /// access log (who asked, for what, yes or no); the reason is for the person.
    pub async fn can(&self, asker: &Asker, user_id: &str, perk: &str) -> Result<Answer> {
        let p = self.model().perk(perk).ok_or_else(|| Error::not_found("credit_perk"))?.clone();
        self.inner.identity.user_ref(user_id).await?;
        let answer = if !self.is_opted_in(user_id).await? {
            Answer::Refused { reason: Msg::new("credit.refused.not_opted_in") }
        } else {
            let s = self.score(user_id).await?;
            if s.score >= p.from {
                Answer::Granted
            } else {
                Answer::Refused { reason: Msg::new("credit.refused.score_below").int("needed", p.from) }
            }
        };
        self.inner
            .audit
            .record(NewAccess {
                subject_user_id: user_id.to_string(),
                actor_user_id: asker.user_id.clone(),
                actor_label: asker.label.clone(),
                org_id: asker.org_id.clone(),
                org_label: asker.org_label.clone(),
                what: format!("credit_perk.{}", p.key),
                why: if answer.granted() { "credit_granted" } else { "credit_refused" }.into(),
            })
            .await?;
        Ok(answer)
    }

    /// An organisation's staff ask about a perk for a person: yes or no only.
    pub async fn org_can(&self, actor: &Principal, org_id: &str, user_id: &str, perk: &str) -> Result<bool> {
        let member = self.inner.identity.require_staff(actor, org_id, Role::Operator).await?;
        let org = self.inner.identity.org(org_id).await?;
        let asker = Asker {
            user_id: actor.user_id.clone(),
            label: member.user_name,
            org_id: Some(org.id),
            org_label: Some(org.name),
        };
        Ok(self.can(&asker, user_id, perk).await?.granted())
    }

    /// The pay-later limit the person's score allows now (0 without the perk).
    pub async fn pay_later_limit_fen(&self, user_id: &str) -> Result<i64> {
        if !self.is_opted_in(user_id).await? {
            return Ok(0);
        }
        let s = self.score(user_id).await?;
        Ok(self.model().pay_later_limit_fen(s.score))
    }

    /// The smallest actionable changes to reach the next band and the next perk.
    pub async fn improve(&self, user_id: &str) -> Result<Improve> {
        let s = self.score(user_id).await?;
        let m = self.model();
        let next_band = m.next_band(s.score).map(|b| m.plan(&s.inputs, &b.key, b.from));
        let next_perk = m
            .perks
            .iter()
            .filter(|p| p.from > s.score)
            .min_by_key(|p| p.from)
            .map(|p| m.plan(&s.inputs, &p.key, p.from));
        Ok(Improve { score: s.score, next_band, next_perk })
    }

    /// The court listings the person is on.
    pub async fn listings(&self, user_id: &str) -> Result<Vec<Listing>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT org_id, case_ref, listed_at_ms FROM credit_defaulters WHERE user_id = $1 ORDER BY listed_at_ms",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let mut out = Vec::new();
        for (org_id, case_ref, listed_at_ms) in rows {
            let court_name = self.inner.identity.org(&org_id).await.map(|o| o.name).unwrap_or_default();
            out.push(Listing { org_id, court_name, case_ref, listed_at_ms });
        }
        Ok(out)
    }

    /// A court's staff upload its current list of judgement defaulters: a CSV
    /// of `identity number,case number` lines (a header line is allowed).
    /// The file replaces the court's list: people in it are listed, people
    /// of its earlier list who are not are lifted. A malformed line is
    /// reported by its number and nothing of the file is applied. Numbers are
    /// matched through the identity room's blind index and never stored.
    pub async fn upload_defaulters(&self, actor: &Principal, org_id: &str, csv: &str) -> Result<DefaulterReport> {
        let member = self.inner.identity.require_staff(actor, org_id, Role::Operator).await?;
        let org = self.inner.identity.org(org_id).await?;
        if org.kind != OrgKind::Court {
            return Err(Error::new(codes::NOT_A_COURT, "credit.defaulters.court_only"));
        }
        let mut bad = Vec::new();
        let mut rows: Vec<(usize, String, String)> = Vec::new();
        for (i, line) in csv.lines().enumerate() {
            let n = i + 1;
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            if n == 1 && cols.first().is_some_and(|c| c.chars().any(|ch| ch.is_alphabetic() && ch != 'X' && ch != 'x'))
            {
                continue; // a header
            }
            let ok = cols.len() == 2
                && yizhan_identity::types::IdNumber::parse(cols[0]).is_ok()
                && !cols[1].is_empty()
                && cols[1].chars().count() <= 64
                && !cols[1].chars().any(char::is_control);
            if ok {
                rows.push((n, cols[0].to_string(), cols[1].to_string()));
            } else if bad.len() < 20 {
                bad.push(FieldError::new("csv", Msg::new("credit.defaulters.line_bad").int("line", n as i64)));
            } else {
                break;
            }
            if rows.len() > MAX_DEFAULTER_LINES {
                return Err(Error::field_msg(
                    "csv",
                    Msg::new("credit.defaulters.too_many").int("max", MAX_DEFAULTER_LINES as i64),
                ));
            }
        }
        if !bad.is_empty() {
            let mut e = Error::msg(codes::DEFAULTER_FILE, bad[0].msg.clone());
            e.fields = bad;
            return Err(e);
        }
        let mut matched: Vec<(String, String)> = Vec::new();
        let mut unmatched = 0;
        for (_, number, case_ref) in &rows {
            match self.inner.identity.find_by_id_number(number).await? {
                Some(u) => matched.push((u.user_id, case_ref.clone())),
                None => unmatched += 1,
            }
        }
        matched.sort();
        matched.dedup();
        let before: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT user_id, case_ref, listed_at_ms FROM credit_defaulters WHERE org_id = $1")
                .bind(org_id)
                .fetch_all(&self.ctx().db.pool)
                .await?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("DELETE FROM credit_defaulters WHERE org_id = $1").bind(org_id).execute(tx.conn()).await?;
        for (user_id, case_ref) in &matched {
            // A listing that stays keeps the time it was first listed.
            let listed_at = before.iter().find(|(u, c, _)| u == user_id && c == case_ref).map_or(now, |(_, _, at)| *at);
            sqlx::query(
                "INSERT INTO credit_defaulters (org_id, user_id, case_ref, listed_at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(org_id)
            .bind(user_id)
            .bind(case_ref)
            .bind(listed_at)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await?;
        let still: BTreeSet<&String> = matched.iter().map(|(u, _)| u).collect();
        let was: BTreeSet<&String> = before.iter().map(|(u, _, _)| u).collect();
        let lifted_people = was.difference(&still).count() as i64;
        // Everyone whose listing changed is recomputed now (opted-in people only).
        let changed: BTreeSet<&String> = still.symmetric_difference(&was).copied().collect();
        for u in &changed {
            self.recompute_with_cause(u, "court_listing").await?;
            if still.contains(u) {
                self.inner
                    .audit
                    .record(NewAccess {
                        subject_user_id: (*u).clone(),
                        actor_user_id: actor.user_id.clone(),
                        actor_label: member.user_name.clone(),
                        org_id: Some(org.id.clone()),
                        org_label: Some(org.name.clone()),
                        what: "credit_defaulter_listing".into(),
                        why: "case".into(),
                    })
                    .await?;
                self.tell(
                    u,
                    Msg::new("credit.notice.listed.title"),
                    Msg::new("credit.notice.listed.body").text("court", org.name.clone()),
                    None,
                )
                .await;
            } else {
                self.tell(
                    u,
                    Msg::new("credit.notice.lifted.title"),
                    Msg::new("credit.notice.lifted.body").text("court", org.name.clone()),
                    None,
                )
                .await;
            }
        }
        tracing::info!(org_id, lines = rows.len(), listed = matched.len(), unmatched, "defaulter list uploaded");
        Ok(DefaulterReport { lines: rows.len() as i64, listed: matched.len() as i64, lifted: lifted_people, unmatched })
    }

    /// Every opted-in person, in pages (for `yizhan credit recompute`).
    pub async fn people_after(&self, after: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT user_id FROM credit_people WHERE user_id > $1 ORDER BY user_id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(&self.ctx().db.pool)
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn count_people(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM credit_people").fetch_one(&self.ctx().db.pool).await?;
        Ok(n)
    }

    async fn tell(&self, user_id: &str, title: Msg, body: Msg, target: Option<Target>) {
        let m = Message { kind: "credit".into(), title, body, target };
        if let Err(e) = self.inner.notify.send(user_id, None, m).await {
            tracing::warn!(%user_id, code = %e.code, error = %e.msg, "credit notice not stored");
        }
    }
}

/// Synthetic residents for `yizhan bench credit`: opted in, with records
/// spread over two years, written straight into the credit tables in large
/// transactions (ids prefixed `bench-`, so they never meet real accounts).
pub mod bench {
    use super::*;

    /// Seed `residents` people with `records_each` records each; returns the rows written.
    pub async fn seed(
        credit: &Credit,
        residents: u64,
        records_each: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        let ctx = credit.ctx();
        let now = ctx.now_ms();
        let mut written = 0;
        let chunk = 500u64;
        let mut start = 0;
        while start < residents {
            let end = (start + chunk).min(residents);
            let mut tx = ctx.db.begin().await?;
            let mut people = String::from("INSERT INTO credit_people (user_id, opted_in_at_ms, counted) VALUES ");
            let mut records = String::from(
                "INSERT INTO credit_records (id, user_id, kind, outcome, days_late, occurred_at_ms, source, \
                 source_org_id, source_ref, status, created_at_ms, updated_at_ms) VALUES ",
            );
            for i in start..end {
                if i > start {
                    people.push(',');
                }
                let mut counted = Vec::new();
                for j in 0..records_each {
                    if i > start || j > 0 {
                        records.push(',');
                    }
                    // A fixed mix: mostly bills on time, some late, bookings kept and missed.
                    let (kind, outcome, days) = match (i * 7 + j * 13) % 20 {
                        0 => (Kind::Bill, Outcome::Late, 45),
                        1 | 2 => (Kind::Bill, Outcome::Late, 5),
                        3 => (Kind::Booking, Outcome::Missed, 0),
                        4..=6 => (Kind::Booking, Outcome::Kept, 0),
                        7 => (Kind::Deposit, Outcome::Kept, 0),
                        8 => (Kind::PayLater, Outcome::OnTime, 0),
                        _ => (Kind::Bill, Outcome::OnTime, 0),
                    };
                    let at = now - ((i * 31 + j * 37) % 700) as i64 * DAY_MS - DAY_MS;
                    records.push_str(&format!(
                        "('bench-{i:08}-{j}', 'bench-{i:08}', '{}', '{}', {days}, {at}, 'bench', NULL, \
                         'r{j}', 'active', {now}, {now})",
                        kind.as_str(),
                        outcome.as_str()
                    ));
                    counted.push(Counted { kind, outcome, days_late: days, occurred_at_ms: at });
                }
                // As a change to the records would have built it.
                counted.sort_by_key(|c| std::cmp::Reverse(c.occurred_at_ms));
                people.push_str(&format!("('bench-{i:08}', {now}, '{}')", encode_counted(&counted)));
            }
            sqlx::query(&people).execute(tx.conn()).await?;
            if records_each > 0 {
                sqlx::query(&records).execute(tx.conn()).await?;
            }
            tx.commit().await?;
            written += (end - start) * (1 + records_each);
            progress(end - start);
            start = end;
        }
        Ok(written)
    }

    /// How many synthetic residents and records are there now.
    pub async fn seeded(credit: &Credit) -> Result<(u64, u64)> {
        let pool = &credit.ctx().db.pool;
        let (p,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM credit_people WHERE user_id LIKE 'bench-%'").fetch_one(pool).await?;
        let (r,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM credit_records WHERE user_id LIKE 'bench-%'").fetch_one(pool).await?;
        Ok((u64::try_from(p).unwrap_or(0), u64::try_from(r).unwrap_or(0)))
    }

    /// Remove the synthetic residents' scores only (before a timed run).
    pub async fn clear_scores(credit: &Credit) -> Result<()> {
        let mut tx = credit.ctx().db.begin().await?;
        sqlx::query("DELETE FROM credit_scores WHERE user_id LIKE 'bench-%'").execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove what `seed` wrote.
    pub async fn clear(credit: &Credit) -> Result<()> {
        let mut tx = credit.ctx().db.begin().await?;
        for t in ["credit_scores", "credit_records", "credit_people"] {
            sqlx::query(&format!("DELETE FROM {t} WHERE user_id LIKE 'bench-%'")).execute(tx.conn()).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Time spent per phase of the batch, summed over its pages and logged at
/// its end (`YIZHAN_LOG=yizhan_credit=debug`), to see what dominates.
struct Phase {
    at: std::time::Instant,
}

static PHASES: std::sync::Mutex<Vec<(&'static str, std::time::Duration)>> = std::sync::Mutex::new(Vec::new());

impl Phase {
    fn start() -> Phase {
        Phase { at: std::time::Instant::now() }
    }

    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        let d = now - self.at;
        self.at = now;
        if let Ok(mut p) = PHASES.lock() {
            match p.iter_mut().find(|e| e.0 == name) {
                Some(e) => e.1 += d,
                None => p.push((name, d)),
            }
        }
    }

    fn report() {
        if let Ok(mut p) = PHASES.lock() {
            let line: Vec<String> = p.iter().map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64())).collect();
            tracing::debug!(phases = %line.join(", "), "credit recompute: time per phase, summed over pages");
            p.clear();
        }
    }
}

/// A person of a page of the batch: id, consents, pay-later switch, and
/// their counted records' text (`None` before it was built).
type PagePerson = (String, i64, i64, i64, Option<String>);

/// One page of the batch, read and scored: the scores to store, the
/// pay-later lines to bring in line, and counted texts built on the way.
struct PageData {
    people: u64,
    /// (person, seq, score, band, inputs as JSON) of every changed score.
    rows: Vec<(String, i64, i64, String, String)>,
    lines: Vec<(String, i64)>,
    /// (person, counted text) for people whose text was not built yet.
    built: Vec<(String, String)>,
}

impl Credit {
    /// Recompute every opted-in person's score (the model or time moved on);
    /// `progress` hears how many were done. Returns how many were recomputed.
    ///
    /// Pages of people in id order: each person's records come from their
    /// counted text (one row a person, see [`encode_counted`]), the scores
    /// are computed in memory and written with one statement (the rows as
    /// one JSON parameter) in one transaction. The page boundaries are read
    /// first (cheap), then up to [`RECOMPUTE_READERS`] pages are read and
    /// scored at once while the pages before them are written, in order.
    pub async fn recompute_all(&self, mut progress: impl FnMut(u64)) -> Result<u64> {
        let now = self.ctx().now_ms();
        let mut done = 0;
        let mut after = String::new();
        let mut reading = std::collections::VecDeque::new();
        let mut more = true;
        let sqlite = self.ctx().db.engine() == yizhan_core::Engine::Sqlite;
        let mut pages = 0usize;
        let mut checkpoint_due = false;
        loop {
            // SQLite: every few pages the readers drain and the WAL is
            // checkpointed, or it grows for the whole batch (readers always
            // hold a snapshot) and every page read slows down with it.
            if checkpoint_due && reading.is_empty() {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.ctx().db.pool).await?;
                checkpoint_due = false;
            }
            while more && !checkpoint_due && reading.len() < RECOMPUTE_READERS {
                let people = self.read_people(&after, RECOMPUTE_PAGE).await?;
                let Some(last) = people.last().map(|p| p.0.clone()) else {
                    more = false;
                    break;
                };
                let c = self.clone();
                let from = std::mem::replace(&mut after, last);
                reading.push_back(tokio::spawn(async move { c.read_page(from, people, now).await }));
            }
            let Some(next) = reading.pop_front() else { break };
            let page = next.await.map_err(Error::internal)??;
            let n = self.write_page(page, now).await?;
            pages += 1;
            checkpoint_due |= sqlite && pages.is_multiple_of(RECOMPUTE_CHECKPOINT_PAGES);
            done += n;
            progress(n);
        }
        Phase::report();
        Ok(done)
    }

    async fn read_people(&self, after: &str, limit: i64) -> Result<Vec<PagePerson>> {
        let mut clock = Phase::start();
        let people = sqlx::query_as(
            "SELECT user_id, address_consent, education_consent, pay_later_on, counted FROM credit_people
             WHERE user_id > $1 ORDER BY user_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        clock.lap("people");
        Ok(people)
    }

    /// Count and score a page of people (ids after `after`, up to the last
    /// of `people`): their records from each one's counted text, their
    /// listings, latest scores and verification levels in one query each.
    async fn read_page(&self, after: String, people: Vec<PagePerson>, now: i64) -> Result<PageData> {
        let pool = &self.ctx().db.pool;
        let mut clock = Phase::start();
        let last = people.last().map(|p| p.0.clone()).unwrap_or_default();
        let listed: BTreeSet<String> = sqlx::query_as::<_, (String,)>(
            "SELECT DISTINCT user_id FROM credit_defaulters WHERE user_id > $1 AND user_id <= $2",
        )
        .bind(after.as_str())
        .bind(&last)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|l| l.0)
        .collect();
        clock.lap("listed");
        let latest: HashMap<String, (i64, String, String)> = sqlx::query_as::<_, (String, i64, String, String)>(
            "SELECT s.user_id, s.seq, s.inputs, s.model_hash FROM credit_scores s
             JOIN (SELECT user_id, MAX(seq) AS m FROM credit_scores WHERE user_id > $1 AND user_id <= $2
                   GROUP BY user_id) l ON s.user_id = l.user_id AND s.seq = l.m",
        )
        .bind(after.as_str())
        .bind(&last)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(u, seq, i, h)| (u, (seq, i, h)))
        .collect();
        clock.lap("latest");
        let ids: Vec<String> = people.iter().map(|p| p.0.clone()).collect();
        let levels = self.inner.identity.verification_levels(&ids).await?;
        clock.lap("levels");
        let model = self.model();
        let mut page = PageData { people: people.len() as u64, rows: Vec::new(), lines: Vec::new(), built: Vec::new() };
        for (u, address, education, pay_later_on, counted) in people {
            let records = match counted.as_deref().and_then(decode_counted) {
                Some(r) => r,
                None => {
                    // Not built yet: from the records, and kept for next time.
                    let mut conn = pool.acquire().await?;
                    let r = counted_in(&mut conn, &u).await?;
                    page.built.push((u.clone(), encode_counted(&r)));
                    r
                }
            };
            let level = levels.get(&u).copied().unwrap_or(0);
            let inputs = Tally::of(&records, now).inputs(level, address != 0, education != 0, listed.contains(&u), now);
            let json = serde_json::to_string(&inputs).map_err(Error::internal)?;
            let prev = latest.get(&u);
            if prev.is_some_and(|(_, i, h)| *i == json && *h == model.hash) {
                continue;
            }
            let scored = model.score(&inputs);
            if pay_later_on != 0 {
                page.lines.push((u.clone(), scored.score));
            }
            page.rows.push((u, prev.map_or(1, |p| p.0 + 1), scored.score, scored.band, json));
        }
        clock.lap("score");
        Ok(page)
    }

    /// Store a page's changed scores (and the counted texts it built) in one
    /// transaction, then bring the pay-later lines in line.
    async fn write_page(&self, page: PageData, now: i64) -> Result<u64> {
        let mut clock = Phase::start();
        let model = self.model();
        if !page.rows.is_empty() || !page.built.is_empty() {
            // One statement per page: the rows travel as one JSON text, so
            // no statement has thousands of parameters to bind.
            let sql = match self.ctx().db.engine() {
                yizhan_core::db::Engine::Sqlite => {
                    "INSERT INTO credit_scores (id, user_id, seq, score, band, model_version, model_hash, inputs,
                         cause, computed_at_ms)
                     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                         json_extract(value, '$[3]'), json_extract(value, '$[4]'), $2, $3,
                         json_extract(value, '$[5]'), 'recompute', $4
                     FROM json_each($1) WHERE true
                     ON CONFLICT (user_id, seq) DO NOTHING"
                }
                // JSONB: the text is parsed once, not again for each field.
                yizhan_core::db::Engine::Postgres => {
                    "INSERT INTO credit_scores (id, user_id, seq, score, band, model_version, model_hash, inputs,
                         cause, computed_at_ms)
                     SELECT r->>0, r->>1, CAST(r->>2 AS BIGINT), CAST(r->>3 AS BIGINT), r->>4, $2, $3, r->>5,
                         'recompute', $4
                     FROM jsonb_array_elements(CAST($1 AS JSONB)) AS r
                     ON CONFLICT (user_id, seq) DO NOTHING"
                }
            };
            let body: Vec<(String, &String, i64, i64, &str, &String)> = page
                .rows
                .iter()
                .map(|(u, seq, score, band, json)| (self.ctx().new_id(), u, *seq, *score, band.as_str(), json))
                .collect();
            let body = serde_json::to_string(&body).map_err(Error::internal)?;
            clock.lap("encode");
            let mut tx = self.ctx().db.begin().await?;
            clock.lap("begin");
            if !page.rows.is_empty() {
                sqlx::query(sql).bind(body).bind(&model.version).bind(&model.hash).bind(now).execute(tx.conn()).await?;
            }
            // A text built from the records is kept unless a change to them
            // built one meanwhile (that one is newer).
            for (u, text) in &page.built {
                sqlx::query("UPDATE credit_people SET counted = $2 WHERE user_id = $1 AND counted IS NULL")
                    .bind(u)
                    .bind(text)
                    .execute(tx.conn())
                    .await?;
            }
            clock.lap("insert");
            tx.commit().await?;
            clock.lap("commit");
        }
        for (u, score) in page.lines {
            self.sync_pay_later(&u, score).await?;
        }
        clock.lap("lines");
        Ok(page.people)
    }
}
