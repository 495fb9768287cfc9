//! The booking engine on both engines (set YIZHAN_TEST_DATABASE_URL for PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use yizhan_booking::lottery::{order, replay};
use yizhan_booking::*;
use yizhan_core::testing::{TestDb, T0_MS};
use yizhan_core::{Clock, Code, ManualClock};

#[derive(Default)]
struct Caught(Mutex<Vec<Event>>);
impl Events for Caught {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}
impl Caught {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct World {
    _t: TestDb,
    booking: Booking,
    clock: Arc<ManualClock>,
    events: Arc<Caught>,
}

async fn world() -> World {
    let t = TestDb::new(&[&yizhan_booking::MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    let events = Arc::new(Caught::default());
    let booking = Booking::new(ctx).with_events(events.clone());
    World { _t: t, booking, clock, events }
}

/// Every day 09:00-12:00 in slots of `len` minutes with `capacity` places.
fn daily(len: i64, capacity: i64) -> Vec<Hours> {
    (0..7)
        .map(|weekday| Hours { weekday, start_minute: 9 * 60, end_minute: 12 * 60, slot_minutes: len, capacity })
        .collect()
}

fn today() -> i64 {
    local_day(T0_MS)
}

/// A service with one resource, published for `days` days from today.
async fn setup(w: &World, rules: Rules, len: i64, capacity: i64, days: i64) -> (Service, Resource) {
    let s = w.booking.create_service("org-1", &rules).await.unwrap();
    let r = w.booking.add_resource(&s.id, "Counter 1", &daily(len, capacity)).await.unwrap();
    w.booking.publish(&s.id, today(), today() + days - 1).await.unwrap();
    (s, r)
}

async fn slots_of_day(w: &World, service_id: &str, day: i64) -> Vec<SlotView> {
    w.booking.slots(service_id, day_start_ms(day), day_start_ms(day + 1)).await.unwrap()
}

fn code(e: yizhan_core::Error) -> Code {
    e.code
}

#[test]
fn calendar_arithmetic_is_china_time() {
    // T0 is 2026-11-29 00:00 UTC = 08:00 in Beijing, a Sunday.
    assert_eq!(weekday(today()), 6);
    assert_eq!(day_start_ms(today()), T0_MS - 8 * HOUR_MS);
    assert_eq!(local_day(day_start_ms(today()) - 1), today() - 1);
}

#[tokio::test]
async fn publishing_follows_hours_closures_and_walk_in_places() {
    let w = world().await;
    let rules = Rules { walkin_places: 2, ..Rules::default() };
    let s = w.booking.create_service("org-1", &rules).await.unwrap();
    // Weekdays only, 09:00-12:00, 30-minute slots of 5 places.
    let hours: Vec<Hours> = (0..5)
        .map(|weekday| Hours { weekday, start_minute: 540, end_minute: 720, slot_minutes: 30, capacity: 5 })
        .collect();
    let r = w.booking.add_resource(&s.id, "Counter", &hours).await.unwrap();
    let monday = today() + 1;
    // A holiday on Tuesday; Wednesday closes after 10:30.
    w.booking.add_closure(&r.id, monday + 1, 0, 1440).await.unwrap();
    w.booking.add_closure(&r.id, monday + 2, 630, 1440).await.unwrap();
    let p = w.booking.publish(&s.id, today(), today() + 6).await.unwrap();
    // Mon, Thu, Fri 6 slots each; Tue none; Wed 3 (09:00, 09:30, 10:00); weekend none.
    assert_eq!(p.slots, 6 + 3 + 6 + 6);
    // Publishing again adds nothing.
    assert_eq!(w.booking.publish(&s.id, today(), today() + 6).await.unwrap().slots, 0);
    let mon = slots_of_day(&w, &s.id, monday).await;
    assert_eq!(mon.len(), 6);
    assert_eq!(mon[0].slot.capacity, 5);
    assert_eq!(mon[0].slot.online_capacity, 3);
    assert_eq!(mon[0].slot.remaining, 3);
    assert_eq!(mon[0].status, SlotStatus::Free);
    assert!(slots_of_day(&w, &s.id, monday + 1).await.is_empty());
    assert_eq!(slots_of_day(&w, &s.id, monday + 2).await.len(), 3);
    // A closure added after publishing withdraws the untouched slots.
    assert_eq!(w.booking.add_closure(&r.id, monday + 3, 540, 600).await.unwrap(), 2);
    assert_eq!(slots_of_day(&w, &s.id, monday + 3).await.len(), 4);
    // Rules are checked.
    let bad = Rules { hold_ms: 0, ..Rules::default() };
    assert_eq!(code(w.booking.create_service("org-1", &bad).await.unwrap_err()), Code::ValidationFailed);
}

#[tokio::test]
async fn slots_open_at_the_release_time_and_close_before_start() {
    let w = world().await;
    let rules = Rules { close_before_ms: HOUR_MS, ..Rules::default() };
    let (s, _) = setup(&w, rules, 30, 4, 9).await;
    // Day today+8 is released tomorrow at 07:00 (7 days ahead).
    let day = today() + 8;
    let release = day_start_ms(today() + 1) + 7 * HOUR_MS;
    let first = slots_of_day(&w, &s.id, day).await[0].clone();
    assert_eq!(first.slot.release_at_ms, release);
    assert!(!first.released);
    let e = w.booking.hold("p1", &first.slot.id).await.unwrap_err();
    assert_eq!(e.code, codes::NOT_RELEASED);
    w.clock.set_ms(release - 1);
    assert_eq!(w.booking.hold("p1", &first.slot.id).await.unwrap_err().code, codes::NOT_RELEASED);
    w.clock.set_ms(release);
    assert!(slots_of_day(&w, &s.id, day).await[0].released);
    w.booking.hold("p1", &first.slot.id).await.unwrap();
    // An hour before the start it closes.
    w.clock.set_ms(first.slot.start_ms - HOUR_MS);
    let other = slots_of_day(&w, &s.id, day).await[0].clone();
    assert_eq!(w.booking.hold("p2", &other.slot.id).await.unwrap_err().code, codes::CLOSED);
}

#[tokio::test]
async fn a_hold_expires_and_frees_its_place() {
    let w = world().await;
    let rules = Rules { hold_ms: 5 * MINUTE_MS, ..Rules::default() };
    let (s, _) = setup(&w, rules, 30, 1, 2).await;
    let slot = slots_of_day(&w, &s.id, today() + 1).await[0].slot.clone();
    let a = w.booking.hold("a", &slot.id).await.unwrap();
    assert_eq!(a.expires_at_ms, T0_MS + 5 * MINUTE_MS);
    assert_eq!(w.booking.hold("b", &slot.id).await.unwrap_err().code, codes::FULL);
    assert_eq!(slots_of_day(&w, &s.id, today() + 1).await[0].status, SlotStatus::BusyTentative);
    w.clock.advance_ms(5 * MINUTE_MS);
    // The expired hold is freed by the next person's hold, no sweeper needed.
    let b = w.booking.hold("b", &slot.id).await.unwrap();
    assert_eq!(code(w.booking.book("a", &a.id).await.unwrap_err()), codes::HOLD_EXPIRED);
    let appt = w.booking.book("b", &b.id).await.unwrap();
    assert_eq!(appt.status, AppointmentStatus::Booked);
    assert_eq!(slots_of_day(&w, &s.id, today() + 1).await[0].status, SlotStatus::Busy);
    // A hold is its holder's alone.
    let other = slots_of_day(&w, &s.id, today() + 1).await[1].slot.clone();
    let c = w.booking.hold("c", &other.id).await.unwrap();
    assert_eq!(code(w.booking.book("d", &c.id).await.unwrap_err()), Code::NotFound);
    // The sweeper frees expired holds everywhere.
    w.clock.advance_ms(5 * MINUTE_MS);
    assert_eq!(w.booking.sweep().await.unwrap(), 1);
    assert_eq!(w.booking.slot(&other.id).await.unwrap().remaining, 1);
    assert_eq!(w.booking.sweep().await.unwrap(), 0);
}

#[tokio::test]
async fn one_booking_per_person_per_day_or_week() {
    let w = world().await;
    let (s, _) = setup(&w, Rules::default(), 30, 3, 7).await;
    let d1 = slots_of_day(&w, &s.id, today() + 1).await;
    let h = w.booking.hold("p", &d1[0].slot.id).await.unwrap();
    assert_eq!(w.booking.hold("p", &d1[1].slot.id).await.unwrap_err().code, codes::ALREADY_BOOKED);
    w.booking.book("p", &h.id).await.unwrap();
    assert_eq!(w.booking.hold("p", &d1[1].slot.id).await.unwrap_err().code, codes::ALREADY_BOOKED);
    // Another day is fine.
    let d2 = slots_of_day(&w, &s.id, today() + 2).await;
    w.booking.hold("p", &d2[0].slot.id).await.unwrap();
    // The refused attempts took no place.
    assert_eq!(w.booking.slot(&d1[1].slot.id).await.unwrap().remaining, 3);

    let weekly = Rules { per_person: PerPerson::Week, ..Rules::default() };
    let (sw, _) = setup(&w, weekly, 30, 3, 14).await;
    // today is Sunday: Monday and Tuesday share a week, next Monday does not.
    let mon = slots_of_day(&w, &sw.id, today() + 1).await;
    let tue = slots_of_day(&w, &sw.id, today() + 2).await;
    w.booking.hold("p", &mon[0].slot.id).await.unwrap();
    assert_eq!(w.booking.hold("p", &tue[0].slot.id).await.unwrap_err().code, codes::ALREADY_BOOKED);
    w.clock.set_ms(day_start_ms(today() + 1) + 7 * HOUR_MS);
    let next_mon = slots_of_day(&w, &sw.id, today() + 8).await;
    w.booking.hold("p", &next_mon[0].slot.id).await.unwrap();
}

#[tokio::test]
async fn cancelling_before_the_deadline_gives_the_place_back() {
    let w = world().await;
    let (s, _) = setup(&w, Rules::default(), 30, 2, 3).await;
    let slot = slots_of_day(&w, &s.id, today() + 1).await[0].slot.clone();
    let h = w.booking.hold("p", &slot.id).await.unwrap();
    let appt = w.booking.book("p", &h.id).await.unwrap();
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 1);
    // Someone else cannot cancel it.
    assert_eq!(w.booking.cancel("q", &appt.id).await.unwrap_err().code, Code::NotFound);
    // Two hours before the start is too late (cancel_before 2 h).
    w.clock.set_ms(slot.start_ms - 2 * HOUR_MS);
    let e = w.booking.cancel("p", &appt.id).await.unwrap_err();
    assert_eq!(e.code, codes::CANCEL_TOO_LATE);
    w.clock.set_ms(slot.start_ms - 2 * HOUR_MS - 1);
    let c = w.booking.cancel("p", &appt.id).await.unwrap();
    assert_eq!(c.status, AppointmentStatus::Cancelled);
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 2);
    assert_eq!(w.booking.cancel("p", &appt.id).await.unwrap_err().code, codes::WRONG_STATUS);
    // The day's claim is gone: the person may book that day again.
    let again = w.booking.hold("p", &slot.id).await.unwrap();
    w.booking.book("p", &again.id).await.unwrap();
}

#[tokio::test]
async fn check_in_hands_out_queue_numbers_and_fulfils() {
    let w = world().await;
    let (s, _) = setup(&w, Rules::default(), 30, 5, 3).await;
    let slots = slots_of_day(&w, &s.id, today() + 1).await;
    let mut appts = Vec::new();
    for (i, p) in ["a", "b", "c"].iter().enumerate() {
        let h = w.booking.hold(p, &slots[i].slot.id).await.unwrap();
        appts.push(w.booking.book(p, &h.id).await.unwrap());
    }
    assert_eq!(w.booking.check_in(&appts[0].id).await.unwrap_err().code, codes::NOT_TODAY);
    w.clock.set_ms(day_start_ms(today() + 1) + 8 * HOUR_MS);
    let c = w.booking.check_in(&appts[2].id).await.unwrap();
    assert_eq!((c.status, c.queue_no), (AppointmentStatus::Arrived, 1));
    let a = w.booking.check_in(&appts[0].id).await.unwrap();
    assert_eq!(a.queue_no, 2);
    assert_eq!(w.booking.check_in(&appts[0].id).await.unwrap_err().code, codes::WRONG_STATUS);
    assert_eq!(w.booking.fulfil(&a.id).await.unwrap().status, AppointmentStatus::Fulfilled);
    // b did not come: only after the slot ended is it a no-show.
    assert_eq!(w.booking.mark_no_show(&appts[1].id).await.unwrap_err().code, codes::NOT_TODAY);
    w.clock.set_ms(appts[1].end_ms);
    assert_eq!(w.booking.mark_no_show(&appts[1].id).await.unwrap().status, AppointmentStatus::Noshow);
    let day_list =
        w.booking.service_appointments(&s.id, day_start_ms(today() + 1), day_start_ms(today() + 2)).await.unwrap();
    assert_eq!(day_list.len(), 3);
    assert_eq!(w.booking.person_appointments("a", 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn three_no_shows_in_ninety_days_block_booking_for_ninety_days() {
    let w = world().await;
    let rules = Rules { release_days_ahead: 60, ..Rules::default() };
    let (s, _) = setup(&w, rules, 30, 5, 60).await;
    let mut booked = Vec::new();
    for d in [1, 10, 20, 30] {
        let slot = slots_of_day(&w, &s.id, today() + d).await[0].slot.clone();
        let h = w.booking.hold("p", &slot.id).await.unwrap();
        booked.push(w.booking.book("p", &h.id).await.unwrap());
    }
    for a in &booked[..2] {
        w.clock.set_ms(a.end_ms);
        w.booking.mark_no_show(&a.id).await.unwrap();
    }
    assert!(w.events.take().is_empty());
    assert_eq!(w.booking.blocked_until(&s.id, "p").await.unwrap(), None);
    w.clock.set_ms(booked[2].end_ms);
    w.booking.mark_no_show(&booked[2].id).await.unwrap();
    let until = booked[2].end_ms + 90 * DAY_MS;
    assert_eq!(w.booking.blocked_until(&s.id, "p").await.unwrap(), Some(until));
    assert_eq!(
        w.events.take(),
        vec![Event::Blocked { person_id: "p".into(), service_id: s.id.clone(), until_ms: until }]
    );
    let later = slots_of_day(&w, &s.id, today() + 40).await[0].slot.clone();
    assert_eq!(w.booking.hold("p", &later.id).await.unwrap_err().code, codes::BLOCKED);
    // Another person is not affected.
    w.booking.hold("q", &later.id).await.unwrap();
    // The block ends.
    w.clock.set_ms(until);
    assert_eq!(w.booking.blocked_until(&s.id, "p").await.unwrap(), None);
}

#[tokio::test]
async fn no_shows_spread_wider_than_the_window_do_not_block() {
    let w = world().await;
    let rules = Rules { release_days_ahead: 90, noshow_window_ms: 30 * DAY_MS, ..Rules::default() };
    let s = w.booking.create_service("org-1", &rules).await.unwrap();
    w.booking.add_resource(&s.id, "Counter", &daily(30, 5)).await.unwrap();
    w.booking.publish(&s.id, today(), today() + 61).await.unwrap();
    for d in [1, 20, 45] {
        let slot = slots_of_day(&w, &s.id, today() + d).await[0].slot.clone();
        let h = w.booking.hold("p", &slot.id).await.unwrap();
        let a = w.booking.book("p", &h.id).await.unwrap();
        let back = w.clock.now_ms();
        w.clock.set_ms(a.end_ms);
        w.booking.mark_no_show(&a.id).await.unwrap();
        w.clock.set_ms(back);
    }
    w.clock.set_ms(day_start_ms(today() + 46));
    assert_eq!(w.booking.blocked_until(&s.id, "p").await.unwrap(), None);
}

#[tokio::test]
async fn a_freed_place_is_offered_to_the_waiting_list_with_a_deadline() {
    let w = world().await;
    let rules = Rules { offer_ms: 30 * MINUTE_MS, ..Rules::default() };
    let (s, _) = setup(&w, rules, 30, 1, 3).await;
    let slot = slots_of_day(&w, &s.id, today() + 1).await[0].slot.clone();
    assert_eq!(w.booking.join_waitlist("b", &slot.id).await.unwrap_err().code, codes::NOT_FULL);
    let h = w.booking.hold("a", &slot.id).await.unwrap();
    let appt = w.booking.book("a", &h.id).await.unwrap();
    assert_eq!(w.booking.join_waitlist("b", &slot.id).await.unwrap(), 1);
    assert_eq!(w.booking.join_waitlist("c", &slot.id).await.unwrap(), 2);
    assert_eq!(w.booking.join_waitlist("c", &slot.id).await.unwrap_err().code, codes::ALREADY_WAITING);
    w.booking.cancel("a", &appt.id).await.unwrap();
    // b, first in line, is offered the place as a hold until the deadline.
    let ev = w.events.take();
    let [Event::Offered { person_id, hold_id, expires_at_ms, .. }] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!(person_id, "b");
    assert_eq!(*expires_at_ms, T0_MS + 30 * MINUTE_MS);
    let b_hold = hold_id.clone();
    // Nobody else can take it meanwhile.
    assert_eq!(w.booking.hold("d", &slot.id).await.unwrap_err().code, codes::FULL);
    // b lets the deadline pass: the place goes to c.
    w.clock.advance_ms(30 * MINUTE_MS);
    assert_eq!(w.booking.sweep().await.unwrap(), 1);
    let ev = w.events.take();
    let [Event::Offered { person_id, hold_id, .. }] = ev.as_slice() else { panic!("{ev:?}") };
    assert_eq!(person_id, "c");
    assert_eq!(w.booking.book("b", &b_hold).await.unwrap_err().code, codes::HOLD_EXPIRED);
    let c = w.booking.book("c", hold_id).await.unwrap();
    assert_eq!(c.status, AppointmentStatus::Booked);
    // c cancels too: nobody waits, so the place returns to the slot.
    w.booking.cancel("c", &c.id).await.unwrap();
    assert!(w.events.take().is_empty());
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 1);
}

#[tokio::test]
async fn releasing_a_hold_gives_the_place_back_at_once() {
    let w = world().await;
    let (s, _) = setup(&w, Rules::default(), 30, 1, 2).await;
    let slot = slots_of_day(&w, &s.id, today() + 1).await[0].slot.clone();
    let h = w.booking.hold("a", &slot.id).await.unwrap();
    assert_eq!(w.booking.release_hold("b", &h.id).await.unwrap_err().code, Code::NotFound);
    w.booking.release_hold("a", &h.id).await.unwrap();
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 1);
    w.booking.hold("b", &slot.id).await.unwrap();
}

#[tokio::test]
async fn a_lottery_draw_is_reproducible_from_its_published_log() {
    let w = world().await;
    let rules = Rules { allocation: Allocation::Lottery, lottery_window_ms: 10 * MINUTE_MS, ..Rules::default() };
    let (s, _) = setup(&w, rules, 30, 5, 10).await;
    let day = today() + 8;
    let slot = slots_of_day(&w, &s.id, day).await[0].slot.clone();
    assert_eq!(slot.lottery_seed.len(), 32, "the seed is published with the slot");
    assert_eq!(w.booking.hold("p0", &slot.id).await.unwrap_err().code, codes::LOTTERY_ONLY);
    assert_eq!(w.booking.request_lottery("p0", &slot.id).await.unwrap_err().code, codes::NOT_RELEASED);
    w.clock.set_ms(slot.release_at_ms);
    let people: Vec<String> = (0..40).map(|i| format!("person-{i:02}")).collect();
    for p in &people {
        w.booking.request_lottery(p, &slot.id).await.unwrap();
    }
    assert_eq!(w.booking.request_lottery("person-00", &slot.id).await.unwrap_err().code, codes::ALREADY_REQUESTED);
    assert_eq!(w.booking.draw(&slot.id).await.unwrap_err().code, codes::LOTTERY_NOT_OPEN);
    w.clock.advance_ms(10 * MINUTE_MS);
    assert_eq!(w.booking.request_lottery("late", &slot.id).await.unwrap_err().code, codes::LOTTERY_NOT_OPEN);
    let log = w.booking.draw(&slot.id).await.unwrap();
    assert_eq!(log.winners.len(), 5);
    assert_eq!(log.entrants.len(), 40);
    assert_eq!(replay(&log), log.winners, "a re-run of the published log gives the same winners");
    // The same seed and requests, in any order, give the same order.
    let mut shuffled = people.clone();
    shuffled.reverse();
    assert_eq!(order(&log.seed, &shuffled), order(&log.seed, &people));
    assert_ne!(order("another seed", &people), order(&log.seed, &people));
    // Drawing again changes nothing; the published log reads back the same.
    assert_eq!(w.booking.draw(&slot.id).await.unwrap(), log);
    assert_eq!(w.booking.draw_log(&slot.id).await.unwrap(), Some(log.clone()));
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 0);
    let ev = w.events.take();
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::Drawn { .. })).count(), 5);
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::NotDrawn { .. })).count(), 35);
    // The log names tickets, never accounts; each person finds their own.
    let mut won = 0;
    for p in &people {
        assert!(!log.entrants.contains(p) && !log.winners.contains(p), "an account id is in the published log");
        let v = w.booking.lottery_view(&slot.id, Some(p)).await.unwrap();
        let ticket = v.my_ticket.expect("an entrant has a ticket");
        assert!(log.entrants.contains(&ticket));
        let a = w.booking.person_appointments(p, 5).await.unwrap();
        if log.winners.contains(&ticket) {
            won += 1;
            assert_eq!(v.won, Some(true));
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].status, AppointmentStatus::Booked);
        } else {
            assert_eq!(v.won, Some(false));
            assert!(a.is_empty());
        }
    }
    assert_eq!(won, 5);
    assert_eq!(w.booking.lottery_view(&slot.id, Some("nobody")).await.unwrap().my_ticket, None);
    // A tampered log does not replay to its winners.
    let mut forged = log.clone();
    let loser = log.entrants.iter().find(|t| !log.winners.contains(t)).unwrap().clone();
    forged.winners[0] = loser;
    assert_ne!(replay(&forged), forged.winners);
}

