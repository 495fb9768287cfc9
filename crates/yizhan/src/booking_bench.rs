//! `yizhan bench booking`: the 7 a.m. rush. A real server (`serve`, in its
//! own process) on a fresh database; people who log in over HTTP; then, for
//! each run, a city service whose 1,000 places (10 slots) are released at one
//! instant, and load clients in separate processes that fire, from that
//! instant, 100,000 booking attempts in all: `POST /api/v1/holds` on a random
//! slot as a random person of theirs and, when a place is held,
//! `POST /api/v1/appointments` with it. Each run prints attempts/s, p50/p99,
//! how long after the release the last attempt was answered, and checks in
//! the database that exactly as many appointments as places were booked,
//! nobody twice, each one acknowledged to exactly one attempt.
//!
//! The server, the connections and the timing come from `api_bench`.

// Statistics (rates, percentiles) are floating point over counts and microseconds.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use crate::api_bench::{
    bucket_of, drop_scratch_database, percentile_ms, resident_mib, scratch_database, seed_people, sign_in_at_seeding,
    spawn_server, Conn, BUCKETS,
};
use crate::app::{build, build_for_bench_seeding, explain};
use crate::DataOpts;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yizhan_booking::{local_day, Hours, PerPerson, Rules, MINUTE_MS};
use yizhan_city::{BookingSetup, Delivery, LocalText, NewService};
use yizhan_identity::{OrgKind, Principal};

#[derive(Debug, Clone)]
pub struct BookingBenchArgs {
    pub people: usize,
    pub attempts: usize,
    pub places: usize,
    pub clients: usize,
    pub connections: usize,
    pub runs: usize,
    pub postgres: Option<String>,
}

/// Slots the places are spread over (one counter, one day).
const SLOTS: i64 = 10;
/// The answer every attempt should have within this long of the release.
const GOAL_MS: i64 = 5_000;

#[derive(Serialize, Deserialize)]
struct Plan {
    addr: String,
    /// (login, bearer token) of this client's people.
    people: Vec<(String, String)>,
    slot_ids: Vec<String>,
    /// Epoch ms of the release: nothing is sent before.
    release_at_ms: i64,
    attempts: usize,
    connections: usize,
}

#[derive(Serialize, Deserialize, Default)]
struct ClientReport {
    attempts: u64,
    booked: u64,
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
    /// Epoch ms of the last answer.
    last_answer_ms: i64,
    /// Epoch ms of the last booking acknowledged (the slots are full after it).
    #[serde(default)]
    last_booked_ms: i64,
    histogram: Vec<u64>,
    /// (login, appointment id) of every booking acknowledged.
    acks: Vec<(String, String)>,
}

struct RunFigures {
    per_second: f64,
    p50: f64,
    p99: f64,
    last_after_ms: i64,
    /// When the last place was booked, after the release.
    full_after_ms: i64,
}

fn epoch_ms() -> i64 {
    yizhan_core::Clock::now_ms(&yizhan_core::SystemClock)
}

pub async fn run(args: BookingBenchArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let dir = crate::ledger_cmd::scratch_dir()?;
    let (database_url, pg_name) = scratch_database(args.postgres.as_deref()).await?;
    let result = run_in(&args, &exe, dir.path(), database_url).await;
    drop_scratch_database(pg_name).await;
    result
}

