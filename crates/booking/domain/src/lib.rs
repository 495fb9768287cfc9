//! The booking engine every capability that hands out places at a time
//! shares: a city's service counter, a hospital's doctor, a tour.
//!
//! A *service* carries the rules an operator sets (hold length, one booking
//! per person per day or week, release time, closing and cancellation
//! deadlines, no-show policy, walk-in places kept back, fee, first come or
//! lottery). Its *resources* have weekly hours and closures; publishing
//! materialises *slots* with a capacity. A person finds a slot, *holds* a
//! place (which expires and frees it), then *books* it; an appointment is
//! cancelled before the deadline, checked in (a queue number) and fulfilled,
//! or marked a no-show. Statuses follow FHIR (Slot: free, busy,
//! busy-tentative; Appointment: pending, booked, arrived, fulfilled,
//! cancelled, noshow).
//!
//! Capacity holds under any concurrency because a place is taken only by one
//! conditional `UPDATE … SET remaining = remaining - 1 WHERE remaining > 0`
//! inside the transaction that writes the hold (a row lock on PostgreSQL, the
//! write permit on SQLite), and "one per person per period" by a primary key
//! on the person's claim, written in the same transaction.
//!
//! Times of day are China time (UTC+8, no daylight saving). The engine knows
//! no person, organisation or page: ids are opaque strings, and what should
//! be told to people comes out as [`Event`]s the caller delivers.

pub mod codes;
pub mod ics;
pub mod lottery;

use serde::{Deserialize, Serialize};
use yizhan_core::{Arg, Ctx, Error, MigrationSet, Result, Tx};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "booking",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_booking.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_fees_parties.sql")),
        ("0003", include_str!("../migrations/sqlite/0003_reminders_feeds.sql")),
        ("0004", include_str!("../migrations/sqlite/0004_lottery_tickets.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_booking.sql")),
        ("0002", include_str!("../migrations/postgres/0002_fees_parties.sql")),
        ("0003", include_str!("../migrations/postgres/0003_reminders_feeds.sql")),
        ("0004", include_str!("../migrations/postgres/0004_lottery_tickets.sql")),
    ],
};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// China Standard Time is UTC+8 all year.
pub const CST_OFFSET_MS: i64 = 8 * HOUR_MS;

/// The most days one publish call materialises, and one slot listing spans.
pub const MAX_RANGE_DAYS: i64 = 62;
pub const MAX_SLOTS_LISTED: i64 = 1000;
pub const MAX_APPOINTMENTS_LISTED: i64 = 500;
/// Expired holds freed per sweep call.
pub const SWEEP_BATCH: i64 = 500;
/// Reminders sent per sweep call (of each kind).
pub const REMINDER_BATCH: i64 = 500;
/// Appointments a calendar feed lists at most.
pub const MAX_FEED_EVENTS: i64 = 200;

/// The local (China) day number of an instant: days since 1970-01-01.
pub fn local_day(ms: i64) -> i64 {
    (ms + CST_OFFSET_MS).div_euclid(DAY_MS)
}

/// The instant a local day starts.
pub fn day_start_ms(day: i64) -> i64 {
    day * DAY_MS - CST_OFFSET_MS
}

/// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// How often one person may book a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerPerson {
    /// One place per slot, any number of slots.
    Slot,
    Day,
    Week,
}

impl PerPerson {
    fn as_str(self) -> &'static str {
        match self {
            PerPerson::Slot => "slot",
            PerPerson::Day => "day",
            PerPerson::Week => "week",
        }
    }

    fn parse(s: &str) -> PerPerson {
        match s {
            "day" => PerPerson::Day,
            "week" => PerPerson::Week,
            _ => PerPerson::Slot,
        }
    }

    /// The period a booking of this slot counts against.
    fn period_key(self, slot: &Slot) -> String {
        let day = local_day(slot.start_ms);
        match self {
            PerPerson::Slot => format!("s{}", slot.id),
            PerPerson::Day => format!("d{day}"),
            // Weeks start on Monday: day + 3 is a multiple of 7 on Mondays.
            PerPerson::Week => format!("w{}", (day + 3).div_euclid(7)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    FirstCome,
    Lottery,
}

/// The rules an operator sets for one bookable service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// How long a hold keeps a place while the person fills in a form or pays.
    pub hold_ms: i64,
    pub per_person: PerPerson,
    /// Slots of day D open at `release_minute` (China time) of day D - days.
    pub release_days_ahead: i64,
    pub release_minute: i64,
    /// Booking closes this long before a slot starts.
    pub close_before_ms: i64,
    /// Cancelling is possible until this long before a slot starts.
    pub cancel_before_ms: i64,
    /// `noshow_limit` no-shows within `noshow_window_ms` block booking for
    /// `noshow_block_ms`; a limit of 0 means no policy.
    pub noshow_limit: i64,
    pub noshow_window_ms: i64,
    pub noshow_block_ms: i64,
    /// Places of each slot kept back for walk-ins (never offered online).
    pub walkin_places: i64,
    pub fee_fen: i64,
    pub allocation: Allocation,
    /// For a lottery: how long requests are gathered after the release.
    pub lottery_window_ms: i64,
    /// How long a person offered a freed place from the waiting list has to accept.
    pub offer_ms: i64,
}

impl Default for Rules {
    /// A counter's usual rules: 10-minute holds, one per day, released at
    /// 07:00 seven days ahead, cancel until 2 hours before, three no-shows
    /// in 90 days block for 90 days.
    fn default() -> Rules {
        Rules {
            hold_ms: 10 * MINUTE_MS,
            per_person: PerPerson::Day,
            release_days_ahead: 7,
            release_minute: 7 * 60,
            close_before_ms: 0,
            cancel_before_ms: 2 * HOUR_MS,
            noshow_limit: 3,
            noshow_window_ms: 90 * DAY_MS,
            noshow_block_ms: 90 * DAY_MS,
            walkin_places: 0,
            fee_fen: 0,
            allocation: Allocation::FirstCome,
            lottery_window_ms: 10 * MINUTE_MS,
            offer_ms: 30 * MINUTE_MS,
        }
    }
}

impl Rules {
    fn validate(&self) -> Result<()> {
        let mut bad = Vec::new();
        let mut check = |ok: bool, field: &str, key: &str| {
            if !ok {
                bad.push(yizhan_core::FieldError::new(field, yizhan_core::Msg::new(key)));
            }
        };
        check((MINUTE_MS..=DAY_MS).contains(&self.hold_ms), "hold_ms", "booking.rules.hold");
        check((0..=90).contains(&self.release_days_ahead), "release_days_ahead", "booking.rules.days_ahead");
        check((0..24 * 60).contains(&self.release_minute), "release_minute", "booking.rules.minute");
        check((0..=30 * DAY_MS).contains(&self.close_before_ms), "close_before_ms", "booking.rules.duration");
        check((0..=30 * DAY_MS).contains(&self.cancel_before_ms), "cancel_before_ms", "booking.rules.duration");
        check((0..=100).contains(&self.noshow_limit), "noshow_limit", "booking.rules.noshow");
        check((0..=730 * DAY_MS).contains(&self.noshow_window_ms), "noshow_window_ms", "booking.rules.duration");
        check((0..=730 * DAY_MS).contains(&self.noshow_block_ms), "noshow_block_ms", "booking.rules.duration");
        check((0..=10_000).contains(&self.walkin_places), "walkin_places", "booking.rules.places");
        check((0..=100_000_000).contains(&self.fee_fen), "fee_fen", "booking.rules.fee");
        check((0..=DAY_MS).contains(&self.lottery_window_ms), "lottery_window_ms", "booking.rules.duration");
        check((MINUTE_MS..=7 * DAY_MS).contains(&self.offer_ms), "offer_ms", "booking.rules.duration");
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::fields(bad))
        }
    }
}

/// Opening hours of a resource on one weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: i64,
    pub start_minute: i64,
    pub end_minute: i64,
    pub slot_minutes: i64,
    /// Places per slot (walk-in places included).
    pub capacity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub id: String,
    pub owner_id: String,
    pub rules: Rules,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub id: String,
    pub service_id: String,
    pub name: String,
}

/// FHIR Slot.status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SlotStatus {
    #[serde(rename = "free")]
    Free,
    #[serde(rename = "busy")]
    Busy,
    /// Every place is taken, some only by holds that may still expire.
    #[serde(rename = "busy-tentative")]
    BusyTentative,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Slot {
    pub id: String,
    pub service_id: String,
    pub resource_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub capacity: i64,
    /// Capacity less the walk-in places.
    pub online_capacity: i64,
    pub remaining: i64,
    pub release_at_ms: i64,
    /// For a lottery, the seed of its draw, published with the slot.
    pub lottery_seed: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    #[serde(flatten)]
    pub slot: Slot,
    pub status: SlotStatus,
    pub released: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Hold {
    pub id: String,
    pub slot_id: String,
    pub service_id: String,
    pub person_id: String,
    pub expires_at_ms: i64,
}

/// FHIR Appointment.status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Pending,
    Booked,
    Arrived,
    Fulfilled,
    Cancelled,
    Noshow,
}