/// 2,000 people at one instant on a slot of 50 places.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_people_on_fifty_places_book_exactly_fifty() {
    let w = world().await;
    let s = w.booking.create_service("org-1", &Rules::default()).await.unwrap();
    let hours = vec![Hours {
        weekday: weekday(today() + 7),
        start_minute: 540,
        end_minute: 570,
        slot_minutes: 30,
        capacity: 50,
    }];
    w.booking.add_resource(&s.id, "Counter", &hours).await.unwrap();
    w.booking.publish(&s.id, today() + 7, today() + 7).await.unwrap();
    let slot = slots_of_day(&w, &s.id, today() + 7).await[0].slot.clone();
    // The release is this morning at 07:00; everyone clicks at that instant.
    w.clock.set_ms(slot.release_at_ms);
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let b = w.booking.clone();
        let slot_id = slot.id.clone();
        tasks.push(tokio::spawn(async move {
            let person = format!("person-{i}");
            let r = match b.hold(&person, &slot_id).await {
                Ok(h) => b.book(&person, &h.id).await.map(|a| a.person_id),
                Err(e) => Err(e),
            };
            (person, r)
        }));
    }
    let mut booked = Vec::new();
    let mut full = 0;
    for t in tasks {
        let (person, r) = t.await.unwrap();
        match r {
            Ok(p) => {
                assert_eq!(p, person);
                booked.push(p)
            }
            Err(e) if e.code == codes::FULL => full += 1,
            Err(e) => panic!("{person}: unexpected {e}"),
        }
    }
    assert_eq!(booked.len(), 50);
    assert_eq!(full, 1950);
    let distinct: HashSet<_> = booked.iter().collect();
    assert_eq!(distinct.len(), 50, "nobody twice");
    let listed = w.booking.service_appointments(&s.id, slot.start_ms, slot.end_ms).await.unwrap();
    assert_eq!(listed.len(), 50);
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 0);
    assert_eq!(slots_of_day(&w, &s.id, today() + 7).await[0].status, SlotStatus::Busy);
}