async fn run_in(args: &BookingBenchArgs, exe: &Path, dir: &Path, database_url: Option<String>) -> anyhow::Result<()> {
    let data = DataOpts { data_dir: dir.to_path_buf(), database_url: database_url.clone() };
    let engine = if database_url.is_some() { "postgres" } else { "sqlite" };
    println!(
        "yizhan bench booking: {engine}, {} people, {} places in {SLOTS} slots released at one instant, {} attempts \
         per run from {} load processes x {} connections, {} runs",
        args.people,
        args.places,
        args.attempts,
        args.clients,
        args.connections / args.clients.max(1),
        args.runs
    );
    // People, a city with a department, before the server starts. Their
    // password hashes are cheap (see build_for_bench_seeding); nothing else is.
    let seeding = build_for_bench_seeding(&data).await?;
    let people = seed_people(&seeding, args.people, false).await?;
    let t0 = Instant::now();
    let logged_in = sign_in_at_seeding(&seeding, &people, 8).await?;
    println!(
        "{} people signed in (identity's login, at seeding) in {:.1} s",
        logged_in.len(),
        t0.elapsed().as_secs_f64()
    );
    seeding.state.ctx.db.close().await;

    let built = build(&data, false).await?;
    let s = built.state.clone();
    let admin_id =
        s.identity.ensure_admin("bench-admin@bench.example", "bench admin password", "Bench").await.map_err(explain)?;
    let admin = Principal { user_id: admin_id, name: "Bench".into(), is_admin: true };
    let city = s.identity.create_city(&admin, "Bench City", vec!["city".into()]).await.map_err(explain)?;
    let org =
        s.identity.create_org(&admin, &city.id, OrgKind::CityDepartment, "Bench Department").await.map_err(explain)?;

    let server = spawn_server(exe, dir, database_url.as_deref()).await?;
    let (pid, addr) = (server.pid, server.addr.clone());

    let mut figures = Vec::new();
    let mut all_clean = true;
    for run in 1..=args.runs {
        // The release: the next whole minute at least 10 s away (releases are
        // set in minutes of the day); the slots are the next day's.
        let now = epoch_ms();
        let release_at_ms = (now + 10_000).div_euclid(MINUTE_MS) * MINUTE_MS + MINUTE_MS;
        let release_day = local_day(release_at_ms);
        let release_minute = (release_at_ms - yizhan_booking::day_start_ms(release_day)) / MINUTE_MS;
        let capacity = (args.places as i64 + SLOTS - 1) / SLOTS;
        let hours = vec![Hours {
            weekday: yizhan_booking::weekday(release_day + 1),
            start_minute: 8 * 60,
            end_minute: 8 * 60 + SLOTS * 60,
            slot_minutes: 60,
            capacity,
        }];
        let rules = Rules {
            per_person: PerPerson::Day,
            release_days_ahead: 1,
            release_minute,
            noshow_limit: 0,
            ..Rules::default()
        };
        let svc = s
            .city
            .publish(
                &admin,
                &org.id,
                &NewService {
                    category: "family".into(),
                    title: LocalText::new(&format!("Bench rush {run}"), &format!("压测 {run}")),
                    description: LocalText::new("A rush at the release", "放号高峰"),
                    documents: vec![],
                    fee_fen: 0,
                    deposit_fen: 0,
                    deposit_perk: String::new(),
                    two_people: false,
                    delivery: Delivery::Appointment,
                    form: serde_json::json!({}),
                    booking: Some(BookingSetup { rules, counters: vec!["Counter".into()], hours, publish_days: 0 }),
                },
            )
            .await
            .map_err(explain)?;
        let bs = svc.booking_service_id.clone().context("the bench service has no booking service")?;
        s.booking.publish(&bs, release_day + 1, release_day + 1).await.map_err(explain)?;
        let from = yizhan_booking::day_start_ms(release_day + 1);
        let slots = s.booking.slots(&bs, from, from + yizhan_booking::DAY_MS).await.map_err(explain)?;
        let places: i64 = slots.iter().map(|v| v.slot.remaining).sum();
        anyhow::ensure!(
            slots.iter().all(|v| v.slot.release_at_ms == release_at_ms),
            "the slots are not released at the instant set"
        );
        let slot_ids: Vec<String> = slots.iter().map(|v| v.slot.id.clone()).collect();

        let clients = args.clients.max(1);
        let per_client_people = logged_in.len().div_ceil(clients);
        let mut children = Vec::new();
        for (c, part) in logged_in.chunks(per_client_people).enumerate() {
            let attempts = args.attempts / clients + usize::from(c < args.attempts % clients);
            let plan = Plan {
                addr: addr.clone(),
                people: part.to_vec(),
                slot_ids: slot_ids.clone(),
                release_at_ms,
                attempts,
                connections: (args.connections / clients).max(1),
            };
            let plan_path = dir.join(format!("booking-plan-{run}-{c}.json"));
            std::fs::write(&plan_path, serde_json::to_vec(&plan)?)?;
            let out = dir.join(format!("booking-report-{run}-{c}.json"));
            let child = tokio::process::Command::new(exe)
                .args(["bench", "booking-client", "--plan"])
                .arg(&plan_path)
                .arg("--out")
                .arg(&out)
                .env("YIZHAN_LOG", "warn")
                .kill_on_drop(true)
                .spawn()
                .context("starting a load client")?;
            children.push((child, out));
        }
        let mut total = ClientReport { histogram: vec![0; BUCKETS], ..Default::default() };
        for (mut child, out) in children {
            let status = child.wait().await?;
            anyhow::ensure!(status.success(), "a load client failed ({status})");
            let r: ClientReport = serde_json::from_slice(&std::fs::read(&out)?)?;
            total.attempts += r.attempts;
            total.booked += r.booked;
            total.transport_errors += r.transport_errors;
            total.last_answer_ms = total.last_answer_ms.max(r.last_answer_ms);
            total.last_booked_ms = total.last_booked_ms.max(r.last_booked_ms);
            for (st, n) in r.by_status {
                *total.by_status.entry(st).or_default() += n;
            }
            for (i, n) in r.histogram.iter().enumerate().take(BUCKETS) {
                total.histogram[i] += n;
            }
            total.acks.extend(r.acks);
        }

        // What the database says: every booked appointment of the service.
        // Slot by slot: one listing is capped at MAX_APPOINTMENTS_LISTED.
        let mut booked = Vec::new();
        for v in &slots {
            let list = s.booking.service_appointments(&bs, v.slot.start_ms, v.slot.end_ms).await.map_err(explain)?;
            booked.extend(list.into_iter().filter(|a| a.status == yizhan_booking::AppointmentStatus::Booked));
        }
        let persons: HashSet<&str> = booked.iter().map(|a| a.person_id.as_str()).collect();
        let ids: HashSet<&str> = booked.iter().map(|a| a.id.as_str()).collect();
        let acked: HashSet<&str> = total.acks.iter().map(|(_, id)| id.as_str()).collect();
        let acked_logins: HashSet<&str> = total.acks.iter().map(|(l, _)| l.as_str()).collect();
        let left: i64 = s
            .booking
            .slots(&bs, from, from + yizhan_booking::DAY_MS)
            .await
            .map_err(explain)?
            .iter()
            .map(|v| v.slot.remaining)
            .sum();
        let clean = booked.len() as i64 == places
            && persons.len() == booked.len()
            && acked == ids
            && acked_logins.len() == total.acks.len()
            && total.acks.len() == booked.len()
            && left == 0;
        all_clean &= clean;
        let elapsed_ms = (total.last_answer_ms - release_at_ms).max(1);
        let f = RunFigures {
            per_second: total.attempts as f64 / (elapsed_ms as f64 / 1000.0),
            p50: percentile_ms(&total.histogram, 0.50),
            p99: percentile_ms(&total.histogram, 0.99),
            last_after_ms: elapsed_ms,
            full_after_ms: total.last_booked_ms - release_at_ms,
        };
        let statuses: Vec<String> = total.by_status.iter().map(|(st, n)| format!("{st}: {n}")).collect();
        println!(
            "run {run}: {:>7.0} attempts/s  p50 {:>6.1} ms  p99 {:>7.1} ms  last answer {:.2} s after the release \
             ({}within {} s), the last place booked {:.2} s after it; {} attempts, {} booked of {places} places by {} people, {} acknowledged, {} left; \
             answers {}; transport errors {}; server resident {} MiB; check {}",
            f.per_second,
            f.p50,
            f.p99,
            f.last_after_ms as f64 / 1000.0,
            if f.last_after_ms <= GOAL_MS { "" } else { "NOT " },
            GOAL_MS / 1000,
            f.full_after_ms as f64 / 1000.0,
            total.attempts,
            booked.len(),
            persons.len(),
            total.acks.len(),
            left,
            statuses.join(", "),
            total.transport_errors,
            resident_mib(pid).map(|m| m.to_string()).unwrap_or_else(|| "?".into()),
            if clean { "exactly one place per booked person, all places booked" } else { "FAILED" }
        );
        figures.push(f);
    }
    // Where the server's time went, by route (its own /metrics).
    if let Ok((200, text)) = Conn::open(&addr).await?.send("GET", "/metrics", None, None, String::new()).await {
        for line in route_times(&String::from_utf8_lossy(&text)) {
            println!("{line}");
        }
    }
    server.stop().await;
    built.state.ctx.db.close().await;

    let sorted = |get: fn(&RunFigures) -> f64| {
        let mut v: Vec<f64> = figures.iter().map(get).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let median = |v: &[f64]| v[v.len() / 2];
    let (aps, p50, p99, last) =
        (sorted(|f| f.per_second), sorted(|f| f.p50), sorted(|f| f.p99), sorted(|f| f.last_after_ms as f64 / 1000.0));
    let full = sorted(|f| f.full_after_ms as f64 / 1000.0);
    println!(
        "median: {:.0} attempts/s (min {:.0}, max {:.0}); p50 {:.1} ms; p99 {:.1} ms (min {:.1}, max {:.1}); \
         last answer {:.2} s after the release (min {:.2}, max {:.2}); last place booked {:.2} s after it \
         (min {:.2}, max {:.2})",
        median(&aps),
        aps[0],
        aps[aps.len() - 1],
        median(&p50),
        median(&p99),
        p99[0],
        p99[p99.len() - 1],
        median(&last),
        last[0],
        last[last.len() - 1],
        median(&full),
        full[0],
        full[full.len() - 1]
    );
    anyhow::ensure!(all_clean, "a run booked other than exactly one place per person for every place");
    Ok(())
}

/// "server time per request" lines for the booking routes, from /metrics.
fn route_times(metrics: &str) -> Vec<String> {
    let value = |name: &str, labels: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{{labels}}} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    ["/api/v1/holds", "/api/v1/appointments"]
        .iter()
        .filter_map(|route| {
            let labels = format!("method=\"POST\",route=\"{route}\"");
            let (sum, n) =
                (value("yizhan_http_route_seconds_sum", &labels)?, value("yizhan_http_route_seconds_count", &labels)?);
            Some(format!("server: POST {route}: {n} requests, {:.2} ms each on average", sum * 1000.0 / n.max(1.0)))
        })
        .collect()
}