impl AppointmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Pending => "pending",
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Arrived => "arrived",
            AppointmentStatus::Fulfilled => "fulfilled",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::Noshow => "noshow",
        }
    }

    fn parse(s: &str) -> Result<AppointmentStatus> {
        Ok(match s {
            "pending" => AppointmentStatus::Pending,
            "booked" => AppointmentStatus::Booked,
            "arrived" => AppointmentStatus::Arrived,
            "fulfilled" => AppointmentStatus::Fulfilled,
            "cancelled" => AppointmentStatus::Cancelled,
            "noshow" => AppointmentStatus::Noshow,
            other => return Err(Error::internal(anyhow::anyhow!("unknown appointment status {other}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appointment {
    pub id: String,
    pub slot_id: String,
    pub service_id: String,
    pub resource_id: String,
    pub person_id: String,
    pub status: AppointmentStatus,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The number handed out at check-in (0 before).
    pub queue_no: i64,
    pub fee_fen: i64,
    /// Where the fee stands: none (no fee taken through the engine), paid,
    /// charge_due (a drawn place, its fee being charged), unpaid (a drawn
    /// place its wallet could not pay: cancelled and passed on), refund_due
    /// (cancelled in time, the refund not yet confirmed), refunded.
    pub fee_state: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct AppointmentRow {
    id: String,
    slot_id: String,
    service_id: String,
    resource_id: String,
    person_id: String,
    status: String,
    start_ms: i64,
    end_ms: i64,
    queue_no: i64,
    fee_fen: i64,
    fee_state: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl TryFrom<AppointmentRow> for Appointment {
    type Error = Error;
    fn try_from(r: AppointmentRow) -> Result<Appointment> {
        Ok(Appointment {
            status: AppointmentStatus::parse(&r.status)?,
            id: r.id,
            slot_id: r.slot_id,
            service_id: r.service_id,
            resource_id: r.resource_id,
            person_id: r.person_id,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            queue_no: r.queue_no,
            fee_fen: r.fee_fen,
            fee_state: r.fee_state,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        })
    }
}

const APPOINTMENT_COLS: &str = "id, slot_id, service_id, resource_id, person_id, status, start_ms, end_ms, queue_no, \
                                fee_fen, fee_state, created_at_ms, updated_at_ms";

#[derive(sqlx::FromRow)]
struct ServiceRow {
    id: String,
    owner_id: String,
    hold_ms: i64,
    per_person: String,
    release_days_ahead: i64,
    release_minute: i64,
    close_before_ms: i64,
    cancel_before_ms: i64,
    noshow_limit: i64,
    noshow_window_ms: i64,
    noshow_block_ms: i64,
    walkin_places: i64,
    fee_fen: i64,
    allocation: String,
    lottery_window_ms: i64,
    offer_ms: i64,
    created_at_ms: i64,
}

impl From<ServiceRow> for Service {
    fn from(r: ServiceRow) -> Service {
        Service {
            id: r.id,
            owner_id: r.owner_id,
            rules: Rules {
                hold_ms: r.hold_ms,
                per_person: PerPerson::parse(&r.per_person),
                release_days_ahead: r.release_days_ahead,
                release_minute: r.release_minute,
                close_before_ms: r.close_before_ms,
                cancel_before_ms: r.cancel_before_ms,
                noshow_limit: r.noshow_limit,
                noshow_window_ms: r.noshow_window_ms,
                noshow_block_ms: r.noshow_block_ms,
                walkin_places: r.walkin_places,
                fee_fen: r.fee_fen,
                allocation: if r.allocation == "lottery" { Allocation::Lottery } else { Allocation::FirstCome },
                lottery_window_ms: r.lottery_window_ms,
                offer_ms: r.offer_ms,
            },
            created_at_ms: r.created_at_ms,
        }
    }
}

const SLOT_COLS: &str =
    "id, service_id, resource_id, start_ms, end_ms, capacity, online_capacity, remaining, release_at_ms, lottery_seed";

/// A person's place on a slot's waiting list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitEntry {
    pub slot_id: String,
    /// waiting, offered (a place is held for them until the offer's
    /// deadline), accepted, declined, lapsed (the offer ran out), passed
    /// (they had booked the same period elsewhere).
    pub state: String,
    /// 1 for the first waiting; 0 once no longer waiting.
    pub position: i64,
    /// The hold that is the offer: book it before `offer_expires_at_ms` to accept.
    pub hold_id: Option<String>,
    pub offer_expires_at_ms: Option<i64>,
}

/// What the engine has to tell people, handed to [`Events`] after the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A freed place was offered to the first on the waiting list: the hold
    /// is theirs until `expires_at_ms`.
    Offered { person_id: String, slot_id: String, hold_id: String, expires_at_ms: i64 },
    /// A lottery drew this person.
    Drawn { person_id: String, appointment_id: String },
    /// A lottery did not draw this person.
    NotDrawn { person_id: String, slot_id: String },
    /// A lottery drew this person but the fee could not be paid from their
    /// wallet: the place went to the next drawn.
    DrawnUnpaid { person_id: String, slot_id: String },
    /// Too many no-shows: booking this service is blocked until `until_ms`.
    Blocked { person_id: String, service_id: String, until_ms: i64 },
    /// A booked appointment starts soon: the day before, or an hour before.
    Reminder { person_id: String, appointment_id: String, service_id: String, start_ms: i64, kind: ReminderKind },
}

/// Which reminder of an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// Sent from 24 hours before the start (to those who booked earlier than that).
    Day,
    /// Sent from an hour before the start.
    Hour,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::Day => "day",
            ReminderKind::Hour => "hour",
        }
    }
}

/// Where the engine's events go (the app delivers them as notifications).
pub trait Events: Send + Sync + 'static {
    fn emit(&self, event: Event);
}

/// Drops every event: for tools and tests that do not tell anyone.
pub struct NoEvents;
impl Events for NoEvents {
    fn emit(&self, _event: Event) {}
}

/// Who takes a service's fee from a person for the service's owner, and
/// gives it back: the engine knows no wallet, the app wires one. Both calls
/// must be idempotent per `reference`: the engine may call them again after
/// a crash or a lost answer.
#[async_trait::async_trait]
pub trait Fees: Send + Sync + 'static {
    /// Take `fee_fen` from the person, paid to `owner_id`; once per `reference`.
    async fn charge(&self, person_id: &str, owner_id: &str, fee_fen: i64, reference: &str) -> Result<()>;
    /// Give back what `charge` took under `reference`: once, however often
    /// called; nothing when nothing was taken.
    async fn refund(&self, person_id: &str, owner_id: &str, reference: &str) -> Result<()>;
}

/// The reference a fee is charged under: the hold it was charged for.
fn fee_ref(hold_id: &str) -> String {
    format!("booking-hold:{hold_id}")
}

/// A refund the engine owes after its transaction commits.
struct Refund {
    person_id: String,
    service_id: String,
    reference: String,
    /// The appointment whose refund this settles, if any (else a hold's).
    appointment_id: Option<String>,
}

/// The booking engine: cheap to clone (one shared count), as a request's
/// state is cloned on every request.
#[derive(Clone)]
pub struct Booking(std::sync::Arc<Parts>);

/// What a [`Booking`] is made of, shared by its clones.
#[derive(Clone)]
pub struct Parts {
    ctx: Ctx,
    events: std::sync::Arc<dyn Events>,
    /// Takes fees (the wallet, wired by the app); none: fees are paid at the counter.
    fees: Option<std::sync::Arc<dyn Fees>>,
    /// Services by id: their rows never change once made, so every read
    /// after the first is answered here (a rush asks for the same one).
    services: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, Service>>>,
    /// Slots this process last saw full, and when (see [`FULL_HINT_MS`]).
    full_hints: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, FullHint>>>,
    /// (service, person, period) claims this process took or read, and when:
    /// a person in it asking for a slot hinted full is told "already booked"
    /// from memory while the claim is younger than [`FULL_HINT_MS`] (as the
    /// hint itself), and asks the database again after that.
    claimed_here: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<ClaimKey, i64>>>,
}

/// (service, person, period key) of a claim.
type ClaimKey = (String, String, String);

/// A slot seen with no place left and no hold that ran out, at `seen_at_ms`.
/// It may only answer "full" to a hold while it is younger than
/// [`FULL_HINT_MS`]; it never lets a hold through (the transaction decides).
#[derive(Clone)]
struct FullHint {
    slot: Slot,
    seen_at_ms: i64,
}

/// How long a slot seen full is answered "full" from memory, without a read:
/// a place freed by another process (or a hold that ran out) is offered again
/// at most this long after. Places freed in this process drop the hint at once.
pub const FULL_HINT_MS: i64 = 300;
/// Full slots remembered at most (the hints start again when full).
const FULL_HINTS_KEPT: usize = 10_000;
/// Claims remembered at most for the full-slot answer (starts again when full).
const CLAIMS_REMEMBERED: usize = 100_000;

/// Services remembered at most (the cache starts again when full).
const SERVICES_CACHED: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Published {
    pub slots: u64,
}

impl std::ops::Deref for Booking {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Booking {
    pub fn new(ctx: Ctx) -> Booking {
        Booking(std::sync::Arc::new(Parts {
            ctx,
            events: std::sync::Arc::new(NoEvents),
            fees: None,
            services: Default::default(),
            full_hints: Default::default(),
            claimed_here: Default::default(),
        }))
    }