/// One person clicking many times at once still holds one place.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_person_clicking_fifty_times_at_once_holds_one_place() {
    let w = world().await;
    let (s, _) = setup(&w, Rules::default(), 30, 50, 2).await;
    let slots = slots_of_day(&w, &s.id, today() + 1).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let b = w.booking.clone();
        let slot_id = slots[i % slots.len()].slot.id.clone();
        tasks.push(tokio::spawn(async move { b.hold("same", &slot_id).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code, codes::ALREADY_BOOKED),
        }
    }
    assert_eq!(ok, 1);
    let taken: i64 = slots_of_day(&w, &s.id, today() + 1).await.iter().map(|v| 50 - v.slot.remaining).sum();
    assert_eq!(taken, 1);
}

#[tokio::test]
async fn a_person_is_exported_and_deleted_with_their_places_given_back() {
    let w = world().await;
    let (s, _) = setup(&w, Rules::default(), 30, 1, 2).await;
    let slots = slots_of_day(&w, &s.id, today() + 1).await;
    let h = w.booking.hold("p", &slots[0].slot.id).await.unwrap();
    w.booking.book("p", &h.id).await.unwrap();
    let export = w.booking.export_person("p").await.unwrap();
    assert_eq!(export["appointments"].as_array().unwrap().len(), 1);
    w.booking.delete_person("p").await.unwrap();
    assert!(w.booking.person_appointments("p", 10).await.unwrap().is_empty());
    assert_eq!(w.booking.slot(&slots[0].slot.id).await.unwrap().remaining, 1);
}

