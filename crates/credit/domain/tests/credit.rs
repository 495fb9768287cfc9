//! The credit service on both engines: opt-in, records and recomputation,
//! contests, court listings, perks in the access log, and opt-out leaving
//! nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use yizhan_audit::Audit;
use yizhan_core::testing::TestDb;
use yizhan_core::{Ctx, ManualClock};
use yizhan_credit::{codes, Asker, Credit, Decision, Kind, NewRecord, Outcome};
use yizhan_identity::types::id_check_char;
use yizhan_identity::{Identity, IdentityConfig, OrgKind, Principal, Role};
use yizhan_notify::Notify;

const DAY: i64 = 86_400_000;

struct Env {
    credit: Credit,
    identity: Identity,
    audit: Audit,
    ctx: Ctx,
    clock: Arc<ManualClock>,
    admin: Principal,
    city: String,
    _t: TestDb,
}

async fn env() -> Env {
    let t = TestDb::new(&[
        &yizhan_audit::MIGRATIONS,
        &yizhan_notify::MIGRATIONS,
        &yizhan_identity::MIGRATIONS,
        &yizhan_credit::MIGRATIONS,
    ])
    .await;
    let (ctx, clock) = t.ctx();
    let audit = Audit::new(ctx.clone());
    let notify = Notify::new(ctx.clone(), None);
    let identity = Identity::new(
        ctx.clone(),
        audit.clone(),
        notify.clone(),
        Arc::new(yizhan_identity::SandboxIdentityVerifier),
        IdentityConfig { fast_hashing_for_tests: true, ..Default::default() },
    );
    let credit = Credit::new(ctx.clone(), identity.clone(), audit.clone(), notify).unwrap();
    let admin_id = identity.ensure_admin("admin@yizhan.test", "correct horse battery", "Admin").await.unwrap();
    let admin = Principal { user_id: admin_id, name: "Admin".into(), is_admin: true };
    let city = identity.create_city(&admin, "Hangzhou", vec![]).await.unwrap().id;
    Env { credit, identity, audit, ctx, clock, admin, city, _t: t }
}

fn id_number(n: u32) -> String {
    let first17 = format!("330106199001{:02}{:03}", (n % 28) + 1, n % 1000);
    format!("{first17}{}", id_check_char(&first17).unwrap())
}

impl Env {
    async fn person(&self, login: &str) -> String {
        self.identity.register(login, "correct horse battery", "Resident").await.unwrap()
    }

    async fn org(&self, kind: OrgKind, name: &str) -> String {
        self.identity.create_org(&self.admin, &self.city, kind, name).await.unwrap().id
    }

    async fn staff(&self, org: &str, login: &str) -> Principal {
        let id = self.person(login).await;
        self.identity.add_member(&self.admin, org, &id, Role::Operator).await.unwrap();
        Principal { user_id: id, name: "Staff".into(), is_admin: false }
    }

    fn bill(&self, user: &str, org: &str, r: &str, outcome: Outcome, days_late: i64) -> NewRecord {
        NewRecord {
            user_id: user.into(),
            kind: Kind::Bill,
            outcome,
            days_late,
            occurred_at_ms: self.ctx.now_ms() - DAY,
            source: "wallet".into(),
            source_org_id: Some(org.into()),
            source_ref: r.into(),
        }
    }

    async fn rows(&self, table: &str, user: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1"))
            .bind(user)
            .fetch_one(&self.ctx.db.pool)
            .await
            .unwrap();
        n
    }
}

#[tokio::test]
async fn nothing_is_kept_before_opt_in_and_an_empty_record_starts_at_600() {
    let e = env().await;
    let org = e.org(OrgKind::CityDepartment, "Water").await;
    let u = e.person("a@example.org").await;
    assert_eq!(e.credit.record_event(e.bill(&u, &org, "b1", Outcome::Late, 40)).await.unwrap(), None);
    assert_eq!(e.rows("credit_records", &u).await, 0);
    assert_eq!(e.credit.score(&u).await.unwrap_err().code, codes::NOT_OPTED_IN);
    let s = e.credit.opt_in(&u).await.unwrap();
    assert_eq!(s.score, 600);
    assert_eq!(s.band, "good");
    assert_eq!(s.model_hash, e.credit.model().hash);
}