    /// Fees are taken when a place is booked and given back on a cancellation in time.
    pub fn with_fees(mut self, fees: std::sync::Arc<dyn Fees>) -> Booking {
        std::sync::Arc::make_mut(&mut self.0).fees = Some(fees);
        self
    }

    /// Whether fees are taken by the engine (else paid at the counter).
    pub fn takes_fees(&self) -> bool {
        self.fees.is_some()
    }

    /// Settles refunds owed: each through the fees seam, then marked done on
    /// its appointment. One that fails stays due (a later cancel call or
    /// [`Booking::sweep`] tries again) and is logged.
    async fn settle(&self, refunds: Vec<Refund>) {
        let Some(fees) = &self.fees else { return };
        for r in refunds {
            let done = async {
                let owner = self.service(&r.service_id).await?.owner_id;
                fees.refund(&r.person_id, &owner, &r.reference).await?;
                if let Some(appt) = &r.appointment_id {
                    let mut tx = self.ctx.db.begin().await?;
                    sqlx::query(
                        "UPDATE booking_appointments SET fee_state = 'refunded' WHERE id = $1 AND fee_state = 'refund_due'",
                    )
                    .bind(appt)
                    .execute(tx.conn())
                    .await?;
                    tx.commit().await?;
                }
                Ok::<(), Error>(())
            }
            .await;
            if let Err(e) = done {
                tracing::warn!(code = %e.code, error = %e.msg, reference = %r.reference, "fee refund not made yet");
            }
        }
    }

    pub fn with_events(mut self, events: std::sync::Arc<dyn Events>) -> Booking {
        std::sync::Arc::make_mut(&mut self.0).events = events;
        self
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn emit_all(&self, events: Vec<Event>) {
        for e in events {
            self.events.emit(e);
        }
    }

    // ---- services, resources, schedules -------------------------------------------------

    /// A new bookable service owned by `owner_id` (an organisation, for the caller to check).
    pub async fn create_service(&self, owner_id: &str, rules: &Rules) -> Result<Service> {
        rules.validate()?;
        if owner_id.is_empty() || owner_id.len() > 64 {
            return Err(Error::field("owner_id", "booking.owner.invalid"));
        }
        let id = self.ctx.new_id();
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(
            "INSERT INTO booking_services (id, owner_id, hold_ms, per_person, release_days_ahead, release_minute, \
             close_before_ms, cancel_before_ms, noshow_limit, noshow_window_ms, noshow_block_ms, walkin_places, \
             fee_fen, allocation, lottery_window_ms, offer_ms, created_at_ms) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
        )
        .bind(&id)
        .bind(owner_id)
        .bind(rules.hold_ms)
        .bind(rules.per_person.as_str())
        .bind(rules.release_days_ahead)
        .bind(rules.release_minute)
        .bind(rules.close_before_ms)
        .bind(rules.cancel_before_ms)
        .bind(rules.noshow_limit)
        .bind(rules.noshow_window_ms)
        .bind(rules.noshow_block_ms)
        .bind(rules.walkin_places)
        .bind(rules.fee_fen)
        .bind(match rules.allocation {
            Allocation::FirstCome => "first_come",
            Allocation::Lottery => "lottery",
        })
        .bind(rules.lottery_window_ms)
        .bind(rules.offer_ms)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Service { id, owner_id: owner_id.to_string(), rules: rules.clone(), created_at_ms: now })
    }

    pub async fn service(&self, id: &str) -> Result<Service> {
        if let Some(s) = self.services.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(s);
        }
        let row: Option<ServiceRow> = sqlx::query_as(
            "SELECT id, owner_id, hold_ms, per_person, release_days_ahead, release_minute, close_before_ms, \
             cancel_before_ms, noshow_limit, noshow_window_ms, noshow_block_ms, walkin_places, fee_fen, allocation, \
             lottery_window_ms, offer_ms, created_at_ms FROM booking_services WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.ctx.db.pool)
        .await?;
        let service: Service = row.ok_or_else(|| Error::not_found("booking_service"))?.into();
        if let Ok(mut m) = self.services.write() {
            if m.len() >= SERVICES_CACHED {
                m.clear();
            }
            m.insert(service.id.clone(), service.clone());
        }
        Ok(service)
    }