/// A load client's process: opens its connections, waits for the release,
/// then spends its attempts as fast as the answers come.
pub async fn client(plan: &Path, out: &Path) -> anyhow::Result<()> {
    let plan: Plan = serde_json::from_slice(&std::fs::read(plan)?)?;
    let plan = Arc::new(plan);
    let budget = Arc::new(AtomicI64::new(plan.attempts as i64));
    let mut conns = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        conns.push(Conn::open(&plan.addr).await?);
    }
    let wait = plan.release_at_ms - epoch_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    let mut tasks = Vec::new();
    for (c, conn) in conns.into_iter().enumerate() {
        let (plan, budget) = (plan.clone(), budget.clone());
        tasks.push(tokio::spawn(async move { connection(&plan, c, conn, &budget).await }));
    }
    let mut report = ClientReport { histogram: vec![0; BUCKETS], ..Default::default() };
    for t in tasks {
        let r = t.await??;
        report.attempts += r.attempts;
        report.booked += r.booked;
        report.transport_errors += r.transport_errors;
        report.last_answer_ms = report.last_answer_ms.max(r.last_answer_ms);
        report.last_booked_ms = report.last_booked_ms.max(r.last_booked_ms);
        for (s, n) in r.by_status {
            *report.by_status.entry(s).or_default() += n;
        }
        for (i, n) in r.histogram.iter().enumerate() {
            report.histogram[i] += n;
        }
        report.acks.extend(r.acks);
    }
    std::fs::write(out, serde_json::to_vec(&report)?)?;
    Ok(())
}