#[tokio::test]
async fn a_record_recomputes_at_once_and_every_past_score_recomputes_exactly() {
    let e = env().await;
    let org = e.org(OrgKind::CityDepartment, "Water").await;
    let u = e.person("b@example.org").await;
    e.credit.opt_in(&u).await.unwrap();
    e.credit.record_event(e.bill(&u, &org, "b1", Outcome::Late, 40)).await.unwrap().unwrap();
    // 600 − 40 (one > 30 days late) − 15 (one late) + 15 (one active month) = 560.
    assert_eq!(e.credit.score(&u).await.unwrap().score, 560);
    e.credit.record_event(e.bill(&u, &org, "b2", Outcome::Late, 45)).await.unwrap();
    let s = e.credit.score(&u).await.unwrap();
    // 600 − 60 − 30 + 15 = 525, low.
    assert_eq!((s.score, s.band.as_str()), (525, "low"));
    // Reasons: no bill on time (70 lost), two more than 30 days late (60), …
    let codes: Vec<&str> = s.explained.reasons.iter().map(|r| r.code.as_str()).collect();
    assert_eq!(codes, vec!["on_time_24m", "late_30_12m", "active_months_12m", "kept_24m"]);
    // The same reference again replaces the record: b2 was in fact on time.
    e.credit.record_event(e.bill(&u, &org, "b2", Outcome::OnTime, 0)).await.unwrap();
    assert_eq!(e.credit.score(&u).await.unwrap().score, 575);
    e.clock.advance_ms(400 * DAY);
    // The late payment left its 12-month window.
    let later = e.credit.score(&u).await.unwrap().score;
    assert!(later > 575, "{later}");
    let h = e.credit.history(&u).await.unwrap();
    assert_eq!(h.iter().map(|p| p.score).collect::<Vec<_>>(), vec![600, 560, 525, 575, later]);
    for (stored, again) in e.credit.verify_history(&u).await.unwrap() {
        assert_eq!(stored, again);
    }
}

#[tokio::test]
async fn a_contested_record_is_frozen_until_its_organisation_decides() {
    let e = env().await;
    let org = e.org(OrgKind::CityDepartment, "Water").await;
    let other = e.org(OrgKind::Merchant, "Shop").await;
    let clerk = e.staff(&org, "clerk@example.org").await;
    let outsider = e.staff(&other, "shop@example.org").await;
    let u = e.person("c@example.org").await;
    e.credit.opt_in(&u).await.unwrap();
    let rid = e.credit.record_event(e.bill(&u, &org, "b1", Outcome::Late, 40)).await.unwrap().unwrap();
    assert_eq!(e.credit.score(&u).await.unwrap().score, 560);
    let c = e.credit.contest(&u, &rid, "I paid it at the counter on time").await.unwrap();
    assert_eq!(c.status, "open");
    // Frozen: not counted while reviewed.
    assert_eq!(e.credit.score(&u).await.unwrap().score, 600);
    assert_eq!(e.credit.contest(&u, &rid, "again").await.unwrap_err().code, codes::NOT_CONTESTABLE);
    let stranger = e.person("d@example.org").await;
    e.credit.opt_in(&stranger).await.unwrap();
    assert_eq!(e.credit.contest(&stranger, &rid, "not mine").await.unwrap_err().code, yizhan_core::Code::NotFound);
    assert!(e.credit.decide(&outsider, &other, &rid, Decision::Remove).await.is_err());
    let open = e.credit.open_contests(&clerk, &org).await.unwrap();
    assert_eq!(open.len(), 1);
    // Staff reading the contested record is in the person's access log.
    assert!(e.audit.list(&u, 10, None).await.unwrap().iter().any(|a| a.what == "credit_record"));
    let d = e.credit.decide(&clerk, &org, &rid, Decision::Correct(Outcome::Late, 3)).await.unwrap();
    assert_eq!(d.status, "corrected");
    // 3 days late: 600 − 15 + 15 = 600; the steps are on the record.
    assert_eq!(e.credit.score(&u).await.unwrap().score, 600);
    let r = e.credit.records(&u).await.unwrap();
    assert_eq!(r[0].days_late, 3);
    assert_eq!(r[0].contests.len(), 1);
    assert!(r[0].contests[0].decided_at_ms.is_some());
    assert_eq!(e.credit.decide(&clerk, &org, &rid, Decision::Keep).await.unwrap_err().code, codes::CONTEST_DECIDED);
}