    /// A resource of a service with its weekly hours.
    pub async fn add_resource(&self, service_id: &str, name: &str, hours: &[Hours]) -> Result<Resource> {
        self.service(service_id).await?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::field("name", "booking.resource.name"));
        }
        if hours.is_empty() || hours.len() > 50 {
            return Err(Error::field("hours", "booking.hours.count"));
        }
        for (i, h) in hours.iter().enumerate() {
            let ok = (0..7).contains(&h.weekday)
                && (0..24 * 60).contains(&h.start_minute)
                && h.end_minute > h.start_minute
                && h.end_minute <= 24 * 60
                && (5..=24 * 60).contains(&h.slot_minutes)
                && (1..=10_000).contains(&h.capacity);
            if !ok {
                return Err(Error::field(&format!("hours[{i}]"), "booking.hours.invalid"));
            }
        }
        let id = self.ctx.new_id();
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query("INSERT INTO booking_resources (id, service_id, name, created_at_ms) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(service_id)
            .bind(name)
            .bind(self.ctx.now_ms())
            .execute(tx.conn())
            .await?;
        for h in hours {
            sqlx::query(
                "INSERT INTO booking_hours (resource_id, weekday, start_minute, end_minute, slot_minutes, capacity) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&id)
            .bind(h.weekday)
            .bind(h.start_minute)
            .bind(h.end_minute)
            .bind(h.slot_minutes)
            .bind(h.capacity)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await?;
        Ok(Resource { id, service_id: service_id.to_string(), name: name.to_string() })
    }

    pub async fn resources(&self, service_id: &str) -> Result<Vec<Resource>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, name FROM booking_resources WHERE service_id = $1 ORDER BY id LIMIT 100")
                .bind(service_id)
                .fetch_all(&self.ctx.db.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, name)| Resource { id, service_id: service_id.to_string(), name }).collect())
    }

    /// Closes a resource on a local day from `start_minute` to `end_minute`
    /// (0..1440 for a holiday). Slots already published in that time with no
    /// place taken are withdrawn; taken ones stay (the operator calls those people).
    pub async fn add_closure(&self, resource_id: &str, day: i64, start_minute: i64, end_minute: i64) -> Result<u64> {
        if !(0..24 * 60).contains(&start_minute) || end_minute <= start_minute || end_minute > 24 * 60 {
            return Err(Error::field("end_minute", "booking.closure.invalid"));
        }
        let from_ms = day_start_ms(day) + start_minute * MINUTE_MS;
        let to_ms = day_start_ms(day) + end_minute * MINUTE_MS;
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(
            "INSERT INTO booking_closures (resource_id, day, start_minute, end_minute) VALUES ($1, $2, $3, $4)",
        )
        .bind(resource_id)
        .bind(day)
        .bind(start_minute)
        .bind(end_minute)
        .execute(tx.conn())
        .await?;
        let withdrawn = sqlx::query(
            "DELETE FROM booking_slots WHERE resource_id = $1 AND start_ms < $3 AND end_ms > $2 \
             AND remaining = online_capacity \
             AND NOT EXISTS (SELECT 1 FROM booking_lottery_entries e WHERE e.slot_id = booking_slots.id)",
        )
        .bind(resource_id)
        .bind(from_ms)
        .bind(to_ms)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(withdrawn)
    }

    /// Materialises the slots of local days `from_day..=to_day` from the
    /// hours, less the closures. Running it again adds nothing twice.
    pub async fn publish(&self, service_id: &str, from_day: i64, to_day: i64) -> Result<Published> {
        if to_day < from_day || to_day - from_day >= MAX_RANGE_DAYS {
            return Err(Error::field("to", "booking.range.invalid").with("max", Arg::Int(MAX_RANGE_DAYS)));
        }
        let service = self.service(service_id).await?;
        let rules = &service.rules;
        let resources = self.resources(service_id).await?;
        let mut made = 0u64;
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        for r in &resources {
            let hours: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT weekday, start_minute, end_minute, slot_minutes, capacity FROM booking_hours \
                 WHERE resource_id = $1 ORDER BY weekday, start_minute",
            )
            .bind(&r.id)
            .fetch_all(tx.conn())
            .await?;
            let closures: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT day, start_minute, end_minute FROM booking_closures WHERE resource_id = $1 \
                 AND day >= $2 AND day <= $3",
            )
            .bind(&r.id)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(tx.conn())
            .await?;
            for day in from_day..=to_day {
                let release_at_ms = day_start_ms(day - rules.release_days_ahead) + rules.release_minute * MINUTE_MS;
                for &(wd, start_min, end_min, len_min, capacity) in &hours {
                    if wd != weekday(day) {
                        continue;
                    }
                    let mut m = start_min;
                    while m + len_min <= end_min {
                        let closed = closures.iter().any(|&(d, cs, ce)| d == day && cs < m + len_min && ce > m);
                        if !closed {
                            let online = (capacity - rules.walkin_places).max(0);
                            let seed = match rules.allocation {
                                Allocation::Lottery => self.ctx.rng.hex(16),
                                Allocation::FirstCome => String::new(),
                            };
                            made += sqlx::query(
                                "INSERT INTO booking_slots (id, service_id, resource_id, start_ms, end_ms, capacity, \
                                 online_capacity, remaining, release_at_ms, lottery_seed, created_at_ms) \
                                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT (resource_id, start_ms) DO NOTHING",
                            )
                            .bind(self.ctx.new_id())
                            .bind(service_id)
                            .bind(&r.id)
                            .bind(day_start_ms(day) + m * MINUTE_MS)
                            .bind(day_start_ms(day) + (m + len_min) * MINUTE_MS)
                            .bind(capacity)
                            .bind(online)
                            .bind(online)
                            .bind(release_at_ms)
                            .bind(seed)
                            .bind(now)
                            .execute(tx.conn())
                            .await?
                            .rows_affected();
                        }
                        m += len_min;
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(Published { slots: made })
    }

    // ---- finding ------------------------------------------------------------------------

    pub async fn slot(&self, id: &str) -> Result<Slot> {
        let row: Option<Slot> = sqlx::query_as(&format!("SELECT {SLOT_COLS} FROM booking_slots WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        row.ok_or_else(|| Error::not_found("slot"))
    }

    /// The slots of a service starting in `[from_ms, to_ms)`, with their status.
    pub async fn slots(&self, service_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<SlotView>> {
        if to_ms <= from_ms || to_ms - from_ms > MAX_RANGE_DAYS * DAY_MS {
            return Err(Error::field("to", "booking.range.invalid").with("max", Arg::Int(MAX_RANGE_DAYS)));
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            slot: Slot,
            held: i64,
        }
        let now = self.ctx.now_ms();
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {SLOT_COLS}, (SELECT COUNT(*) FROM booking_holds h WHERE h.slot_id = booking_slots.id \
             AND h.state = 'active' AND h.expires_at_ms > $4) AS held \
             FROM booking_slots WHERE service_id = $1 AND start_ms >= $2 AND start_ms < $3 \
             ORDER BY start_ms, resource_id LIMIT {MAX_SLOTS_LISTED}"
        ))
        .bind(service_id)
        .bind(from_ms)
        .bind(to_ms)
        .bind(now)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let status = if r.slot.remaining > 0 {
                    SlotStatus::Free
                } else if r.held > 0 {
                    SlotStatus::BusyTentative
                } else {
                    SlotStatus::Busy
                };
                let released = now >= r.slot.release_at_ms;
                SlotView { slot: r.slot, status, released }
            })
            .collect())
    }

    /// When the person is blocked from booking the service (after no-shows), if they are.
    pub async fn blocked_until(&self, service_id: &str, person_id: &str) -> Result<Option<i64>> {
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT until_ms FROM booking_blocks WHERE service_id = $1 AND person_id = $2 AND until_ms > $3",
        )
        .bind(service_id)
        .bind(person_id)
        .bind(self.ctx.now_ms())
        .fetch_optional(&self.ctx.db.pool)
        .await?;
        Ok(until)
    }

    /// Whether the slot can be asked for now, by this person.
    async fn check_open(&self, service: &Service, slot: &Slot, person_id: &str) -> Result<()> {
        check_times(service, slot, self.ctx.now_ms())?;
        if let Some(until) = self.blocked_until(&service.id, person_id).await? {
            return Err(Error::new(codes::BLOCKED, "booking.blocked").with("until", Arg::Time(until)));
        }
        Ok(())
    }

    // ---- the full-slot hint ---------------------------------------------------------------

    /// The slot, if this process saw it full less than [`FULL_HINT_MS`] ago.
    fn hinted_full(&self, slot_id: &str, now: i64) -> Option<Slot> {
        let hints = self.full_hints.read().ok()?;
        let h = hints.get(slot_id)?;
        (now >= h.seen_at_ms && now - h.seen_at_ms < FULL_HINT_MS).then(|| h.slot.clone())
    }

    /// What a read or a write just learnt of the slot's places (at `now`).
    fn note_places(&self, slot: &Slot, remaining: i64, now: i64) {
        let Ok(mut hints) = self.full_hints.write() else { return };
        if remaining > 0 {
            hints.remove(&slot.id);
            return;
        }
        if hints.len() >= FULL_HINTS_KEPT {
            hints.clear();
        }
        hints.insert(slot.id.clone(), FullHint { slot: Slot { remaining, ..slot.clone() }, seen_at_ms: now });
    }

    /// What this process just learnt of a person's claim on a period: taken
    /// at `at`, or (`None`) given up.
    fn remember_claim(&self, service_id: &str, person_id: &str, period_key: &str, at: Option<i64>) {
        let Ok(mut c) = self.claimed_here.write() else { return };
        let key = (service_id.to_string(), person_id.to_string(), period_key.to_string());
        match at {
            Some(at) => {
                if c.len() >= CLAIMS_REMEMBERED {
                    c.clear();
                }
                c.insert(key, at);
            }
            None => {
                c.remove(&key);
            }
        }
    }

    /// A place of the slot may be free again: the next hold reads it.
    fn forget_full(&self, slot_id: &str) {
        if let Ok(mut hints) = self.full_hints.write() {
            hints.remove(slot_id);
        }
    }

    // ---- hold and book ------------------------------------------------------------------

    /// Takes a place in a slot for the person, for the service's hold length.
    pub async fn hold(&self, person_id: &str, slot_id: &str) -> Result<Hold> {
        let now = self.ctx.now_ms();
        // A slot seen full a moment ago is answered from memory: no read, no
        // write (a rush asks for the same few full slots thousands of times).
        if let Some(slot) = self.hinted_full(slot_id, now) {
            let service = self.service(&slot.service_id).await?;
            if lottery::asking(&service, &slot, now) {
                return Err(Error::new(codes::LOTTERY_ONLY, "booking.lottery_only"));
            }
            check_times(&service, &slot, now)?;
            // Someone who holds or booked a place for the period here is told
            // so rather than "full" (a claim taken by another process, or a
            // block, reads as full: the slot is full for them too).
            let key = (service.id.clone(), person_id.to_string(), service.rules.per_person.period_key(&slot));
            let seen = self.claimed_here.read().ok().and_then(|c| c.get(&key).copied());
            if let Some(at) = seen {
                if now >= at && now - at < FULL_HINT_MS {
                    return Err(Error::new(codes::ALREADY_BOOKED, "booking.already_booked"));
                }
                let (claimed,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM booking_claims WHERE service_id = $1 AND person_id = $2 AND period_key = $3",
                )
                .bind(&key.0)
                .bind(&key.1)
                .bind(&key.2)
                .fetch_one(&self.ctx.db.pool)
                .await?;
                self.remember_claim(&key.0, &key.1, &key.2, (claimed > 0).then_some(now));
                if claimed > 0 {
                    return Err(Error::new(codes::ALREADY_BOOKED, "booking.already_booked"));
                }
            }
            return Err(Error::new(codes::FULL, "booking.full"));
        }
        let slot = self.slot(slot_id).await?;
        let service = self.service(&slot.service_id).await?;
        if lottery::asking(&service, &slot, now) {
            return Err(Error::new(codes::LOTTERY_ONLY, "booking.lottery_only"));
        }
        check_times(&service, &slot, now)?;
        // A lottery slot is drawn first: what the draw leaves, or frees later, goes first come.
        let slot = if service.rules.allocation == Allocation::Lottery { self.drawn_slot(slot_id).await? } else { slot };
        let period_key = service.rules.per_person.period_key(&slot);
        // Answers that need no write, read in one query before taking the
        // write lock, so a rush on a full slot queues no transactions: a
        // block after no-shows, the person's claim on the period, and a slot
        // with no place and no hold that ran out. The claim and the place are
        // checked again under the lock when the read lets the attempt through.
        let (blocked_until, claimed, expired): (Option<i64>, i64, i64) = sqlx::query_as(
            "SELECT (SELECT MAX(until_ms) FROM booking_blocks WHERE service_id = $1 AND person_id = $2 \
             AND until_ms > $5), (SELECT COUNT(*) FROM booking_claims WHERE service_id = $1 AND person_id = $2 \
             AND period_key = $3), (SELECT COUNT(*) FROM booking_holds WHERE slot_id = $4 AND state = 'active' \
             AND expires_at_ms <= $5)",
        )
        .bind(&service.id)
        .bind(person_id)
        .bind(&period_key)
        .bind(slot_id)
        .bind(now)
        .fetch_one(&self.ctx.db.pool)
        .await?;
        if let Some(until) = blocked_until {
            return Err(Error::new(codes::BLOCKED, "booking.blocked").with("until", Arg::Time(until)));
        }
        if claimed > 0 {
            return Err(Error::new(codes::ALREADY_BOOKED, "booking.already_booked"));
        }
        if slot.remaining <= 0 && expired == 0 {
            self.note_places(&slot, 0, now);
            return Err(Error::new(codes::FULL, "booking.full"));
        }
        let hold_id = self.ctx.new_id();
        let mut events = Vec::new();
        let mut refunds = Vec::new();
        // A hold commits without waiting for the disk (`begin_relaxed`): a
        // killed process loses nothing, and the booking that follows it (or
        // any durable commit) flushes it with its own, as both engines log in
        // commit order. A power failure may lose a hold nothing durable
        // followed: its place was never booked and its person holds again.
        // So the rush's holds do not queue behind an fsync each.
        let mut tx = self.ctx.db.begin_relaxed().await?;
        // A place held by someone whose hold ran out is free again first
        // (none did when the read above found none: holds made since run
        // out after `now`).
        if expired > 0 {
            self.expire_in(&mut tx, Some(slot_id), now, &mut events, &mut refunds).await?;
        }
        let claimed = claim(&mut tx, &service.id, person_id, &period_key, &hold_id).await?;
        if !claimed {
            return Err(Error::new(codes::ALREADY_BOOKED, "booking.already_booked"));
        }
        let left: Option<i64> = sqlx::query_scalar(
            "UPDATE booking_slots SET remaining = remaining - 1 WHERE id = $1 AND remaining > 0 RETURNING remaining",
        )
        .bind(slot_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some(left) = left else {
            // Dropping the transaction rolls the claim back (and any expiry:
            // none ran out, or a place would have been free).
            drop(tx);
            self.note_places(&slot, 0, now);
            return Err(Error::new(codes::FULL, "booking.full"));
        };
        let expires_at_ms = now + service.rules.hold_ms;
        insert_hold(&mut tx, &hold_id, &slot, person_id, &period_key, expires_at_ms, now).await?;
        tx.commit().await?;
        self.note_places(&slot, left, now);
        self.remember_claim(&service.id, person_id, &period_key, Some(now));
        self.emit_all(events);
        self.settle(refunds).await;
        Ok(Hold {
            id: hold_id,
            slot_id: slot.id,
            service_id: service.id,
            person_id: person_id.to_string(),
            expires_at_ms,
        })
    }

    pub async fn get_hold(&self, hold_id: &str) -> Result<Hold> {
        let h: Option<Hold> =
            sqlx::query_as("SELECT id, slot_id, service_id, person_id, expires_at_ms FROM booking_holds WHERE id = $1")
                .bind(hold_id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        h.ok_or_else(|| Error::not_found("booking_hold"))
    }

    /// Turns the person's live hold into a booked appointment.
    ///
    /// A service with a fee, when fees are wired: the hold is marked charged,
    /// the fee taken (under the hold's reference), then the place booked; if
    /// booking fails the fee is given back, and a charged hold that runs out
    /// has it given back by the sweep.
    pub async fn book(&self, person_id: &str, hold_id: &str) -> Result<Appointment> {
        self.book_for(person_id, hold_id, &[]).await
    }

    /// [`Booking::book`], the appointment also for `others` (at most 10): they
    /// see it among their appointments (one place is taken for all).
    pub async fn book_for(&self, person_id: &str, hold_id: &str, others: &[String]) -> Result<Appointment> {
        if others.len() > 10 || others.iter().any(|o| o == person_id || o.is_empty()) {
            return Err(Error::field("others", "booking.parties.invalid"));
        }
        let now = self.ctx.now_ms();
        let mut charged: Option<(String, String)> = None;
        if let Some(fees) = &self.fees {
            let h = self.get_hold(hold_id).await?;
            let service = self.service(&h.service_id).await?;
            if h.person_id == person_id && service.rules.fee_fen > 0 {
                let mut tx = self.ctx.db.begin().await?;
                let marked = sqlx::query(
                    "UPDATE booking_holds SET fee_state = 'charged' WHERE id = $1 AND person_id = $2 \
                     AND state = 'active' AND expires_at_ms > $3",
                )
                .bind(hold_id)
                .bind(person_id)
                .bind(now)
                .execute(tx.conn())
                .await?
                .rows_affected();
                tx.commit().await?;
                if marked > 0 {
                    let reference = fee_ref(hold_id);
                    fees.charge(person_id, &service.owner_id, service.rules.fee_fen, &reference).await?;
                    charged = Some((reference, service.id.clone()));
                }
            }
        }
        let mut tx = self.ctx.db.begin().await?;
        let used: Option<(String, String)> = sqlx::query_as(
            "UPDATE booking_holds SET state = 'used' WHERE id = $1 AND person_id = $2 AND state = 'active' \
             AND expires_at_ms > $3 RETURNING slot_id, period_key",
        )
        .bind(hold_id)
        .bind(person_id)
        .bind(now)
        .fetch_optional(tx.conn())
        .await?;
        let Some((slot_id, period_key)) = used else {
            drop(tx);
            if let Some((reference, service_id)) = charged {
                let r = Refund { person_id: person_id.to_string(), service_id, reference, appointment_id: None };
                self.settle(vec![r]).await;
            }
            let h = self.get_hold(hold_id).await?;
            if h.person_id != person_id {
                return Err(Error::not_found("booking_hold"));
            }
            return Err(Error::new(codes::HOLD_EXPIRED, "booking.hold_expired"));
        };
        let slot: Slot = sqlx::query_as(&format!("SELECT {SLOT_COLS} FROM booking_slots WHERE id = $1"))
            .bind(&slot_id)
            .fetch_one(tx.conn())
            .await?;
        let fee: i64 = sqlx::query_scalar("SELECT fee_fen FROM booking_services WHERE id = $1")
            .bind(&slot.service_id)
            .fetch_one(tx.conn())
            .await?;
        let appt = Appointment {
            id: self.ctx.new_id(),
            slot_id: slot.id.clone(),
            service_id: slot.service_id.clone(),
            resource_id: slot.resource_id.clone(),
            person_id: person_id.to_string(),
            status: AppointmentStatus::Booked,
            start_ms: slot.start_ms,
            end_ms: slot.end_ms,
            queue_no: 0,
            fee_fen: fee,
            fee_state: if charged.is_some() { "paid" } else { "none" }.to_string(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        let reference = charged.as_ref().map(|(r, _)| r.as_str()).unwrap_or("");
        insert_appointment(&mut tx, &appt, &period_key, reference).await?;
        for other in others {
            sqlx::query(
                "INSERT INTO booking_parties (appointment_id, person_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&appt.id)
            .bind(other)
            .execute(tx.conn())
            .await?;
        }
        sqlx::query(
            "UPDATE booking_claims SET holder_id = $1 WHERE service_id = $2 AND person_id = $3 AND period_key = $4",
        )
        .bind(&appt.id)
        .bind(&slot.service_id)
        .bind(person_id)
        .bind(&period_key)
        .execute(tx.conn())
        .await?;
        sqlx::query("UPDATE booking_waitlist SET state = 'accepted' WHERE hold_id = $1")
            .bind(hold_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(appt)
    }

    /// Gives a live hold back before it runs out (the person changed their mind).
    pub async fn release_hold(&self, person_id: &str, hold_id: &str) -> Result<()> {
        let mut events = Vec::new();
        let mut tx = self.ctx.db.begin().await?;
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "UPDATE booking_holds SET state = 'released' WHERE id = $1 AND person_id = $2 AND state = 'active' \
             RETURNING slot_id, service_id, period_key, fee_state",
        )
        .bind(hold_id)
        .bind(person_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some((slot_id, service_id, period_key, fee_state)) = row else {
            return Err(Error::not_found("booking_hold"));
        };
        let mut refunds = Vec::new();
        if fee_state == "charged" {
            refunds.push(Refund {
                person_id: person_id.to_string(),
                service_id: service_id.clone(),
                reference: fee_ref(hold_id),
                appointment_id: None,
            });
        }
        drop_claim(&mut tx, &service_id, person_id, &period_key, hold_id).await?;
        sqlx::query("UPDATE booking_waitlist SET state = 'declined' WHERE hold_id = $1")
            .bind(hold_id)
            .execute(tx.conn())
            .await?;
        self.free_place(&mut tx, &slot_id, self.ctx.now_ms(), &mut events).await?;
        tx.commit().await?;
        self.forget_full(&slot_id);
        self.remember_claim(&service_id, person_id, &period_key, None);
        self.emit_all(events);
        self.settle(refunds).await;
        Ok(())
    }

    /// Frees the places of holds that ran out (all slots), at most [`SWEEP_BATCH`] per call.
    /// Refunds still due (of charged holds that ran out, of appointments
    /// cancelled in time whose refund did not go through) are tried again.
    pub async fn sweep(&self) -> Result<u64> {
        let mut events = Vec::new();
        let mut refunds = Vec::new();
        let mut tx = self.ctx.db.begin().await?;
        let n = self.expire_in(&mut tx, None, self.ctx.now_ms(), &mut events, &mut refunds).await?;
        tx.commit().await?;
        self.emit_all(events);
        if self.fees.is_some() {
            let due: Vec<(String, String, String, String)> = sqlx::query_as(&format!(
                "SELECT id, person_id, service_id, fee_ref FROM booking_appointments WHERE fee_state = 'refund_due' \
                 ORDER BY updated_at_ms LIMIT {SWEEP_BATCH}"
            ))
            .fetch_all(&self.ctx.db.pool)
            .await?;
            refunds.extend(due.into_iter().map(|(id, person_id, service_id, reference)| Refund {
                person_id,
                service_id,
                reference,
                appointment_id: Some(id),
            }));
        }
        self.settle(refunds).await;
        self.draw_due().await?;
        self.collect_drawn_fees(None).await?;
        Ok(n)
    }

    async fn expire_in(
        &self,
        tx: &mut Tx,
        slot_id: Option<&str>,
        now: i64,
        events: &mut Vec<Event>,
        refunds: &mut Vec<Refund>,
    ) -> Result<u64> {
        let expired: Vec<(String, String, String, String, String, String)> = match slot_id {
            Some(slot_id) => {
                sqlx::query_as(
                    "UPDATE booking_holds SET state = 'expired' WHERE slot_id = $1 AND state = 'active' \
                     AND expires_at_ms <= $2 RETURNING id, slot_id, service_id, person_id, period_key, fee_state",
                )
                .bind(slot_id)
                .bind(now)
                .fetch_all(tx.conn())
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "UPDATE booking_holds SET state = 'expired' WHERE id IN (SELECT id FROM booking_holds \
                     WHERE state = 'active' AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT {SWEEP_BATCH}) \
                     AND state = 'active' RETURNING id, slot_id, service_id, person_id, period_key, fee_state"
                ))
                .bind(now)
                .fetch_all(tx.conn())
                .await?
            }
        };
        for (hold_id, slot_id, service_id, person_id, period_key, fee_state) in &expired {
            if fee_state == "charged" {
                refunds.push(Refund {
                    person_id: person_id.clone(),
                    service_id: service_id.clone(),
                    reference: fee_ref(hold_id),
                    appointment_id: None,
                });
            }
            drop_claim(tx, service_id, person_id, period_key, hold_id).await?;
            sqlx::query("UPDATE booking_waitlist SET state = 'lapsed' WHERE hold_id = $1")
                .bind(hold_id)
                .execute(tx.conn())
                .await?;
            self.free_place(tx, slot_id, now, events).await?;
        }
        Ok(expired.len() as u64)
    }

    /// A place of the slot is free again: it goes to the first on the waiting
    /// list who may still book (as a hold until the offer's deadline), or
    /// back to the slot.
    async fn free_place(&self, tx: &mut Tx, slot_id: &str, now: i64, events: &mut Vec<Event>) -> Result<()> {
        let slot: Slot = sqlx::query_as(&format!("SELECT {SLOT_COLS} FROM booking_slots WHERE id = $1"))
            .bind(slot_id)
            .fetch_one(tx.conn())
            .await?;
        let service_row: ServiceRow = sqlx::query_as(
            "SELECT id, owner_id, hold_ms, per_person, release_days_ahead, release_minute, close_before_ms, \
             cancel_before_ms, noshow_limit, noshow_window_ms, noshow_block_ms, walkin_places, fee_fen, allocation, \
             lottery_window_ms, offer_ms, created_at_ms FROM booking_services WHERE id = $1",
        )
        .bind(&slot.service_id)
        .fetch_one(tx.conn())
        .await?;
        let service: Service = service_row.into();
        let period_key = service.rules.per_person.period_key(&slot);
        let bookable = now < slot.start_ms - service.rules.close_before_ms;
        // Bounded: each waiter is looked at once; those who meanwhile booked
        // the same period elsewhere are passed over.
        for _ in 0..1000 {
            if !bookable {
                break;
            }
            let next: Option<(String, String)> = sqlx::query_as(
                "SELECT id, person_id FROM booking_waitlist WHERE slot_id = $1 AND state = 'waiting' \
                 ORDER BY created_at_ms, id LIMIT 1",
            )
            .bind(slot_id)
            .fetch_optional(tx.conn())
            .await?;
            let Some((entry_id, person_id)) = next else { break };
            let hold_id = self.ctx.new_id();
            let claimed = claim(tx, &service.id, &person_id, &period_key, &hold_id).await?;
            if !claimed {
                sqlx::query("UPDATE booking_waitlist SET state = 'passed' WHERE id = $1")
                    .bind(&entry_id)
                    .execute(tx.conn())
                    .await?;
                continue;
            }
            let expires_at_ms = (now + service.rules.offer_ms).min(slot.start_ms - service.rules.close_before_ms);
            insert_hold(tx, &hold_id, &slot, &person_id, &period_key, expires_at_ms, now).await?;
            sqlx::query("UPDATE booking_waitlist SET state = 'offered', hold_id = $1 WHERE id = $2")
                .bind(&hold_id)
                .bind(&entry_id)
                .execute(tx.conn())
                .await?;
            events.push(Event::Offered { person_id, slot_id: slot_id.to_string(), hold_id, expires_at_ms });
            return Ok(());
        }
        sqlx::query("UPDATE booking_slots SET remaining = remaining + 1 WHERE id = $1 AND remaining < online_capacity")
            .bind(slot_id)
            .execute(tx.conn())
            .await?;
        // A hold reading the slot before the commit may see it full again:
        // release and cancel forget it once more after their commit; else
        // the stale hint lasts at most FULL_HINT_MS.
        self.forget_full(slot_id);
        Ok(())
    }

    // ---- waiting list -------------------------------------------------------------------

    /// Puts the person on the slot's waiting list (only when it is full).
    /// Returns their position.
    pub async fn join_waitlist(&self, person_id: &str, slot_id: &str) -> Result<i64> {
        let slot = self.slot(slot_id).await?;
        let service = self.service(&slot.service_id).await?;
        if lottery::asking(&service, &slot, self.ctx.now_ms()) {
            return Err(Error::new(codes::LOTTERY_ONLY, "booking.lottery_only"));
        }
        self.check_open(&service, &slot, person_id).await?;
        let slot = if service.rules.allocation == Allocation::Lottery { self.drawn_slot(slot_id).await? } else { slot };
        if slot.remaining > 0 {
            return Err(Error::new(codes::NOT_FULL, "booking.not_full"));
        }
        let mut tx = self.ctx.db.begin().await?;
        let added = sqlx::query(
            "INSERT INTO booking_waitlist (id, slot_id, person_id, state, hold_id, created_at_ms) \
             VALUES ($1, $2, $3, 'waiting', '', $4) ON CONFLICT (slot_id, person_id) DO NOTHING",
        )
        .bind(self.ctx.new_id())
        .bind(slot_id)
        .bind(person_id)
        .bind(self.ctx.now_ms())
        .execute(tx.conn())
        .await?
        .rows_affected();
        if added == 0 {
            return Err(Error::new(codes::ALREADY_WAITING, "booking.already_waiting"));
        }
        let position: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM booking_waitlist WHERE slot_id = $1 AND state = 'waiting'")
                .bind(slot_id)
                .fetch_one(tx.conn())
                .await?;
        tx.commit().await?;
        Ok(position)
    }

    /// Where the person stands on the slot's waiting list, if they joined it.
    pub async fn waitlist_entry(&self, person_id: &str, slot_id: &str) -> Result<Option<WaitEntry>> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, state, hold_id, created_at_ms FROM booking_waitlist WHERE slot_id = $1 AND person_id = $2",
        )
        .bind(slot_id)
        .bind(person_id)
        .fetch_optional(&self.ctx.db.pool)
        .await?;
        let Some((entry_id, state, hold_id, created_at_ms)) = row else { return Ok(None) };
        // In the order freed places are offered in.
        let position = if state == "waiting" {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM booking_waitlist WHERE slot_id = $1 AND state = 'waiting' \
                 AND (created_at_ms < $2 OR (created_at_ms = $2 AND id <= $3))",
            )
            .bind(slot_id)
            .bind(created_at_ms)
            .bind(&entry_id)
            .fetch_one(&self.ctx.db.pool)
            .await?
        } else {
            0
        };
        let (hold_id, offer_expires_at_ms) = if state == "offered" {
            let h = self.get_hold(&hold_id).await?;
            (Some(h.id), Some(h.expires_at_ms))
        } else {
            (None, None)
        };
        Ok(Some(WaitEntry { slot_id: slot_id.to_string(), state, position, hold_id, offer_expires_at_ms }))
    }

    // ---- after booking ------------------------------------------------------------------

    pub async fn appointment(&self, id: &str) -> Result<Appointment> {
        let row: Option<AppointmentRow> =
            sqlx::query_as(&format!("SELECT {APPOINTMENT_COLS} FROM booking_appointments WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        row.ok_or_else(|| Error::not_found("appointment"))?.try_into()
    }

    /// Whether the person booked the appointment or it is also for them.
    pub async fn is_party(&self, appointment: &Appointment, person_id: &str) -> Result<bool> {
        if appointment.person_id == person_id {
            return Ok(true);
        }
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM booking_parties WHERE appointment_id = $1 AND person_id = $2")
                .bind(&appointment.id)
                .bind(person_id)
                .fetch_one(&self.ctx.db.pool)
                .await?;
        Ok(n > 0)
    }

    /// The others an appointment is for, besides the person who booked it.
    pub async fn parties(&self, appointment_id: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT person_id FROM booking_parties WHERE appointment_id = $1 ORDER BY person_id LIMIT 20",
        )
        .bind(appointment_id)
        .fetch_all(&self.ctx.db.pool)
        .await?)
    }

    /// A person's appointments (booked by them or also for them), newest slot first.
    pub async fn person_appointments(&self, person_id: &str, limit: i64) -> Result<Vec<Appointment>> {
        let rows: Vec<AppointmentRow> = sqlx::query_as(&format!(
            "SELECT {APPOINTMENT_COLS} FROM booking_appointments WHERE person_id = $1 \
             OR id IN (SELECT appointment_id FROM booking_parties WHERE person_id = $1) \
             ORDER BY start_ms DESC, id DESC LIMIT $2"
        ))
        .bind(person_id)
        .bind(limit.clamp(1, MAX_APPOINTMENTS_LISTED))
        .fetch_all(&self.ctx.db.pool)
        .await?;
        rows.into_iter().map(Appointment::try_from).collect()
    }

    /// A service's appointments starting in `[from_ms, to_ms)` (a staff day list).
    pub async fn service_appointments(&self, service_id: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Appointment>> {
        let rows: Vec<AppointmentRow> = sqlx::query_as(&format!(
            "SELECT {APPOINTMENT_COLS} FROM booking_appointments WHERE service_id = $1 AND start_ms >= $2 \
             AND start_ms < $3 ORDER BY start_ms, id LIMIT {MAX_APPOINTMENTS_LISTED}"
        ))
        .bind(service_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        rows.into_iter().map(Appointment::try_from).collect()
    }

    /// The person cancels before the service's deadline; the place goes to
    /// the waiting list or back to the slot, and a fee taken is given back
    /// (once: calling again only finishes a refund that did not go through).
    pub async fn cancel(&self, person_id: &str, appointment_id: &str) -> Result<Appointment> {
        let appt = self.appointment(appointment_id).await?;
        if appt.person_id != person_id {
            return Err(Error::not_found("appointment"));
        }
        if appt.status == AppointmentStatus::Cancelled && appt.fee_state == "refund_due" {
            self.settle(vec![self.refund_of(&appt).await?]).await;
            return self.appointment(appointment_id).await;
        }
        let service = self.service(&appt.service_id).await?;
        let now = self.ctx.now_ms();
        let deadline = appt.start_ms - service.rules.cancel_before_ms;
        if appt.status == AppointmentStatus::Booked && now >= deadline {
            return Err(Error::new(codes::CANCEL_TOO_LATE, "booking.cancel_too_late").with("at", Arg::Time(deadline)));
        }
        let mut events = Vec::new();
        let mut tx = self.ctx.db.begin().await?;
        let period_key: Option<String> = sqlx::query_scalar(
            "UPDATE booking_appointments SET status = 'cancelled', updated_at_ms = $2, \
             fee_state = CASE WHEN fee_state IN ('paid', 'charge_due') THEN 'refund_due' ELSE fee_state END \
             WHERE id = $1 AND status = 'booked' RETURNING period_key",
        )
        .bind(appointment_id)
        .bind(now)
        .fetch_optional(tx.conn())
        .await?;
        let Some(period_key) = period_key else {
            return Err(Error::new(codes::WRONG_STATUS, "booking.wrong_status")
                .with("status", Arg::Key(format!("booking.status.{}", appt.status.as_str()))));
        };
        drop_claim(&mut tx, &appt.service_id, person_id, &period_key, appointment_id).await?;
        self.free_place(&mut tx, &appt.slot_id, now, &mut events).await?;
        tx.commit().await?;
        self.forget_full(&appt.slot_id);
        self.remember_claim(&appt.service_id, person_id, &period_key, None);
        self.emit_all(events);
        if appt.fee_state == "paid" || appt.fee_state == "charge_due" {
            self.settle(vec![self.refund_of(&appt).await?]).await;
        }
        self.appointment(appointment_id).await
    }

    async fn refund_of(&self, appt: &Appointment) -> Result<Refund> {
        let reference: String = sqlx::query_scalar("SELECT fee_ref FROM booking_appointments WHERE id = $1")
            .bind(&appt.id)
            .fetch_one(&self.ctx.db.pool)
            .await?;
        Ok(Refund {
            person_id: appt.person_id.clone(),
            service_id: appt.service_id.clone(),
            reference,
            appointment_id: Some(appt.id.clone()),
        })
    }

    /// The person arrived (staff at the counter): hands out the next queue
    /// number of the resource's day. Only on the appointment's day.
    pub async fn check_in(&self, appointment_id: &str) -> Result<Appointment> {
        let appt = self.appointment(appointment_id).await?;
        let now = self.ctx.now_ms();
        let day = local_day(appt.start_ms);
        if local_day(now) != day || now >= appt.end_ms {
            return Err(Error::new(codes::NOT_TODAY, "booking.check_in_not_now"));
        }
        let mut tx = self.ctx.db.begin().await?;
        let arrived = sqlx::query(
            "UPDATE booking_appointments SET status = 'arrived', updated_at_ms = $2 WHERE id = $1 AND status = 'booked'",
        )
        .bind(appointment_id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if arrived == 0 {
            return Err(Error::new(codes::WRONG_STATUS, "booking.wrong_status")
                .with("status", Arg::Key(format!("booking.status.{}", appt.status.as_str()))));
        }
        let no: i64 = sqlx::query_scalar(
            "INSERT INTO booking_queue_numbers (resource_id, day, last_no) VALUES ($1, $2, 1) \
             ON CONFLICT (resource_id, day) DO UPDATE SET last_no = booking_queue_numbers.last_no + 1 \
             RETURNING last_no",
        )
        .bind(&appt.resource_id)
        .bind(day)
        .fetch_one(tx.conn())
        .await?;
        sqlx::query("UPDATE booking_appointments SET queue_no = $2 WHERE id = $1")
            .bind(appointment_id)
            .bind(no)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.appointment(appointment_id).await
    }

    /// The visit took place (after check-in).
    pub async fn fulfil(&self, appointment_id: &str) -> Result<Appointment> {
        self.transition(appointment_id, "arrived", "fulfilled").await?;
        self.appointment(appointment_id).await
    }

    async fn transition(&self, appointment_id: &str, from: &str, to: &str) -> Result<()> {
        let appt = self.appointment(appointment_id).await?;
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query(
            "UPDATE booking_appointments SET status = $3, updated_at_ms = $4 WHERE id = $1 AND status = $2",
        )
        .bind(appointment_id)
        .bind(from)
        .bind(to)
        .bind(self.ctx.now_ms())
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::new(codes::WRONG_STATUS, "booking.wrong_status")
                .with("status", Arg::Key(format!("booking.status.{}", appt.status.as_str()))));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The person did not come (after the slot ended). Enough no-shows in the
    /// service's window block booking it for the block's length.
    pub async fn mark_no_show(&self, appointment_id: &str) -> Result<Appointment> {
        let appt = self.appointment(appointment_id).await?;
        let now = self.ctx.now_ms();
        if now < appt.end_ms {
            return Err(Error::new(codes::NOT_TODAY, "booking.no_show_too_early"));
        }
        let service = self.service(&appt.service_id).await?;
        let mut events = Vec::new();
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query(
            "UPDATE booking_appointments SET status = 'noshow', updated_at_ms = $2 WHERE id = $1 AND status = 'booked'",
        )
        .bind(appointment_id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::new(codes::WRONG_STATUS, "booking.wrong_status")
                .with("status", Arg::Key(format!("booking.status.{}", appt.status.as_str()))));
        }
        let r = &service.rules;
        if r.noshow_limit > 0 {
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM booking_appointments WHERE person_id = $1 AND service_id = $2 \
                 AND status = 'noshow' AND end_ms > $3",
            )
            .bind(&appt.person_id)
            .bind(&service.id)
            .bind(now - r.noshow_window_ms)
            .fetch_one(tx.conn())
            .await?;
            if count >= r.noshow_limit {
                let until_ms = now + r.noshow_block_ms;
                sqlx::query(
                    "INSERT INTO booking_blocks (service_id, person_id, until_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (service_id, person_id) DO UPDATE SET until_ms = $3",
                )
                .bind(&service.id)
                .bind(&appt.person_id)
                .bind(until_ms)
                .execute(tx.conn())
                .await?;
                events.push(Event::Blocked {
                    person_id: appt.person_id.clone(),
                    service_id: service.id.clone(),
                    until_ms,
                });
            }
        }
        tx.commit().await?;
        self.emit_all(events);
        self.appointment(appointment_id).await
    }

    // ---- reminders ----------------------------------------------------------------------

    /// Sends the reminders that are due now: the day before (from 24 hours
    /// before the start, to people who booked earlier than that, until an hour
    /// before) and an hour before (until the start), each at most once per
    /// appointment whatever the processes or restarts: a reminder is an
    /// [`Event::Reminder`] only for the process whose insert of its row in
    /// `booking_reminders` went in. At most [`REMINDER_BATCH`] of each kind
    /// per call (the next sweep takes the rest). Returns how many were sent.
    pub async fn send_due_reminders(&self) -> Result<u64> {
        let now = self.ctx.now_ms();
        let mut sent = 0;
        for (kind, from_ms, to_ms) in
            [(ReminderKind::Hour, now, now + HOUR_MS), (ReminderKind::Day, now + HOUR_MS, now + DAY_MS)]
        {
            // The day-before reminder goes to those who booked before its
            // window opened; the hour's to everyone (booked before the start).
            let booked_lead = if kind == ReminderKind::Day { DAY_MS } else { -DAY_MS };
            let due: Vec<(String, String, String, i64)> = sqlx::query_as(&format!(
                "SELECT a.id, a.person_id, a.service_id, a.start_ms FROM booking_appointments a \
                 WHERE a.status = 'booked' AND a.start_ms > $1 AND a.start_ms <= $2 \
                 AND a.created_at_ms <= a.start_ms - $4 \
                 AND NOT EXISTS (SELECT 1 FROM booking_reminders r WHERE r.appointment_id = a.id AND r.kind = $3) \
                 ORDER BY a.start_ms, a.id LIMIT {REMINDER_BATCH}"
            ))
            .bind(from_ms)
            .bind(to_ms)
            .bind(kind.as_str())
            .bind(booked_lead)
            .fetch_all(&self.ctx.db.pool)
            .await?;
            for (appointment_id, person_id, service_id, start_ms) in due {
                let won = sqlx::query(
                    "INSERT INTO booking_reminders (appointment_id, kind, sent_at_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (appointment_id, kind) DO NOTHING",
                )
                .bind(&appointment_id)
                .bind(kind.as_str())
                .bind(now)
                .execute(&self.ctx.db.pool)
                .await?
                .rows_affected();
                if won == 1 {
                    sent += 1;
                    // Everyone the appointment is for is reminded (a couple: both).
                    let others: Vec<String> = sqlx::query_scalar(
                        "SELECT person_id FROM booking_parties WHERE appointment_id = $1 ORDER BY person_id LIMIT 10",
                    )
                    .bind(&appointment_id)
                    .fetch_all(&self.ctx.db.pool)
                    .await?;
                    for person_id in std::iter::once(person_id).chain(others) {
                        let (appointment_id, service_id) = (appointment_id.clone(), service_id.clone());
                        self.events.emit(Event::Reminder { person_id, appointment_id, service_id, start_ms, kind });
                    }
                }
            }
        }
        Ok(sent)
    }

    /// The reminders sent for an appointment, in the order sent.
    pub async fn reminders_sent(&self, appointment_id: &str) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT kind, sent_at_ms FROM booking_reminders WHERE appointment_id = $1 ORDER BY sent_at_ms, kind",
        )
        .bind(appointment_id)
        .fetch_all(&self.ctx.db.pool)
        .await?)
    }

    // ---- calendar feed --------------------------------------------------------------------

    fn feed_hash(&self, token: &str) -> String {
        hex::encode(self.ctx.vault.mac("booking.feed", token.as_bytes()))
    }

    /// A new secret token for the person's calendar feed (the one before, if
    /// any, stops working). Only its keyed hash is stored: the token is shown
    /// once, here.
    pub async fn renew_feed(&self, person_id: &str) -> Result<String> {
        let token = self.ctx.rng.hex(24);
        let hash = self.feed_hash(&token);
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query("DELETE FROM booking_feeds WHERE person_id = $1").bind(person_id).execute(tx.conn()).await?;
        sqlx::query("INSERT INTO booking_feeds (person_id, token_hash, created_at_ms) VALUES ($1, $2, $3)")
            .bind(person_id)
            .bind(&hash)
            .bind(self.ctx.now_ms())
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Revokes the person's feed: its URL answers 404 from now on.
    pub async fn revoke_feed(&self, person_id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM booking_feeds WHERE person_id = $1")
            .bind(person_id)
            .execute(&self.ctx.db.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// When the person's live feed token was made, if there is one.
    pub async fn feed_created_at(&self, person_id: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT created_at_ms FROM booking_feeds WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(&self.ctx.db.pool)
            .await?)
    }

    /// The person a feed token belongs to (not found for anything else: an
    /// unknown, revoked or replaced token, or one of the wrong shape).
    pub async fn feed_person(&self, token: &str) -> Result<String> {
        if token.len() != 48 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::not_found("calendar_feed"));
        }
        let person: Option<String> = sqlx::query_scalar("SELECT person_id FROM booking_feeds WHERE token_hash = $1")
            .bind(self.feed_hash(token))
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        person.ok_or_else(|| Error::not_found("calendar_feed"))
    }

    /// What a feed lists: the person's appointments not yet over that are
    /// pending, booked or arrived, soonest first.
    pub async fn feed_appointments(&self, person_id: &str) -> Result<Vec<Appointment>> {
        let rows: Vec<AppointmentRow> = sqlx::query_as(&format!(
            "SELECT {APPOINTMENT_COLS} FROM booking_appointments \
             WHERE (person_id = $1 OR id IN (SELECT appointment_id FROM booking_parties WHERE person_id = $1)) \
             AND end_ms > $2 AND status IN ('pending', 'booked', 'arrived') ORDER BY start_ms, id LIMIT {MAX_FEED_EVENTS}"
        ))
        .bind(person_id)
        .bind(self.ctx.now_ms())
        .fetch_all(&self.ctx.db.pool)
        .await?;
        rows.into_iter().map(Appointment::try_from).collect()
    }

    // ---- account ------------------------------------------------------------------------

    /// Everything the engine keeps about a person, for their export.
    pub async fn export_person(&self, person_id: &str) -> Result<serde_json::Value> {
        let appts = self.person_appointments(person_id, MAX_APPOINTMENTS_LISTED).await?;
        let waiting: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT slot_id, state, created_at_ms FROM booking_waitlist WHERE person_id = $1 ORDER BY created_at_ms LIMIT 500",
        )
        .bind(person_id)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        Ok(serde_json::json!({
            "appointments": appts,
            "waiting_lists": waiting.iter().map(|(s, st, at)| serde_json::json!({"slot_id": s, "state": st, "created_at_ms": at})).collect::<Vec<_>>(),
        }))
    }

    /// Deletes a person's booking data: future places are given back first.
    pub async fn delete_person(&self, person_id: &str) -> Result<()> {
        let now = self.ctx.now_ms();
        let mut events = Vec::new();
        let mut tx = self.ctx.db.begin().await?;
        let future: Vec<String> = sqlx::query_scalar(
            "UPDATE booking_appointments SET status = 'cancelled', updated_at_ms = $2 WHERE person_id = $1 \
             AND status = 'booked' AND start_ms > $2 RETURNING slot_id",
        )
        .bind(person_id)
        .bind(now)
        .fetch_all(tx.conn())
        .await?;
        let held: Vec<String> = sqlx::query_scalar(
            "UPDATE booking_holds SET state = 'released' WHERE person_id = $1 AND state = 'active' RETURNING slot_id",
        )
        .bind(person_id)
        .fetch_all(tx.conn())
        .await?;
        for s in future.iter().chain(held.iter()) {
            self.free_place(&mut tx, s, now, &mut events).await?;
        }
        sqlx::query(
            "DELETE FROM booking_reminders WHERE appointment_id IN \
             (SELECT id FROM booking_appointments WHERE person_id = $1)",
        )
        .bind(person_id)
        .execute(tx.conn())
        .await?;
        for table in [
            "booking_feeds",
            "booking_appointments",
            "booking_holds",
            "booking_claims",
            "booking_blocks",
            "booking_waitlist",
            "booking_lottery_entries",
            "booking_parties",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE person_id = $1"))
                .bind(person_id)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        self.emit_all(events);
        Ok(())
    }
}

