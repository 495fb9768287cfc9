//! City services: each city's catalogue (services by category, each
//! published by one of the city's departments, in both languages, with its
//! required documents, fee and how it is delivered), a form per service
//! ([`form`]), and residents' applications, worked by the department's staff
//! through statuses. Appointments go through the shared booking engine
//! (`yizhan-booking`); every status change is told to the resident
//! (`yizhan-notify`), and every staff read of an application is written to
//! the resident's access log first (`yizhan-audit`).

pub mod codes;
pub mod drafts;
pub mod form;
pub mod invitations;
pub mod uploads;

pub use invitations::Invitation;

use serde::{Deserialize, Serialize};
use yizhan_audit::{Audit, NewAccess};
use yizhan_booking::{Booking, Hours, Rules};
use yizhan_core::{Arg, Ctx, Error, MigrationSet, Msg, Result};
use yizhan_identity::{Identity, OrgKind, Principal, Role};
use yizhan_notify::{Message, Notify, Target};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "city",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_city.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_deposits_invitations.sql")),
        ("0003", include_str!("../migrations/sqlite/0003_drafts_uploads.sql")),
        ("0004", include_str!("../migrations/sqlite/0004_application_fees.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_city.sql")),
        ("0002", include_str!("../migrations/postgres/0002_deposits_invitations.sql")),
        ("0003", include_str!("../migrations/postgres/0003_drafts_uploads.sql")),
        ("0004", include_str!("../migrations/postgres/0004_application_fees.sql")),
    ],
};

/// The capability key a city switches on (in `City.services`) to show its catalogue.
pub const CAPABILITY: &str = "city";

/// The categories a catalogue groups services by (`city.category.<key>` texts).
pub const CATEGORIES: &[&str] = &["family", "travel", "culture", "transport", "housing", "health", "other"];

pub const MAX_SERVICES_PER_CITY: i64 = 500;
pub const MAX_LISTED: i64 = 200;
const MAX_TITLE_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 4000;
const MAX_DOCUMENTS: usize = 20;
const MAX_NOTE_CHARS: usize = 1000;

/// A department's own words, in both languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LocalText {
    pub en: String,
    pub zh: String,
}

impl LocalText {
    pub fn new(en: &str, zh: &str) -> LocalText {
        LocalText { en: en.to_string(), zh: zh.to_string() }
    }

    /// The text in a language ("zh", "zh-CN", or anything else for English).
    pub fn get(&self, lang: &str) -> &str {
        if lang.starts_with("zh") {
            &self.zh
        } else {
            &self.en
        }
    }

    fn check_len(&self, field: &str, max: usize) -> Result<()> {
        for s in [&self.en, &self.zh] {
            if s.trim().is_empty() {
                return Err(Error::field(field, "city.text.both_languages"));
            }
            if s.chars().count() > max {
                return Err(Error::field(field, "city.text.too_long").with("max", Arg::Int(max as i64)));
            }
        }
        Ok(())
    }

    pub(crate) fn check(&self, field: &str) -> Result<()> {
        self.check_len(field, 500)
    }
}

/// How a service is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// A visit at a booked time (the form is sent with the booking).
    Appointment,
    /// An application worked by the department online.
    Application,
    /// A payment (a fine or a fee): paid in the wallet's bills.
    Payment,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Appointment => "appointment",
            Delivery::Application => "application",
            Delivery::Payment => "payment",
        }
    }

    fn parse(s: &str) -> Delivery {
        match s {
            "appointment" => Delivery::Appointment,
            "payment" => Delivery::Payment,
            _ => Delivery::Application,
        }
    }
}