/// Fees kept in memory, idempotent per reference like the wallet's: a slow
/// charge (the clock moves past the hold meanwhile and the sweep frees it)
/// and refunds that fail a given number of times.
#[derive(Default)]
struct FakeFees {
    clock: Mutex<Option<Arc<ManualClock>>>,
    sweeper: Mutex<Option<Booking>>,
    slow_by_ms: Mutex<i64>,
    failing_refunds: Mutex<u32>,
    charged: Mutex<std::collections::HashMap<String, i64>>,
    refunded: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Fees for FakeFees {
    async fn charge(&self, _person: &str, owner: &str, fee_fen: i64, reference: &str) -> yizhan_core::Result<()> {
        assert_eq!(owner, "org-1");
        self.charged.lock().unwrap().entry(reference.to_string()).or_insert(fee_fen);
        let slow = *self.slow_by_ms.lock().unwrap();
        if slow > 0 {
            self.clock.lock().unwrap().as_ref().unwrap().advance_ms(slow);
            let sweeper = self.sweeper.lock().unwrap().clone().unwrap();
            sweeper.sweep().await.unwrap();
        }
        Ok(())
    }

    async fn refund(&self, _person: &str, _owner: &str, reference: &str) -> yizhan_core::Result<()> {
        let mut failing = self.failing_refunds.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return Err(yizhan_core::Error::internal(anyhow::anyhow!("wallet unavailable")));
        }
        let mut refunded = self.refunded.lock().unwrap();
        if self.charged.lock().unwrap().contains_key(reference) && !refunded.iter().any(|r| r == reference) {
            refunded.push(reference.to_string());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_fee_is_given_back_when_booking_fails_after_it_and_a_refund_that_failed_is_retried() {
    let w = world().await;
    let fees = Arc::new(FakeFees::default());
    *fees.clock.lock().unwrap() = Some(w.clock.clone());
    let booking = w.booking.clone().with_fees(fees.clone());
    *fees.sweeper.lock().unwrap() = Some(booking.clone());
    let rules = Rules { fee_fen: 500, per_person: PerPerson::Slot, ..Rules::default() };
    let (s, _) = setup(&w, rules.clone(), 30, 5, 3).await;
    let slot = slots_of_day(&w, &s.id, today() + 2).await[0].slot.clone();

    // The payment took longer than the hold and the sweep freed the place
    // meanwhile: nothing is booked and the fee goes back (once).
    let h = booking.hold("p", &slot.id).await.unwrap();
    *fees.slow_by_ms.lock().unwrap() = rules.hold_ms + 1;
    assert_eq!(booking.book("p", &h.id).await.unwrap_err().code, codes::HOLD_EXPIRED);
    *fees.slow_by_ms.lock().unwrap() = 0;
    assert_eq!(fees.charged.lock().unwrap().len(), 1);
    assert_eq!(fees.refunded.lock().unwrap().len(), 1);
    assert!(booking.person_appointments("p", 10).await.unwrap().is_empty());

    // Booked and paid; the refund fails once on cancel and is finished by the next call.
    let h = booking.hold("q", &slot.id).await.unwrap();
    let a = booking.book("q", &h.id).await.unwrap();
    assert_eq!((a.fee_fen, a.fee_state.as_str()), (500, "paid"));
    *fees.failing_refunds.lock().unwrap() = 1;
    let c = booking.cancel("q", &a.id).await.unwrap();
    assert_eq!((c.status, c.fee_state.as_str()), (AppointmentStatus::Cancelled, "refund_due"));
    let c = booking.cancel("q", &a.id).await.unwrap();
    assert_eq!(c.fee_state, "refunded");
    assert_eq!(booking.cancel("q", &a.id).await.unwrap_err().code, codes::WRONG_STATUS);
    assert_eq!(fees.refunded.lock().unwrap().len(), 2);

    // Or by the sweep.
    let h = booking.hold("r", &slot.id).await.unwrap();
    let a = booking.book("r", &h.id).await.unwrap();
    *fees.failing_refunds.lock().unwrap() = 1;
    assert_eq!(booking.cancel("r", &a.id).await.unwrap().fee_state, "refund_due");
    booking.sweep().await.unwrap();
    assert_eq!(booking.appointment(&a.id).await.unwrap().fee_state, "refunded");
    booking.sweep().await.unwrap();
    assert_eq!(fees.charged.lock().unwrap().len(), 3);
    assert_eq!(fees.refunded.lock().unwrap().len(), 3, "one refund per fee taken");
}

/// The same database as another server process would see it: its own engine
/// (its own ids and events), the same clock and key.
fn second_process(w: &World, seed: u64) -> (Booking, Arc<Caught>) {
    let c = w.booking.ctx();
    let ctx = yizhan_core::Ctx {
        db: c.db.clone(),
        clock: w.clock.clone(),
        rng: yizhan_core::SeededRandom::new(seed),
        vault: c.vault.clone(),
    };
    let events = Arc::new(Caught::default());
    (Booking::new(ctx).with_events(events.clone()), events)
}

fn reminders(events: Vec<Event>) -> Vec<(String, ReminderKind, i64)> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Reminder { appointment_id, kind, start_ms, .. } => Some((appointment_id, kind, start_ms)),
            _ => None,
        })
        .collect()
}

