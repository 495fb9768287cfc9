//! The pay-later line (the wallet's ledger credit limit, switched on with the
//! credit perk), its monthly statements, overdue bills becoming records, a
//! staged model rolled out by an operator, and the consents for optional
//! sources — on the whole app, over HTTP where a person acts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::StatusCode;
use serde_json::json;
use yizhan_app::testing::*;
use yizhan_core::Clock;
use yizhan_credit::{Kind, NewRecord, Outcome};

const DAY: i64 = 86_400_000;

struct World {
    app: TestApp,
    ana_id: String,
    ana: String,
    clerk: String,
    water: String,
    number: String,
}

/// Ana, verified, opted in, with a water works whose clerk bills her.
async fn world() -> World {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, water) = app.city_and_org(&admin, "Credit City", "Water Works", "city_department").await;
    let (clerk_id, clerk) = app.user("clerk@example.org", "Clerk").await;
    app.add_staff(&admin, &water, &clerk_id, "operator").await;
    let (ana_id, ana) = app.user("ana@example.org", "Ana").await;
    let number = id_number("33010619900101123");
    let r = app.post("/api/v1/me/real-name", Some(&ana), json!({"name": "Ana", "id_number": number})).await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app.post("/api/v1/credit/opt-in", Some(&ana), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    World { app, ana_id, ana, clerk, water, number }
}

impl World {
    /// Bills paid on time over the past `months` months, from another source:
    /// enough of them lift the score into the pay-later bands.
    async fn good_history(&self, months: i64) {
        let now = self.app.clock.now_ms();
        for i in 0..months {
            let r = NewRecord {
                user_id: self.ana_id.clone(),
                kind: Kind::Bill,
                outcome: Outcome::OnTime,
                days_late: 0,
                occurred_at_ms: now - (i * 30 + 1) * DAY,
                source: "test".into(),
                source_org_id: None,
                source_ref: format!("history-{i}"),
            };
            self.app.state.credit.record_event(r).await.unwrap();
        }
    }