/// How a department books visits to a service: the engine's rules, its
/// counters' weekly hours, and how many days ahead to publish now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingSetup {
    pub rules: Rules,
    /// One resource per counter, each with these hours.
    pub counters: Vec<String>,
    pub hours: Vec<Hours>,
    pub publish_days: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewService {
    pub category: String,
    pub title: LocalText,
    pub description: LocalText,
    #[serde(default)]
    pub documents: Vec<LocalText>,
    #[serde(default)]
    pub fee_fen: i64,
    pub delivery: Delivery,
    /// The form, as a JSON Schema subset (see [`form`]); `{}` for none.
    #[serde(default)]
    pub form: serde_json::Value,
    #[serde(default)]
    pub booking: Option<BookingSetup>,
    /// A deposit held in the applicant's wallet until what was lent (a
    /// library card) is returned or the application is rejected.
    #[serde(default)]
    pub deposit_fen: i64,
    /// The credit perk that waives the deposit (e.g. `library_card`); empty: none does.
    #[serde(default)]
    pub deposit_perk: String,
    /// Booked by two people (a marriage registration): one holds a slot and
    /// invites the other, both confirm with verified real names.
    #[serde(default)]
    pub two_people: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CityService {
    pub id: String,
    pub city_id: String,
    pub org_id: String,
    pub category: String,
    pub title: LocalText,
    pub description: LocalText,
    pub documents: Vec<LocalText>,
    /// Paid from the wallet: for an appointment when it is booked (the
    /// booking engine), for an online application when it is submitted.
    pub fee_fen: i64,
    pub delivery: Delivery,
    pub form: serde_json::Value,
    /// The booking engine's service, for an appointment.
    pub booking_service_id: Option<String>,
    pub deposit_fen: i64,
    pub deposit_perk: String,
    pub two_people: bool,
    pub created_at_ms: i64,
}

impl CityService {
    pub fn parsed_form(&self) -> Result<form::Form> {
        form::Form::parse(&self.form)
    }
}

#[derive(sqlx::FromRow)]
struct ServiceRow {
    id: String,
    city_id: String,
    org_id: String,
    category: String,
    title_en: String,
    title_zh: String,
    description_en: String,
    description_zh: String,
    documents: String,
    fee_fen: i64,
    delivery: String,
    form: String,
    booking_service_id: String,
    created_at_ms: i64,
    deposit_fen: i64,
    deposit_perk: String,
    two_people: i64,
}

const SERVICE_COLS: &str = "id, city_id, org_id, category, title_en, title_zh, description_en, description_zh, \
                            documents, fee_fen, delivery, form, booking_service_id, created_at_ms, deposit_fen, \
                            deposit_perk, two_people";

impl TryFrom<ServiceRow> for CityService {
    type Error = Error;
    fn try_from(r: ServiceRow) -> Result<CityService> {
        Ok(CityService {
            documents: serde_json::from_str(&r.documents).map_err(Error::internal)?,
            form: serde_json::from_str(&r.form).map_err(Error::internal)?,
            id: r.id,
            city_id: r.city_id,
            org_id: r.org_id,
            category: r.category,
            title: LocalText { en: r.title_en, zh: r.title_zh },
            description: LocalText { en: r.description_en, zh: r.description_zh },
            fee_fen: r.fee_fen,
            delivery: Delivery::parse(&r.delivery),
            booking_service_id: Some(r.booking_service_id).filter(|s| !s.is_empty()),
            deposit_fen: r.deposit_fen,
            deposit_perk: r.deposit_perk,
            two_people: r.two_people != 0,
            created_at_ms: r.created_at_ms,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Written, its deposit or fee being taken from the wallet (not yet
    /// before the department; the sweep finishes one a crash left).
    Pending,
    Submitted,
    InReview,
    MoreInfoNeeded,
    Approved,
    Rejected,
    Completed,
}

impl Status {
    pub const ALL: &'static [Status] = &[
        Status::Submitted,
        Status::InReview,
        Status::MoreInfoNeeded,
        Status::Approved,
        Status::Rejected,
        Status::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Submitted => "submitted",
            Status::InReview => "in_review",
            Status::MoreInfoNeeded => "more_info_needed",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        if s == "pending" {
            return Some(Status::Pending);
        }
        Status::ALL.iter().copied().find(|st| st.as_str() == s)
    }

    /// Where staff may move an application from here.
    pub fn next(self) -> &'static [Status] {
        match self {
            Status::Submitted => &[Status::InReview, Status::Rejected],
            Status::InReview => &[Status::MoreInfoNeeded, Status::Approved, Status::Rejected],
            Status::MoreInfoNeeded => &[Status::InReview, Status::Rejected],
            Status::Approved => &[Status::Completed],
            Status::Pending | Status::Rejected | Status::Completed => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Application {
    pub id: String,
    pub service_id: String,
    pub org_id: String,
    pub person_id: String,
    pub status: Status,
    pub answers: serde_json::Map<String, serde_json::Value>,
    pub appointment_id: Option<String>,
    /// The department's last note to the resident (e.g. what is missing).
    pub note: String,
    /// The deposit asked and where it stands: none, waived (the credit perk),
    /// holding (being held), held, returned.
    pub deposit_fen: i64,
    pub deposit_state: String,
    /// The fee paid from the wallet and where it stands: none, charging, paid, refunded.
    pub fee_fen: i64,
    pub fee_state: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One change of an application's status, as its person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub status: String,
    /// The department's note with it (e.g. what is missing).
    pub note: String,
    pub at_ms: i64,
}

/// A line of a department's queue: no answers (opening one is a logged read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct QueueItem {
    pub id: String,
    pub service_id: String,
    pub status: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// none, waived, held (to be returned with what was lent), returned.
    pub deposit_state: String,
}

#[derive(sqlx::FromRow)]
struct ApplicationRow {
    id: String,
    service_id: String,
    org_id: String,
    person_id: String,
    status: String,
    answers: String,
    appointment_id: String,
    note: String,
    created_at_ms: i64,
    updated_at_ms: i64,
    deposit_fen: i64,
    deposit_state: String,
    fee_fen: i64,
    fee_state: String,
}

pub(crate) const APPLICATION_COLS: &str = "id, service_id, org_id, person_id, status, answers, appointment_id, note, \
                                created_at_ms, updated_at_ms, deposit_fen, deposit_state, fee_fen, fee_state";

impl TryFrom<ApplicationRow> for Application {
    type Error = Error;
    fn try_from(r: ApplicationRow) -> Result<Application> {
        Ok(Application {
            status: Status::parse(&r.status)
                .ok_or_else(|| Error::internal(anyhow::anyhow!("unknown application status")))?,
            answers: serde_json::from_str(&r.answers).map_err(Error::internal)?,
            appointment_id: Some(r.appointment_id).filter(|s| !s.is_empty()),
            id: r.id,
            service_id: r.service_id,
            org_id: r.org_id,
            person_id: r.person_id,
            note: r.note,
            deposit_fen: r.deposit_fen,
            deposit_state: r.deposit_state,
            fee_fen: r.fee_fen,
            fee_state: r.fee_state,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        })
    }
}

/// Deposits for services that lend something: whether a person's credit
/// waives one, and holding and returning it. The city room reads no credit
/// or wallet table: the app wires the credit room and the wallet here.
#[async_trait::async_trait]
pub trait Deposits: Send + Sync + 'static {
    /// Whether the person has the credit perk, asked by the organisation
    /// (the credit room writes the check to the person's access log).
    async fn waived(&self, person_id: &str, org_id: &str, perk: &str) -> Result<bool>;
    /// Holds `amount_fen` in the person's wallet for the organisation; once per `reference`.
    async fn hold(&self, person_id: &str, org_id: &str, amount_fen: i64, reference: &str) -> Result<()>;
    /// Releases the deposit held under `reference`; once, however often called.
    async fn release(&self, reference: &str) -> Result<()>;
}

/// The kind of a notice's target that leads staff to an application on
/// their console (the resident's notices lead to `application`).
pub const STAFF_APPLICATION: &str = "staff_application";

/// The reference an application's deposit is held under.
fn deposit_ref(application_id: &str) -> String {
    format!("city-application:{application_id}")
}

/// The reference an application's fee is paid under.
fn fee_ref(application_id: &str) -> String {
    format!("city-application-fee:{application_id}")
}

/// Whether a failed wallet call is the wallet's answer (not enough money, a
/// limit, a closed account) rather than a failure to ask that a retry may cure.
fn refused(e: &Error) -> bool {
    !matches!(
        e.code.class(),
        yizhan_core::Class::Internal
            | yizhan_core::Class::Unavailable
            | yizhan_core::Class::UpstreamTimeout
            | yizhan_core::Class::RateLimited
    )
}

/// How long a pending application waits before the sweep finishes it (its
/// own request is still at it before then).
pub const PENDING_GRACE_MS: i64 = 60_000;

/// The city services room's domain.
#[derive(Clone)]
pub struct CityHall {
    ctx: Ctx,
    identity: Identity,
    booking: Booking,
    notify: Notify,
    audit: Audit,
    /// Holds deposits (the wallet and the credit room, wired by the app); none: paid at the counter.
    deposits: Option<std::sync::Arc<dyn Deposits>>,
    /// Takes online applications' fees (the wallet, wired by the app); none: paid at the counter.
    fees: Option<std::sync::Arc<dyn yizhan_booking::Fees>>,
    /// Writes after the wallet moved money that are made to fail (a crash
    /// between the wallet and the row, for tests of the recovery).
    faults: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl CityHall {
    pub fn new(ctx: Ctx, identity: Identity, booking: Booking, notify: Notify, audit: Audit) -> CityHall {
        CityHall { ctx, identity, booking, notify, audit, deposits: None, fees: None, faults: Default::default() }
    }

    /// Online applications' fees are paid from the wallet when submitted and given back on a rejection.
    pub fn with_fees(mut self, fees: std::sync::Arc<dyn yizhan_booking::Fees>) -> CityHall {
        self.fees = Some(fees);
        self
    }

    /// Whether online applications' fees are paid from the wallet (else at the counter).
    pub fn takes_fees(&self) -> bool {
        self.fees.is_some()
    }

    /// Makes the next `n` writes after a payment fail, as a crash there would
    /// (tests of the recovery by [`CityHall::sweep`]).
    #[doc(hidden)]
    pub fn fail_writes_after_payment(&self, n: u32) {
        self.faults.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn with_deposits(mut self, deposits: std::sync::Arc<dyn Deposits>) -> CityHall {
        self.deposits = Some(deposits);
        self
    }

    pub fn booking(&self) -> &Booking {
        &self.booking
    }

    /// A department's staff publish a service of their city (and, for
    /// appointments, its booking rules and counters' hours).
    pub async fn publish(&self, actor: &Principal, org_id: &str, s: &NewService) -> Result<CityService> {
        self.identity.require_staff(actor, org_id, Role::Admin).await?;
        let org = self.identity.org(org_id).await?;
        if org.kind != OrgKind::CityDepartment {
            return Err(Error::field("org_id", "city.publish.department_only"));
        }
        if !CATEGORIES.contains(&s.category.as_str()) {
            return Err(Error::field("category", "city.category.unknown"));
        }
        s.title.check_len("title", MAX_TITLE_CHARS)?;
        s.description.check_len("description", MAX_DESCRIPTION_CHARS)?;
        if s.documents.len() > MAX_DOCUMENTS {
            return Err(
                Error::field("documents", "city.documents.too_many").with("max", Arg::Int(MAX_DOCUMENTS as i64))
            );
        }
        for (i, d) in s.documents.iter().enumerate() {
            d.check(&format!("documents[{i}]"))?;
        }
        if !(0..=100_000_000).contains(&s.fee_fen) {
            return Err(Error::field("fee_fen", "city.fee.invalid"));
        }
        if !(0..=100_000_000).contains(&s.deposit_fen) {
            return Err(Error::field("deposit_fen", "city.fee.invalid"));
        }
        if s.deposit_fen > 0 && s.delivery != Delivery::Application {
            return Err(Error::field("deposit_fen", "city.deposit.applications_only"));
        }
        let perk_ok = s.deposit_perk.len() <= 40
            && s.deposit_perk.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && (s.deposit_perk.is_empty() || s.deposit_fen > 0);
        if !perk_ok {
            return Err(Error::field("deposit_perk", "city.deposit.perk_invalid"));
        }
        if s.two_people && s.delivery != Delivery::Appointment {
            return Err(Error::field("two_people", "city.partner.appointments_only"));
        }
        let form_schema = if s.form.is_null() { serde_json::json!({}) } else { s.form.clone() };
        form::Form::parse(&form_schema)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM city_services WHERE city_id = $1")
            .bind(&org.city_id)
            .fetch_one(&self.ctx.db.pool)
            .await?;
        if count >= MAX_SERVICES_PER_CITY {
            return Err(
                Error::new(codes::TOO_MANY, "city.services.too_many").with("max", Arg::Int(MAX_SERVICES_PER_CITY))
            );
        }
        let booking_service_id = match (s.delivery, &s.booking) {
            (Delivery::Appointment, Some(b)) => {
                if b.counters.is_empty() || b.counters.len() > 20 {
                    return Err(Error::field("booking.counters", "city.booking.counters"));
                }
                if !(0..=yizhan_booking::MAX_RANGE_DAYS).contains(&b.publish_days) {
                    return Err(Error::field("booking.publish_days", "city.booking.publish_days"));
                }
                // The appointment carries the service's fee (paid from the wallet by the booking engine).
                let rules = Rules { fee_fen: s.fee_fen, ..b.rules.clone() };
                let bs = self.booking.create_service(org_id, &rules).await?;
                for c in &b.counters {
                    self.booking.add_resource(&bs.id, c, &b.hours).await?;
                }
                if b.publish_days > 0 {
                    let today = yizhan_booking::local_day(self.ctx.now_ms());
                    self.booking.publish(&bs.id, today, today + b.publish_days - 1).await?;
                }
                bs.id
            }
            (Delivery::Appointment, None) => return Err(Error::field("booking", "city.booking.required")),
            (_, Some(_)) => return Err(Error::field("booking", "city.booking.only_appointments")),
            (_, None) => String::new(),
        };
        let id = self.ctx.new_id();
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO city_services ({SERVICE_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)"
        ))
        .bind(&id)
        .bind(&org.city_id)
        .bind(org_id)
        .bind(&s.category)
        .bind(s.title.en.trim())
        .bind(s.title.zh.trim())
        .bind(s.description.en.trim())
        .bind(s.description.zh.trim())
        .bind(serde_json::to_string(&s.documents).map_err(Error::internal)?)
        .bind(s.fee_fen)
        .bind(s.delivery.as_str())
        .bind(serde_json::to_string(&form_schema).map_err(Error::internal)?)
        .bind(&booking_service_id)
        .bind(now)
        .bind(s.deposit_fen)
        .bind(&s.deposit_perk)
        .bind(i64::from(s.two_people))
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        tracing::info!(service_id = %id, org_id = %org_id, "city service published");
        self.service(&id).await
    }

    /// A service a resident may use: its city offers city services.
    pub async fn visible_service(&self, id: &str) -> Result<CityService> {
        let service = self.service(id).await?;
        let city = self.identity.city(&service.city_id).await?;
        if !city.services.iter().any(|s| s == CAPABILITY) {
            return Err(Error::not_found("service"));
        }
        Ok(service)
    }

    pub async fn service(&self, id: &str) -> Result<CityService> {
        let row: Option<ServiceRow> =
            sqlx::query_as(&format!("SELECT {SERVICE_COLS} FROM city_services WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("service"))?.try_into()
    }

    /// The city service whose appointments a booking-engine service takes.
    pub async fn service_by_booking(&self, booking_service_id: &str) -> Result<CityService> {
        let row: Option<ServiceRow> =
            sqlx::query_as(&format!("SELECT {SERVICE_COLS} FROM city_services WHERE booking_service_id = $1 LIMIT 1"))
                .bind(booking_service_id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("service"))?.try_into()
    }

    /// A city's catalogue, by category then title. Empty when the city has
    /// not switched the capability on.
    pub async fn catalogue(&self, city_id: &str) -> Result<Vec<CityService>> {
        let city = self.identity.city(city_id).await?;
        if !city.services.iter().any(|s| s == CAPABILITY) {
            return Ok(Vec::new());
        }
        let rows: Vec<ServiceRow> = sqlx::query_as(&format!(
            "SELECT {SERVICE_COLS} FROM city_services WHERE city_id = $1 ORDER BY category, title_en, id \
             LIMIT {MAX_SERVICES_PER_CITY}"
        ))
        .bind(city_id)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        rows.into_iter().map(CityService::try_from).collect()
    }

    /// The services a department published.
    pub async fn org_services(&self, org_id: &str) -> Result<Vec<CityService>> {
        let rows: Vec<ServiceRow> = sqlx::query_as(&format!(
            "SELECT {SERVICE_COLS} FROM city_services WHERE org_id = $1 ORDER BY category, title_en, id \
             LIMIT {MAX_SERVICES_PER_CITY}"
        ))
        .bind(org_id)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        rows.into_iter().map(CityService::try_from).collect()
    }

    /// A resident applies: the answers are checked against the form; for an
    /// appointment the hold becomes a booking in the same step.
    pub async fn apply(
        &self,
        person_id: &str,
        service_id: &str,
        answers: &serde_json::Value,
        hold_id: Option<&str>,
    ) -> Result<Application> {
        self.apply_as(person_id, service_id, answers, hold_id, None).await
    }

    /// [`CityHall::apply`] under an id the caller chose beforehand (a page's
    /// "submit" button carries it): sent again, the application already made
    /// under it is returned and nothing is taken from the wallet twice.
    pub async fn apply_once(
        &self,
        person_id: &str,
        service_id: &str,
        answers: &serde_json::Value,
        id: &str,
    ) -> Result<Application> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(Error::not_found("application"));
        }
        if let Some(a) = self.existing_of(person_id, id).await? {
            return Ok(a);
        }
        match self.apply_as(person_id, service_id, answers, None, Some(id)).await {
            // Another request under the same id got there first.
            Err(e) if matches!(e.code.class(), yizhan_core::Class::Internal | yizhan_core::Class::Conflict) => {
                match self.existing_of(person_id, id).await? {
                    Some(a) => Ok(a),
                    None => Err(e),
                }
            }
            r => r,
        }
    }

    /// The application under this id, if it is this person's (another's: not found).
    async fn existing_of(&self, person_id: &str, id: &str) -> Result<Option<Application>> {
        match self.application_of(id).await {
            Ok(a) if a.person_id == person_id => Ok(Some(a)),
            Ok(_) => Err(Error::not_found("application")),
            Err(e) if matches!(e.code.class(), yizhan_core::Class::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn apply_as(
        &self,
        person_id: &str,
        service_id: &str,
        answers: &serde_json::Value,
        hold_id: Option<&str>,
        chosen_id: Option<&str>,
    ) -> Result<Application> {
        let service = self.visible_service(service_id).await?;
        let form = service.parsed_form()?;
        let kept = form.validate(answers)?;
        self.check_uploads(person_id, service_id, &form, &kept).await?;
        let appointment_id = match (service.delivery, &service.booking_service_id, hold_id) {
            (Delivery::Payment, _, _) => return Err(Error::new(codes::PAY_IN_BILLS, "city.apply.pay_in_bills")),
            (Delivery::Appointment, _, Some(_)) if service.two_people => {
                return Err(Error::field("partner_login", "city.partner.required"))
            }
            (Delivery::Appointment, Some(bs), Some(hold_id)) => {
                let hold = self.booking.get_hold(hold_id).await?;
                if &hold.service_id != bs || hold.person_id != person_id {
                    return Err(Error::not_found("booking_hold"));
                }
                self.booking.book(person_id, hold_id).await?.id
            }
            (Delivery::Appointment, _, _) => return Err(Error::field("hold_id", "city.apply.hold_required")),
            (Delivery::Application, _, _) => String::new(),
        };
        let id = chosen_id.map(str::to_string).unwrap_or_else(|| self.ctx.new_id());
        let now = self.ctx.now_ms();
        let deposit_state = match &self.deposits {
            Some(d) if service.deposit_fen > 0 => {
                let perk = service.deposit_perk.as_str();
                if !perk.is_empty() && d.waived(person_id, &service.org_id, perk).await? {
                    "waived"
                } else {
                    "holding"
                }
            }
            _ => "none",
        };
        let fee_due = self.fees.is_some() && service.delivery == Delivery::Application && service.fee_fen > 0;
        // Money is taken after the row is written (as pending), so a crash
        // in between leaves an application its person sees and the sweep
        // finishes, never money held for nothing anyone can see.
        let pending = deposit_state == "holding" || fee_due;
        let answers_json = serde_json::to_string(&kept).map_err(Error::internal)?;
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO city_applications ({APPLICATION_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $8, $9, $10, $11, $12)"
        ))
        .bind(&id)
        .bind(service_id)
        .bind(&service.org_id)
        .bind(person_id)
        .bind(if pending { "pending" } else { "submitted" })
        .bind(&answers_json)
        .bind(&appointment_id)
        .bind(now)
        .bind(if deposit_state == "none" { 0 } else { service.deposit_fen })
        .bind(deposit_state)
        .bind(if fee_due { service.fee_fen } else { 0 })
        .bind(if fee_due { "charging" } else { "none" })
        .execute(tx.conn())
        .await?;
        if !pending {
            insert_event(&mut tx, &self.ctx, &id, Status::Submitted, person_id, "").await?;
            // The draft it came from, if any, is done with.
            sqlx::query("DELETE FROM city_drafts WHERE person_id = $1 AND service_id = $2")
                .bind(person_id)
                .bind(service_id)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        if pending {
            self.finish(&id).await?;
        } else {
            self.tell(person_id, &id, Status::Submitted).await;
        }
        self.application_of(&id).await
    }

    /// Takes a pending application's deposit and fee (each once, under the
    /// application's references) and submits it. A wallet that refuses undoes
    /// what was taken and removes the application (the refusal is returned);
    /// a failure to ask leaves it pending for [`CityHall::sweep`].
    async fn finish(&self, id: &str) -> Result<()> {
        let a = self.application_of(id).await?;
        if a.status != Status::Pending {
            return Ok(());
        }
        let paid = async {
            if let (Some(d), "holding") = (&self.deposits, a.deposit_state.as_str()) {
                d.hold(&a.person_id, &a.org_id, a.deposit_fen, &deposit_ref(id)).await?;
            }
            if let (Some(f), "charging") = (&self.fees, a.fee_state.as_str()) {
                f.charge(&a.person_id, &a.org_id, a.fee_fen, &fee_ref(id)).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        match paid {
            Ok(()) => {}
            Err(e) if refused(&e) => {
                self.undo_pending(&a).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        let failing =
            self.faults.fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                n.checked_sub(1)
            });
        if failing.is_ok() {
            return Err(Error::internal(anyhow::anyhow!("injected failure after the payment")));
        }
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query(
            "UPDATE city_applications SET status = 'submitted', updated_at_ms = $2, \
             deposit_state = CASE WHEN deposit_state = 'holding' THEN 'held' ELSE deposit_state END, \
             fee_state = CASE WHEN fee_state = 'charging' THEN 'paid' ELSE fee_state END \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(self.ctx.now_ms())
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(());
        }
        insert_event(&mut tx, &self.ctx, id, Status::Submitted, &a.person_id, "").await?;
        sqlx::query("DELETE FROM city_drafts WHERE person_id = $1 AND service_id = $2")
            .bind(&a.person_id)
            .bind(&a.service_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.tell(&a.person_id, id, Status::Submitted).await;
        Ok(())
    }

    /// A pending application the wallet refused: what was taken goes back
    /// (each call once, nothing when nothing was taken), then the row goes.
    async fn undo_pending(&self, a: &Application) -> Result<()> {
        if let (Some(d), "holding") = (&self.deposits, a.deposit_state.as_str()) {
            d.release(&deposit_ref(&a.id)).await?;
        }
        if let (Some(f), "charging") = (&self.fees, a.fee_state.as_str()) {
            f.refund(&a.person_id, &a.org_id, &fee_ref(&a.id)).await?;
        }
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query("DELETE FROM city_applications WHERE id = $1 AND status = 'pending'")
            .bind(&a.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    /// Finishes applications left pending (a crash or a wallet that did not
    /// answer between the payment and the write), at most 100 per call, each
    /// once it is older than [`PENDING_GRACE_MS`]: paid (each movement once)
    /// and submitted, or undone when the wallet now refuses.
    pub async fn sweep(&self) -> Result<u64> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM city_applications WHERE status = 'pending' AND updated_at_ms <= $1 \
             ORDER BY updated_at_ms LIMIT 100",
        )
        .bind(self.ctx.now_ms() - PENDING_GRACE_MS)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        let mut n = 0;
        for id in &ids {
            match self.finish(id).await {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::warn!(code = %e.code, error = %e.msg, application = %id, "pending application not finished")
                }
            }
        }
        Ok(n)
    }

    /// Whether the person's account may be deleted as far as city services
    /// go: not while a deposit is held for them (what was lent must come
    /// back first, and the deposit with it) or an application is being paid.
    pub async fn check_deletable(&self, person_id: &str) -> Result<()> {
        let held: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM city_applications WHERE person_id = $1 \
             AND (deposit_state IN ('held', 'holding') OR status = 'pending')",
        )
        .bind(person_id)
        .fetch_one(&self.ctx.db.pool)
        .await?;
        if held > 0 {
            return Err(Error::new(codes::DEPOSIT_HELD, "city.delete.deposit_held").with("count", Arg::Int(held)));
        }
        Ok(())
    }

    async fn tell(&self, person_id: &str, application_id: &str, status: Status) {
        let msg = Message {
            kind: "city.application".to_string(),
            title: Msg::new("city.notice.title"),
            body: Msg::new("city.notice.status").key_arg("status", format!("city.status.{}", status.as_str())),
            target: Some(Target::new("application", application_id)),
        };
        // The change is committed; a notice that fails is logged, not undone.
        if let Err(e) = self.notify.send(person_id, None, msg).await {
            tracing::warn!(code = %e.code, error = %e.msg, "application notice not stored");
        }
    }

    pub(crate) async fn application_of(&self, id: &str) -> Result<Application> {
        let row: Option<ApplicationRow> =
            sqlx::query_as(&format!("SELECT {APPLICATION_COLS} FROM city_applications WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("application"))?.try_into()
    }

    /// The organisation an application is to (for the caller to check staff).
    pub async fn application_org(&self, id: &str) -> Result<String> {
        let org: Option<String> = sqlx::query_scalar("SELECT org_id FROM city_applications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        org.ok_or_else(|| Error::not_found("application"))
    }

    /// Not found unless the application is to this organisation (nothing of it is returned).
    pub async fn require_in_org(&self, org_id: &str, id: &str) -> Result<()> {
        let org: Option<String> = sqlx::query_scalar("SELECT org_id FROM city_applications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        match org {
            Some(o) if o == org_id => Ok(()),
            _ => Err(Error::not_found("application")),
        }
    }

    /// The resident's own application.
    pub async fn my_application(&self, person_id: &str, id: &str) -> Result<Application> {
        let a = self.application_of(id).await?;
        if a.person_id != person_id {
            return Err(Error::not_found("application"));
        }
        Ok(a)
    }

    /// The status history of my application, oldest first (at most 100 changes).
    pub async fn my_application_history(&self, person_id: &str, id: &str) -> Result<Vec<Event>> {
        self.my_application(person_id, id).await?;
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT status, note, at_ms FROM city_application_events WHERE application_id = $1 \
             ORDER BY at_ms, id LIMIT 100",
        )
        .bind(id)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        Ok(rows.into_iter().map(|(status, note, at_ms)| Event { status, note, at_ms }).collect())
    }

    pub async fn my_applications(&self, person_id: &str, limit: i64) -> Result<Vec<Application>> {
        let rows: Vec<ApplicationRow> = sqlx::query_as(&format!(
            "SELECT {APPLICATION_COLS} FROM city_applications WHERE person_id = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2"
        ))
        .bind(person_id)
        .bind(limit.clamp(1, MAX_LISTED))
        .fetch_all(&self.ctx.db.pool)
        .await?;
        rows.into_iter().map(Application::try_from).collect()
    }

    /// A department's queue: open applications first, oldest first.
    pub async fn queue(&self, actor: &Principal, org_id: &str, limit: i64) -> Result<Vec<QueueItem>> {
        self.identity.require_staff(actor, org_id, Role::Operator).await?;
        let items: Vec<QueueItem> = sqlx::query_as(
            "SELECT id, service_id, status, created_at_ms, updated_at_ms, deposit_state FROM city_applications \
             WHERE org_id = $1 AND status <> 'pending' \
             ORDER BY CASE WHEN status IN ('rejected', 'completed') THEN 1 ELSE 0 END, created_at_ms, id LIMIT $2",
        )
        .bind(org_id)
        .bind(limit.clamp(1, MAX_LISTED))
        .fetch_all(&self.ctx.db.pool)
        .await?;
        Ok(items)
    }

    /// Staff open an application: written to the resident's access log first.
    pub async fn staff_read(&self, actor: &Principal, id: &str, why: &str) -> Result<Application> {
        if why.trim().is_empty() {
            return Err(Error::field("why", "city.read.why_required"));
        }
        let a = self.application_of(id).await?;
        let member = self.identity.require_staff(actor, &a.org_id, Role::Operator).await?;
        let org = self.identity.org(&a.org_id).await?;
        self.audit
            .record(NewAccess {
                subject_user_id: a.person_id.clone(),
                actor_user_id: actor.user_id.clone(),
                actor_label: member.user_name,
                org_id: Some(org.id),
                org_label: Some(org.name),
                what: "application".to_string(),
                why: why.to_string(),
            })
            .await?;
        Ok(a)
    }

    /// Staff move an application on; the resident is told.
    pub async fn set_status(&self, actor: &Principal, id: &str, to: Status, note: &str) -> Result<Application> {
        let a = self.application_of(id).await?;
        self.identity.require_staff(actor, &a.org_id, Role::Operator).await?;
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(Error::field("note", "city.note.too_long").with("max", Arg::Int(MAX_NOTE_CHARS as i64)));
        }
        if to == Status::MoreInfoNeeded && note.trim().is_empty() {
            return Err(Error::field("note", "city.note.required"));
        }
        self.move_status(&a, to, &actor.user_id, note, None).await
    }

    /// Moves an application on (with new answers, when its person sends
    /// them) in one transaction, and tells its person.
    async fn move_status(
        &self,
        a: &Application,
        to: Status,
        actor_id: &str,
        note: &str,
        answers: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Application> {
        if !a.status.next().contains(&to) {
            return Err(Error::new(codes::WRONG_STATUS, "city.status.not_allowed")
                .with("from", Arg::Key(format!("city.status.{}", a.status.as_str())))
                .with("to", Arg::Key(format!("city.status.{}", to.as_str()))));
        }
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query(
            "UPDATE city_applications SET status = $2, note = $3, updated_at_ms = $4 WHERE id = $1 AND status = $5",
        )
        .bind(&a.id)
        .bind(to.as_str())
        .bind(note.trim())
        .bind(now)
        .bind(a.status.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::new(codes::WRONG_STATUS, "city.status.changed"));
        }
        if let Some(answers) = answers {
            sqlx::query("UPDATE city_applications SET answers = $2 WHERE id = $1")
                .bind(&a.id)
                .bind(serde_json::to_string(answers).map_err(Error::internal)?)
                .execute(tx.conn())
                .await?;
        }
        insert_event(&mut tx, &self.ctx, &a.id, to, actor_id, note.trim()).await?;
        tx.commit().await?;
        if to == Status::Rejected {
            self.give_deposit_back(&a.id).await?;
            self.give_fee_back(&a.id).await?;
        }
        self.tell(&a.person_id, &a.id, to).await;
        if to == Status::Completed && a.deposit_state == "held" {
            // What stays pending, said plainly: the deposit comes back with what was lent.
            let msg = Message {
                kind: "city.application".to_string(),
                title: Msg::new("city.notice.title"),
                body: Msg::new("city.notice.deposit_still_held"),
                target: Some(Target::new("application", &a.id)),
            };
            if let Err(e) = self.notify.send(&a.person_id, None, msg).await {
                tracing::warn!(code = %e.code, error = %e.msg, "deposit notice not stored");
            }
        }
        self.application_of(&a.id).await
    }

    /// Releases an application's deposit if one is held, and records it.
    async fn give_deposit_back(&self, id: &str) -> Result<bool> {
        let Some(d) = &self.deposits else { return Ok(false) };
        let state: Option<String> = sqlx::query_scalar("SELECT deposit_state FROM city_applications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        if state.as_deref() != Some("held") {
            return Ok(false);
        }
        d.release(&deposit_ref(id)).await?;
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query("UPDATE city_applications SET deposit_state = 'returned' WHERE id = $1 AND deposit_state = 'held'")
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives back an application's fee if one was paid, and records it.
    async fn give_fee_back(&self, id: &str) -> Result<bool> {
        let Some(f) = &self.fees else { return Ok(false) };
        let a = self.application_of(id).await?;
        if a.fee_state != "paid" {
            return Ok(false);
        }
        f.refund(&a.person_id, &a.org_id, &fee_ref(id)).await?;
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query("UPDATE city_applications SET fee_state = 'refunded' WHERE id = $1 AND fee_state = 'paid'")
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Staff take back what was lent (the library card): the deposit held
    /// is returned to the resident's wallet (once), and they are told.
    pub async fn return_deposit(&self, actor: &Principal, id: &str) -> Result<Application> {
        let a = self.application_of(id).await?;
        self.identity.require_staff(actor, &a.org_id, Role::Operator).await?;
        if a.deposit_state != "held" {
            return Err(Error::new(codes::NO_DEPOSIT, "city.deposit.none_held"));
        }
        if self.give_deposit_back(id).await? {
            let msg = Message {
                kind: "city.application".to_string(),
                title: Msg::new("city.notice.title"),
                body: Msg::new("city.notice.deposit_returned"),
                target: Some(Target::new("application", id)),
            };
            if let Err(e) = self.notify.send(&a.person_id, None, msg).await {
                tracing::warn!(code = %e.code, error = %e.msg, "deposit notice not stored");
            }
        }
        self.application_of(id).await
    }

    /// The resident answers a request for more information: the new answers
    /// replace the old and the application goes back to review, in one
    /// transaction (an application staff moved on meanwhile keeps its
    /// answers). The resident is told the new status, and the staff member
    /// who asked, while still on the department's staff, that it was answered.
    pub async fn resubmit(&self, person_id: &str, id: &str, answers: &serde_json::Value) -> Result<Application> {
        let a = self.my_application(person_id, id).await?;
        if a.status != Status::MoreInfoNeeded {
            return Err(Error::new(codes::WRONG_STATUS, "city.status.not_waiting_for_you"));
        }
        let form = self.service(&a.service_id).await?.parsed_form()?;
        let kept = form.validate(answers)?;
        self.check_uploads(person_id, &a.service_id, &form, &kept).await?;
        let asker = self.asker_of(id).await?;
        let moved = self.move_status(&a, Status::InReview, person_id, "", Some(&kept)).await?;
        if let Some(staff_id) = asker {
            self.tell_answered(&staff_id, &a.org_id, id).await;
        }
        Ok(moved)
    }

    /// Who asked for more information on the application last.
    async fn asker_of(&self, id: &str) -> Result<Option<String>> {
        let asker: Option<String> = sqlx::query_scalar(
            "SELECT actor_id FROM city_application_events WHERE application_id = $1 AND status = $2 \
             ORDER BY at_ms DESC, id DESC LIMIT 1",
        )
        .bind(id)
        .bind(Status::MoreInfoNeeded.as_str())
        .fetch_optional(&self.ctx.db.pool)
        .await?;
        Ok(asker.filter(|s| !s.is_empty()))
    }

    /// Tells a staff member that the information they asked for came (only
    /// while they still work the department's queue: nothing of the
    /// application is in the notice, its link leads to the logged read).
    async fn tell_answered(&self, staff_id: &str, org_id: &str, id: &str) {
        let on_staff = match self.identity.memberships(staff_id).await {
            Ok(ms) => ms.iter().any(|m| m.org_id == org_id && m.role.at_least(Role::Operator)),
            Err(e) => {
                tracing::warn!(code = %e.code, error = %e.msg, "staff of an answered application not found");
                false
            }
        };
        if !on_staff {
            return;
        }
        let msg = Message {
            kind: "city.application".to_string(),
            title: Msg::new("city.notice.title"),
            body: Msg::new("city.notice.answered"),
            target: Some(Target::new(STAFF_APPLICATION, id)),
        };
        if let Err(e) = self.notify.send(staff_id, None, msg).await {
            tracing::warn!(code = %e.code, error = %e.msg, "answered notice not stored");
        }
    }

    /// Everything kept about a person, for their export.
    pub async fn export_person(&self, person_id: &str) -> Result<serde_json::Value> {
        let apps = self.my_applications(person_id, MAX_LISTED).await?;
        let invitations = self.invitations(person_id, MAX_LISTED).await?;
        let drafts = self.drafts_of(person_id).await?;
        let uploads = self.uploads_of(person_id).await?;
        Ok(
            serde_json::json!({ "applications": apps, "invitations": invitations, "drafts": drafts, "uploads": uploads }),
        )
    }

    /// Deletes a person's applications and their history, drafts and uploaded files.
    pub async fn delete_person(&self, person_id: &str) -> Result<()> {
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(
            "DELETE FROM city_application_events WHERE application_id IN \
             (SELECT id FROM city_applications WHERE person_id = $1)",
        )
        .bind(person_id)
        .execute(tx.conn())
        .await?;
        for table in ["city_applications", "city_drafts", "city_uploads"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE person_id = $1"))
                .bind(person_id)
                .execute(tx.conn())
                .await?;
        }
        sqlx::query("DELETE FROM city_invitations WHERE inviter_id = $1 OR partner_id = $1")
            .bind(person_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }
}

pub(crate) async fn insert_event(
    tx: &mut yizhan_core::Tx,
    ctx: &Ctx,
    application_id: &str,
    status: Status,
    actor_id: &str,
    note: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO city_application_events (id, application_id, status, actor_id, note, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ctx.new_id())
    .bind(application_id)
    .bind(status.as_str())
    .bind(actor_id)
    .bind(note)
    .bind(ctx.now_ms())
    .execute(tx.conn())
    .await?;
    Ok(())
}