#[tokio::test]
async fn a_court_lists_and_lifts_defaulters_and_a_bad_line_applies_nothing() {
    let e = env().await;
    let court = e.org(OrgKind::Court, "Court").await;
    let shop = e.org(OrgKind::Merchant, "Shop").await;
    let judge = e.staff(&court, "judge@example.org").await;
    let seller = e.staff(&shop, "seller@example.org").await;
    let u = e.person("e@example.org").await;
    e.identity.verify_real_name(&u, "居民", &id_number(1)).await.unwrap();
    e.credit.opt_in(&u).await.unwrap();
    let before = e.credit.score(&u).await.unwrap().score;
    assert_eq!(before, 635);
    let good =
        format!("identity_number,case\n{},(2026)浙01执100号\n{},(2026)浙01执101号\n", id_number(1), id_number(2));
    assert_eq!(e.credit.upload_defaulters(&seller, &shop, &good).await.unwrap_err().code, codes::NOT_A_COURT);
    let bad = format!("{},(2026)浙01执100号\n12345,(2026)x\n", id_number(1));
    let err = e.credit.upload_defaulters(&judge, &court, &bad).await.unwrap_err();
    assert_eq!(err.code, codes::DEFAULTER_FILE);
    assert_eq!(err.fields[0].msg.args[0].1, yizhan_core::Arg::Int(2));
    assert_eq!(e.credit.score(&u).await.unwrap().score, before);
    let r = e.credit.upload_defaulters(&judge, &court, &good).await.unwrap();
    assert_eq!((r.lines, r.listed, r.unmatched), (2, 1, 1));
    let s = e.credit.score(&u).await.unwrap();
    assert_eq!((s.score, s.band.as_str()), (350, "low"));
    assert_eq!(s.listings[0].case_ref, "(2026)浙01执100号");
    assert_eq!(s.listings[0].court_name, "Court");
    assert!(e.audit.list(&u, 10, None).await.unwrap().iter().any(|a| a.what == "credit_defaulter_listing"));
    // No identity number is stored by the credit room.
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM credit_defaulters WHERE case_ref LIKE $1 OR user_id LIKE $1")
            .bind(format!("%{}%", &id_number(1)[..10]))
            .fetch_one(&e.ctx.db.pool)
            .await
            .unwrap();
    assert_eq!(n, 0);
    let r = e.credit.upload_defaulters(&judge, &court, "identity_number,case\n").await.unwrap();
    assert_eq!(r.lifted, 1);
    assert_eq!(e.credit.score(&u).await.unwrap().score, before);
}

#[tokio::test]
async fn perk_checks_answer_yes_or_no_and_are_in_the_access_log() {
    let e = env().await;
    let hospital = e.org(OrgKind::Hospital, "Hospital").await;
    let nurse = e.staff(&hospital, "nurse@example.org").await;
    let u = e.person("f@example.org").await;
    assert!(!e.credit.org_can(&nurse, &hospital, &u, "wheelchair").await.unwrap());
    e.credit.opt_in(&u).await.unwrap();
    assert!(e.credit.org_can(&nurse, &hospital, &u, "wheelchair").await.unwrap());
    assert!(!e.credit.org_can(&nurse, &hospital, &u, "deposit_free_rentals").await.unwrap());
    let me = Asker { user_id: u.clone(), label: "me".into(), org_id: None, org_label: None };
    match e.credit.can(&me, &u, "deposit_free_rentals").await.unwrap() {
        yizhan_credit::Answer::Refused { reason } => assert_eq!(reason.key, "credit.refused.score_below"),
        a => panic!("{a:?}"),
    }
    let log = e.audit.list(&u, 10, None).await.unwrap();
    let checks: Vec<(&str, &str)> = log.iter().map(|a| (a.what.as_str(), a.why.as_str())).collect();
    assert!(checks.contains(&("credit_perk.wheelchair", "credit_refused")));
    assert!(checks.contains(&("credit_perk.wheelchair", "credit_granted")));
    assert!(checks.contains(&("credit_perk.deposit_free_rentals", "credit_refused")));
    assert!(log.iter().any(|a| a.org_label.as_deref() == Some("Hospital")));
    let perks = e.credit.perks(&u).await.unwrap();
    assert!(perks.iter().find(|p| p.key == "wheelchair").unwrap().has);
    assert!(!perks.iter().find(|p| p.key == "product_trials").unwrap().has);
    let imp = e.credit.improve(&u).await.unwrap();
    assert_eq!(imp.next_band.unwrap().target_score, 650);
}

