//! Fair release of scarce places: requests are gathered for a window after
//! the release, then drawn. The order is a pure function of the slot's seed
//! (published with the slot, before the window opens) and the sorted list
//! of who asked: each entrant's rank is SHA-256(seed, digest of all
//! entrants, entrant). Nobody can work out their rank before the window
//! closes (the digest is unknown until then), clicking fast gains nothing,
//! and anyone holding the published log can re-run the draw with [`replay`].
//!
//! The log names entries by ticket, not by person: each request gets a
//! random ticket that only its person is shown, so the draw is public and
//! checkable while who asked stays private.

use crate::{codes, insert_appointment, Appointment, AppointmentStatus, Booking, Event, Slot, SLOT_COLS};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use yizhan_core::{Arg, Class, Error, Result, Tx};

/// The most requests one slot's lottery takes.
pub const MAX_ENTRANTS: i64 = 100_000;

/// Everything needed to re-run a draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawLog {
    pub slot_id: String,
    pub seed: String,
    /// Places the draw gave out at most.
    pub places: i64,
    /// The tickets of the requests, sorted.
    pub entrants: Vec<String>,
    /// Tickets the draw passed over because their person had meanwhile
    /// booked the same period elsewhere (the rules allow one).
    pub skipped: Vec<String>,
    /// The tickets that got a place, in draw order.
    pub winners: Vec<String>,
    /// Tickets drawn whose fee their wallet could not pay: their place went
    /// to the next ticket in the draw order.
    #[serde(default)]
    pub unpaid: Vec<String>,
}

/// A lottery slot: what is published before, during and after the draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LotteryView {
    pub slot_id: String,
    /// Published with the slot, before the window opens.
    pub seed: String,
    pub start_ms: i64,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
    pub places: i64,
    pub entrants: i64,
    /// Whether the asking person entered.
    pub entered: bool,
    /// The asking person's ticket, to find in the log.
    pub my_ticket: Option<String>,
    /// After the draw, for a person who entered: whether they got a place.
    pub won: Option<bool>,
    /// Drawn, but the fee could not be paid from the wallet: the place went on.
    pub unpaid: bool,
    pub appointment_id: Option<String>,
    /// After the draw: the log anyone can re-run with [`replay`].
    pub log: Option<DrawLog>,
}

/// The draw order of `entrants` under `seed` (entrants in any order).
pub fn order(seed: &str, entrants: &[String]) -> Vec<String> {
    let mut sorted: Vec<String> = entrants.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut all = Sha256::new();
    for e in &sorted {
        all.update(e.as_bytes());
        all.update(b"\n");
    }
    let digest = hex::encode(all.finalize());
    let mut ranked: Vec<(String, String)> = sorted
        .into_iter()
        .map(|e| {
            let mut h = Sha256::new();
            h.update(seed.as_bytes());
            h.update(b":");
            h.update(digest.as_bytes());
            h.update(b":");
            h.update(e.as_bytes());
            (hex::encode(h.finalize()), e)
        })
        .collect();
    ranked.sort();
    ranked.into_iter().map(|(_, e)| e).collect()
}

/// The winners a log's seed, entrants, passed-over and unpaid entrants and places give.
pub fn replay(log: &DrawLog) -> Vec<String> {
    let places = usize::try_from(log.places.max(0)).unwrap_or(0);
    order(&log.seed, &log.entrants)
        .into_iter()
        .filter(|e| !log.skipped.contains(e) && !log.unpaid.contains(e))
        .take(places)
        .collect()
}

/// The reference a drawn place's fee is charged under: its appointment.
pub(crate) fn drawn_fee_ref(appointment_id: &str) -> String {
    format!("booking-appointment:{appointment_id}")
}

/// Whether a failed charge is the wallet's answer (not enough money, a limit,
/// a closed account) rather than a failure to ask that a retry may cure.
fn refused(e: &Error) -> bool {
    !matches!(e.code.class(), Class::Internal | Class::Unavailable | Class::UpstreamTimeout | Class::RateLimited)
}