async fn book_slot(w: &World, person: &str, slot_id: &str) -> Appointment {
    let h = w.booking.hold(person, slot_id).await.unwrap();
    w.booking.book(person, &h.id).await.unwrap()
}

#[tokio::test]
async fn reminders_go_the_day_before_and_the_hour_before_once_each() {
    let w = world().await;
    let (s, _) = setup(&w, Rules { per_person: PerPerson::Slot, ..Rules::default() }, 30, 5, 4).await;
    // Booked at T0 (Sunday 08:00): a slot two days on, at 09:00.
    let slot = slots_of_day(&w, &s.id, today() + 2).await.remove(0).slot;
    let appt = book_slot(&w, "p", &slot.id).await;
    let cancelled = book_slot(&w, "q", &slot.id).await;
    w.booking.cancel("q", &cancelled.id).await.unwrap();
    let (other, other_events) = second_process(&w, 99);

    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 0, "more than a day ahead");
    w.clock.set_ms(slot.start_ms - DAY_MS - 1);
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 0);
    w.clock.set_ms(slot.start_ms - DAY_MS);
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 1);
    assert_eq!(reminders(w.events.take()), vec![(appt.id.clone(), ReminderKind::Day, slot.start_ms)]);
    // Again, from this process or another, and later that day: nothing more.
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 0);
    assert_eq!(other.send_due_reminders().await.unwrap(), 0);
    w.clock.set_ms(slot.start_ms - 3 * HOUR_MS);
    assert_eq!(other.send_due_reminders().await.unwrap(), 0);

    w.clock.set_ms(slot.start_ms - HOUR_MS - 1);
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 0);
    w.clock.set_ms(slot.start_ms - HOUR_MS);
    assert_eq!(other.send_due_reminders().await.unwrap(), 1);
    assert_eq!(reminders(other_events.take()), vec![(appt.id.clone(), ReminderKind::Hour, slot.start_ms)]);
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 0);
    w.clock.set_ms(slot.start_ms + 1);
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 0, "nothing after the start");
    assert!(w.events.take().is_empty());
    let sent = w.booking.reminders_sent(&appt.id).await.unwrap();
    assert_eq!(sent, vec![("day".to_string(), slot.start_ms - DAY_MS), ("hour".to_string(), slot.start_ms - HOUR_MS)]);
    assert!(w.booking.reminders_sent(&cancelled.id).await.unwrap().is_empty(), "a cancelled one is not reminded");
}

#[tokio::test]
async fn a_late_booking_gets_only_the_hour_reminder_and_a_late_sweep_skips_the_day_one() {
    let w = world().await;
    let (s, _) = setup(&w, Rules { per_person: PerPerson::Slot, ..Rules::default() }, 30, 5, 4).await;
    let slot = slots_of_day(&w, &s.id, today() + 1).await.remove(0).slot;
    // Booked 20 hours before: inside the day-before window already.
    w.clock.set_ms(slot.start_ms - 20 * HOUR_MS);
    let late = book_slot(&w, "late", &slot.id).await;
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 0);
    // Booked earlier, but no sweep ran until 30 minutes before.
    let slot2 = slots_of_day(&w, &s.id, today() + 3).await.remove(0).slot;
    let early = book_slot(&w, "early", &slot2.id).await;
    w.clock.set_ms(slot.start_ms - 30 * MINUTE_MS);
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 1);
    assert_eq!(reminders(w.events.take()), vec![(late.id.clone(), ReminderKind::Hour, slot.start_ms)]);
    w.clock.set_ms(slot2.start_ms - 30 * MINUTE_MS);
    assert_eq!(w.booking.send_due_reminders().await.unwrap(), 1);
    assert_eq!(reminders(w.events.take()), vec![(early.id.clone(), ReminderKind::Hour, slot2.start_ms)]);
}

#[tokio::test]
async fn two_processes_sweeping_at_once_send_each_reminder_once() {
    let w = world().await;
    let (s, _) = setup(&w, Rules { per_person: PerPerson::Slot, ..Rules::default() }, 30, 40, 3).await;
    let slots = slots_of_day(&w, &s.id, today() + 2).await;
    let mut ids = HashSet::new();
    for i in 0..60 {
        ids.insert(book_slot(&w, &format!("p{i}"), &slots[i % slots.len()].slot.id).await.id);
    }
    let (a, a_events) = second_process(&w, 11);
    let (b, b_events) = second_process(&w, 12);
    w.clock.set_ms(slots[0].slot.start_ms - 2 * HOUR_MS);
    let (na, nb) = futures::join!(a.send_due_reminders(), b.send_due_reminders());
    let (na, nb) = (na.unwrap(), nb.unwrap());
    assert_eq!(na + nb, 60);
    let mut got: Vec<String> =
        reminders(a_events.take()).into_iter().chain(reminders(b_events.take())).map(|r| r.0).collect();
    got.sort();
    let mut want: Vec<String> = ids.into_iter().collect();
    want.sort();
    assert_eq!(got, want, "each appointment reminded once, by one of the two");
}

#[tokio::test]
async fn a_calendar_feed_token_is_secret_renewable_and_revocable() {
    let w = world().await;
    let (s, _) = setup(&w, Rules { per_person: PerPerson::Slot, ..Rules::default() }, 30, 5, 4).await;
    let day1 = slots_of_day(&w, &s.id, today() + 1).await;
    let soon = book_slot(&w, "p", &day1[0].slot.id).await;
    let later = book_slot(&w, "p", &day1[1].slot.id).await;
    let gone = book_slot(&w, "p", &day1[2].slot.id).await;
    w.booking.cancel("p", &gone.id).await.unwrap();
    book_slot(&w, "someone else", &day1[0].slot.id).await;

    assert_eq!(w.booking.feed_created_at("p").await.unwrap(), None);
    let token = w.booking.renew_feed("p").await.unwrap();
    assert_eq!(token.len(), 48);
    assert_eq!(w.booking.feed_person(&token).await.unwrap(), "p");
    assert_eq!(w.booking.feed_created_at("p").await.unwrap(), Some(T0_MS));
    // Only a keyed hash is stored.
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM booking_feeds").fetch_all(&w.booking.ctx().db.pool).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&token) && stored[0].len() == 64);
    // Upcoming, live appointments of this person only, soonest first.
    let listed: Vec<String> = w.booking.feed_appointments("p").await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed, vec![soon.id.clone(), later.id.clone()]);
    w.clock.set_ms(day1[0].slot.end_ms);
    let listed: Vec<String> = w.booking.feed_appointments("p").await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed, vec![later.id.clone()], "an appointment over is not upcoming");

    // Renewed: the old token is dead; revoked: the new one too.
    let renewed = w.booking.renew_feed("p").await.unwrap();
    assert_ne!(renewed, token);
    assert_eq!(code(w.booking.feed_person(&token).await.unwrap_err()), Code::NotFound);
    assert_eq!(w.booking.feed_person(&renewed).await.unwrap(), "p");
    assert!(w.booking.revoke_feed("p").await.unwrap());
    assert!(!w.booking.revoke_feed("p").await.unwrap());
    assert_eq!(code(w.booking.feed_person(&renewed).await.unwrap_err()), Code::NotFound);
    for bad in ["", "x", &"0".repeat(48), &format!("{renewed}0"), "../../etc/passwd"] {
        assert_eq!(code(w.booking.feed_person(bad).await.unwrap_err()), Code::NotFound, "{bad}");
    }
    // A feed and reminders go with the person's data.
    let t = w.booking.renew_feed("p").await.unwrap();
    w.booking.delete_person("p").await.unwrap();
    assert_eq!(code(w.booking.feed_person(&t).await.unwrap_err()), Code::NotFound);
}