#[tokio::test]
async fn opting_out_leaves_nothing_behind_and_names_the_perks_that_ended() {
    let e = env().await;
    let org = e.org(OrgKind::CityDepartment, "Water").await;
    let u = e.person("g@example.org").await;
    e.credit.opt_in(&u).await.unwrap();
    let rid = e.credit.record_event(e.bill(&u, &org, "b1", Outcome::OnTime, 0)).await.unwrap().unwrap();
    e.credit.record_event(e.bill(&u, &org, "b2", Outcome::Late, 2)).await.unwrap();
    e.credit.contest(&u, &rid, "wrong amount").await.unwrap();
    assert!(e.rows("credit_scores", &u).await > 0);
    let out = e.credit.opt_out(&u).await.unwrap();
    assert_eq!(out.perks_ended, vec!["library_card".to_string(), "wheelchair".to_string()]);
    for table in ["credit_people", "credit_scores", "credit_records", "credit_contests"] {
        assert_eq!(e.rows(table, &u).await, 0, "{table}");
    }
    assert_eq!(e.credit.records(&u).await.unwrap_err().code, codes::NOT_OPTED_IN);
    // Opting in again starts afresh.
    assert_eq!(e.credit.opt_in(&u).await.unwrap().score, 600);
}

#[tokio::test]
async fn the_batch_recomputes_every_opted_in_person_as_the_single_path_does() {
    let e = env().await;
    let org = e.org(OrgKind::CityDepartment, "Water").await;
    let mut people = Vec::new();
    for i in 0..5 {
        let u = e.person(&format!("batch{i}@example.org")).await;
        e.credit.opt_in(&u).await.unwrap();
        for j in 0..i {
            e.credit.record_event(e.bill(&u, &org, &format!("b{j}"), Outcome::Late, 10 * j)).await.unwrap();
        }
        people.push(u);
    }
    let seeded = yizhan_credit::bench::seed(&e.credit, 3, 4, |_| {}).await.unwrap();
    assert_eq!(seeded, 15);
    e.clock.advance_ms(200 * DAY);
    let n = e.credit.recompute_all(|_| {}).await.unwrap();
    assert_eq!(n, 8);
    for u in &people {
        let stored = e.credit.history(u).await.unwrap().last().unwrap().score;
        // The single path finds nothing to change: the batch stored what it would.
        assert_eq!(e.credit.recompute(u).await.unwrap(), Some(stored));
        assert_eq!(e.credit.history(u).await.unwrap().last().unwrap().score, stored);
        for (a, b) in e.credit.verify_history(u).await.unwrap() {
            assert_eq!(a, b);
        }
    }
    yizhan_credit::bench::clear(&e.credit).await.unwrap();
    assert_eq!(e.credit.count_people().await.unwrap(), 5);
}