/// Whether a slot's places are given by its lottery still (from before its
/// release until its request window closes): not held or waited for then.
/// Once the window has closed the slot is drawn, and the places the draw
/// leaves or frees later (a cancellation, a winner who could not pay with
/// no ticket left) are booked first come or offered to its waiting list.
pub(crate) fn asking(service: &crate::Service, slot: &Slot, now: i64) -> bool {
    service.rules.allocation == crate::Allocation::Lottery && now < slot.release_at_ms + service.rules.lottery_window_ms
}

impl Booking {
    /// A lottery slot whose window has closed, drawn (now, if nobody looked
    /// yet), as it stands after the draw.
    pub(crate) async fn drawn_slot(&self, slot_id: &str) -> Result<Slot> {
        self.draw(slot_id).await?;
        self.slot(slot_id).await
    }

    /// Asks for a place in a lottery slot, during its request window.
    pub async fn request_lottery(&self, person_id: &str, slot_id: &str) -> Result<()> {
        let slot = self.slot(slot_id).await?;
        let service = self.service(&slot.service_id).await?;
        if service.rules.allocation != crate::Allocation::Lottery {
            return Err(Error::new(codes::NOT_FULL, "booking.not_lottery"));
        }
        self.check_open(&service, &slot, person_id).await?;
        let now = self.ctx.now_ms();
        let closes = slot.release_at_ms + service.rules.lottery_window_ms;
        if now >= closes {
            return Err(Error::new(codes::LOTTERY_NOT_OPEN, "booking.lottery_closed").with("at", Arg::Time(closes)));
        }
        let mut tx = self.ctx.db.begin().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM booking_lottery_entries WHERE slot_id = $1")
            .bind(slot_id)
            .fetch_one(tx.conn())
            .await?;
        if count >= MAX_ENTRANTS {
            return Err(Error::new(codes::FULL, "booking.full"));
        }
        let added = sqlx::query(
            "INSERT INTO booking_lottery_entries (slot_id, person_id, created_at_ms, ticket) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slot_id, person_id) DO NOTHING",
        )
        .bind(slot_id)
        .bind(person_id)
        .bind(now)
        .bind(self.ctx.rng.hex(16))
        .execute(tx.conn())
        .await?
        .rows_affected();
        if added == 0 {
            return Err(Error::new(codes::ALREADY_REQUESTED, "booking.already_requested"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Draws a lottery slot once its window has closed; drawing again
    /// returns the same log.
    pub async fn draw(&self, slot_id: &str) -> Result<DrawLog> {
        if let Some(log) = self.draw_log(slot_id).await? {
            return Ok(log);
        }
        let slot = self.slot(slot_id).await?;
        let service = self.service(&slot.service_id).await?;
        let now = self.ctx.now_ms();
        let closes = slot.release_at_ms + service.rules.lottery_window_ms;
        if now < closes {
            return Err(Error::new(codes::LOTTERY_NOT_OPEN, "booking.lottery_not_drawn").with("at", Arg::Time(closes)));
        }
        let mut tx = self.ctx.db.begin().await?;
        let first = sqlx::query(
            "INSERT INTO booking_lottery_draws (slot_id, log, drawn_at_ms) VALUES ($1, '', $2) \
             ON CONFLICT (slot_id) DO NOTHING",
        )
        .bind(slot_id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if first == 0 {
            drop(tx);
            return self.draw_log(slot_id).await?.ok_or_else(|| Error::not_found("draw"));
        }
        let slot: Slot = sqlx::query_as(&format!("SELECT {SLOT_COLS} FROM booking_slots WHERE id = $1"))
            .bind(slot_id)
            .fetch_one(tx.conn())
            .await?;
        let entries: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT ticket, person_id FROM booking_lottery_entries WHERE slot_id = $1 ORDER BY ticket LIMIT {MAX_ENTRANTS}"
        ))
        .bind(slot_id)
        .fetch_all(tx.conn())
        .await?;
        let entrants: Vec<String> = entries.iter().map(|(t, _)| t.clone()).collect();
        let person_of: std::collections::HashMap<String, String> = entries.into_iter().collect();
        let period_key = service.rules.per_person.period_key(&slot);
        let mut places = slot.remaining;
        let mut log = DrawLog {
            slot_id: slot_id.to_string(),
            seed: slot.lottery_seed.clone(),
            places,
            entrants: entrants.clone(),
            skipped: Vec::new(),
            winners: Vec::new(),
            unpaid: Vec::new(),
        };
        // A fee is charged after the draw commits, per appointment; the place
        // is the winner's once paid (the notice follows the payment).
        let charged = self.fees.is_some() && service.rules.fee_fen > 0;
        let mut events = Vec::new();
        for ticket in order(&slot.lottery_seed, &entrants) {
            let Some(person) = person_of.get(&ticket).cloned() else { continue };
            if places == 0 {
                events.push(Event::NotDrawn { person_id: person, slot_id: slot_id.to_string() });
                continue;
            }
            let appt_id = self.ctx.new_id();
            let claimed = crate::claim(&mut tx, &service.id, &person, &period_key, &appt_id).await?;
            if !claimed {
                log.skipped.push(ticket);
                events.push(Event::NotDrawn { person_id: person, slot_id: slot_id.to_string() });
                continue;
            }
            insert_drawn(&mut tx, &slot, &service.rules, &appt_id, &person, &period_key, charged, now).await?;
            places -= 1;
            log.winners.push(ticket);
            if !charged {
                events.push(Event::Drawn { person_id: person, appointment_id: appt_id });
            }
        }
        sqlx::query("UPDATE booking_slots SET remaining = $2 WHERE id = $1")
            .bind(slot_id)
            .bind(places)
            .execute(tx.conn())
            .await?;
        let json = serde_json::to_string(&log).map_err(Error::internal)?;
        sqlx::query("UPDATE booking_lottery_draws SET log = $2 WHERE slot_id = $1")
            .bind(slot_id)
            .bind(json)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.emit_all(events);
        if charged {
            self.collect_drawn_fees(Some(slot_id)).await?;
            return self.draw_log(slot_id).await?.ok_or_else(|| Error::not_found("draw"));
        }
        Ok(log)
    }

    /// Charges the fees of drawn places not paid yet (of one slot, or all; at
    /// most [`crate::SWEEP_BATCH`] charges per call), each once under its
    /// appointment's reference. A winner whose wallet refuses loses the
    /// place to the next ticket in the draw order (the log records it); a
    /// charge that could not be asked stays due for the sweep.
    pub async fn collect_drawn_fees(&self, slot_id: Option<&str>) -> Result<u64> {
        let Some(fees) = self.fees.clone() else { return Ok(0) };
        let mut done = 0u64;
        let mut tried: std::collections::HashSet<String> = Default::default();
        while (done as i64) < crate::SWEEP_BATCH {
            let due: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(&format!(
                "SELECT id, slot_id, service_id, person_id, fee_fen, fee_ref FROM booking_appointments \
                 WHERE fee_state = 'charge_due' AND ($1 = '' OR slot_id = $1) ORDER BY created_at_ms, id LIMIT {}",
                crate::SWEEP_BATCH
            ))
            .bind(slot_id.unwrap_or(""))
            .fetch_all(&self.ctx.db.pool)
            .await?;
            let due: Vec<_> = due.into_iter().filter(|d| !tried.contains(&d.0)).collect();
            if due.is_empty() {
                break;
            }
            for (appt_id, slot, service_id, person, fee_fen, reference) in due {
                tried.insert(appt_id.clone());
                done += 1;
                let owner = self.service(&service_id).await?.owner_id;
                match fees.charge(&person, &owner, fee_fen, &reference).await {
                    Ok(()) => {
                        let mut tx = self.ctx.db.begin().await?;
                        let paid = sqlx::query(
                            "UPDATE booking_appointments SET fee_state = 'paid' WHERE id = $1 \
                             AND fee_state = 'charge_due' AND status = 'booked'",
                        )
                        .bind(&appt_id)
                        .execute(tx.conn())
                        .await?
                        .rows_affected();
                        tx.commit().await?;
                        if paid > 0 {
                            self.emit_all(vec![Event::Drawn { person_id: person, appointment_id: appt_id }]);
                        } else {
                            // Cancelled while the charge was on its way: given back.
                            let r = crate::Refund { person_id: person, service_id, reference, appointment_id: None };
                            self.settle(vec![r]).await;
                        }
                    }
                    Err(e) if refused(&e) => {
                        tracing::info!(code = %e.code, appointment = %appt_id, "drawn place not paid: passed on");
                        self.pass_on(&appt_id, &slot, &person).await?;
                    }
                    Err(e) => {
                        tracing::warn!(code = %e.code, error = %e.msg, appointment = %appt_id, "drawn fee not charged yet");
                    }
                }
            }
        }
        Ok(done)
    }

    /// A drawn place its winner could not pay: cancelled, and given to the
    /// next ticket in the draw order that may still book (its fee charged
    /// next), or, when none is left, freed as a cancelled booking's place is
    /// (`free_place`: offered to the slot's waiting list, else back to the
    /// slot for anyone to book first come).
    async fn pass_on(&self, appt_id: &str, slot_id: &str, person: &str) -> Result<()> {
        let now = self.ctx.now_ms();
        let mut events = Vec::new();
        let mut tx = self.ctx.db.begin().await?;
        let gone: Option<(String, String)> = sqlx::query_as(
            "UPDATE booking_appointments SET status = 'cancelled', fee_state = 'unpaid', updated_at_ms = $2 \
             WHERE id = $1 AND fee_state = 'charge_due' AND status = 'booked' RETURNING service_id, period_key",
        )
        .bind(appt_id)
        .bind(now)
        .fetch_optional(tx.conn())
        .await?;
        let Some((service_id, period_key)) = gone else { return Ok(()) };
        crate::drop_claim(&mut tx, &service_id, person, &period_key, appt_id).await?;
        events.push(Event::DrawnUnpaid { person_id: person.to_string(), slot_id: slot_id.to_string() });
        let json: String = sqlx::query_scalar("SELECT log FROM booking_lottery_draws WHERE slot_id = $1")
            .bind(slot_id)
            .fetch_one(tx.conn())
            .await?;
        let mut log: DrawLog = serde_json::from_str(&json).map_err(Error::internal)?;
        let entries: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT ticket, person_id FROM booking_lottery_entries WHERE slot_id = $1 ORDER BY ticket LIMIT {MAX_ENTRANTS}"
        ))
        .bind(slot_id)
        .fetch_all(tx.conn())
        .await?;
        if let Some((ticket, _)) = entries.iter().find(|(_, p)| p == person) {
            log.winners.retain(|w| w != ticket);
            log.unpaid.push(ticket.clone());
        }
        let person_of: std::collections::HashMap<String, String> = entries.into_iter().collect();
        let service = self.service(&service_id).await?;
        let slot: Slot = sqlx::query_as(&format!("SELECT {SLOT_COLS} FROM booking_slots WHERE id = $1"))
            .bind(slot_id)
            .fetch_one(tx.conn())
            .await?;
        let period_key = service.rules.per_person.period_key(&slot);
        let mut given = false;
        for ticket in order(&log.seed, &log.entrants) {
            if log.winners.contains(&ticket) || log.skipped.contains(&ticket) || log.unpaid.contains(&ticket) {
                continue;
            }
            let Some(next) = person_of.get(&ticket).cloned() else { continue };
            let next_id = self.ctx.new_id();
            let claimed = crate::claim(&mut tx, &service.id, &next, &period_key, &next_id).await?;
            if !claimed {
                log.skipped.push(ticket);
                continue;
            }
            insert_drawn(&mut tx, &slot, &service.rules, &next_id, &next, &period_key, true, now).await?;
            log.winners.push(ticket);
            given = true;
            break;
        }
        if !given {
            self.free_place(&mut tx, slot_id, now, &mut events).await?;
        }
        sqlx::query("UPDATE booking_lottery_draws SET log = $2 WHERE slot_id = $1")
            .bind(slot_id)
            .bind(serde_json::to_string(&log).map_err(Error::internal)?)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.emit_all(events);
        Ok(())
    }

    /// Draws the lottery slots whose request window has closed (at most 50 per call).
    pub async fn draw_due(&self) -> Result<u64> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT s.id FROM booking_slots s JOIN booking_services v ON v.id = s.service_id \
             WHERE v.allocation = 'lottery' AND s.release_at_ms + v.lottery_window_ms <= $1 \
             AND EXISTS (SELECT 1 FROM booking_lottery_entries e WHERE e.slot_id = s.id) \
             AND NOT EXISTS (SELECT 1 FROM booking_lottery_draws d WHERE d.slot_id = s.id) \
             ORDER BY s.release_at_ms LIMIT 50",
        )
        .bind(self.ctx.now_ms())
        .fetch_all(&self.ctx.db.pool)
        .await?;
        for slot_id in &due {
            self.draw(slot_id).await?;
        }
        Ok(due.len() as u64)
    }

    /// A lottery slot as anyone sees it (the seed, the window, how many
    /// asked, the log once drawn: a window that has closed is drawn now),
    /// and, for a person, whether they asked and what they got.
    pub async fn lottery_view(&self, slot_id: &str, person_id: Option<&str>) -> Result<LotteryView> {
        let slot = self.slot(slot_id).await?;
        let service = self.service(&slot.service_id).await?;
        if service.rules.allocation != crate::Allocation::Lottery {
            return Err(Error::new(codes::NOT_FULL, "booking.not_lottery"));
        }
        let closes_at_ms = slot.release_at_ms + service.rules.lottery_window_ms;
        let log = if self.ctx.now_ms() >= closes_at_ms { Some(self.draw(slot_id).await?) } else { None };
        let entrants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM booking_lottery_entries WHERE slot_id = $1")
            .bind(slot_id)
            .fetch_one(&self.ctx.db.pool)
            .await?;
        let (my_ticket, won, appointment_id, unpaid) = match person_id {
            Some(p) => {
                let ticket: Option<String> = sqlx::query_scalar(
                    "SELECT ticket FROM booking_lottery_entries WHERE slot_id = $1 AND person_id = $2",
                )
                .bind(slot_id)
                .bind(p)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
                let won = match (&log, &ticket) {
                    (Some(l), Some(t)) => Some(l.winners.contains(t)),
                    _ => None,
                };
                let unpaid = matches!((&log, &ticket), (Some(l), Some(t)) if l.unpaid.contains(t));
                let appointment_id: Option<String> = if won == Some(true) {
                    sqlx::query_scalar(
                        "SELECT id FROM booking_appointments WHERE slot_id = $1 AND person_id = $2 \
                         AND status <> 'cancelled' ORDER BY created_at_ms LIMIT 1",
                    )
                    .bind(slot_id)
                    .bind(p)
                    .fetch_optional(&self.ctx.db.pool)
                    .await?
                } else {
                    None
                };
                (ticket, won, appointment_id, unpaid)
            }
            None => (None, None, None, false),
        };
        Ok(LotteryView {
            slot_id: slot.id,
            seed: slot.lottery_seed,
            start_ms: slot.start_ms,
            opens_at_ms: slot.release_at_ms,
            closes_at_ms,
            places: slot.online_capacity,
            entrants,
            entered: my_ticket.is_some(),
            my_ticket,
            won,
            unpaid,
            appointment_id,
            log,
        })
    }

    /// The published log of a slot's draw, once drawn.
    pub async fn draw_log(&self, slot_id: &str) -> Result<Option<DrawLog>> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT log FROM booking_lottery_draws WHERE slot_id = $1 AND log <> ''")
                .bind(slot_id)
                .fetch_optional(&self.ctx.db.pool)
                .await?;
        json.map(|j| serde_json::from_str(&j).map_err(Error::internal)).transpose()
    }
}

/// A drawn place's appointment: booked, its fee (when the engine takes
/// fees) due under the appointment's own reference.
#[allow(clippy::too_many_arguments)]
async fn insert_drawn(
    tx: &mut Tx,
    slot: &Slot,
    rules: &crate::Rules,
    appt_id: &str,
    person: &str,
    period_key: &str,
    charged: bool,
    now: i64,
) -> Result<()> {
    let appt = Appointment {
        id: appt_id.to_string(),
        slot_id: slot.id.clone(),
        service_id: slot.service_id.clone(),
        resource_id: slot.resource_id.clone(),
        person_id: person.to_string(),
        status: AppointmentStatus::Booked,
        start_ms: slot.start_ms,
        end_ms: slot.end_ms,
        queue_no: 0,
        fee_fen: rules.fee_fen,
        fee_state: if charged { "charge_due" } else { "none" }.to_string(),
        created_at_ms: now,
        updated_at_ms: now,
    };
    let reference = if charged { drawn_fee_ref(appt_id) } else { String::new() };
    insert_appointment(tx, &appt, period_key, &reference).await
}
