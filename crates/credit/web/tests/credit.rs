//! The credit room over HTTP, on the whole app: opt-in, a paid bill feeding
//! the score through the wallet's hook, contests decided by the billing
//! organisation's staff, a court's CSV, perk checks answering yes or no, the
//! pages (gauge and chart drawn as SVG, both languages), and who may see what.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use yizhan_app::testing::*;
use yizhan_core::Clock;

const DAY: i64 = 86_400_000;

async fn browser(app: &TestApp, login: &str) -> (String, String) {
    let first = page(app, "/login", "", "en").await;
    let csrf = cookie_of(&first, "yz_csrf").unwrap();
    let body = format!("csrf={csrf}&login={}&password=correct+horse", login.replace('@', "%40"));
    let r = form(app, "/login", &format!("yz_csrf={csrf}"), &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let session = cookie_of(&r, "yz_session").unwrap();
    let cookies = format!("yz_csrf={csrf}; yz_session={session}");
    let csrf = session_csrf(app, &cookies).await;
    (cookies, csrf)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_paid_bill_feeds_the_score_and_a_contest_is_decided_by_the_billing_org() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, water) = app.city_and_org(&admin, "Credit City", "Water Works", "city_department").await;
    let (clerk_id, clerk) = app.user("clerk@example.org", "Clerk").await;
    app.add_staff(&admin, &water, &clerk_id, "operator").await;
    let (_, ana) = app.user("ana@example.org", "Ana").await;
    app.user("bo@example.org", "Bo").await;

    // Nothing is computed before opt-in.
    assert_problem(&app.get("/api/v1/credit/score", Some(&ana)).await, StatusCode::CONFLICT, "credit_not_opted_in");
    let r = app.post("/api/v1/credit/opt-in", Some(&ana), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["score"], 600);
    assert_eq!(r.body["band"], "good");
    assert_eq!(r.body["model_version"], "v1");
    assert_eq!(r.body["groups"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["groups"][0]["max"], 210);

    // A verified person pays a bill late: the score drops within the request.
    let number = id_number("33010619900101123");
    let r = app.post("/api/v1/me/real-name", Some(&ana), json!({"name": "Ana", "id_number": number})).await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app.pay("/api/v1/wallet/topup", &ana, "top-1", json!({"amount": 100_000})).await;
    assert!(r.status.is_success(), "{}", r.text);
    let due = app.clock.now_ms() + DAY;
    let r = app
        .pay(
            &format!("/api/v1/orgs/{water}/bills"),
            &clerk,
            "bill-1",
            json!({"id_number": number, "kind": "water", "amount": 5_000, "due_at": due, "description": "Water, November"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bill = r.body["id"].as_str().unwrap().to_string();
    app.clock.advance_ms(41 * DAY);
    // Sessions ended meanwhile.
    let (ana, bo, clerk) =
        (app.login("ana@example.org").await, app.login("bo@example.org").await, app.login("clerk@example.org").await);
    let admin = app.login("root@example.org").await;
    let r = app.pay(&format!("/api/v1/bills/{bill}/pay"), &ana, "pay-1", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let recs = app.get("/api/v1/credit/records", Some(&ana)).await;
    assert_eq!(recs.body.as_array().unwrap().len(), 1, "{}", recs.text);
    assert_eq!(recs.body[0]["outcome"], "late");
    assert_eq!(recs.body[0]["days_late"], 40);
    assert_eq!(recs.body[0]["source_org_name"], "Water Works");
    let s = app.get("/api/v1/credit/score", Some(&ana)).await;
    // 600 + 35 (verified) − 40 (one more than 30 days late) − 15 (one late) + 15 (an active month) = 595.
    assert_eq!(s.body["score"], 595, "{}", s.text);
    assert_eq!(s.body["band"], "fair");
    assert!(s.body["reasons"].as_array().unwrap().len() <= 4);
    let texts: Vec<&str> = s.body["reasons"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert!(texts.iter().any(|t| t.contains("1 bills paid more than 30 days late")), "{texts:?}");

    // Only Ana sees and contests her records.
    let record = recs.body[0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/credit/records/{record}/contest");
    app.post("/api/v1/credit/opt-in", Some(&bo), json!({})).await;
    assert_problem(&app.post(&path, Some(&bo), json!({"reason": "x"})).await, StatusCode::NOT_FOUND, "not_found");
    assert!(app.get("/api/v1/credit/records", Some(&bo)).await.body.as_array().unwrap().is_empty());
    let r = app.post(&path, Some(&ana), json!({"reason": "I paid at the counter in time"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.get("/api/v1/credit/score", Some(&ana)).await.body["score"], 635);
    // Another organisation's staff cannot decide; the billing org's can.
    let (_, shop) = app.city_and_org(&admin, "Credit City", "Shop", "merchant").await;
    let (seller_id, seller) = app.user("seller@example.org", "Seller").await;
    app.add_staff(&admin, &shop, &seller_id, "operator").await;
    let other = app
        .post(&format!("/api/v1/orgs/{shop}/credit/contests/{record}"), Some(&seller), json!({"decision": "remove"}))
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.text);
    let list = app.get(&format!("/api/v1/orgs/{water}/credit/contests"), Some(&clerk)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1, "{}", list.text);
    let d = app
        .post(
            &format!("/api/v1/orgs/{water}/credit/contests/{record}"),
            Some(&clerk),
            json!({"decision": "correct", "outcome": "on_time"}),
        )
        .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(d.body["status"], "corrected");
    // 600 + 35 + 15 (one on time) + 15 = 665.
    assert_eq!(app.get("/api/v1/credit/score", Some(&ana)).await.body["score"], 665);
    let h = app.get("/api/v1/credit/history", Some(&ana)).await;
    let scores: Vec<i64> = h.body.as_array().unwrap().iter().map(|p| p["score"].as_i64().unwrap()).collect();
    assert_eq!(scores, vec![600, 595, 635, 665], "{}", h.text);

    // Organisations learn yes or no, never the score; each check is in Ana's access log.
    let (_, ana_id) = (0, app.state.identity.find_by_login("ana@example.org").await.unwrap().unwrap().user_id);
    let c = app
        .post(
            &format!("/api/v1/orgs/{shop}/credit/perk-checks"),
            Some(&seller),
            json!({"user_id": ana_id, "perk": "deposit_free_rentals"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body, json!({"granted": true}));
    let log = app.get("/api/v1/me/access-log", Some(&ana)).await;
    assert!(log.text.contains("credit_perk.deposit_free_rentals"), "{}", log.text);
    let perks = app.get("/api/v1/credit/perks", Some(&ana)).await;
    assert_eq!(perks.body.as_array().unwrap().len(), 8);
    let imp = app.get("/api/v1/credit/improve", Some(&ana)).await;
    assert_eq!(imp.body["next_band"]["target_score"], 700, "{}", imp.text);

    // Opting out names the perks that ended and deletes everything.
    let out = app.post("/api/v1/credit/opt-out", Some(&ana), json!({})).await;
    let ended: Vec<&str> =
        out.body["perks_ended"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(
        ended,
        vec![
            "library_card",
            "wheelchair",
            "deposit_free_rentals",
            "pay_after_treatment",
            "station_lounge",
            "pay_later"
        ]
    );
    for table in ["credit_people", "credit_scores", "credit_records", "credit_contests"] {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1"))
            .bind(&ana_id)
            .fetch_one(&app.state.ctx.db.pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

#[tokio::test]
async fn a_court_uploads_its_list_as_csv_and_a_bad_line_is_reported_by_number() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, court) = app.city_and_org(&admin, "Court City", "People's Court", "court").await;
    let (judge_id, judge) = app.user("judge@example.org", "Judge").await;
    app.add_staff(&admin, &court, &judge_id, "operator").await;
    let (_, dan) = app.user("dan@example.org", "Dan").await;
    let number = id_number("33010619900202123");
    app.post("/api/v1/me/real-name", Some(&dan), json!({"name": "Dan", "id_number": number})).await;
    app.post("/api/v1/credit/opt-in", Some(&dan), json!({})).await;
    let upload = |csv: String| {
        let req = Request::post(format!("/api/v1/orgs/{court}/defaulters"))
            .header("authorization", format!("Bearer {judge}"))
            .header("content-type", "text/csv")
            .body(Body::from(csv))
            .unwrap();
        app.request(req)
    };
    let bad = upload(format!("identity_number,case\n{number},(2026)浙01执7号\nnot-a-number,(2026)浙01执8号\n")).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "credit_defaulter_file");
    assert!(bad.text.contains("Line 3"), "{}", bad.text);
    assert_eq!(app.get("/api/v1/credit/score", Some(&dan)).await.body["score"], 635);
    let ok = upload(format!("identity_number,case\n{number},(2026)浙01执7号\n")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["listed"], 1);
    let s = app.get("/api/v1/credit/score", Some(&dan)).await;
    assert_eq!(s.body["score"], 350);
    assert_eq!(s.body["band"], "low");
    assert_eq!(s.body["listings"][0]["case_number"], "(2026)浙01执7号");
    assert_eq!(s.body["listings"][0]["court"], "People's Court");
    let lifted = upload("identity_number,case\n".into()).await;
    assert_eq!(lifted.body["lifted"], 1, "{}", lifted.text);
    assert_eq!(app.get("/api/v1/credit/score", Some(&dan)).await.body["score"], 635);
    // A resident is refused.
    let r = app.post(&format!("/api/v1/orgs/{court}/defaulters"), Some(&dan), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_pages_draw_the_gauge_and_the_history_in_both_languages() {
    let app = spawn_app().await;
    app.user("eve@example.org", "Eve").await;
    let (cookies, csrf) = browser(&app, "eve@example.org").await;
    let p = page(&app, "/credit", &cookies, "en").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(p.text.contains("credit-opt-in"));
    let r = form(&app, "/credit/opt-in", &cookies, &format!("csrf={}", enc(&csrf))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    for (lang, word) in [("en", "Credit history"), ("zh", "信用历史")] {
        let p = page(&app, "/credit", &cookies, lang).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert!(p.text.contains("<svg id=\"credit-gauge\""), "{}", p.text);
        assert!(p.text.contains("<svg id=\"credit-history\""));
        assert!(p.text.contains(word), "{lang}");
        assert!(p.text.contains(">600<"));
    }
    let r = page(&app, "/credit/records", &cookies, "zh").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("暂无记录"));
    let staff = page(&app, "/credit/staff", &cookies, "en").await;
    assert_eq!(staff.status, StatusCode::FORBIDDEN);
    // Asked first: what goes and which perks end.
    let ask = page(&app, "/credit/opt-out", &cookies, "zh").await;
    assert!(ask.text.contains("以下权益将随之终止") && ask.text.contains("免押金借书证"), "{}", ask.text);
    let r = form(&app, "/credit/opt-out", &cookies, &format!("csrf={}", enc(&csrf))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let loc = r.headers.get("location").unwrap().to_str().unwrap().to_string();
    let p = page(&app, &loc, &cookies, "en").await;
    assert!(p.text.contains("Library card without deposit"), "{}", p.text);
    assert!(p.text.contains("credit-opt-in"));
    // Nothing to turn off any more.
    assert_eq!(location(&page(&app, "/credit/opt-out", &cookies, "en").await), "/credit");
}

fn location(r: &yizhan_app::testing::Resp) -> String {
    r.headers.get("location").unwrap().to_str().unwrap().to_string()
}

#[tokio::test]
async fn the_pages_show_the_records_behind_each_factor_and_staff_decide_a_contest_on_theirs() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, water) = app.city_and_org(&admin, "Page City", "Water Works", "city_department").await;
    let (clerk_id, _) = app.user("clerk@example.org", "Clerk Gao").await;
    app.add_staff(&admin, &water, &clerk_id, "operator").await;
    let (fay_id, _) = app.user("fay@example.org", "Fay").await;
    let (cookies, csrf) = browser(&app, "fay@example.org").await;
    // Not a member of any organisation: no link to the staff page.
    assert!(!page(&app, "/credit", &cookies, "en").await.text.contains("credit-staff-link"));
    let r = form(&app, "/credit/opt-in", &cookies, &format!("csrf={}", enc(&csrf))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let record = app
        .state
        .credit
        .record_event(yizhan_credit::NewRecord {
            user_id: fay_id.clone(),
            kind: yizhan_credit::Kind::Bill,
            outcome: yizhan_credit::Outcome::Late,
            days_late: 45,
            occurred_at_ms: app.clock.now_ms() - DAY,
            source: "test".into(),
            source_org_id: Some(water.clone()),
            source_ref: "bill-7".into(),
        })
        .await
        .unwrap()
        .unwrap();

    // Each group lists its characteristics and links to the records behind it; connections has none.
    let p = page(&app, "/credit", &cookies, "en").await;
    assert!(
        p.text.contains("Payments more than 30 days late in the last 12 months: 1 now, 30 of 70 points"),
        "{}",
        p.text
    );
    assert!(p.text.contains(r#"href="/credit/records?group=history""#));
    assert!(p.text.contains(r#"href="/credit/records?group=behaviour""#));
    assert!(!p.text.contains(r#"href="/credit/records?group=connections""#));
    assert!(p.text.contains("Records behind it: 1"));
    assert!(p.text.contains("You have 1 of 8 perks"), "{}", p.text);
    assert!(p.text.contains(" (+"), "a step and its gain");
    let z = page(&app, "/credit", &cookies, "zh").await;
    assert!(z.text.contains("近12个月逾期超过30天的付款：当前1，得30分（满分70分）"), "{}", z.text);
    assert!(z.text.contains("（加") && !z.text.contains(" (加"), "Chinese brackets around a step's gain");
    assert!(z.text.contains("已核验住址（可选，需你同意）：未使用"));
    let history = page(&app, "/credit/records?group=history", &cookies, "en").await;
    assert!(
        history.text.contains(&format!("record-{record}"))
            && history.text.contains("The records behind Credit history")
    );
    let capacity = page(&app, "/credit/records?group=capacity", &cookies, "zh").await;
    assert!(!capacity.text.contains(&format!("record-{record}")));
    assert!(capacity.text.contains("你的记录中没有计入此因素的"), "{}", capacity.text);
    let all = page(&app, "/credit/records?group=nonsense", &cookies, "en").await;
    assert!(all.text.contains(&format!("record-{record}")) && !all.text.contains("credit-records-group"));

    // The perks page, in both languages, leads to the access log.
    for (lang, has, not) in [("en", "You have it", "Not yet"), ("zh", "已享有", "尚未享有")] {
        let p = page(&app, "/credit/perks", &cookies, lang).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert_eq!(p.text.matches("id=\"perk-").count(), 8);
        assert!(p.text.contains(has) && p.text.contains(not) && p.text.contains(r#"href="/access-log""#), "{}", p.text);
    }

    // A failed contest is shown in the person's own frame; a good one lands at the record.
    let path = format!("/credit/records/{record}/contest");
    let bad = form(&app, &path, &cookies, &format!("csrf={}&reason=", enc(&csrf))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert!(bad.text.contains("id=\"logout\"") && bad.text.contains("Say why in 1 to 500 characters"), "{}", bad.text);
    let r = form(&app, &path, &cookies, &format!("csrf={}&reason={}", enc(&csrf), enc("Paid in time"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(location(&r), format!("/credit/records#record-{record}"));

    // The clerk finds the staff page from the credit page and corrects the record.
    let (staff_cookies, staff_csrf) = browser(&app, "clerk@example.org").await;
    assert!(page(&app, "/credit", &staff_cookies, "en").await.text.contains(r#"href="/credit/staff""#));
    let s = page(&app, "/credit/staff", &staff_cookies, "zh").await;
    assert!(s.text.contains(&format!("contest-{record}")) && s.text.contains("贵机构的编号：bill-7"), "{}", s.text);
    assert!(s.text.contains("Paid in time"));
    let bad = form(
        &app,
        &format!("/credit/staff/{water}/{record}"),
        &staff_cookies,
        &format!("csrf={}&decision=maybe", enc(&staff_csrf)),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text.contains("id=\"logout\""));
    let d = form(
        &app,
        &format!("/credit/staff/{water}/{record}"),
        &staff_cookies,
        &format!("csrf={}&decision=on_time", enc(&staff_csrf)),
    )
    .await;
    assert_eq!(d.status, StatusCode::SEE_OTHER, "{}", d.text);
    assert_eq!(location(&d), "/credit/staff?decided=corrected");
    let after = page(&app, &location(&d), &staff_cookies, "en").await;
    assert!(after.text.contains("Decided: Corrected. The person was told."), "{}", after.text);
    assert!(!after.text.contains(&format!("contest-{record}")));
    // Words from the catalogue only: a made-up decision shows nothing.
    let odd = page(&app, "/credit/staff?decided=%3Cb%3E", &staff_cookies, "en").await;
    assert!(!odd.text.contains("Decided:"));

    // The notice's link opens the records page at the record, corrected.
    let link = page(&app, &format!("/credit/records/{record}"), &cookies, "en").await;
    assert_eq!(link.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&link), format!("/credit/records#record-{record}"));
    let odd = page(&app, "/credit/records/%22%3E%3Cscript%3E", &cookies, "en").await;
    assert_eq!(location(&odd), "/credit/records#record-script");
    let r = page(&app, "/credit/records", &cookies, "en").await;
    assert!(r.text.contains("Paid on time") && r.text.contains("Decided on"), "{}", r.text);
}