#[tokio::test]
async fn the_database_counts_the_inputs_exactly_as_the_service_does_at_every_edge() {
    let e = env().await;
    let org = e.org(OrgKind::CityDepartment, "Water").await;
    const YEAR: i64 = 365 * DAY;
    const MONTH: i64 = 30 * DAY;
    let later = 10 * DAY;
    // Ages as of the recomputation (after the clock moves on by `later`).
    let ages = [
        1,
        DAY,
        MONTH - 1,
        MONTH,
        MONTH + 1,
        YEAR - 1,
        YEAR,
        YEAR + 1,
        2 * YEAR - 1,
        2 * YEAR,
        2 * YEAR + 1,
        3 * YEAR,
        later,
    ];
    let cases: Vec<(Kind, Outcome, i64)> = vec![
        (Kind::Bill, Outcome::OnTime, 0),
        (Kind::Bill, Outcome::Late, 30),
        (Kind::Fine, Outcome::Late, 31),
        (Kind::PayLater, Outcome::Overdue, 45),
        (Kind::PayLater, Outcome::OnTime, 0),
        (Kind::Bill, Outcome::Overdue, 2),
        (Kind::Booking, Outcome::Missed, 0),
        (Kind::Deposit, Outcome::Kept, 0),
        (Kind::Booking, Outcome::Kept, 0),
        (Kind::Deposit, Outcome::Missed, 0),
        (Kind::Address, Outcome::Verified, 0),
        (Kind::Education, Outcome::Verified, 0),
    ];
    let now = e.ctx.now_ms();
    let mut people = Vec::new();
    for p in 0..6usize {
        let u = e.person(&format!("edge{p}@example.org")).await;
        e.credit.opt_in(&u).await.unwrap();
        if p % 2 == 0 {
            e.credit.set_consent(&u, Kind::Address, true).await.unwrap();
        }
        if p % 3 == 0 {
            e.credit.set_consent(&u, Kind::Education, true).await.unwrap();
        }
        for (i, (kind, outcome, days_late)) in cases.iter().enumerate() {
            if (i + p) % 3 == 0 {
                continue;
            }
            let age = ages[(i * 7 + p * 5) % ages.len()];
            let r = NewRecord {
                user_id: u.clone(),
                kind: *kind,
                outcome: *outcome,
                days_late: *days_late,
                occurred_at_ms: now + later - age,
                source: "wallet".into(),
                source_org_id: Some(org.clone()),
                source_ref: format!("edge-{i}"),
            };
            if r.occurred_at_ms <= now {
                e.credit.record_event(r).await.unwrap();
            }
        }
        people.push(u);
    }
    // One contested record is not counted on either path.
    let recs = e.credit.records(&people[1]).await.unwrap();
    e.credit.contest(&people[1], &recs[0].id, "not mine").await.unwrap();
    e.clock.advance_ms(later);
    let before: Vec<usize> = {
        let mut v = Vec::new();
        for u in &people {
            v.push(e.credit.history(u).await.unwrap().len());
        }
        v
    };
    e.credit.recompute_all(|_| {}).await.unwrap();
    let mut moved = 0;
    for (u, n) in people.iter().zip(before) {
        let h = e.credit.history(u).await.unwrap();
        moved += h.len() - n;
        // The single path (from the records) finds the batch's inputs (from the counted text) unchanged.
        let stored = h.last().unwrap().score;
        assert_eq!(e.credit.recompute(u).await.unwrap(), Some(stored));
        assert_eq!(e.credit.history(u).await.unwrap().len(), h.len(), "{u}");
    }
    assert!(moved >= 3, "records left their windows for most people: {moved}");
}