/// Fees of drawn places: charged per appointment after the draw; a winner
/// whose wallet refuses (or cannot be asked now, then can) is handled.
#[derive(Default)]
struct DrawFees {
    /// People whose wallet says no (not enough money).
    broke: Mutex<HashSet<String>>,
    /// Charges that fail as a wallet that does not answer, before working.
    unavailable: Mutex<u32>,
    charged: Mutex<Vec<(String, String, i64)>>,
    refunded: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Fees for DrawFees {
    async fn charge(&self, person: &str, _owner: &str, fee_fen: i64, reference: &str) -> yizhan_core::Result<()> {
        if self.broke.lock().unwrap().contains(person) {
            let code = Code::new("insufficient_funds", yizhan_core::Class::Invalid);
            return Err(yizhan_core::Error::new(code, "wallet.insufficient"));
        }
        {
            let mut u = self.unavailable.lock().unwrap();
            if *u > 0 {
                *u -= 1;
                return Err(yizhan_core::Error::new(Code::Busy, "error.busy"));
            }
        }
        let mut charged = self.charged.lock().unwrap();
        if !charged.iter().any(|(_, r, _)| r == reference) {
            charged.push((person.to_string(), reference.to_string(), fee_fen));
        }
        Ok(())
    }

    async fn refund(&self, _person: &str, _owner: &str, reference: &str) -> yizhan_core::Result<()> {
        let taken = self.charged.lock().unwrap().iter().any(|(_, r, _)| r == reference);
        let mut refunded = self.refunded.lock().unwrap();
        if taken && !refunded.iter().any(|r| r == reference) {
            refunded.push(reference.to_string());
        }
        Ok(())
    }
}

#[tokio::test]
async fn drawn_places_are_paid_from_the_wallet_and_an_unpaid_one_goes_to_the_next_drawn() {
    let w = world().await;
    let fees = Arc::new(DrawFees::default());
    let booking = w.booking.clone().with_fees(fees.clone());
    let rules =
        Rules { allocation: Allocation::Lottery, lottery_window_ms: 10 * MINUTE_MS, fee_fen: 800, ..Rules::default() };
    let s = booking.create_service("org-1", &rules).await.unwrap();
    booking.add_resource(&s.id, "Counter 1", &daily(30, 3)).await.unwrap();
    booking.publish(&s.id, today(), today() + 9).await.unwrap();
    let slot = slots_of_day(&w, &s.id, today() + 8).await[0].slot.clone();
    w.clock.set_ms(slot.release_at_ms);
    let people: Vec<String> = (0..8).map(|i| format!("person-{i}")).collect();
    let mut person_of = std::collections::HashMap::new();
    for p in &people {
        booking.request_lottery(p, &slot.id).await.unwrap();
        let t = booking.lottery_view(&slot.id, Some(p)).await.unwrap().my_ticket.unwrap();
        person_of.insert(t, p.clone());
    }
    // The draw order is known once everyone asked: the 1st and 3rd drawn
    // cannot pay.
    let tickets: Vec<String> = person_of.keys().cloned().collect();
    let drawn: Vec<String> = order(&slot.lottery_seed, &tickets).iter().map(|t| person_of[t].clone()).collect();
    fees.broke.lock().unwrap().extend([drawn[0].clone(), drawn[2].clone()]);
    w.clock.advance_ms(10 * MINUTE_MS);
    w.events.take();
    let log = booking.draw(&slot.id).await.unwrap();
    // Places went to the 2nd, 4th and 5th drawn; the log says why and replays.
    let winners: Vec<String> = log.winners.iter().map(|t| person_of[t].clone()).collect();
    assert_eq!(winners, vec![drawn[1].clone(), drawn[3].clone(), drawn[4].clone()]);
    let unpaid: Vec<String> = log.unpaid.iter().map(|t| person_of[t].clone()).collect();
    assert_eq!(unpaid, vec![drawn[0].clone(), drawn[2].clone()]);
    assert_eq!(replay(&log), log.winners, "the published log replays with its unpaid tickets");
    assert_eq!(booking.draw(&slot.id).await.unwrap(), log);
    assert_eq!(booking.slot(&slot.id).await.unwrap().remaining, 0);
    {
        let charged = fees.charged.lock().unwrap();
        assert_eq!(charged.len(), 3, "one fee per place: {charged:?}");
        assert!(charged.iter().all(|(_, r, f)| r.starts_with("booking-appointment:") && *f == 800));
    }
    for p in &winners {
        let a = booking.person_appointments(p, 5).await.unwrap();
        assert_eq!((a.len(), a[0].status, a[0].fee_state.as_str()), (1, AppointmentStatus::Booked, "paid"));
        assert_eq!(booking.lottery_view(&slot.id, Some(p)).await.unwrap().won, Some(true));
    }
    for p in &unpaid {
        let a = booking.person_appointments(p, 5).await.unwrap();
        assert_eq!((a[0].status, a[0].fee_state.as_str()), (AppointmentStatus::Cancelled, "unpaid"));
        let v = booking.lottery_view(&slot.id, Some(p)).await.unwrap();
        assert_eq!((v.won, v.unpaid, v.appointment_id), (Some(false), true, None));
    }
    let ev = w.events.take();
    let told = |p: &str| ev.iter().any(|e| matches!(e, Event::DrawnUnpaid { person_id, .. } if person_id == p));
    assert!(told(&drawn[0]) && told(&drawn[2]), "{ev:?}");
    let drawn_told = ev.iter().filter(|e| matches!(e, Event::Drawn { .. })).count();
    assert_eq!(drawn_told, 3, "a winner is told once paid: {ev:?}");

    // A winner cancelling before the deadline has the fee back, once.
    let mine = booking.person_appointments(&winners[0], 5).await.unwrap()[0].clone();
    let c = booking.cancel(&winners[0], &mine.id).await.unwrap();
    assert_eq!(c.fee_state, "refunded");
    assert_eq!(fees.refunded.lock().unwrap().clone(), vec![format!("booking-appointment:{}", mine.id)]);
}

#[tokio::test]
async fn a_drawn_fee_the_wallet_could_not_be_asked_for_is_charged_by_the_sweep() {
    let w = world().await;
    let fees = Arc::new(DrawFees::default());
    let booking = w.booking.clone().with_fees(fees.clone());
    let rules =
        Rules { allocation: Allocation::Lottery, lottery_window_ms: 10 * MINUTE_MS, fee_fen: 800, ..Rules::default() };
    let s = booking.create_service("org-1", &rules).await.unwrap();
    booking.add_resource(&s.id, "Counter 1", &daily(30, 1)).await.unwrap();
    booking.publish(&s.id, today(), today() + 9).await.unwrap();
    let slot = slots_of_day(&w, &s.id, today() + 8).await[0].slot.clone();
    w.clock.set_ms(slot.release_at_ms);
    booking.request_lottery("only", &slot.id).await.unwrap();
    w.clock.advance_ms(10 * MINUTE_MS);
    *fees.unavailable.lock().unwrap() = 1;
    let log = booking.draw(&slot.id).await.unwrap();
    assert_eq!(log.winners.len(), 1);
    let a = booking.person_appointments("only", 5).await.unwrap()[0].clone();
    assert_eq!((a.status, a.fee_state.as_str()), (AppointmentStatus::Booked, "charge_due"));
    assert!(fees.charged.lock().unwrap().is_empty());
    booking.sweep().await.unwrap();
    assert_eq!(booking.appointment(&a.id).await.unwrap().fee_state, "paid");
    booking.sweep().await.unwrap();
    assert_eq!(fees.charged.lock().unwrap().len(), 1, "charged once");
}

/// A lottery service with a fee whose slots have `capacity` places.
async fn fee_lottery(w: &World, booking: &Booking, capacity: i64) -> Slot {
    let rules =
        Rules { allocation: Allocation::Lottery, lottery_window_ms: 10 * MINUTE_MS, fee_fen: 800, ..Rules::default() };
    let s = booking.create_service("org-1", &rules).await.unwrap();
    booking.add_resource(&s.id, "Counter 1", &daily(30, capacity)).await.unwrap();
    booking.publish(&s.id, today(), today() + 9).await.unwrap();
    slots_of_day(w, &s.id, today() + 8).await[0].slot.clone()
}

#[tokio::test]
async fn a_drawn_place_passed_on_with_no_ticket_left_is_booked_first_come() {
    let w = world().await;
    let fees = Arc::new(DrawFees::default());
    let booking = w.booking.clone().with_fees(fees.clone());
    let slot = fee_lottery(&w, &booking, 2).await;
    w.clock.set_ms(slot.release_at_ms);
    for p in ["rich", "broke"] {
        booking.request_lottery(p, &slot.id).await.unwrap();
    }
    fees.broke.lock().unwrap().insert("broke".to_string());
    // While requests are gathered nobody holds a place, before the draw or at its last instant.
    assert_eq!(booking.hold("walk-in", &slot.id).await.unwrap_err().code, codes::LOTTERY_ONLY);
    assert_eq!(booking.join_waitlist("walk-in", &slot.id).await.unwrap_err().code, codes::LOTTERY_ONLY);
    w.clock.advance_ms(10 * MINUTE_MS - 1);
    assert_eq!(booking.hold("walk-in", &slot.id).await.unwrap_err().code, codes::LOTTERY_ONLY);
    w.clock.advance_ms(1);
    w.events.take();
    // Both drawn; "broke" cannot pay and no ticket is left to pass the place on to.
    let log = booking.draw(&slot.id).await.unwrap();
    let rich = booking.lottery_view(&slot.id, Some("rich")).await.unwrap().my_ticket.unwrap();
    let broke = booking.lottery_view(&slot.id, Some("broke")).await.unwrap().my_ticket.unwrap();
    assert_eq!((log.winners, log.unpaid.clone()), (vec![rich], vec![broke]));
    let log = booking.draw_log(&slot.id).await.unwrap().unwrap();
    assert_eq!(replay(&log), log.winners, "the published log still replays");
    assert!(w.events.take().iter().any(|e| matches!(e, Event::DrawnUnpaid { person_id, .. } if person_id == "broke")));
    // The place is not lost: back in the slot, booked first come (and paid).
    assert_eq!(booking.slot(&slot.id).await.unwrap().remaining, 1);
    let h = booking.hold("walk-in", &slot.id).await.unwrap();
    let a = booking.book("walk-in", &h.id).await.unwrap();
    assert_eq!((a.status, a.fee_state.as_str()), (AppointmentStatus::Booked, "paid"));
    assert_eq!(booking.slot(&slot.id).await.unwrap().remaining, 0);
    assert_eq!(booking.hold("late", &slot.id).await.unwrap_err().code, codes::FULL);
    // Never more than the slot's places: the draw's winner, the first come.
    let booked: Vec<_> = booking
        .service_appointments(&slot.service_id, slot.start_ms, slot.end_ms)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.status == AppointmentStatus::Booked)
        .map(|a| a.person_id)
        .collect();
    assert_eq!(booked.len(), 2, "{booked:?}");
    assert!(booked.contains(&"rich".to_string()) && booked.contains(&"walk-in".to_string()));
    // A drawn place cancelled in time is freed the same way.
    let mine = booking.person_appointments("rich", 5).await.unwrap()[0].clone();
    booking.cancel("rich", &mine.id).await.unwrap();
    booking.hold("late", &slot.id).await.unwrap();
}