async fn connection(plan: &Plan, c: usize, mut conn: Conn, budget: &AtomicI64) -> anyhow::Result<ClientReport> {
    use rand::{Rng, SeedableRng};
    let mut r = ClientReport { histogram: vec![0; BUCKETS], ..Default::default() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64 ^ (plan.release_at_ms as u64));
    while budget.fetch_sub(1, Ordering::Relaxed) > 0 {
        let person = rng.gen_range(0..plan.people.len());
        let (login, token) = &plan.people[person];
        let slot = &plan.slot_ids[rng.gen_range(0..plan.slot_ids.len())];
        let started = Instant::now();
        let body = serde_json::json!({ "slot_id": slot }).to_string();
        let answer = match conn.send("POST", "/api/v1/holds", Some(token), None, body).await {
            Ok((201, bytes)) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                let hold_id = v["id"].as_str().unwrap_or_default();
                let body = serde_json::json!({ "hold_id": hold_id, "form": {} }).to_string();
                match conn.send("POST", "/api/v1/appointments", Some(token), None, body).await {
                    Ok((201, bytes)) => {
                        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                        r.acks.push((login.clone(), v["appointment_id"].as_str().unwrap_or_default().to_string()));
                        r.booked += 1;
                        r.last_booked_ms = epoch_ms();
                        Ok(201)
                    }
                    Ok((status, _)) => Ok(status),
                    Err(e) => Err(e),
                }
            }
            Ok((status, _)) => Ok(status),
            Err(e) => Err(e),
        };
        let us = started.elapsed().as_micros() as u64;
        r.attempts += 1;
        r.last_answer_ms = epoch_ms();
        match answer {
            Ok(status) => {
                *r.by_status.entry(status).or_default() += 1;
                r.histogram[bucket_of(us).min(BUCKETS - 1)] += 1;
            }
            Err(_) => {
                r.transport_errors += 1;
                conn = Conn::open(&plan.addr).await?;
            }
        }
    }
    Ok(r)
}