/// The counted text beside each person is what their records say after
/// every kind of change (a record, a replaced one, a contest, each decision,
/// changes at once on their own connections), and a person from before it
/// existed (no text) is counted from the records by the batch and given one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_counted_text_follows_every_change_to_the_records() {
    let e = env().await;
    let org = e.org(OrgKind::CityDepartment, "Water").await;
    let clerk = e.staff(&org, "clerk@example.org").await;
    let u = e.person("counted@example.org").await;
    e.credit.opt_in(&u).await.unwrap();
    let text = |e: &Env, u: String| {
        let pool = e.ctx.db.pool.clone();
        async move {
            let (t,): (Option<String>,) = sqlx::query_as("SELECT counted FROM credit_people WHERE user_id = $1")
                .bind(&u)
                .fetch_one(&pool)
                .await
                .unwrap();
            t
        }
    };
    let from_records = |e: &Env, u: String| {
        let pool = e.ctx.db.pool.clone();
        async move {
            let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
                "SELECT kind, outcome, days_late, occurred_at_ms FROM credit_records
                 WHERE user_id = $1 AND status = 'active' ORDER BY occurred_at_ms DESC",
            )
            .bind(&u)
            .fetch_all(&pool)
            .await
            .unwrap();
            rows.into_iter()
                .map(|(k, o, d, at)| (Kind::parse(&k).unwrap(), Outcome::parse(&o).unwrap(), d, at))
                .collect::<Vec<_>>()
        }
    };
    let check = |e: &Env, u: String, step: &'static str| {
        let (t, r) = (text(e, u.clone()), from_records(e, u));
        async move {
            let decoded: Vec<_> = yizhan_credit::decode_counted(&t.await.expect(step))
                .expect(step)
                .into_iter()
                .map(|c| (c.kind, c.outcome, c.days_late, c.occurred_at_ms))
                .collect();
            let mut want = r.await;
            // Records at the same instant may come in either order.
            let mut got = decoded;
            got.sort_by_key(|c| (c.3, c.0 as u8, c.1 as u8, c.2));
            want.sort_by_key(|c| (c.3, c.0 as u8, c.1 as u8, c.2));
            assert_eq!(got, want, "{step}");
        }
    };
    assert_eq!(text(&e, u.clone()).await.as_deref(), Some(""), "opted in: nothing counted");
    e.credit.record_event(e.bill(&u, &org, "b1", Outcome::Late, 40)).await.unwrap();
    e.clock.advance_ms(DAY);
    e.credit.record_event(e.bill(&u, &org, "b2", Outcome::OnTime, 0)).await.unwrap();
    check(&e, u.clone(), "two records").await;
    // The same reference again replaces the record.
    e.credit.record_event(e.bill(&u, &org, "b2", Outcome::Late, 3)).await.unwrap();
    check(&e, u.clone(), "a record replaced").await;
    let recs = e.credit.records(&u).await.unwrap();
    let late = recs.iter().find(|r| r.days_late == 40).unwrap().id.clone();
    e.credit.contest(&u, &late, "paid on time").await.unwrap();
    check(&e, u.clone(), "contested: not counted").await;
    e.credit.decide(&clerk, &org, &late, Decision::Correct(Outcome::OnTime, 0)).await.unwrap();
    check(&e, u.clone(), "corrected").await;
    let other = recs.iter().find(|r| r.id != late).unwrap().id.clone();
    e.credit.contest(&u, &other, "not mine").await.unwrap();
    e.credit.decide(&clerk, &org, &other, Decision::Remove).await.unwrap();
    check(&e, u.clone(), "removed").await;
    // Twenty records at once: none lost from the text.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (credit, r) = (e.credit.clone(), e.bill(&u, &org, &format!("c{i}"), Outcome::OnTime, 0));
        tasks.push(tokio::spawn(async move { credit.record_event(r).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    check(&e, u.clone(), "twenty at once").await;
    // A person from before the text: the batch counts the records, stores
    // the same score as the single path, and keeps the text it built.
    sqlx::query("UPDATE credit_people SET counted = NULL WHERE user_id = $1")
        .bind(&u)
        .execute(&e.ctx.db.pool)
        .await
        .unwrap();
    e.clock.advance_ms(40 * DAY);
    e.credit.recompute_all(|_| {}).await.unwrap();
    check(&e, u.clone(), "built by the batch").await;
    let stored = e.credit.history(&u).await.unwrap().last().unwrap().score;
    assert_eq!(e.credit.recompute(&u).await.unwrap(), Some(stored));
}

#[test]
fn the_counted_text_reads_back_what_it_wrote_and_refuses_anything_else() {
    use yizhan_credit::{decode_counted, encode_counted, Counted};
    let records: Vec<Counted> = Kind::ALL
        .iter()
        .flat_map(|k| k.outcomes().iter().map(move |o| (*k, *o)))
        .enumerate()
        .map(|(i, (kind, outcome))| Counted {
            kind,
            outcome,
            days_late: i as i64 * 7,
            occurred_at_ms: 1_700_000_000_000 - i as i64,
        })
        .collect();
    let back = decode_counted(&encode_counted(&records)).unwrap();
    assert_eq!(back.len(), records.len());
    for (a, b) in back.iter().zip(&records) {
        assert_eq!(
            (a.kind, a.outcome, a.days_late, a.occurred_at_ms),
            (b.kind, b.outcome, b.days_late, b.occurred_at_ms)
        );
    }
    assert_eq!(decode_counted("").unwrap().len(), 0);
    for bad in ["9", "00", "0012", "00x:1", "70:1", "06:1 x", "00:1:2"] {
        assert!(decode_counted(bad).is_none(), "{bad}");
    }
}