#[tokio::test]
async fn a_drawn_place_passed_on_with_no_ticket_left_is_offered_to_the_waiting_list() {
    let w = world().await;
    let fees = Arc::new(DrawFees::default());
    let booking = w.booking.clone().with_fees(fees.clone());
    let slot = fee_lottery(&w, &booking, 1).await;
    w.clock.set_ms(slot.release_at_ms);
    booking.request_lottery("only", &slot.id).await.unwrap();
    w.clock.advance_ms(10 * MINUTE_MS);
    // Drawn, its fee not asked yet (the wallet did not answer): the slot is full.
    *fees.unavailable.lock().unwrap() = 1;
    booking.draw(&slot.id).await.unwrap();
    assert_eq!(booking.slot(&slot.id).await.unwrap().remaining, 0);
    assert_eq!(booking.hold("waiter", &slot.id).await.unwrap_err().code, codes::FULL);
    assert_eq!(booking.join_waitlist("waiter", &slot.id).await.unwrap(), 1);
    // Then the wallet refuses: no ticket is left, the place goes to the waiting list.
    fees.broke.lock().unwrap().insert("only".to_string());
    w.clock.advance_ms(MINUTE_MS);
    w.events.take();
    booking.sweep().await.unwrap();
    let log = booking.draw_log(&slot.id).await.unwrap().unwrap();
    assert!(log.winners.is_empty() && log.unpaid.len() == 1, "{log:?}");
    assert_eq!(replay(&log), log.winners);
    let ev = w.events.take();
    let offer = ev.iter().find_map(|e| match e {
        Event::Offered { person_id, hold_id, expires_at_ms, .. } if person_id == "waiter" => {
            Some((hold_id.clone(), *expires_at_ms))
        }
        _ => None,
    });
    let (hold_id, expires_at_ms) = offer.unwrap_or_else(|| panic!("no offer: {ev:?}"));
    assert_eq!(expires_at_ms, w.clock.now_ms() + Rules::default().offer_ms);
    assert!(ev.iter().any(|e| matches!(e, Event::DrawnUnpaid { person_id, .. } if person_id == "only")));
    let e = booking.waitlist_entry("waiter", &slot.id).await.unwrap().unwrap();
    assert_eq!((e.state.as_str(), e.hold_id.as_deref()), ("offered", Some(hold_id.as_str())));
    // Held for the waiter, not for anyone first come; accepted, it is booked and paid.
    assert_eq!(booking.slot(&slot.id).await.unwrap().remaining, 0);
    assert_eq!(booking.hold("walk-in", &slot.id).await.unwrap_err().code, codes::FULL);
    let a = booking.book("waiter", &hold_id).await.unwrap();
    assert_eq!((a.status, a.fee_state.as_str()), (AppointmentStatus::Booked, "paid"));
}