/// Whether the slot is open for asking at `now`: released, and not closed.
fn check_times(service: &Service, slot: &Slot, now: i64) -> Result<()> {
    if now < slot.release_at_ms {
        return Err(Error::new(codes::NOT_RELEASED, "booking.not_released").with("at", Arg::Time(slot.release_at_ms)));
    }
    if now >= slot.start_ms - service.rules.close_before_ms {
        return Err(Error::new(codes::CLOSED, "booking.closed"));
    }
    Ok(())
}

/// Claims the person's one place in a period for `holder_id` (a hold or an
/// appointment); false when they hold one already (the unique key decides,
/// under races too).
pub(crate) async fn claim(
    tx: &mut Tx,
    service_id: &str,
    person_id: &str,
    period_key: &str,
    holder_id: &str,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO booking_claims (service_id, person_id, period_key, holder_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (service_id, person_id, period_key) DO NOTHING",
    )
    .bind(service_id)
    .bind(person_id)
    .bind(period_key)
    .bind(holder_id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(n > 0)
}

async fn insert_hold(
    tx: &mut Tx,
    hold_id: &str,
    slot: &Slot,
    person_id: &str,
    period_key: &str,
    expires_at_ms: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO booking_holds (id, slot_id, service_id, person_id, period_key, state, expires_at_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)",
    )
    .bind(hold_id)
    .bind(&slot.id)
    .bind(&slot.service_id)
    .bind(person_id)
    .bind(period_key)
    .bind(expires_at_ms)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(())
}