    async fn bill(&self, key: &str, amount_fen: i64, due_in_ms: i64) -> String {
        let due = self.app.clock.now_ms() + due_in_ms;
        let r = self
            .app
            .pay(
                &format!("/api/v1/orgs/{}/bills", self.water),
                &self.clerk,
                key,
                json!({"id_number": self.number, "kind": "water", "amount": amount_fen, "due_at": due, "description": "Water"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }

    async fn wallet(&self) -> yizhan_pay::Wallet {
        self.app.state.pay.wallet(&self.ana_id).await.unwrap()
    }

    async fn score(&self) -> i64 {
        self.app.state.credit.score(&self.ana_id).await.unwrap().score
    }

    async fn relogin(&mut self) {
        self.ana = self.app.login("ana@example.org").await;
        self.clerk = self.app.login("clerk@example.org").await;
    }
}

#[tokio::test]
async fn the_line_pays_beyond_the_balance_up_to_the_limit_and_a_lower_score_never_calls_it_in() {
    let w = world().await;
    // At 635 (verified, no history) the perk (650) is out of reach.
    let r = w.app.post("/api/v1/credit/pay-later", Some(&w.ana), json!({"on": true})).await;
    assert_problem(&r, StatusCode::CONFLICT, "credit_no_pay_later");
    w.good_history(4).await;
    let score = w.score().await;
    assert!((700..750).contains(&score), "{score}");
    let r = w.app.post("/api/v1/credit/pay-later", Some(&w.ana), json!({"on": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["on"], true);
    assert_eq!(r.body["band_limit_fen"], 500_000);
    assert_eq!(r.body["limit_fen"], 500_000);
    // The perk check is in her access log.
    let log = w.app.get("/api/v1/me/access-log", Some(&w.ana)).await;
    assert!(log.text.contains("credit_perk.pay_later"), "{}", log.text);

    // ¥100 of her own, then ¥3,000 of bills: ¥2,900 on credit.
    let r = w.app.pay("/api/v1/wallet/topup", &w.ana, "top-1", json!({"amount": 10_000})).await;
    assert!(r.status.is_success(), "{}", r.text);
    let b1 = w.bill("b1", 300_000, DAY).await;
    let r = w.app.pay(&format!("/api/v1/bills/{b1}/pay"), &w.ana, "p1", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(w.wallet().await.balance_fen, -290_000);
    // Beyond the limit: refused, nothing moves.
    let b2 = w.bill("b2", 210_001, DAY).await;
    let r = w.app.pay(&format!("/api/v1/bills/{b2}/pay"), &w.ana, "p2", json!({})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(w.wallet().await.balance_fen, -290_000);
    // Money leaving her hands comes from her own balance only.
    let r = w.app.pay("/api/v1/wallet/withdraw", &w.ana, "w1", json!({"amount": 100})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");

    // A late payment elsewhere lowers the score into the ¥1,000 band: what
    // she owes stays owed, the limit stays at what she uses, new spending stops.
    for (i, days) in [(0, 45)] {
        let r = NewRecord {
            user_id: w.ana_id.clone(),
            kind: Kind::Bill,
            outcome: Outcome::Late,
            days_late: days,
            occurred_at_ms: w.app.clock.now_ms() - DAY,
            source: "test".into(),
            source_org_id: None,
            source_ref: format!("late-{i}"),
        };
        w.app.state.credit.record_event(r).await.unwrap();
    }
    let score = w.score().await;
    assert!((650..700).contains(&score), "{score}");
    let r = w.app.get("/api/v1/credit/pay-later", Some(&w.ana)).await;
    assert_eq!(r.body["band_limit_fen"], 100_000, "{}", r.text);
    assert_eq!(r.body["limit_fen"], 290_000, "{}", r.text);
    assert_eq!(r.body["owed_fen"], 290_000);
    assert_eq!(r.body["available_credit_fen"], 0);
    let b3 = w.bill("b3", 100, DAY).await;
    let r = w.app.pay(&format!("/api/v1/bills/{b3}/pay"), &w.ana, "p3", json!({})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    // Repaying part of it brings the limit down to the band's, never below what is used.
    let r = w.app.pay("/api/v1/wallet/topup", &w.ana, "top-2", json!({"amount": 250_000})).await;
    assert!(r.status.is_success(), "{}", r.text);
    w.app.state.credit.recompute(&w.ana_id).await.unwrap();
    let r = w.app.post("/api/v1/credit/pay-later", Some(&w.ana), json!({"on": true})).await;
    assert_eq!(r.body["limit_fen"], 100_000, "{}", r.text);
    assert_eq!(r.body["owed_fen"], 40_000);
    assert_eq!(r.body["available_credit_fen"], 60_000);

    // Switched off: no new spending on credit; what is owed stays owed.
    let r = w.app.post("/api/v1/credit/pay-later", Some(&w.ana), json!({"on": false})).await;
    assert_eq!(r.body["on"], false);
    assert_eq!(r.body["owed_fen"], 40_000);
    assert_eq!(r.body["limit_fen"], 40_000);
    let r = w.app.pay(&format!("/api/v1/bills/{b3}/pay"), &w.ana, "p3b", json!({})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    let check = w.app.state.ledger.check().await.unwrap();
    assert!(check.is_clean(), "{check:?}");

    // Switched on again, then opting out ends the line the same way.
    w.app.post("/api/v1/credit/pay-later", Some(&w.ana), json!({"on": true})).await;
    assert_eq!(w.app.state.pay.pay_later(&w.ana_id).await.unwrap().ledger_limit_fen, 100_000);
    let r = w.app.post("/api/v1/credit/opt-out", Some(&w.ana), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let line = w.app.state.pay.pay_later(&w.ana_id).await.unwrap();
    assert!(!line.on);
    assert_eq!((line.ledger_limit_fen, line.owed_fen), (40_000, 40_000));
}

#[tokio::test]
async fn concurrent_payments_never_take_the_line_beyond_its_limit() {
    let w = world().await;
    w.good_history(2).await;
    let score = w.score().await;
    assert!((650..700).contains(&score), "{score}");
    let r = w.app.post("/api/v1/credit/pay-later", Some(&w.ana), json!({"on": true})).await;
    assert_eq!(r.body["limit_fen"], 100_000, "{}", r.text);
    let mut bills = Vec::new();
    for i in 0..10 {
        bills.push(w.bill(&format!("race-{i}"), 15_000, DAY).await);
    }
    let mut tasks = Vec::new();
    for (i, b) in bills.into_iter().enumerate() {
        let pay = w.app.state.pay.clone();
        let user = w.ana_id.clone();
        tasks.push(tokio::spawn(async move { pay.pay_bill(&user, &b, &format!("race-pay-{i}")).await }));
    }
    let mut paid = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => paid += 1,
            Err(e) => assert_eq!(e.code.as_str(), "insufficient_funds", "{e}"),
        }
    }
    // 6 × ¥150 = ¥900 fits in ¥1,000; a seventh would not.
    assert_eq!(paid, 6);
    let wallet = w.wallet().await;
    assert_eq!(wallet.balance_fen, -90_000);
    assert!(wallet.available_fen >= -100_000);
    assert!(w.app.state.ledger.check().await.unwrap().is_clean());
}

#[tokio::test]
async fn a_monthly_statement_arrives_and_repaying_it_on_time_or_late_feeds_the_score() {
    let mut w = world().await;
    w.good_history(4).await;
    w.app.post("/api/v1/credit/pay-later", Some(&w.ana), json!({"on": true})).await;
    let b1 = w.bill("m1", 40_000, DAY).await;
    let r = w.app.pay(&format!("/api/v1/bills/{b1}/pay"), &w.ana, "m1", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Nothing to close within the month.
    let rep = w.app.state.pay.pay_later_sweep(100).await.unwrap();
    assert_eq!(rep.statements_issued, 0, "{rep:?}");

    // The next month: one statement for what she owes, in her inbox.
    let (y, m) = yizhan_core::time::year_month_cst(w.app.clock.now_ms());
    let (_, end) = yizhan_core::time::month_range_cst(y, m);
    w.app.clock.advance_ms(end - w.app.clock.now_ms() + DAY);
    w.relogin().await;
    let rep = w.app.state.pay.pay_later_sweep(100).await.unwrap();
    assert_eq!(rep.statements_issued, 1, "{rep:?}");
    assert_eq!(w.app.state.pay.pay_later_sweep(100).await.unwrap().statements_issued, 0);
    let r = w.app.get("/api/v1/credit/pay-later", Some(&w.ana)).await;
    let st = &r.body["statements"][0];
    assert_eq!(st["amount_fen"], 40_000, "{}", r.text);
    assert_eq!(st["status"], "open");
    let statement = st["id"].as_str().unwrap().to_string();
    let inbox = w.app.get("/api/v1/me/notifications", Some(&w.ana)).await;
    assert!(inbox.text.contains("Pay-later statement") || inbox.text.contains("paylater"), "{}", inbox.text);

    // Repaid on time: a pay-later record on time, the wallet owes nothing.
    let r =
        w.app.post(&format!("/api/v1/credit/pay-later/statements/{statement}/repay"), Some(&w.ana), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["owed_fen"], 0);
    assert_eq!(r.body["statements"][0]["status"], "paid");
    // Again: nothing more moves.
    w.app.post(&format!("/api/v1/credit/pay-later/statements/{statement}/repay"), Some(&w.ana), json!({})).await;
    assert_eq!(w.wallet().await.balance_fen, 0);
    let recs = w.app.get("/api/v1/credit/records", Some(&w.ana)).await;
    let rec = recs.body.as_array().unwrap().iter().find(|r| r["kind"] == "pay_later").expect("a pay-later record");
    assert_eq!(rec["outcome"], "on_time");

    // The next month's statement goes unpaid past its due time: overdue, the score drops.
    let b2 = w.bill("m2", 20_000, DAY).await;
    w.app.pay(&format!("/api/v1/bills/{b2}/pay"), &w.ana, "m2", json!({})).await;
    let (y, m) = yizhan_core::time::year_month_cst(w.app.clock.now_ms());
    let (_, end) = yizhan_core::time::month_range_cst(y, m);
    w.app.clock.advance_ms(end - w.app.clock.now_ms() + DAY);
    w.relogin().await;
    w.app.state.pay.pay_later_sweep(100).await.unwrap();
    let before = w.score().await;
    w.app.clock.advance_ms(25 * DAY);
    w.relogin().await;
    let rep = w.app.state.pay.pay_later_sweep(100).await.unwrap();
    assert_eq!(rep.statements_overdue, 1, "{rep:?}");
    let recs = w.app.get("/api/v1/credit/records", Some(&w.ana)).await;
    let overdue: Vec<_> = recs
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "pay_later" && r["outcome"] == "overdue")
        .collect();
    assert_eq!(overdue.len(), 1, "{}", recs.text);
    let after = w.score().await;
    assert!(after < before, "{before} -> {after}");
    // Repaid late: the same record, now late by its days.
    let r = w.app.get("/api/v1/credit/pay-later", Some(&w.ana)).await;
    let open = r.body["statements"][0]["id"].as_str().unwrap().to_string();
    let r = w.app.post(&format!("/api/v1/credit/pay-later/statements/{open}/repay"), Some(&w.ana), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let recs = w.app.get("/api/v1/credit/records", Some(&w.ana)).await;
    let late: Vec<_> =
        recs.body.as_array().unwrap().iter().filter(|r| r["source_ref"] == format!("paylater:{open}")).collect();
    assert_eq!(late.len(), 1, "{}", recs.text);
    assert_eq!(late[0]["outcome"], "late");
    assert!(late[0]["days_late"].as_i64().unwrap() >= 4, "{}", recs.text);
}

#[tokio::test]
async fn an_unpaid_bill_past_its_due_time_is_an_overdue_record_until_paid_late() {
    let mut w = world().await;
    w.good_history(2).await;
    let before = w.score().await;
    let b = w.bill("o1", 5_000, DAY).await;
    // Not yet due: nothing.
    assert_eq!(w.app.state.pay.pay_later_sweep(100).await.unwrap().bills_overdue, 0);
    w.app.clock.advance_ms(3 * DAY);
    w.relogin().await;
    assert_eq!(w.app.state.pay.pay_later_sweep(100).await.unwrap().bills_overdue, 1);
    // Told once (until it is more than 30 days late).
    assert_eq!(w.app.state.pay.pay_later_sweep(100).await.unwrap().bills_overdue, 0);
    let recs = w.app.get("/api/v1/credit/records", Some(&w.ana)).await;
    assert_eq!(recs.body[0]["outcome"], "overdue", "{}", recs.text);
    assert_eq!(recs.body[0]["days_late"], 2);
    let record = recs.body[0]["id"].clone();
    let overdue = w.score().await;
    assert!(overdue < before, "{before} -> {overdue}");
    // More than 30 days late: told again, with the days.
    w.app.clock.advance_ms(30 * DAY);
    w.relogin().await;
    assert_eq!(w.app.state.pay.pay_later_sweep(100).await.unwrap().bills_overdue, 1);
    let recs = w.app.get("/api/v1/credit/records", Some(&w.ana)).await;
    assert_eq!(recs.body[0]["days_late"], 32, "{}", recs.text);
    // Paid at last: the same record, paid late.
    w.app.pay("/api/v1/wallet/topup", &w.ana, "t", json!({"amount": 5_000})).await;
    let r = w.app.pay(&format!("/api/v1/bills/{b}/pay"), &w.ana, "o1", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let recs = w.app.get("/api/v1/credit/records", Some(&w.ana)).await;
    let from_wallet: Vec<_> = recs.body.as_array().unwrap().iter().filter(|r| r["source"] == "wallet").collect();
    assert_eq!(from_wallet.len(), 1, "{}", recs.text);
    assert_eq!(recs.body[0]["id"], record);
    assert_eq!(recs.body[0]["outcome"], "late");
    assert_eq!(w.app.state.pay.pay_later_sweep(100).await.unwrap().bills_overdue, 0);
}

/// v1 with a level-1 verification worth 30 points instead of 40 (same maximum).
fn model_v2() -> String {
    let mut m: serde_json::Value = serde_json::from_str(yizhan_credit::MODEL_V1).unwrap();
    m["version"] = json!("v2");
    for c in m["characteristics"].as_array_mut().unwrap() {
        if c["key"] == "verification_level" {
            c["bins"][1]["points"] = json!(30);
        }
    }
    serde_json::to_string_pretty(&m).unwrap()
}

#[tokio::test]
async fn a_staged_model_shows_beside_the_score_and_only_scores_once_activated() {
    let w = world().await;
    let credit = &w.app.state.credit;
    let v1 = credit.model().hash.clone();
    assert_eq!(w.score().await, 635);
    // A file that does not load is refused, naming the problem.
    let mut bad: serde_json::Value = serde_json::from_str(yizhan_credit::MODEL_V1).unwrap();
    bad["groups"][0]["weight_pct"] = json!(1);
    let e = credit.stage_model(&bad.to_string()).await.unwrap_err();
    assert_eq!(e.code.as_str(), "credit_model_invalid");
    assert!(credit.staged_model().is_none());

    let staged = credit.stage_model(&model_v2()).await.unwrap();
    assert_eq!(staged.state, "staged");
    assert_ne!(staged.hash, v1);
    // The old model still scores; the new one is shown beside it.
    let r = w.app.get("/api/v1/credit/score", Some(&w.ana)).await;
    assert_eq!(r.body["score"], 635, "{}", r.text);
    assert_eq!(r.body["model_hash"], v1);
    assert_eq!(r.body["staged"]["score"], 625);
    assert_eq!(r.body["staged"]["model_hash"], staged.hash);
    let c = credit.compare_models(100, |_| {}).await.unwrap();
    assert_eq!(c.people, 1);
    assert_eq!(c.bands.len(), 1);
    assert_eq!(c.bands[0].band, "good");
    assert_eq!((c.bands[0].min_shift, c.bands[0].max_shift, c.bands[0].total_shift), (-10, -10, -10));

    let active = credit.activate_model(&staged.hash).await.unwrap();
    assert_eq!(active.state, "active");
    let r = w.app.get("/api/v1/credit/score", Some(&w.ana)).await;
    assert_eq!(r.body["score"], 625, "{}", r.text);
    assert_eq!(r.body["model_version"], "v2");
    assert!(r.body["staged"].is_null());
    // The past score keeps its model and is explained (recomputed) exactly with it.
    let h = w.app.get("/api/v1/credit/history", Some(&w.ana)).await;
    let hashes: Vec<&str> = h.body.as_array().unwrap().iter().map(|p| p["model_hash"].as_str().unwrap()).collect();
    assert!(hashes.contains(&v1.as_str()) && hashes.contains(&staged.hash.as_str()), "{hashes:?}");
    for (stored, recomputed) in credit.verify_history(&w.ana_id).await.unwrap() {
        assert_eq!(stored, recomputed);
    }
    // Another process (a restart) loads the same models.
    let again = yizhan_credit::Credit::new(
        w.app.state.ctx.clone(),
        w.app.state.identity.clone(),
        w.app.state.audit.clone(),
        w.app.state.notify.clone(),
    )
    .unwrap();
    assert_eq!(again.model().hash, v1);
    again.load_models().await.unwrap();
    assert_eq!(again.model().hash, staged.hash);
    assert!(again.model_by_hash(&v1).is_some());
    // Rolling back to the build's model.
    credit.activate_model(&v1).await.unwrap();
    assert_eq!(w.score().await, 635);
}

#[tokio::test]
async fn an_optional_source_counts_only_with_its_consent() {
    let w = world().await;
    let r = w.app.get("/api/v1/credit/consents", Some(&w.ana)).await;
    assert_eq!(r.body, json!({"address": false, "education": false}), "{}", r.text);
    let r = NewRecord {
        user_id: w.ana_id.clone(),
        kind: Kind::Address,
        outcome: Outcome::Verified,
        days_late: 0,
        occurred_at_ms: w.app.clock.now_ms() - DAY,
        source: "test".into(),
        source_org_id: None,
        source_ref: "address-1".into(),
    };
    w.app.state.credit.record_event(r).await.unwrap();
    let value = |s: &serde_json::Value, k: &str| {
        s["characteristics"].as_array().unwrap().iter().find(|c| c["key"] == k).unwrap()["value"].clone()
    };
    let s0 = w.app.get("/api/v1/credit/score", Some(&w.ana)).await.body;
    assert_eq!(value(&s0, "address_verified"), 0);
    let r = w.app.post("/api/v1/credit/consents", Some(&w.ana), json!({"address": true})).await;
    assert_eq!(r.body, json!({"address": true, "education": false}), "{}", r.text);
    let s1 = w.app.get("/api/v1/credit/score", Some(&w.ana)).await.body;
    assert_eq!(value(&s1, "address_verified"), 1);
    assert_eq!(s1["score"].as_i64().unwrap(), s0["score"].as_i64().unwrap() + 15);
    // Education has no record: consent alone changes nothing.
    w.app.post("/api/v1/credit/consents", Some(&w.ana), json!({"education": true})).await;
    assert_eq!(w.app.get("/api/v1/credit/score", Some(&w.ana)).await.body["score"], s1["score"]);
    // Withdrawn: recomputed without it.
    let r = w.app.post("/api/v1/credit/consents", Some(&w.ana), json!({"address": false})).await;
    assert_eq!(r.body["address"], false);
    let s2 = w.app.get("/api/v1/credit/score", Some(&w.ana)).await.body;
    assert_eq!(value(&s2, "address_verified"), 0);
    assert_eq!(s2["score"], s0["score"]);
    let h = w.app.get("/api/v1/credit/history", Some(&w.ana)).await;
    assert!(h.body.as_array().unwrap().iter().any(|p| p["cause"] == "consent"));
    // The page shows the section; unknown fields are refused.
    let r = w.app.post("/api/v1/credit/consents", Some(&w.ana), json!({"party": true})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Nobody else sees her consents.
    let (_, bo) = w.app.user("bo@example.org", "Bo").await;
    assert_problem(&w.app.get("/api/v1/credit/consents", Some(&bo)).await, StatusCode::CONFLICT, "credit_not_opted_in");
}