#[tokio::test]
async fn places_a_lottery_leaves_are_booked_first_come_once_drawn() {
    let w = world().await;
    let rules = Rules { allocation: Allocation::Lottery, lottery_window_ms: 10 * MINUTE_MS, ..Rules::default() };
    let (s, _) = setup(&w, rules, 30, 3, 10).await;
    let slot = slots_of_day(&w, &s.id, today() + 8).await[0].slot.clone();
    w.clock.set_ms(slot.release_at_ms);
    booking_requests(&w, &slot.id, &["a"]).await;
    w.clock.advance_ms(10 * MINUTE_MS);
    // Nobody looked since the window closed: the first hold draws the slot first.
    assert_eq!(w.booking.draw_log(&slot.id).await.unwrap(), None);
    w.booking.hold("first-come", &slot.id).await.unwrap();
    let log = w.booking.draw_log(&slot.id).await.unwrap().expect("drawn before the hold");
    assert_eq!(log.winners.len(), 1);
    assert_eq!(w.booking.person_appointments("a", 5).await.unwrap().len(), 1, "the entrant got a place");
    w.booking.hold("second", &slot.id).await.unwrap();
    assert_eq!(w.booking.hold("third", &slot.id).await.unwrap_err().code, codes::FULL);
}

async fn booking_requests(w: &World, slot_id: &str, people: &[&str]) {
    for p in people {
        w.booking.request_lottery(p, slot_id).await.unwrap();
    }
}

/// A slot seen full is answered "full" from memory for FULL_HINT_MS: a place
/// freed by another process is offered again once the hint is that old; one
/// freed in this process at once.
#[tokio::test]
async fn a_place_freed_elsewhere_is_offered_again_once_the_full_hint_expires() {
    let w = world().await;
    let (other, _) = second_process(&w, 7);
    let (s, _) = setup(&w, Rules::default(), 30, 1, 2).await;
    let slot = slots_of_day(&w, &s.id, today() + 1).await[0].slot.clone();
    let a = other.hold("a", &slot.id).await.unwrap();
    assert_eq!(w.booking.hold("b", &slot.id).await.unwrap_err().code, codes::FULL);
    // Another process gives the place back: this one still says full (from
    // memory, no read) until its hint has aged FULL_HINT_MS.
    other.release_hold("a", &a.id).await.unwrap();
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 1);
    assert_eq!(w.booking.hold("b", &slot.id).await.unwrap_err().code, codes::FULL);
    w.clock.advance_ms(FULL_HINT_MS - 1);
    assert_eq!(w.booking.hold("b", &slot.id).await.unwrap_err().code, codes::FULL);
    w.clock.advance_ms(1);
    let b = w.booking.hold("b", &slot.id).await.unwrap();
    // The hint only ever says "full": the slot is full again, and read as such.
    assert_eq!(other.hold("c", &slot.id).await.unwrap_err().code, codes::FULL);
    // Freed in this process: offered again at once.
    assert_eq!(w.booking.hold("c", &slot.id).await.unwrap_err().code, codes::FULL);
    w.booking.release_hold("b", &b.id).await.unwrap();
    let c = w.booking.hold("c", &slot.id).await.unwrap();
    // A cancellation here too.
    let appt = w.booking.book("c", &c.id).await.unwrap();
    assert_eq!(w.booking.hold("d", &slot.id).await.unwrap_err().code, codes::FULL);
    w.booking.cancel("c", &appt.id).await.unwrap();
    w.booking.hold("d", &slot.id).await.unwrap();
}

/// A person who booked the slot and asks again while it is hinted full is
/// told they already booked, not that it is full: from memory while the
/// claim is as young as the hint may be, then asked of the database, so a
/// cancellation in another process is heard.
#[tokio::test]
async fn a_booked_person_asking_a_full_slot_again_hears_already_booked() {
    let w = world().await;
    let (other, _) = second_process(&w, 9);
    let (s, _) = setup(&w, Rules::default(), 30, 1, 2).await;
    let slot = slots_of_day(&w, &s.id, today() + 1).await[0].slot.clone();
    let h = w.booking.hold("a", &slot.id).await.unwrap();
    let appt = w.booking.book("a", &h.id).await.unwrap();
    // The slot is now hinted full here.
    assert_eq!(w.booking.hold("b", &slot.id).await.unwrap_err().code, codes::FULL);
    assert_eq!(w.booking.hold("a", &slot.id).await.unwrap_err().code, codes::ALREADY_BOOKED);
    // Later, still full: the claim is read again, and still there.
    w.clock.advance_ms(FULL_HINT_MS);
    assert_eq!(w.booking.hold("b", &slot.id).await.unwrap_err().code, codes::FULL);
    assert_eq!(w.booking.hold("a", &slot.id).await.unwrap_err().code, codes::ALREADY_BOOKED);
    // "a" cancels in another process, whose next hold takes the place.
    other.cancel("a", &appt.id).await.unwrap();
    other.hold("c", &slot.id).await.unwrap();
    w.clock.advance_ms(FULL_HINT_MS);
    assert_eq!(w.booking.hold("b", &slot.id).await.unwrap_err().code, codes::FULL);
    assert_eq!(w.booking.hold("a", &slot.id).await.unwrap_err().code, codes::FULL);
}

/// 2,000 people at one instant on 50 places through two server processes
/// (each with its own full hints) on one database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_people_through_two_processes_book_exactly_fifty() {
    let w = world().await;
    let (other, _) = second_process(&w, 11);
    let s = w.booking.create_service("org-1", &Rules::default()).await.unwrap();
    let hours = vec![Hours {
        weekday: weekday(today() + 7),
        start_minute: 540,
        end_minute: 570,
        slot_minutes: 30,
        capacity: 50,
    }];
    w.booking.add_resource(&s.id, "Counter", &hours).await.unwrap();
    w.booking.publish(&s.id, today() + 7, today() + 7).await.unwrap();
    let slot = slots_of_day(&w, &s.id, today() + 7).await[0].slot.clone();
    w.clock.set_ms(slot.release_at_ms);
    let mut tasks = Vec::new();
    for i in 0..2000 {
        let b = if i % 2 == 0 { w.booking.clone() } else { other.clone() };
        let slot_id = slot.id.clone();
        tasks.push(tokio::spawn(async move {
            let person = format!("person-{i}");
            let r = match b.hold(&person, &slot_id).await {
                Ok(h) => b.book(&person, &h.id).await.map(|a| a.person_id),
                Err(e) => Err(e),
            };
            // Everyone tries once more: nobody gets a second place.
            let again = b.hold(&person, &slot_id).await.map(|h| h.id);
            (person, r, again)
        }));
    }
    let mut booked = Vec::new();
    for t in tasks {
        let (person, r, again) = t.await.unwrap();
        match r {
            Ok(p) => booked.push(p),
            Err(e) if e.code == codes::FULL => {}
            Err(e) => panic!("{person}: unexpected {e}"),
        }
        let e = again.expect_err("a second place");
        assert!(e.code == codes::FULL || e.code == codes::ALREADY_BOOKED, "{person}: unexpected {e}");
    }
    assert_eq!(booked.len(), 50);
    let distinct: HashSet<_> = booked.iter().collect();
    assert_eq!(distinct.len(), 50, "nobody twice");
    let listed = w.booking.service_appointments(&s.id, slot.start_ms, slot.end_ms).await.unwrap();
    assert_eq!(listed.len(), 50);
    assert_eq!(w.booking.slot(&slot.id).await.unwrap().remaining, 0);
}