async fn insert_appointment(tx: &mut Tx, a: &Appointment, period_key: &str, fee_ref: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO booking_appointments (id, slot_id, service_id, resource_id, person_id, status, period_key, \
         start_ms, end_ms, queue_no, fee_fen, created_at_ms, updated_at_ms, fee_state, fee_ref) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
    )
    .bind(&a.id)
    .bind(&a.slot_id)
    .bind(&a.service_id)
    .bind(&a.resource_id)
    .bind(&a.person_id)
    .bind(a.status.as_str())
    .bind(period_key)
    .bind(a.start_ms)
    .bind(a.end_ms)
    .bind(a.queue_no)
    .bind(a.fee_fen)
    .bind(a.created_at_ms)
    .bind(a.updated_at_ms)
    .bind(&a.fee_state)
    .bind(fee_ref)
    .execute(tx.conn())
    .await?;
    Ok(())
}

async fn drop_claim(tx: &mut Tx, service_id: &str, person_id: &str, period_key: &str, holder_id: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM booking_claims WHERE service_id = $1 AND person_id = $2 AND period_key = $3 AND holder_id = $4",
    )
    .bind(service_id)
    .bind(person_id)
    .bind(period_key)
    .bind(holder_id)
    .execute(tx.conn())
    .await?;
    Ok(())
}
