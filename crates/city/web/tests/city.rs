//! City services and booking over HTTP, on the whole app (both engines).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use yizhan_app::testing::{assert_problem, spawn_app, TestApp};
use yizhan_core::Clock;

struct Town {
    city_id: String,
    other_city_id: String,
    org_id: String,
    chief: String,
    clerk: String,
}

async fn town(app: &TestApp) -> Town {
    let (_, admin) = app.admin().await;
    let r = app.post("/api/v1/cities", Some(&admin), json!({"name": "Hangzhou", "services": ["city"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let city_id = r.body["id"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/cities", Some(&admin), json!({"name": "Suzhou", "services": ["city"]})).await;
    let other_city_id = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/api/v1/orgs",
            Some(&admin),
            json!({"city_id": city_id, "kind": "city_department", "name": "Civil Affairs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let org_id = r.body["id"].as_str().unwrap().to_string();
    let (chief_id, chief) = app.user("chief@civil.example", "Chief").await;
    let (clerk_id, clerk) = app.user("clerk@civil.example", "Clerk").await;
    app.add_staff(&admin, &org_id, &chief_id, "admin").await;
    app.add_staff(&admin, &org_id, &clerk_id, "operator").await;
    Town { city_id, other_city_id, org_id, chief, clerk }
}

/// Money in a person's wallet (the fees of booked services are paid from it).
async fn top_up(app: &TestApp, user_id: &str, fen: i64) {
    app.state.pay.topup(user_id, fen, None, &format!("test-topup-{user_id}-{fen}")).await.unwrap();
}

async fn balance(app: &TestApp, user_id: &str) -> (i64, i64) {
    let w = app.state.pay.wallet(user_id).await.unwrap();
    (w.balance_fen, w.available_fen)
}

async fn ledger_balances(app: &TestApp) {
    let report = app.state.ledger.check().await.unwrap();
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert_eq!(report.sum_posted_fen, 0);
}

fn t(en: &str, zh: &str) -> Value {
    json!({"en": en, "zh": zh})
}

fn marriage() -> Value {
    let hours: Vec<Value> = (0..7)
        .map(|d| json!({"weekday": d, "start_minute": 540, "end_minute": 600, "slot_minutes": 30, "capacity": 1}))
        .collect();
    json!({
        "category": "family",
        "title": t("Marriage registration", "结婚登记"),
        "description": t("Register your marriage at the counter.", "到窗口办理结婚登记。"),
        "documents": [t("Both identity cards", "双方身份证")],
        "fee_fen": 900,
        "delivery": "appointment",
        "form": {"type": "object", "required": ["partner"], "properties": {
            "partner": {"type": "string", "maxLength": 30, "title": t("Partner's name", "对方姓名")}}},
        "booking": {
            "rules": {"hold_ms": 600000, "per_person": "day", "release_days_ahead": 7, "release_minute": 420,
                      "close_before_ms": 0, "cancel_before_ms": 7200000, "noshow_limit": 3,
                      "noshow_window_ms": 7776000000i64, "noshow_block_ms": 7776000000i64, "walkin_places": 0,
                      "fee_fen": 0, "allocation": "first_come", "lottery_window_ms": 600000, "offer_ms": 1800000},
            "counters": ["Window 1"],
            "hours": hours,
            "publish_days": 7
        }
    })
}

#[tokio::test]
async fn a_resident_books_a_city_appointment_and_staff_check_them_in() {
    let app = spawn_app().await;
    let w = town(&app).await;
    // Publishing is for the department's admins.
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.clerk), marriage()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();

    // The catalogue, by category; another city shows none of it.
    let r = app.get(&format!("/api/v1/cities/{}/services", w.city_id), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["categories"][0]["key"], "family");
    assert_eq!(r.body["categories"][0]["services"][0]["title"]["zh"], "结婚登记");
    let r = app.get(&format!("/api/v1/cities/{}/services", w.other_city_id), None).await;
    assert_eq!(r.body["categories"], json!([]));
    let r = app.get(&format!("/api/v1/services/{service_id}"), None).await;
    assert_eq!(r.body["fee_fen"], 900);

    // Slots with capacity and what remains.
    let now = app.clock.now_ms();
    let r = app.get(&format!("/api/v1/services/{service_id}/slots?from={now}&to={}", now + 3 * 86_400_000), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let slot = r.body.as_array().unwrap().iter().find(|s| s["start_ms"].as_i64().unwrap() > now).unwrap().clone();
    assert_eq!((slot["capacity"].as_i64(), slot["remaining"].as_i64()), (Some(1), Some(1)));
    assert_eq!(slot["status"], "free");
    let slot_id = slot["id"].as_str().unwrap().to_string();

    let (resident_id, resident) = app.user("13812345678", "Resident").await;
    top_up(&app, &resident_id, 10_000).await;
    let (_, other) = app.user("13900000000", "Other").await;
    let r = app.post("/api/v1/holds", Some(&resident), json!({"slot_id": slot_id})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let hold_id = r.body["id"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/holds", Some(&other), json!({"slot_id": slot_id})).await;
    assert_problem(&r, StatusCode::CONFLICT, "slot_full");

    // The form is checked field by field; nothing is booked on error.
    let r = app.post("/api/v1/appointments", Some(&resident), json!({"hold_id": hold_id, "form": {}})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "form.partner", "{}", r.text);
    let r = app.post("/api/v1/appointments", Some(&other), json!({"hold_id": hold_id, "form": {"partner": "X"}})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "someone else's hold");
    let r = app
        .post("/api/v1/appointments", Some(&resident), json!({"hold_id": hold_id, "form": {"partner": "王小明"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let appt_id = r.body["appointment_id"].as_str().unwrap().to_string();

    let r = app.get("/api/v1/me/appointments", Some(&resident)).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["status"], "booked");
    let r = app.get("/api/v1/me/applications", Some(&resident)).await;
    assert_eq!(r.body[0]["answers"]["partner"], "王小明");
    assert_eq!(app.get("/api/v1/me/applications", Some(&other)).await.body, json!([]));

    // The calendar file.
    let r = app.get(&format!("/api/v1/appointments/{appt_id}/ics"), Some(&resident)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/calendar"));
    assert!(r.text.starts_with("BEGIN:VCALENDAR\r\n"), "{}", r.text);
    assert!(r.text.contains(&format!("UID:{appt_id}@yizhan\r\n")));
    assert!(r.text.contains("DTSTAMP:"));
    assert_eq!(
        app.get(&format!("/api/v1/appointments/{appt_id}/ics"), Some(&other)).await.status,
        StatusCode::NOT_FOUND
    );

    // Check-in is for the department's staff, on the day.
    let r = app.post(&format!("/api/v1/appointments/{appt_id}/check-in"), Some(&resident), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let start = slot["start_ms"].as_i64().unwrap();
    app.clock.set_ms(start - 60_000);
    let r = app.post(&format!("/api/v1/appointments/{appt_id}/check-in"), Some(&w.clerk), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["status"].as_str(), r.body["queue_no"].as_i64()), (Some("arrived"), Some(1)));
    // Too late to cancel now.
    let r = app.post(&format!("/api/v1/appointments/{appt_id}/cancel"), Some(&resident), json!({})).await;
    assert_problem(&r, StatusCode::CONFLICT, "appointment_status");
}

#[tokio::test]
async fn applications_are_worked_through_a_queue_and_staff_reads_are_logged() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let card = json!({
        "category": "culture",
        "title": t("Library card", "图书馆读者证"),
        "description": t("Borrow books at every branch.", "在各分馆借书。"),
        "delivery": "application",
        "form": {"type": "object", "required": ["agree"], "properties": {
            "agree": {"type": "boolean", "title": t("I agree to the rules", "我同意借阅规则")}}}
    });
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), card).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (_, resident) = app.user("13812345678", "Resident").await;
    let path = format!("/api/v1/services/{service_id}/applications");
    let r = app.post(&path, Some(&resident), json!({"form": {"agree": "yes"}})).await;
    assert_eq!(r.body["fields"][0]["field"], "form.agree", "{}", r.text);
    let r = app.post(&path, Some(&resident), json!({"form": {"agree": true}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();

    let q = app.get(&format!("/api/v1/orgs/{}/applications", w.org_id), Some(&w.clerk)).await;
    assert_eq!(q.body.as_array().unwrap().len(), 1, "{}", q.text);
    assert!(q.body[0].get("answers").is_none(), "the queue shows no answers");
    let r = app.get(&format!("/api/v1/orgs/{}/applications/{id}?why=card", w.org_id), Some(&w.clerk)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let log = app.get("/api/v1/me/access-log", Some(&resident)).await;
    assert_eq!(log.body["entries"].as_array().unwrap().len(), 1, "{}", log.text);

    let status = format!("/api/v1/orgs/{}/applications/{id}/status", w.org_id);
    let r = app.post(&status, Some(&w.clerk), json!({"status": "completed"})).await;
    assert_problem(&r, StatusCode::CONFLICT, "application_status");
    for s in ["in_review", "approved", "completed"] {
        let r = app.post(&status, Some(&w.clerk), json!({"status": s})).await;
        assert_eq!(r.status, StatusCode::OK, "{s}: {}", r.text);
    }
    let inbox = app.call(Method::GET, "/api/v1/me/notifications", Some(&resident), None).await;
    assert!(inbox.text.contains("city.notice") || inbox.body.to_string().contains("application"), "{}", inbox.text);
}

#[tokio::test]
async fn residents_see_their_citys_catalogue_and_a_service_page_in_both_languages() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (_, resident) = app.user("13812345678", "Resident").await;
    let cookies = format!("yz_session={resident}");
    let r = yizhan_app::testing::page(&app, "/city", &cookies, "zh-CN").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("city-empty"), "no home city yet");
    let r = app.call(Method::PUT, "/api/v1/me/city", Some(&resident), Some(json!({"city_id": w.city_id}))).await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = yizhan_app::testing::page(&app, "/city", &cookies, "zh-CN").await;
    assert!(r.text.contains("婚姻家庭") && r.text.contains("结婚登记"), "{}", r.text);
    let r = yizhan_app::testing::page(&app, "/city", &cookies, "en").await;
    assert!(r.text.contains("Family and marriage") && r.text.contains("Marriage registration"));
    let r = yizhan_app::testing::page(&app, &format!("/city/services/{service_id}"), &cookies, "zh-CN").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("双方身份证") && r.text.contains("剩余名额"), "{}", r.text);
    // The home screen shows the city's tile.
    let r = yizhan_app::testing::page(&app, "/home", &cookies, "en").await;
    assert!(r.text.contains("href=\"/city\""), "{}", r.text);
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn location(r: &yizhan_app::testing::Resp) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    r.headers["location"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn a_resident_books_through_the_pages_and_staff_check_them_in_on_the_console() {
    use yizhan_app::testing::{form, page, session_csrf};
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (resident_id, resident) = app.user("13812345678", "Resident").await;
    top_up(&app, &resident_id, 10_000).await;
    let cookies = format!("yz_session={resident}");
    let csrf = enc(&session_csrf(&app, &cookies).await);

    // Each open slot on the service page is a button that holds it.
    let r = page(&app, &format!("/city/services/{service_id}"), &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{service_id}/slots?from={now}"), None).await.body;
    let slots: Vec<&Value> =
        slots.as_array().unwrap().iter().filter(|s| s["start_ms"].as_i64().unwrap() > now).collect();
    let first = slots[0].clone();
    let later = slots
        .iter()
        .find(|s| s["start_ms"].as_i64() >= Some(first["start_ms"].as_i64().unwrap() + 86_400_000))
        .unwrap();
    let later = (*later).clone();
    // The later slot is still before its cancellation deadline; the first one is checked in.
    let slot_id = later["id"].as_str().unwrap();
    assert!(r.text.contains(&format!("name=\"slot_id\" value=\"{slot_id}\"")), "{}", r.text);
    let hold_path = location(
        &form(&app, &format!("/city/services/{service_id}/hold"), &cookies, &format!("csrf={csrf}&slot_id={slot_id}"))
            .await,
    );
    assert!(hold_path.starts_with("/city/holds/"), "{hold_path}");
    // Without the CSRF token nothing is held.
    let r = form(
        &app,
        &format!("/city/services/{service_id}/hold"),
        &cookies,
        &format!("slot_id={}", first["id"].as_str().unwrap()),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.text);

    // The form, with its required mark; a missing answer is shown on its field.
    let r = page(&app, &hold_path, &cookies, "zh-CN").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("对方姓名") && r.text.contains("class=\"required\""), "{}", r.text);
    let r = form(&app, &format!("{hold_path}/check"), &cookies, &format!("csrf={csrf}&f_partner=")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-partner\""), "{}", r.text);
    // Someone else cannot open the hold.
    let (_, other) = app.user("13900000000", "Other").await;
    let r = page(&app, &hold_path, &format!("yz_session={other}"), "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Check the answers, then confirm: booked, and listed with its calendar file.
    let body = format!("csrf={csrf}&f_partner={}", enc("王小明"));
    let r = form(&app, &format!("{hold_path}/check"), &cookies, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Check your answers") && r.text.contains("王小明"), "{}", r.text);
    assert!(
        r.text.contains("id=\"check-fee\"") && r.text.contains("paid from your wallet when you confirm"),
        "{}",
        r.text
    );
    assert_eq!(app.get("/api/v1/me/appointments", Some(&resident)).await.body, json!([]), "nothing booked yet");
    assert_eq!(location(&form(&app, &format!("{hold_path}/book"), &cookies, &body).await), "/city/appointments");
    let appts = app.get("/api/v1/me/appointments", Some(&resident)).await.body;
    let appt_id = appts[0]["id"].as_str().unwrap().to_string();
    let r = page(&app, "/city/appointments", &cookies, "zh-CN").await;
    assert!(r.text.contains("结婚登记") && r.text.contains("已预约"), "{}", r.text);
    assert!(r.text.contains(&format!("/city/appointments/{appt_id}/cancel")));
    let r = page(&app, &format!("/city/appointments/{appt_id}/ics"), &cookies, "en").await;
    assert!(r.text.starts_with("BEGIN:VCALENDAR\r\n"), "{}", r.text);
    let r = page(&app, &format!("/city/appointments/{appt_id}/ics"), &format!("yz_session={other}"), "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Cancel before the deadline.
    assert_eq!(
        location(&form(&app, &format!("/city/appointments/{appt_id}/cancel"), &cookies, &format!("csrf={csrf}")).await),
        "/city/appointments"
    );
    let r = page(&app, "/city/appointments", &cookies, "en").await;
    assert!(
        r.text.contains("Cancelled") && !r.text.contains(&format!("/city/appointments/{appt_id}/cancel")),
        "{}",
        r.text
    );

    // Book the other day, then the department's clerk checks them in on the console.
    let first_id = first["id"].as_str().unwrap();
    let hold_path = location(
        &form(&app, &format!("/city/services/{service_id}/hold"), &cookies, &format!("csrf={csrf}&slot_id={first_id}"))
            .await,
    );
    assert_eq!(location(&form(&app, &format!("{hold_path}/book"), &cookies, &body).await), "/city/appointments");
    let appts = app.get("/api/v1/me/appointments", Some(&resident)).await.body;
    let booked = appts.as_array().unwrap().iter().find(|a| a["status"] == "booked").unwrap();
    let appt_id = booked["id"].as_str().unwrap().to_string();
    app.clock.set_ms(first["start_ms"].as_i64().unwrap() - 60_000);
    let clerk_cookies = format!("yz_session={}", w.clerk);
    let clerk_csrf = enc(&session_csrf(&app, &clerk_cookies).await);
    assert!(page(&app, "/city", &clerk_cookies, "en").await.text.contains("href=\"/city/staff\""));
    assert!(!page(&app, "/city", &cookies, "en").await.text.contains("href=\"/city/staff\""));
    let r = page(&app, "/city/staff", &clerk_cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("Civil Affairs") && r.text.contains(&format!("/city/staff/appointments/{appt_id}/check-in")),
        "{}",
        r.text
    );
    // A resident has no desk and cannot check in.
    let r = page(&app, "/city/staff", &cookies, "en").await;
    assert!(r.text.contains("staff-empty"), "{}", r.text);
    let r =
        form(&app, &format!("/city/staff/appointments/{appt_id}/check-in"), &cookies, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        location(
            &form(
                &app,
                &format!("/city/staff/appointments/{appt_id}/check-in"),
                &clerk_cookies,
                &format!("csrf={clerk_csrf}")
            )
            .await
        ),
        "/city/staff"
    );
    let r = page(&app, "/city/staff", &clerk_cookies, "en").await;
    assert!(r.text.contains("Queue number 1"), "{}", r.text);
    let r = page(&app, "/city/appointments", &cookies, "zh-CN").await;
    assert!(r.text.contains("已签到") && r.text.contains("排队号 1"), "{}", r.text);
    // Checked in, and past its deadline: no cancel button.
    assert!(!r.text.contains(&format!("/city/appointments/{appt_id}/cancel")), "{}", r.text);
}

/// The first future slot of each day the service has, in time order.
async fn one_slot_a_day(app: &TestApp, service_id: &str) -> Vec<Value> {
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{service_id}/slots?from={now}"), None).await.body;
    let mut out: Vec<Value> = Vec::new();
    for s in slots.as_array().unwrap() {
        let start = s["start_ms"].as_i64().unwrap();
        let day = (start + 8 * 3_600_000) / 86_400_000;
        if start > now && !out.iter().any(|o| (o["start_ms"].as_i64().unwrap() + 8 * 3_600_000) / 86_400_000 == day) {
            out.push(s.clone());
        }
    }
    out
}

async fn remaining(app: &TestApp, service_id: &str, slot_id: &str) -> i64 {
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{service_id}/slots?from={now}"), None).await.body;
    slots.as_array().unwrap().iter().find(|s| s["id"] == slot_id).unwrap()["remaining"].as_i64().unwrap()
}

async fn hold(app: &TestApp, token: &str, slot: &Value) -> String {
    let r = app.post("/api/v1/holds", Some(token), json!({"slot_id": slot["id"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

async fn book(app: &TestApp, token: &str, slot: &Value) -> String {
    let hold_id = hold(app, token, slot).await;
    let r = app.post("/api/v1/appointments", Some(token), json!({"hold_id": hold_id, "form": {"partner": "王"}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["appointment_id"].as_str().unwrap().to_string()
}

async fn org_balance(app: &TestApp, org_id: &str) -> i64 {
    app.state.ledger.balance(&format!("org:{org_id}")).await.unwrap().posted_fen
}

#[tokio::test]
async fn a_fee_is_paid_from_the_wallet_once_refunded_once_in_time_and_never_after() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    // From tomorrow on: today's first slot may already be within the cancellation deadline.
    let days = one_slot_a_day(&app, &service_id).await[1..].to_vec();
    assert!(days.len() >= 3, "{days:?}");
    let (rid, resident) = app.user("13812345678", "Resident").await;

    // An empty wallet books nothing; the hold stays for a retry after a top-up.
    let hold_id = hold(&app, &resident, &days[0]).await;
    let req = json!({"hold_id": hold_id, "form": {"partner": "王小明"}});
    let r = app.post("/api/v1/appointments", Some(&resident), req.clone()).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(app.get("/api/v1/me/appointments", Some(&resident)).await.body, json!([]));
    top_up(&app, &rid, 10_000).await;
    let r = app.post("/api/v1/appointments", Some(&resident), req.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let appt_id = r.body["appointment_id"].as_str().unwrap().to_string();
    assert_eq!(balance(&app, &rid).await, (9_100, 9_100));
    assert_eq!(org_balance(&app, &w.org_id).await, 900, "paid to the department");
    let r = app.get(&format!("/api/v1/appointments/{appt_id}"), Some(&resident)).await;
    assert_eq!((r.body["fee_fen"].as_i64(), r.body["fee_state"].as_str()), (Some(900), Some("paid")));
    // The used hold is neither booked nor charged again.
    let r = app.post("/api/v1/appointments", Some(&resident), req).await;
    assert_problem(&r, StatusCode::GONE, "booking_hold_expired");
    assert_eq!(balance(&app, &rid).await.0, 9_100);

    // Cancelled before the deadline: refunded once, however often cancel is called.
    let r = app.post(&format!("/api/v1/appointments/{appt_id}/cancel"), Some(&resident), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["fee_state"], "refunded");
    assert_eq!(balance(&app, &rid).await.0, 10_000);
    for _ in 0..2 {
        let r = app.post(&format!("/api/v1/appointments/{appt_id}/cancel"), Some(&resident), json!({})).await;
        assert_problem(&r, StatusCode::CONFLICT, "appointment_status");
    }
    assert!(app.state.booking.cancel(&rid, &appt_id).await.is_err());
    app.state.booking.sweep().await.unwrap();
    assert_eq!(balance(&app, &rid).await.0, 10_000, "one refund");
    assert_eq!(org_balance(&app, &w.org_id).await, 0);

    // After the deadline (2 hours before): no cancel, no refund.
    let late = book(&app, &resident, &days[1]).await;
    assert_eq!(balance(&app, &rid).await.0, 9_100);
    app.clock.set_ms(days[1]["start_ms"].as_i64().unwrap() - 2 * 3_600_000 + 1);
    let r = app.post(&format!("/api/v1/appointments/{late}/cancel"), Some(&resident), json!({})).await;
    assert_problem(&r, StatusCode::CONFLICT, "cancel_too_late");
    assert_eq!(balance(&app, &rid).await.0, 9_100);

    // A no-show keeps the fee.
    let missed = book(&app, &resident, &days[2]).await;
    assert_eq!(balance(&app, &rid).await.0, 8_200);
    app.clock.set_ms(days[2]["end_ms"].as_i64().unwrap() + 1);
    app.state.booking.mark_no_show(&missed).await.unwrap();
    app.state.booking.sweep().await.unwrap();
    assert_eq!(balance(&app, &rid).await.0, 8_200);
    assert_eq!(org_balance(&app, &w.org_id).await, 1_800);
    ledger_balances(&app).await;
}

fn library_card() -> Value {
    json!({
        "category": "culture",
        "title": t("Library card", "图书馆读者证"),
        "description": t("Borrow books at every branch.", "在各分馆借书。"),
        "delivery": "application",
        "form": {},
        "deposit_fen": 10_000,
        "deposit_perk": "library_card"
    })
}

#[tokio::test]
async fn a_library_card_needs_no_deposit_with_the_credit_perk_and_holds_one_otherwise() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), library_card()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["deposit_fen"], 10_000);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let apply = format!("/api/v1/services/{service_id}/applications");
    let status = |id: &str| format!("/api/v1/orgs/{}/applications/{id}/status", w.org_id);

    // With the perk (opted in to the credit score, 600 with no record): no deposit, and the check is in their access log.
    let (good_id, good) = app.user("13812345678", "Good Standing").await;
    top_up(&app, &good_id, 20_000).await;
    app.state.credit.opt_in(&good_id).await.unwrap();
    let r = app.post(&apply, Some(&good), json!({"form": {}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!((r.body["deposit_state"].as_str(), r.body["deposit_fen"].as_i64()), (Some("waived"), Some(10_000)));
    assert_eq!(balance(&app, &good_id).await, (20_000, 20_000));
    let log = app.get("/api/v1/me/access-log", Some(&good)).await;
    assert!(log.text.contains("library_card"), "the perk check is logged: {}", log.text);

    // Without it: the deposit is held in the wallet (still theirs, not spendable) ...
    let (plain_id, plain) = app.user("13900000000", "No Score").await;
    top_up(&app, &plain_id, 20_000).await;
    let r = app.post(&apply, Some(&plain), json!({"form": {}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["deposit_state"], "held");
    let rejected = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(balance(&app, &plain_id).await, (20_000, 10_000));
    let log = app.get("/api/v1/me/access-log", Some(&plain)).await;
    assert!(log.text.contains("library_card"), "{}", log.text);
    // ... and returned when the application is rejected.
    let r = app.post(&status(&rejected), Some(&w.clerk), json!({"status": "rejected"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["deposit_state"], "returned");
    assert_eq!(balance(&app, &plain_id).await, (20_000, 20_000));

    // A card issued keeps the deposit until it is handed back (returned once).
    let r = app.post(&apply, Some(&plain), json!({"form": {}})).await;
    let issued = r.body["id"].as_str().unwrap().to_string();
    for to in ["in_review", "approved", "completed"] {
        let r = app.post(&status(&issued), Some(&w.clerk), json!({"status": to})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert_eq!(balance(&app, &plain_id).await, (20_000, 10_000));
    // The department console offers to give it back once the card was issued.
    let r = yizhan_app::testing::page(&app, "/city/staff", &format!("yz_session={}", w.clerk), "en").await;
    assert!(r.text.contains(&format!("/city/staff/applications/{issued}/deposit-return")), "{}", r.text);
    let back = format!("/api/v1/orgs/{}/applications/{issued}/deposit-return", w.org_id);
    let r = app.post(&back, Some(&plain), json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "only the department's staff: {}", r.text);
    let r = app.post(&back, Some(&w.clerk), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["deposit_state"], "returned");
    assert_problem(&app.post(&back, Some(&w.clerk), json!({})).await, StatusCode::CONFLICT, "no_deposit_held");
    assert_eq!(balance(&app, &plain_id).await, (20_000, 20_000));

    // Not enough money for the deposit: no application.
    let (poor_id, poor) = app.user("13700000000", "Empty Wallet").await;
    let r = app.post(&apply, Some(&poor), json!({"form": {}})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(app.get("/api/v1/me/applications", Some(&poor)).await.body, json!([]));
    assert_eq!(balance(&app, &poor_id).await, (0, 0));
    ledger_balances(&app).await;
}

fn two_people_marriage() -> Value {
    let mut m = marriage();
    m["two_people"] = json!(true);
    m
}

async fn verified(app: &TestApp, login: &str, name: &str, first17: &str) -> (String, String) {
    let (id, token) = app.user(login, name).await;
    app.state.identity.verify_real_name(&id, name, &yizhan_app::testing::id_number(first17)).await.unwrap();
    (id, token)
}

#[tokio::test]
async fn a_marriage_is_booked_when_both_confirm_and_freed_on_a_refusal_or_expiry() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), two_people_marriage()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let days = one_slot_a_day(&app, &service_id).await;
    assert!(days.len() >= 6, "{days:?}");
    let (a_id, a) = verified(&app, "13812345678", "Li Lei", "11010519900101001").await;
    let (b_id, b) = verified(&app, "13912345678", "Han Meimei", "11010519910202002").await;
    let (_, unverified) = app.user("13712345678", "Not Verified").await;
    top_up(&app, &a_id, 10_000).await;
    let invite =
        |hold_id: &str, login: &str| json!({"hold_id": hold_id, "form": {"partner": "韩梅梅"}, "partner_login": login});

    // Booking it alone is refused: the partner is asked for.
    let hold0 = hold(&app, &a, &days[0]).await;
    let r = app.post("/api/v1/appointments", Some(&a), json!({"hold_id": hold0, "form": {"partner": "X"}})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "partner_login", "{}", r.text);
    let r = app.post("/api/v1/me/invitations", Some(&a), invite(&hold0, "13000000000")).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // The slot is held for both while the partner is asked; nobody else takes it.
    let r = app.post("/api/v1/me/invitations", Some(&a), invite(&hold0, "13912345678")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["state"], "waiting");
    let inv0 = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(remaining(&app, &service_id, days[0]["id"].as_str().unwrap()).await, 0);
    let r = app.post("/api/v1/holds", Some(&unverified), json!({"slot_id": days[0]["id"]})).await;
    assert_problem(&r, StatusCode::CONFLICT, "slot_full");
    assert_eq!(app.get("/api/v1/me/appointments", Some(&a)).await.body, json!([]));
    let r = app.get("/api/v1/me/invitations", Some(&b)).await;
    assert_eq!(r.body[0]["id"], inv0.as_str());
    assert_eq!(r.body[0]["inviter_name"], "Li Lei");
    assert_eq!(
        app.get(&format!("/api/v1/me/invitations/{inv0}"), Some(&unverified)).await.status,
        StatusCode::NOT_FOUND
    );
    // Only the partner confirms.
    let confirm = |id: &str| format!("/api/v1/me/invitations/{id}/confirm");
    assert_eq!(app.post(&confirm(&inv0), Some(&a), json!({})).await.status, StatusCode::NOT_FOUND);
    let r = app.post(&confirm(&inv0), Some(&b), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "booked");
    let appt = r.body["appointment_id"].as_str().unwrap().to_string();
    // The same receipt for both: one appointment in both lists, a notice each; the fee from the booker.
    for token in [&a, &b] {
        let list = app.get("/api/v1/me/appointments", Some(token)).await.body;
        assert_eq!(list.as_array().unwrap().len(), 1);
        assert_eq!(list[0]["id"], appt.as_str());
        assert_eq!(list[0]["status"], "booked");
        let r = app.get(&format!("/api/v1/appointments/{appt}/ics"), Some(token)).await;
        assert_eq!(r.status, StatusCode::OK);
        let n = app.get("/api/v1/me/notifications", Some(token)).await;
        assert!(n.text.contains("booked for both of you"), "{}", n.text);
    }
    assert_eq!(balance(&app, &a_id).await.0, 9_100);
    assert_eq!(balance(&app, &b_id).await.0, 0);
    assert_problem(&app.post(&confirm(&inv0), Some(&b), json!({})).await, StatusCode::CONFLICT, "application_status");

    // A refusal frees the place at once.
    let hold1 = hold(&app, &a, &days[1]).await;
    let r = app.post("/api/v1/me/invitations", Some(&a), invite(&hold1, "13912345678")).await;
    let inv1 = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(remaining(&app, &service_id, days[1]["id"].as_str().unwrap()).await, 0);
    let r = app.post(&format!("/api/v1/me/invitations/{inv1}/decline"), Some(&b), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["state"], "declined");
    assert_eq!(remaining(&app, &service_id, days[1]["id"].as_str().unwrap()).await, 1);
    assert_problem(&app.post(&confirm(&inv1), Some(&b), json!({})).await, StatusCode::CONFLICT, "application_status");

    // Both need verified real names.
    let uhold = hold(&app, &unverified, &days[4]).await;
    let r = app.post("/api/v1/me/invitations", Some(&unverified), invite(&uhold, "13912345678")).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "real_name_required");
    let hold5 = hold(&app, &a, &days[5]).await;
    let r = app.post("/api/v1/me/invitations", Some(&a), invite(&hold5, "13712345678")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let inv5 = r.body["id"].as_str().unwrap().to_string();
    assert_problem(
        &app.post(&confirm(&inv5), Some(&unverified), json!({})).await,
        StatusCode::FORBIDDEN,
        "real_name_required",
    );
    let r = app.post(&format!("/api/v1/me/invitations/{inv5}/decline"), Some(&unverified), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Two confirmations at once book once.
    let hold3 = hold(&app, &a, &days[3]).await;
    let r = app.post("/api/v1/me/invitations", Some(&a), invite(&hold3, "13912345678")).await;
    let inv3 = r.body["id"].as_str().unwrap().to_string();
    let path3 = confirm(&inv3);
    let (r1, r2) = tokio::join!(app.post(&path3, Some(&b), json!({})), app.post(&path3, Some(&b), json!({})));
    let mut statuses = vec![r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, vec![StatusCode::OK, StatusCode::CONFLICT], "{} / {}", r1.text, r2.text);
    assert_eq!(app.get("/api/v1/me/appointments", Some(&b)).await.body.as_array().unwrap().len(), 2);
    assert_eq!(balance(&app, &a_id).await.0, 8_200);

    // No answer before the hold ends: the place is freed.
    let hold2 = hold(&app, &a, &days[2]).await;
    let r = app.post("/api/v1/me/invitations", Some(&a), invite(&hold2, "13912345678")).await;
    let inv2 = r.body["id"].as_str().unwrap().to_string();
    app.clock.advance_ms(600_001);
    assert_problem(&app.post(&confirm(&inv2), Some(&b), json!({})).await, StatusCode::GONE, "invitation_expired");
    app.state.booking.sweep().await.unwrap();
    assert_eq!(remaining(&app, &service_id, days[2]["id"].as_str().unwrap()).await, 1);
    assert_eq!(app.get(&format!("/api/v1/me/invitations/{inv2}"), Some(&a)).await.body["state"], "expired");
    assert_eq!(app.get("/api/v1/me/appointments", Some(&a)).await.body.as_array().unwrap().len(), 2);
    ledger_balances(&app).await;
}

#[tokio::test]
async fn the_waiting_list_and_the_lottery_over_http() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let days = one_slot_a_day(&app, &service_id).await;
    // Tomorrow's: cancelling today's may already be past its deadline.
    let slot = &days[1];
    let slot_id = slot["id"].as_str().unwrap().to_string();
    let wait = format!("/api/v1/slots/{slot_id}/waitlist");
    let mut people = Vec::new();
    for (i, login) in ["13812345678", "13912345678", "13712345678", "13612345678"].iter().enumerate() {
        let (id, token) = app.user(login, &format!("Person {i}")).await;
        top_up(&app, &id, 10_000).await;
        people.push(token);
    }
    let (a, b, c, d) = (&people[0], &people[1], &people[2], &people[3]);
    assert_problem(&app.post(&wait, Some(b), json!({})).await, StatusCode::CONFLICT, "slot_not_full");
    let appt = book(&app, a, slot).await;
    // Full: join the list and see the position.
    let r = app.post(&wait, Some(b), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["position"], 1);
    app.clock.advance_ms(1);
    assert_eq!(app.post(&wait, Some(c), json!({})).await.body["position"], 2);
    assert_problem(&app.post(&wait, Some(c), json!({})).await, StatusCode::CONFLICT, "already_waiting");
    let r = app.get(&wait, Some(c)).await;
    assert_eq!((r.body["state"].as_str(), r.body["position"].as_i64()), (Some("waiting"), Some(2)));
    assert_eq!(app.get(&wait, Some(d)).await.status, StatusCode::NOT_FOUND);
    // A cancellation offers the place to the first, with a deadline; booking the offer's hold accepts it.
    let r = app.post(&format!("/api/v1/appointments/{appt}/cancel"), Some(a), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&wait, Some(b)).await;
    assert_eq!(r.body["state"], "offered", "{}", r.text);
    assert!(r.body["offer_expires_at_ms"].as_i64().unwrap() > app.clock.now_ms());
    let offered = r.body["hold_id"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/appointments", Some(b), json!({"hold_id": offered, "form": {"partner": "X"}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.get(&wait, Some(b)).await.body["state"], "accepted");
    assert_eq!(app.get(&wait, Some(c)).await.body["position"], 1);
    // The pages: the slot shows my place; a full slot's page joins the list.
    {
        use yizhan_app::testing::{form, page, session_csrf};
        let r = page(&app, &format!("/city/slots/{slot_id}"), &format!("yz_session={c}"), "en").await;
        assert!(r.text.contains("On the waiting list") && r.text.contains("Position 1"), "{}", r.text);
        let cookies = format!("yz_session={d}");
        let csrf = enc(&session_csrf(&app, &cookies).await);
        let r = page(&app, &format!("/city/slots/{slot_id}"), &cookies, "zh-CN").await;
        assert!(r.text.contains("waitlist-join") && r.text.contains("加入候补"), "{}", r.text);
        let r = form(&app, &format!("/city/slots/{slot_id}/waitlist"), &cookies, &format!("csrf={csrf}")).await;
        assert_eq!(location(&r), format!("/city/slots/{slot_id}"));
        assert_eq!(app.get(&wait, Some(d)).await.body["position"], 2);
    }

    // A lottery: released a day ahead, requests for 10 minutes, then drawn with the seed published before.
    let mut lottery = marriage();
    lottery["title"] = t("Scarce registration", "稀缺号源");
    lottery["booking"]["rules"]["allocation"] = json!("lottery");
    lottery["booking"]["rules"]["release_days_ahead"] = json!(1);
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), lottery).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let lottery_id = r.body["id"].as_str().unwrap().to_string();
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{lottery_id}/slots?from={now}"), None).await.body;
    let slot = slots.as_array().unwrap().iter().find(|s| s["release_at_ms"].as_i64().unwrap() > now).unwrap().clone();
    let slot_id = slot["id"].as_str().unwrap();
    let view = format!("/api/v1/slots/{slot_id}/lottery");
    let enter = format!("/api/v1/slots/{slot_id}/lottery/entries");
    let r = app.get(&view, Some(a)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seed = r.body["seed"].as_str().unwrap().to_string();
    assert_eq!(seed.len(), 32, "the seed is published before the window");
    assert_eq!(r.body["log"], Value::Null);
    assert_problem(&app.post(&enter, Some(a), json!({})).await, StatusCode::CONFLICT, "slot_not_released");
    app.clock.set_ms(slot["release_at_ms"].as_i64().unwrap());
    for token in [a, b, c] {
        let r = app.post(&enter, Some(token), json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["entered"], true);
    }
    assert_problem(&app.post(&enter, Some(b), json!({})).await, StatusCode::CONFLICT, "already_requested");
    let r = app.get(&view, Some(d)).await;
    assert_eq!((r.body["entrants"].as_i64(), r.body["entered"].as_bool()), (Some(3), Some(false)));
    app.clock.advance_ms(600_000);
    assert_problem(&app.post(&enter, Some(d), json!({})).await, StatusCode::CONFLICT, "lottery_not_open");
    // After the window: the result for each, and the log anyone re-runs to the same winners.
    let mut won = 0;
    for token in [a, b, c] {
        let r = app.get(&view, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let log: yizhan_booking::lottery::DrawLog = serde_json::from_value(r.body["log"].clone()).unwrap();
        assert_eq!(log.seed, seed);
        assert_eq!(log.entrants.len(), 3);
        assert_eq!(yizhan_booking::lottery::replay(&log), log.winners);
        assert_eq!(log.winners.len(), 1, "one place");
        // The log names tickets: mine is in it, no account id is.
        let ticket = r.body["my_ticket"].as_str().unwrap().to_string();
        assert!(log.entrants.contains(&ticket));
        assert_eq!(r.body["won"] == true, log.winners.contains(&ticket));
        let me = app.get("/api/v1/me", Some(token)).await.body;
        assert!(!r.body["log"].to_string().contains(me["user_id"].as_str().unwrap()), "an account id is published");
        if r.body["won"] == true {
            won += 1;
            let appt = r.body["appointment_id"].as_str().unwrap();
            let mine = app.get("/api/v1/me/appointments", Some(token)).await.body;
            assert!(mine.as_array().unwrap().iter().any(|x| x["id"] == appt), "{mine}");
        } else {
            assert_eq!(r.body["won"], false);
        }
    }
    assert_eq!(won, 1);
    let r =
        yizhan_app::testing::page(&app, &format!("/city/slots/{slot_id}"), &format!("yz_session={a}"), "zh-CN").await;
    assert!(r.text.contains("分配记录") && r.text.contains(&seed) && r.text.contains("lottery-log"), "{}", r.text);
    assert_eq!(app.get(&view, Some(d)).await.body["won"], Value::Null, "did not enter");
}

/// Book the first slot starting after `after_ms` as `token`: (appointment id, its start).
async fn book_first_after(app: &TestApp, token: &str, service_id: &str, after_ms: i64, form: Value) -> (String, i64) {
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{service_id}/slots?from={now}"), None).await.body;
    let slot = slots.as_array().unwrap().iter().find(|s| s["start_ms"].as_i64().unwrap() > after_ms).unwrap().clone();
    let r = app.post("/api/v1/holds", Some(token), json!({"slot_id": slot["id"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.post("/api/v1/appointments", Some(token), json!({"hold_id": r.body["id"], "form": form})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (r.body["appointment_id"].as_str().unwrap().to_string(), slot["start_ms"].as_i64().unwrap())
}

#[tokio::test]
async fn a_calendar_feed_url_lists_my_appointments_without_a_login_until_revoked() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (resident_id, resident) = app.user("13812345678", "Resident").await;
    let (other_id, other) = app.user("13900000000", "Other").await;
    top_up(&app, &resident_id, 10_000).await;
    top_up(&app, &other_id, 10_000).await;
    let now = app.clock.now_ms();
    let (mine, _) = book_first_after(&app, &resident, &service_id, now, json!({"partner": "王小明"})).await;
    let (theirs, _) = book_first_after(&app, &other, &service_id, now + 2 * 86_400_000, json!({"partner": "李"})).await;

    let r = app.get("/api/v1/me/appointments/feed", Some(&resident)).await;
    assert_eq!(r.body, json!({"active": false, "created_at": null}), "{}", r.text);
    let r = app.post("/api/v1/me/appointments/feed", Some(&resident), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let path = r.body["path"].as_str().unwrap().to_string();
    assert!(path.starts_with("/cal/") && path.ends_with(".ics"), "{path}");
    assert_eq!(app.get("/api/v1/me/appointments/feed", Some(&resident)).await.body["active"], true);

    // No login: the token is the key. Only my appointments, as one calendar.
    let r = app.get(&path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/calendar"));
    assert!(r.text.starts_with("BEGIN:VCALENDAR\r\n") && r.text.ends_with("END:VCALENDAR\r\n"), "{}", r.text);
    assert!(r.text.contains(&format!("UID:{mine}@yizhan\r\n")), "{}", r.text);
    assert!(!r.text.contains(&theirs), "another person's appointment is not in my feed");
    assert!(!r.text.contains("王小明") && !r.text.contains("13812345678"), "nothing but times and statuses");
    // Guessing is 404, like a revoked token.
    for bad in ["/cal/0123456789abcdef0123456789abcdef0123456789abcdef.ics", "/cal/x.ics", "/cal/feed"] {
        assert_eq!(app.get(bad, None).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
    // Renewed: the old URL is dead. Revoked: the new one too.
    let renewed = app.post("/api/v1/me/appointments/feed", Some(&resident), json!({})).await.body["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(renewed, path);
    assert_eq!(app.get(&path, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&renewed, None).await.status, StatusCode::OK);
    let r = app.call(Method::DELETE, "/api/v1/me/appointments/feed", Some(&resident), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.get(&renewed, None).await.status, StatusCode::NOT_FOUND);
    let r = app.call(Method::DELETE, "/api/v1/me/appointments/feed", Some(&resident), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // On the appointments page: made (shown once), then revoked.
    use yizhan_app::testing::{form, page, session_csrf};
    let cookies = format!("yz_session={resident}");
    let csrf = enc(&session_csrf(&app, &cookies).await);
    let r = page(&app, "/city/appointments", &cookies, "en").await;
    assert!(r.text.contains("id=\"feed-none\""), "{}", r.text);
    assert_eq!(form(&app, "/city/appointments/feed", &cookies, "").await.status, StatusCode::FORBIDDEN);
    let r = form(&app, "/city/appointments/feed", &cookies, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let at = r.text.find("id=\"feed-url\">").unwrap() + "id=\"feed-url\">".len();
    let shown = r.text[at..].split('<').next().unwrap().to_string();
    assert_eq!(app.get(&shown, None).await.status, StatusCode::OK, "{shown}");
    let r = page(&app, "/city/appointments", &cookies, "zh-CN").await;
    assert!(r.text.contains("id=\"feed-active\"") && !r.text.contains(&shown), "not shown again");
    assert_eq!(
        location(&form(&app, "/city/appointments/feed/revoke", &cookies, &format!("csrf={csrf}")).await),
        "/city/appointments"
    );
    assert_eq!(app.get(&shown, None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reminders_reach_the_inbox_and_the_mail_the_day_and_the_hour_before_once() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (resident_id, resident) = app.user("resident@example.com", "Resident").await;
    top_up(&app, &resident_id, 10_000).await;
    let now = app.clock.now_ms();
    let (_, start) =
        book_first_after(&app, &resident, &service_id, now + 2 * 86_400_000, json!({"partner": "王"})).await;
    let count = |body: &Value| {
        body.as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| n.to_string().contains("Appointment reminder") || n.to_string().contains("预约提醒"))
                    .count()
            })
            .unwrap_or(0)
    };
    let inbox = || app.call(Method::GET, "/api/v1/me/notifications", Some(&resident), None);
    let before = inbox().await;
    assert_eq!(count(&before.body["items"]), 0, "{}", before.text);

    app.clock.set_ms(start - 86_400_000);
    assert_eq!(app.state.booking.send_due_reminders().await.unwrap(), 1);
    assert_eq!(app.state.booking.send_due_reminders().await.unwrap(), 0, "sent once");
    // The notice follows the engine's commit on its own task.
    let mut got = Value::Null;
    for _ in 0..200 {
        got = inbox().await.body;
        if count(&got["items"]) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(count(&got["items"]), 1, "{got}");
    assert!(got.to_string().contains("tomorrow"), "{got}");
    app.clock.set_ms(start - 3_600_000);
    assert_eq!(app.state.booking.send_due_reminders().await.unwrap(), 1);
    for _ in 0..200 {
        got = inbox().await.body;
        if count(&got["items"]) == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(count(&got["items"]), 2, "{got}");
    assert!(got.to_string().contains("in an hour"), "{got}");
    // Mailed too (the tests' sandbox mailer), to the login that is an address.
    let mut mails = Vec::new();
    for _ in 0..200 {
        mails = app.outbox_to("resident@example.com").await;
        if mails.iter().filter(|m| m.contains("Appointment reminder") || m.contains("预约提醒")).count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        mails.iter().filter(|m| m.contains("Appointment reminder") || m.contains("预约提醒")).count(),
        2,
        "{mails:?}"
    );
}

fn permit() -> Value {
    json!({
        "category": "travel",
        "title": t("Travel permit", "往来港澳通行证"),
        "description": t("Apply with a photo.", "上传照片申请。"),
        "delivery": "application",
        "form": {"type": "object", "required": ["name", "photo"], "x-order": ["name", "photo", "scan"], "properties": {
            "name": {"type": "string", "maxLength": 30, "title": t("Name", "姓名")},
            "photo": {"type": "string", "format": "x-upload", "x-accept": ["image/jpeg", "image/png"],
                      "title": t("Photo", "照片")},
            "scan": {"type": "string", "format": "x-upload", "title": t("Scan", "扫描件")}}}
    })
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// A part of a multipart body: its name, (file name, content type) for a file, its bytes.
type PartSpec<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

fn multipart(parts: &[PartSpec<'_>]) -> (String, Vec<u8>) {
    let b = "yzBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(format!("--{b}\r\n").as_bytes());
        match file {
            Some((file_name, ct)) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {ct}\r\n\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

async fn send_multipart(
    app: &TestApp,
    path: &str,
    auth: (&str, &str),
    parts: &[PartSpec<'_>],
) -> yizhan_app::testing::Resp {
    let (ct, body) = multipart(parts);
    let req = axum::http::Request::post(path)
        .header("content-type", ct)
        .header(auth.0, auth.1)
        .body(axum::body::Body::from(body))
        .unwrap();
    app.request(req).await
}

async fn upload(
    app: &TestApp,
    token: &str,
    service_id: &str,
    field: &str,
    file: (&str, &str),
    data: &[u8],
) -> yizhan_app::testing::Resp {
    let bearer = format!("Bearer {token}");
    send_multipart(
        app,
        &format!("/api/v1/services/{service_id}/uploads?field={field}"),
        ("authorization", &bearer),
        &[("file", Some(file), data)],
    )
    .await
}

#[tokio::test]
async fn files_are_checked_by_content_read_by_their_owner_and_department_and_deleted_with_the_account() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), permit()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (resident_id, resident) = app.user("13812345678", "Resident").await;
    let (_, other) = app.user("13900000000", "Other").await;

    // The content decides: a GIF called PNG, a PNG called JPEG, a PDF where only photos go, nothing.
    let r = upload(&app, &resident, &service_id, "photo", ("a.png", "image/png"), b"GIF89a\x01\0\x01\0").await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "form.photo", "{}", r.text);
    let r = upload(&app, &resident, &service_id, "photo", ("a.jpg", "image/jpeg"), PNG).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("not of the type"), "{}", r.text);
    let r = upload(&app, &resident, &service_id, "photo", ("a.pdf", "application/pdf"), PDF).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = upload(&app, &resident, &service_id, "photo", ("a.png", "image/png"), b"").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = upload(&app, &resident, &service_id, "name", ("a.png", "image/png"), PNG).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "not an upload question: {}", r.text);
    // Too big: refused by its check under the route's limit, and by the limit above it.
    let mut big = PNG.to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    let r = upload(&app, &resident, &service_id, "photo", ("big.png", "image/png"), &big).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    big.resize(6 * 1024 * 1024, 0);
    let r = upload(&app, &resident, &service_id, "photo", ("big.png", "image/png"), &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    // JSON is not a file upload.
    let r = app.post(&format!("/api/v1/services/{service_id}/uploads?field=photo"), Some(&resident), json!({})).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text);

    let r = upload(&app, &resident, &service_id, "photo", ("C:\\me\\photo.png", "image/png"), PNG).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!((r.body["content_type"].as_str(), r.body["file_name"].as_str()), (Some("image/png"), Some("photo.png")));
    let photo = r.body["id"].as_str().unwrap().to_string();
    let r = upload(&app, &resident, &service_id, "scan", ("scan.pdf", "application/octet-stream"), PDF).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let scan = r.body["id"].as_str().unwrap().to_string();
    let r = upload(&app, &other, &service_id, "photo", ("o.png", "image/png"), PNG).await;
    let others_photo = r.body["id"].as_str().unwrap().to_string();

    // Mine to read, nobody else's (not even to know it exists).
    let r = app.get(&format!("/api/v1/me/uploads/{scan}"), Some(&resident)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text.as_bytes(), PDF);
    assert_eq!(r.headers["content-type"], "application/pdf");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(app.get(&format!("/api/v1/me/uploads/{scan}"), Some(&other)).await.status, StatusCode::NOT_FOUND);

    // An answer naming someone else's file, or a file of another question, is refused.
    let path = format!("/api/v1/services/{service_id}/applications");
    let r = app.post(&path, Some(&resident), json!({"form": {"name": "王", "photo": others_photo}})).await;
    assert_eq!(r.body["fields"][0]["field"], "form.photo", "{}", r.text);
    let r = app.post(&path, Some(&resident), json!({"form": {"name": "王", "photo": scan}})).await;
    assert_eq!(r.body["fields"][0]["field"], "form.photo", "{}", r.text);
    let r = app.post(&path, Some(&resident), json!({"form": {"name": "王", "photo": photo, "scan": scan}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // The department's staff read it with a reason, logged in the resident's access log first.
    let staff_path = format!("/api/v1/orgs/{}/uploads/{scan}", w.org_id);
    assert_eq!(app.get(&staff_path, Some(&w.clerk)).await.status, StatusCode::UNPROCESSABLE_ENTITY, "no reason");
    let log = app.get("/api/v1/me/access-log", Some(&resident)).await;
    assert_eq!(log.body["entries"].as_array().unwrap().len(), 0, "{}", log.text);
    let r = app.get(&format!("{staff_path}?why=checking%20the%20application"), Some(&w.clerk)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text.as_bytes(), PDF);
    let log = app.get("/api/v1/me/access-log", Some(&resident)).await;
    assert_eq!(log.body["entries"].as_array().unwrap().len(), 1, "{}", log.text);
    assert!(log.text.contains("checking the application"), "{}", log.text);
    // A resident is not staff; another department sees nothing of it.
    assert_eq!(app.get(&format!("{staff_path}?why=x"), Some(&other)).await.status, StatusCode::FORBIDDEN);
    let (_, admin) = app.admin().await;
    let r = app
        .post("/api/v1/orgs", Some(&admin), json!({"city_id": w.city_id, "kind": "city_department", "name": "Library"}))
        .await;
    let library = r.body["id"].as_str().unwrap().to_string();
    let r = app.get(&format!("/api/v1/orgs/{library}/uploads/{scan}?why=x"), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Listed (without bytes) in the export; gone with the account.
    let export = app.get("/api/v1/me/export", Some(&resident)).await;
    assert!(export.text.contains(&scan) && !export.text.contains("%PDF"), "{}", export.text);
    let r = app.call(Method::DELETE, "/api/v1/me", Some(&resident), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&format!("{staff_path}?why=again"), Some(&w.clerk)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(app.state.city.uploads_of(&resident_id).await.unwrap().is_empty(), "{photo} {scan}");
}

#[tokio::test]
async fn a_draft_is_saved_resumed_bounded_and_gone_once_submitted() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), permit()).await;
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (_, resident) = app.user("13812345678", "Resident").await;
    let (_, other) = app.user("13900000000", "Other").await;
    let draft = format!("/api/v1/services/{service_id}/draft");
    assert_eq!(app.get(&draft, Some(&resident)).await.status, StatusCode::NOT_FOUND);
    let put = |token: String, body: Value| {
        let (app, draft) = (&app, draft.clone());
        async move { app.call(Method::PUT, &draft, Some(&token), Some(body)).await }
    };
    let r = put(resident.clone(), json!({"form": {"name": "王"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Replaced, not added; a half-answered form is fine in a draft.
    let r = put(resident.clone(), json!({"form": {"name": "王小明"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&draft, Some(&resident)).await;
    assert_eq!(r.body["answers"], json!({"name": "王小明"}), "{}", r.text);
    assert_eq!(app.get(&draft, Some(&other)).await.status, StatusCode::NOT_FOUND, "mine only");
    let r = put(resident.clone(), json!({"form": {"nope": 1}})).await;
    assert_eq!(r.body["fields"][0]["field"], "form.nope", "{}", r.text);
    let r = put(resident.clone(), json!({"form": {"name": {"deep": 1}}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = put(resident.clone(), json!({"form": {"name": "字".repeat(6000)}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "over 16 KB: {}", r.text);
    assert_eq!(app.get(&draft, Some(&resident)).await.body["answers"], json!({"name": "王小明"}));

    // Submitting it removes it.
    let photo = upload(&app, &resident, &service_id, "photo", ("p.png", "image/png"), PNG).await.body["id"].clone();
    let r = app
        .post(
            &format!("/api/v1/services/{service_id}/applications"),
            Some(&resident),
            json!({"form": {"name": "王小明", "photo": photo}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.get(&draft, Some(&resident)).await.status, StatusCode::NOT_FOUND);
    put(resident.clone(), json!({"form": {}})).await;
    let r = app.call(Method::DELETE, &draft, Some(&resident), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.call(Method::DELETE, &draft, Some(&resident), None).await.status, StatusCode::NOT_FOUND);
}

fn permit_appointment() -> Value {
    let mut m = marriage();
    m["form"] = json!({"type": "object", "required": ["partner", "photo"], "x-order": ["partner", "photo"], "properties": {
        "partner": {"type": "string", "maxLength": 30, "title": t("Partner's name", "对方姓名")},
        "photo": {"type": "string", "format": "x-upload", "x-accept": ["image/png"], "title": t("Photo", "照片")}}});
    m
}

#[tokio::test]
async fn on_the_pages_a_form_is_saved_as_a_draft_a_photo_attached_and_both_resumed() {
    use yizhan_app::testing::{form, page, session_csrf};
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), permit_appointment()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (resident_id, resident) = app.user("13812345678", "Resident").await;
    top_up(&app, &resident_id, 10_000).await;
    let cookies = format!("yz_session={resident}");
    let raw_csrf = session_csrf(&app, &cookies).await;
    let csrf = enc(&raw_csrf);
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{service_id}/slots?from={now}"), None).await.body;
    let slot = slots.as_array().unwrap().iter().find(|s| s["start_ms"].as_i64().unwrap() > now).unwrap().clone();
    let hold_path = location(
        &form(
            &app,
            &format!("/city/services/{service_id}/hold"),
            &cookies,
            &format!("csrf={csrf}&slot_id={}", slot["id"].as_str().unwrap()),
        )
        .await,
    );
    let r = page(&app, &hold_path, &cookies, "en").await;
    assert!(r.text.contains("type=\"file\"") && r.text.contains("formenctype=\"multipart/form-data\""), "{}", r.text);
    assert!(!r.text.contains("id=\"draft-note\""));

    // Save as draft: back to the form, the answer kept.
    let body = format!("csrf={csrf}&f_partner={}&f_photo=", enc("王小明"));
    assert_eq!(location(&form(&app, &format!("{hold_path}/draft"), &cookies, &body).await), hold_path);
    let r = page(&app, &hold_path, &cookies, "en").await;
    assert!(r.text.contains("id=\"draft-note\"") && r.text.contains("value=\"王小明\""), "{}", r.text);

    // Attach: the whole form as multipart; a wrong file is shown on its question.
    let upload_path = format!("{hold_path}/upload");
    let cookie = ("cookie", cookies.as_str());
    let r = send_multipart(
        &app,
        &upload_path,
        cookie,
        &[
            ("csrf", None, raw_csrf.as_bytes()),
            ("f_partner", None, "王小明".as_bytes()),
            ("file_photo", Some(("x.pdf", "application/pdf")), PDF),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-photo\""), "{}", r.text);
    let r = send_multipart(
        &app,
        &upload_path,
        cookie,
        &[("f_partner", None, b"x"), ("file_photo", Some(("p.png", "image/png")), PNG)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token: {}", r.text);
    let r = send_multipart(
        &app,
        &upload_path,
        cookie,
        &[
            ("csrf", None, raw_csrf.as_bytes()),
            ("f_partner", None, "王小明".as_bytes()),
            ("f_photo", None, b""),
            ("file_photo", Some(("me.png", "image/png")), PNG),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = page(&app, &hold_path, &cookies, "en").await;
    assert!(r.text.contains("id=\"attached-photo\"") && r.text.contains("me.png"), "{}", r.text);
    let at = r.text.find("name=\"f_photo\" value=\"").unwrap() + "name=\"f_photo\" value=\"".len();
    let photo = r.text[at..].split('"').next().unwrap().to_string();
    let r = page(&app, &format!("/city/uploads/{photo}"), &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "image/png");

    // Check, book: the draft is done with.
    let body = format!("csrf={csrf}&f_partner={}&f_photo={photo}", enc("王小明"));
    let r = form(&app, &format!("{hold_path}/check"), &cookies, &body).await;
    assert!(r.status == StatusCode::OK && r.text.contains("me.png"), "{}", r.text);
    assert_eq!(location(&form(&app, &format!("{hold_path}/book"), &cookies, &body).await), "/city/appointments");
    assert_eq!(
        app.get(&format!("/api/v1/services/{service_id}/draft"), Some(&resident)).await.status,
        StatusCode::NOT_FOUND
    );
}

/// The notices in a person's inbox, once the one containing `text` arrived
/// (notices follow the engine's commit on their own task).
async fn inbox_with(app: &TestApp, token: &str, text: &str) -> Value {
    let mut got = Value::Null;
    for _ in 0..200 {
        got = app.call(Method::GET, "/api/v1/me/notifications", Some(token), None).await.body;
        if got.to_string().contains(text) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    got
}

#[tokio::test]
async fn a_drawn_place_is_paid_from_the_wallet_and_passed_on_when_it_cannot_be() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let mut lottery = marriage();
    lottery["title"] = t("Scarce registration", "稀缺号源");
    lottery["booking"]["rules"]["allocation"] = json!("lottery");
    lottery["booking"]["rules"]["release_days_ahead"] = json!(1);
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), lottery).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let lottery_id = r.body["id"].as_str().unwrap().to_string();
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{lottery_id}/slots?from={now}"), None).await.body;
    let slot = slots.as_array().unwrap().iter().find(|s| s["release_at_ms"].as_i64().unwrap() > now).unwrap().clone();
    let slot_id = slot["id"].as_str().unwrap().to_string();
    let view = format!("/api/v1/slots/{slot_id}/lottery");
    let enter = format!("/api/v1/slots/{slot_id}/lottery/entries");
    app.clock.set_ms(slot["release_at_ms"].as_i64().unwrap());
    let mut people = Vec::new();
    for (i, login) in ["13812345678", "13912345678", "13712345678"].iter().enumerate() {
        let (id, token) = app.user(login, &format!("Person {i}")).await;
        let r = app.post(&enter, Some(&token), json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let ticket = app.get(&view, Some(&token)).await.body["my_ticket"].as_str().unwrap().to_string();
        people.push((id, token, ticket));
    }
    let seed = app.get(&view, Some(&people[0].1)).await.body["seed"].as_str().unwrap().to_string();
    let tickets: Vec<String> = people.iter().map(|p| p.2.clone()).collect();
    let order = yizhan_booking::lottery::order(&seed, &tickets);
    let of = |t: &str| people.iter().find(|p| p.2 == t).unwrap().clone();
    // The first drawn has an empty wallet; the second can pay.
    let (first, second, third) = (of(&order[0]), of(&order[1]), of(&order[2]));
    top_up(&app, &second.0, 10_000).await;
    top_up(&app, &third.0, 10_000).await;
    app.clock.advance_ms(600_000);
    let r = app.get(&view, Some(&first.1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["won"].as_bool(), r.body["unpaid"].as_bool()), (Some(false), Some(true)), "{}", r.text);
    let log: yizhan_booking::lottery::DrawLog = serde_json::from_value(r.body["log"].clone()).unwrap();
    assert_eq!(log.unpaid, vec![first.2.clone()]);
    assert_eq!(log.winners, vec![second.2.clone()]);
    assert_eq!(yizhan_booking::lottery::replay(&log), log.winners);
    let r = app.get(&view, Some(&second.1)).await;
    assert_eq!(r.body["won"], true, "{}", r.text);
    let appt = r.body["appointment_id"].as_str().unwrap().to_string();
    let mine = app.get("/api/v1/me/appointments", Some(&second.1)).await.body;
    let a = mine.as_array().unwrap().iter().find(|x| x["id"] == appt.as_str()).unwrap().clone();
    assert_eq!((a["fee_fen"].as_i64(), a["fee_state"].as_str()), (Some(900), Some("paid")), "{a}");
    assert_eq!(balance(&app, &second.0).await.0, 9_100);
    assert_eq!(balance(&app, &third.0).await.0, 10_000, "not drawn: nothing taken");
    assert_eq!(balance(&app, &first.0).await.0, 0);
    // The one passed over is told why, in their language.
    let inbox = inbox_with(&app, &first.1, "could not be paid").await;
    assert!(inbox.to_string().contains("could not be paid from your wallet"), "{inbox}");
    let page =
        yizhan_app::testing::page(&app, &format!("/city/slots/{slot_id}"), &format!("yz_session={}", first.1), "zh-CN")
            .await;
    assert!(page.text.contains("钱包余额不足以支付费用"), "{}", page.text);
    // Cancelled before the deadline: the fee comes back, once.
    let r = app.post(&format!("/api/v1/appointments/{appt}/cancel"), Some(&second.1), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["fee_state"], "refunded");
    app.post(&format!("/api/v1/appointments/{appt}/cancel"), Some(&second.1), json!({})).await;
    assert_eq!(balance(&app, &second.0).await.0, 10_000);
    // The place freed after the draw is not lost: booked first come from the slot's page.
    let first_cookies = format!("yz_session={}", first.1);
    let r = yizhan_app::testing::page(&app, &format!("/city/slots/{slot_id}"), &first_cookies, "en").await;
    assert!(r.text.contains("id=\"slot-hold\"") && r.text.contains("goes first come"), "{}", r.text);
    let csrf = enc(&yizhan_app::testing::session_csrf(&app, &first_cookies).await);
    let r = yizhan_app::testing::form(
        &app,
        &format!("/city/services/{lottery_id}/hold"),
        &first_cookies,
        &format!("csrf={csrf}&slot_id={slot_id}"),
    )
    .await;
    assert!(location(&r).starts_with("/city/holds/"), "{}", r.text);
    // Taken: the next person finds it full and may wait for it.
    let r =
        yizhan_app::testing::page(&app, &format!("/city/slots/{slot_id}"), &format!("yz_session={}", third.1), "zh-CN")
            .await;
    assert!(r.text.contains("id=\"waitlist-join\"") && !r.text.contains("id=\"slot-hold\""), "{}", r.text);
    ledger_balances(&app).await;
}

#[tokio::test]
async fn an_application_fee_is_paid_from_the_wallet_refunded_on_rejection_and_a_crash_after_the_hold_is_recovered() {
    let app = spawn_app().await;
    let w = town(&app).await;
    let mut card = library_card();
    card["fee_fen"] = json!(1_500);
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), card).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let apply = format!("/api/v1/services/{service_id}/applications");
    let status = |id: &str| format!("/api/v1/orgs/{}/applications/{id}/status", w.org_id);

    // The service page says where the fee goes, in both languages.
    let (rid, resident) = app.user("13812345678", "Resident").await;
    let cookies = format!("yz_session={resident}");
    let page = yizhan_app::testing::page(&app, &format!("/city/services/{service_id}"), &cookies, "en").await;
    assert!(page.text.contains("paid from your wallet when you submit"), "{}", page.text);
    let page = yizhan_app::testing::page(&app, &format!("/city/services/{service_id}"), &cookies, "zh-CN").await;
    assert!(page.text.contains("提交时从钱包支付"), "{}", page.text);

    // An empty wallet: a clear problem, nothing kept, nothing moved.
    let r = app.post(&apply, Some(&resident), json!({"form": {}})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(app.get("/api/v1/me/applications", Some(&resident)).await.body, json!([]));
    // Enough for the deposit but not the fee: the deposit held for it is released.
    top_up(&app, &rid, 10_500).await;
    let r = app.post(&apply, Some(&resident), json!({"form": {}})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(app.get("/api/v1/me/applications", Some(&resident)).await.body, json!([]));
    assert_eq!(balance(&app, &rid).await, (10_500, 10_500));

    // Paid (to the department) and held when submitted; both back on a rejection.
    top_up(&app, &rid, 20_000).await;
    let r = app.post(&apply, Some(&resident), json!({"form": {}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!((r.body["fee_fen"].as_i64(), r.body["fee_state"].as_str()), (Some(1_500), Some("paid")));
    assert_eq!(r.body["deposit_state"], "held");
    let first = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(balance(&app, &rid).await, (29_000, 19_000));
    assert_eq!(org_balance(&app, &w.org_id).await, 1_500);
    // The account cannot be deleted while the deposit is held: told why, in their language.
    let r = app.call(Method::DELETE, "/api/v1/me", Some(&resident), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "deposit_held");
    assert!(r.text.contains("return what was lent"), "{}", r.text);
    let r = app.post(&status(&first), Some(&w.clerk), json!({"status": "rejected"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["fee_state"].as_str(), r.body["deposit_state"].as_str()), (Some("refunded"), Some("returned")));
    assert_eq!(balance(&app, &rid).await, (30_500, 30_500));
    assert_eq!(org_balance(&app, &w.org_id).await, 0);

    // A crash after the wallet held and charged, before the application's write:
    // the resident sees it pending, the money is not lost, and the sweep finishes it (each movement once).
    app.state.city.fail_writes_after_payment(1);
    let r = app.post(&apply, Some(&resident), json!({"form": {}})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    let mine = app.get("/api/v1/me/applications", Some(&resident)).await.body;
    let pending = mine.as_array().unwrap().iter().find(|a| a["status"] == "pending").expect("kept").clone();
    let pending_id = pending["id"].as_str().unwrap().to_string();
    assert_eq!(balance(&app, &rid).await, (29_000, 19_000), "held and paid once, visible");
    let q = app.get(&format!("/api/v1/orgs/{}/applications", w.org_id), Some(&w.clerk)).await;
    assert!(!q.text.contains(&pending_id), "not before the department yet: {}", q.text);
    app.clock.advance_ms(yizhan_city::PENDING_GRACE_MS);
    assert_eq!(app.state.city.sweep().await.unwrap(), 1);
    let mine = app.get("/api/v1/me/applications", Some(&resident)).await.body;
    let a = mine.as_array().unwrap().iter().find(|a| a["id"] == pending_id.as_str()).unwrap().clone();
    assert_eq!(
        (a["status"].as_str(), a["deposit_state"].as_str(), a["fee_state"].as_str()),
        (Some("submitted"), Some("held"), Some("paid"))
    );
    assert_eq!(balance(&app, &rid).await, (29_000, 19_000), "nothing taken twice");
    let q = app.get(&format!("/api/v1/orgs/{}/applications", w.org_id), Some(&w.clerk)).await;
    assert!(q.text.contains(&pending_id), "{}", q.text);
    ledger_balances(&app).await;
}

#[tokio::test]
async fn staff_open_an_applications_files_on_the_console_logged_and_nobody_else_does() {
    use yizhan_app::testing::page;
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), permit()).await;
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (_, resident) = app.user("13812345678", "Resident").await;
    let (_, other) = app.user("13900000000", "Other").await;
    let photo = upload(&app, &resident, &service_id, "photo", ("me.png", "image/png"), PNG).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/api/v1/services/{service_id}/applications"),
            Some(&resident),
            json!({"form": {"name": "王", "photo": photo}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let app_id = r.body["id"].as_str().unwrap().to_string();
    let clerk = format!("yz_session={}", w.clerk);

    // The resident sees their own files, with type and size.
    let r = page(&app, "/city/uploads", &format!("yz_session={resident}"), "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains(&format!("/city/uploads/{photo}")) && r.text.contains("image/png"), "{}", r.text);
    assert!(r.text.contains(&format!("{} bytes", PNG.len())), "{}", r.text);
    let r = page(&app, "/city/uploads", &format!("yz_session={other}"), "zh-CN").await;
    assert!(r.text.contains("没有文件") && !r.text.contains(&photo), "{}", r.text);
    assert_eq!(
        page(&app, &format!("/city/uploads/{photo}"), &format!("yz_session={other}"), "en").await.status,
        StatusCode::NOT_FOUND
    );

    // The console links the application; opening it asks why first (nothing logged yet).
    let r = page(&app, "/city/staff", &clerk, "en").await;
    assert!(r.text.contains(&format!("/city/staff/applications/{app_id}")), "{}", r.text);
    let r = page(&app, &format!("/city/staff/applications/{app_id}"), &clerk, "zh-CN").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("查看理由") && r.text.contains("staff-open"), "{}", r.text);
    let log = app.get("/api/v1/me/access-log", Some(&resident)).await;
    assert_eq!(log.body["entries"].as_array().unwrap().len(), 0, "{}", log.text);
    // With a reason: the answers and the file with its type and size; logged.
    let opened = format!("/city/staff/applications/{app_id}?why=permit%20check");
    let r = page(&app, &opened, &clerk, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let file_link = format!("/city/staff/applications/{app_id}/uploads/{photo}?why=permit%20check");
    assert!(r.text.contains(&file_link) && r.text.contains("me.png") && r.text.contains("image/png"), "{}", r.text);
    assert!(r.text.contains(&format!("{} bytes", PNG.len())), "{}", r.text);
    let r = page(&app, &file_link, &clerk, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["content-type"], "image/png");
    assert!(r.text.as_bytes().ends_with(&PNG[1..]), "the file's bytes");
    let log = app.get("/api/v1/me/access-log", Some(&resident)).await;
    let entries = log.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "the application and the file: {}", log.text);
    assert!(log.text.contains("upload") && log.text.contains("permit check"), "{}", log.text);

    // Another department's staff and another resident: refused, and nothing is logged.
    let (_, admin) = app.admin().await;
    let r = app
        .post("/api/v1/orgs", Some(&admin), json!({"city_id": w.city_id, "kind": "city_department", "name": "Library"}))
        .await;
    let library = r.body["id"].as_str().unwrap().to_string();
    let (librarian_id, librarian) = app.user("librarian@library.example", "Librarian").await;
    app.add_staff(&admin, &library, &librarian_id, "operator").await;
    for cookies in [format!("yz_session={librarian}"), format!("yz_session={other}")] {
        for path in [format!("/city/staff/applications/{app_id}"), opened.clone(), file_link.clone()] {
            let r = page(&app, &path, &cookies, "en").await;
            assert!(
                r.status == StatusCode::FORBIDDEN || r.status == StatusCode::NOT_FOUND,
                "{path}: {} {}",
                r.status,
                r.text
            );
            assert!(!r.text.contains("me.png"), "{}", r.text);
        }
    }
    // A file the application does not name is not opened through it.
    let others = upload(&app, &other, &service_id, "photo", ("o.png", "image/png"), PNG).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = page(&app, &format!("/city/staff/applications/{app_id}/uploads/{others}?why=x"), &clerk, "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let log = app.get("/api/v1/me/access-log", Some(&resident)).await;
    assert_eq!(log.body["entries"].as_array().unwrap().len(), 2, "{}", log.text);
}

#[tokio::test]
async fn a_resident_applies_through_the_pages_pays_once_and_sees_the_application_and_its_history() {
    use yizhan_app::testing::{form, page, session_csrf};
    let app = spawn_app().await;
    let w = town(&app).await;
    let mut card = library_card();
    card["fee_fen"] = json!(1_500);
    card["form"] = json!({"type": "object", "required": ["reader"], "properties": {
        "reader": {"type": "string", "maxLength": 30, "title": t("Reader's name", "读者姓名")}}});
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), card).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (rid, resident) = app.user("13812345678", "Resident").await;
    let cookies = format!("yz_session={resident}");
    let csrf = enc(&session_csrf(&app, &cookies).await);
    let base = format!("/city/services/{service_id}/apply");

    // The home page and the service page lead to the form and my applications.
    let r = page(&app, "/city", &cookies, "zh-CN").await;
    assert!(r.text.contains("href=\"/city/applications\"") && r.text.contains("我的申请"), "{}", r.text);
    let r = page(&app, &format!("/city/services/{service_id}"), &cookies, "en").await;
    assert!(r.text.contains(&format!("href=\"{base}\"")) && r.text.contains("Fill in the application"), "{}", r.text);
    let r = page(&app, &base, &cookies, "zh-CN").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("读者姓名") && r.text.contains(&format!("action=\"{base}/check\"")), "{}", r.text);
    // An appointment service has no application form.
    let m = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), marriage()).await;
    let r = page(&app, &format!("/city/services/{}/apply", m.body["id"].as_str().unwrap()), &cookies, "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // A draft is kept and resumed on the same form.
    assert_eq!(
        location(&form(&app, &format!("{base}/draft"), &cookies, &format!("csrf={csrf}&f_reader=Li")).await),
        base
    );
    let r = page(&app, &base, &cookies, "en").await;
    assert!(r.text.contains("id=\"draft-note\"") && r.text.contains("value=\"Li\""), "{}", r.text);

    // A missing answer is shown on its field; then "check your answers" with the fee and the deposit.
    let r = form(&app, &format!("{base}/check"), &cookies, &format!("csrf={csrf}&f_reader=")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-reader\""), "{}", r.text);
    let body = format!("csrf={csrf}&f_reader={}", enc("李华"));
    let r = form(&app, &format!("{base}/check"), &cookies, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Check your answers") && r.text.contains("李华"), "{}", r.text);
    assert!(
        r.text.contains("id=\"check-fee\"") && r.text.contains("paid from your wallet when you submit"),
        "{}",
        r.text
    );
    assert!(r.text.contains("id=\"check-deposit\""), "{}", r.text);
    let key = r.text.split("name=\"application_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let submit = format!("{body}&application_id={}", enc(&key));

    // Without the CSRF token nothing happens; an empty wallet is told in the person's language, answers kept.
    let r = form(&app, &format!("{base}/submit"), &cookies, &format!("f_reader=x&application_id={key}")).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    let r = form_in(&app, &format!("{base}/submit"), &cookies, &submit, "en").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Insufficient funds") && r.text.contains("李华"), "{}", r.text);
    let r = form_in(&app, &format!("{base}/submit"), &cookies, &submit, "zh-CN").await;
    assert!(r.text.contains("余额不足") && r.text.contains("李华"), "{}", r.text);
    assert_eq!(app.get("/api/v1/me/applications", Some(&resident)).await.body, json!([]));
    assert_eq!(balance(&app, &rid).await, (0, 0));

    // Paid once: the same submission again (a reload of the POST) makes nothing new and moves nothing.
    top_up(&app, &rid, 20_000).await;
    let r = form(&app, &format!("{base}/check"), &cookies, &body).await;
    let key = r.text.split("name=\"application_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let submit = format!("{body}&application_id={}", enc(&key));
    let detail = location(&form(&app, &format!("{base}/submit"), &cookies, &submit).await);
    assert_eq!(detail, format!("/city/applications/{key}"));
    assert_eq!(balance(&app, &rid).await, (18_500, 8_500), "fee paid, deposit held");
    assert_eq!(location(&form(&app, &format!("{base}/submit"), &cookies, &submit).await), detail);
    let r = page(&app, &detail, &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(balance(&app, &rid).await, (18_500, 8_500), "nothing moved twice");
    assert_eq!(org_balance(&app, &w.org_id).await, 1_500);
    assert_eq!(app.get("/api/v1/me/applications", Some(&resident)).await.body.as_array().unwrap().len(), 1);

    // Listed with its status; the detail page shows answers, fee and the history.
    app.clock.advance_ms(60_000);
    let r = app
        .post(
            &format!("/api/v1/orgs/{}/applications/{key}/status", w.org_id),
            Some(&w.clerk),
            json!({"status": "in_review"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = page(&app, "/city/applications", &cookies, "zh-CN").await;
    assert!(r.text.contains(&format!("href=\"{detail}\"")) && r.text.contains("审核中"), "{}", r.text);
    let r = page(&app, &detail, &cookies, "en").await;
    assert!(r.text.contains("李华") && r.text.contains("id=\"application-fee\""), "{}", r.text);
    assert!(r.text.contains("paid from your wallet"), "{}", r.text);
    let history = r.text.split("id=\"application-history\"").nth(1).unwrap();
    assert!(history.find("Submitted").unwrap() < history.find("In review").unwrap(), "{history}");

    // Another resident: not found, on the page and under the same submission id.
    let (_, other) = app.user("13900000000", "Other").await;
    let other_cookies = format!("yz_session={other}");
    let r = page(&app, &detail, &other_cookies, "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let other_csrf = enc(&session_csrf(&app, &other_cookies).await);
    let r = form(
        &app,
        &format!("{base}/submit"),
        &other_cookies,
        &format!("csrf={other_csrf}&f_reader=x&application_id={}", enc(&key)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    ledger_balances(&app).await;
}

/// A form posted by a browser asking for this language.
async fn form_in(app: &TestApp, path: &str, cookies: &str, body: &str, lang: &str) -> yizhan_app::testing::Resp {
    let req = axum::http::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookies)
        .header("accept-language", lang)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    app.request(req).await
}

#[tokio::test]
async fn a_resident_answers_a_request_for_more_information_on_the_page_and_staff_are_told() {
    use yizhan_app::testing::page;
    let app = spawn_app().await;
    let w = town(&app).await;
    let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), permit()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let service_id = r.body["id"].as_str().unwrap().to_string();
    let (_, resident) = app.user("13812345678", "Resident").await;
    let cookies = format!("yz_session={resident}");
    let raw_csrf = yizhan_app::testing::session_csrf(&app, &cookies).await;
    let photo = upload(&app, &resident, &service_id, "photo", ("me.png", "image/png"), PNG).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .post(
            &format!("/api/v1/services/{service_id}/applications"),
            Some(&resident),
            json!({"form": {"name": "Li Hua", "photo": photo}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let detail = format!("/city/applications/{id}");
    let answers = format!("{detail}/answers");
    let cookie = ("cookie", cookies.as_str());

    // Nothing is asked yet: no form to answer, and sending answers is refused.
    let r = page(&app, &detail, &cookies, "en").await;
    assert!(r.status == StatusCode::OK && !r.text.contains("id=\"answer-form\""), "{}", r.text);
    let r =
        send_multipart(&app, &answers, cookie, &[("csrf", None, raw_csrf.as_bytes()), ("f_name", None, b"x")]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // The department asks for more; the resident's notice leads to the page.
    let status = format!("/api/v1/orgs/{}/applications/{id}/status", w.org_id);
    let r = app.post(&status, Some(&w.clerk), json!({"status": "in_review"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.clock.advance_ms(60_000);
    let ask = "Please attach a scan of your household register.";
    let r = app.post(&status, Some(&w.clerk), json!({"status": "more_info_needed", "note": ask})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = page(&app, "/inbox", &cookies, "en").await;
    assert!(r.text.contains(&format!("href=\"{detail}\"")), "{}", r.text);

    // The page shows the question and the form with the answers so far, in both languages.
    let r = page(&app, &detail, &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Answer the department") && r.text.contains("id=\"application-question\""), "{}", r.text);
    assert!(r.text.contains(ask), "{}", r.text);
    assert!(
        r.text.contains(&format!("action=\"{answers}\" enctype=\"multipart/form-data\""))
            && r.text.contains("name=\"f_name\" value=\"Li Hua\"")
            && r.text.contains(&format!("name=\"f_photo\" value=\"{photo}\""))
            && r.text.contains("name=\"file_scan\""),
        "{}",
        r.text
    );
    assert!(!r.text.contains("id=\"upload-scan\""), "files go with the answers: {}", r.text);
    let r = page(&app, &detail, &cookies, "zh-CN").await;
    assert!(r.text.contains("补充材料") && r.text.contains("提交补充材料") && r.text.contains(ask), "{}", r.text);

    // Without the CSRF token nothing happens; another resident finds nothing.
    let r = send_multipart(&app, &answers, cookie, &[("f_name", None, b"x")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let (_, other) = app.user("13900000000", "Other").await;
    let other_cookies = format!("yz_session={other}");
    let other_csrf = yizhan_app::testing::session_csrf(&app, &other_cookies).await;
    let r = send_multipart(
        &app,
        &answers,
        ("cookie", other_cookies.as_str()),
        &[("csrf", None, other_csrf.as_bytes()), ("f_name", None, b"x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(page(&app, &detail, &other_cookies, "en").await.status, StatusCode::NOT_FOUND);

    // A missing answer and a wrong file are shown on their questions; nothing moves.
    let r = send_multipart(
        &app,
        &answers,
        cookie,
        &[("csrf", None, raw_csrf.as_bytes()), ("f_name", None, b""), ("f_photo", None, photo.as_bytes())],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-name\"") && r.text.contains("id=\"answer-form\""), "{}", r.text);
    let r = send_multipart(
        &app,
        &answers,
        cookie,
        &[
            ("csrf", None, raw_csrf.as_bytes()),
            ("f_name", None, b"Li Hua"),
            ("f_photo", None, photo.as_bytes()),
            ("file_photo", Some(("x.pdf", "application/pdf")), PDF),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("id=\"error-photo\""), "{}", r.text);
    let mine = app.get("/api/v1/me/applications", Some(&resident)).await.body;
    assert_eq!(mine[0]["status"], "more_info_needed", "{mine}");

    // Answered with a new name and the scan asked for: back in review.
    app.clock.advance_ms(60_000);
    let r = send_multipart(
        &app,
        &answers,
        cookie,
        &[
            ("csrf", None, raw_csrf.as_bytes()),
            ("f_name", None, "李华".as_bytes()),
            ("f_photo", None, photo.as_bytes()),
            ("f_scan", None, b""),
            ("file_scan", Some(("register.pdf", "application/pdf")), PDF),
        ],
    )
    .await;
    assert_eq!(location(&r), detail);
    let mine = app.get("/api/v1/me/applications", Some(&resident)).await.body;
    assert_eq!((mine[0]["status"].as_str(), mine[0]["answers"]["name"].as_str()), (Some("in_review"), Some("李华")));
    let scan = mine[0]["answers"]["scan"].as_str().unwrap().to_string();
    let r = page(&app, &detail, &cookies, "en").await;
    assert!(r.text.contains("李华") && r.text.contains("register.pdf") && r.text.contains("In review"), "{}", r.text);
    assert!(!r.text.contains("id=\"answer-form\""), "nothing asked any more: {}", r.text);
    let history = r.text.split("id=\"application-history\"").nth(1).unwrap();
    let asked = history.find("More information needed").unwrap();
    assert!(history[asked..].contains(ask) && history[asked..].contains("In review"), "{history}");
    // Sent again (a reload): nothing is asked, nothing changes.
    let again = &[("csrf", None, raw_csrf.as_bytes()), ("f_name", None, b"x".as_slice())];
    assert_eq!(send_multipart(&app, &answers, cookie, again).await.status, StatusCode::CONFLICT);

    // Both are told: the resident of the new status, the clerk who asked (linked to the console).
    let r = page(&app, "/inbox", &cookies, "en").await;
    assert!(r.text.contains("Your application is now: In review."), "{}", r.text);
    let clerk_cookies = format!("yz_session={}", w.clerk);
    let r = page(&app, "/inbox", &clerk_cookies, "zh-CN").await;
    assert!(r.text.contains("申请人已按你的要求补充材料"), "{}", r.text);
    assert!(r.text.contains(&format!("href=\"/city/staff/applications/{id}\"")), "{}", r.text);
    let r = page(&app, "/inbox", &format!("yz_session={}", w.chief), "en").await;
    assert!(!r.text.contains("sent the information you asked for"), "only who asked: {}", r.text);
    // The department sees it again in its queue, and opens the new answers and the scan (logged).
    let q = app.get(&format!("/api/v1/orgs/{}/applications", w.org_id), Some(&w.clerk)).await;
    assert_eq!((q.body[0]["id"].as_str(), q.body[0]["status"].as_str()), (Some(id.as_str()), Some("in_review")));
    let r = page(&app, "/city/staff", &clerk_cookies, "en").await;
    assert!(r.text.contains(&format!("/city/staff/applications/{id}")), "{}", r.text);
    let r = page(&app, &format!("/city/staff/applications/{id}?why=answered"), &clerk_cookies, "en").await;
    assert!(r.status == StatusCode::OK && r.text.contains("李华") && r.text.contains(&scan), "{}", r.text);
    let r = app.post(&status, Some(&w.clerk), json!({"status": "approved"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn check_your_answers_shows_no_fee_line_for_a_free_service() {
    use yizhan_app::testing::{form, page, session_csrf};
    let app = spawn_app().await;
    let w = town(&app).await;
    let mut free_card = permit();
    free_card["form"] = json!({"type": "object", "required": ["reader"], "properties": {
        "reader": {"type": "string", "maxLength": 30, "title": t("Reader's name", "读者姓名")}}});
    let mut free_visit = marriage();
    free_visit["fee_fen"] = json!(0);
    let mut paid_card = free_card.clone();
    paid_card["fee_fen"] = json!(300);
    let mut ids = Vec::new();
    for svc in [free_card, free_visit, paid_card] {
        let r = app.post(&format!("/api/v1/orgs/{}/services", w.org_id), Some(&w.chief), svc).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let (_, resident) = app.user("13812345678", "Resident").await;
    let cookies = format!("yz_session={resident}");
    let csrf = enc(&session_csrf(&app, &cookies).await);
    let check = |path: String, body: String| {
        let (app, cookies) = (&app, &cookies);
        async move {
            let mut pages = Vec::new();
            for lang in ["en", "zh-CN"] {
                let req = axum::http::Request::post(&path)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("cookie", cookies.as_str())
                    .header("accept-language", lang)
                    .body(axum::body::Body::from(body.clone()))
                    .unwrap();
                let r = app.request(req).await;
                assert!(r.status == StatusCode::OK && r.text.contains("id=\"city-check\""), "{}", r.text);
                pages.push(r.text);
            }
            pages
        }
    };
    let no_fee = |pages: &[String]| {
        for p in pages {
            assert!(!p.contains("id=\"check-fee\""), "{p}");
            for said in ["paid from your wallet", "从钱包支付", "¥0.00"] {
                assert!(!p.contains(said), "{said}: {p}");
            }
        }
    };
    // A free online application.
    let body = format!("csrf={csrf}&f_reader=Li");
    no_fee(&check(format!("/city/services/{}/apply/check", ids[0]), body.clone()).await);
    // A free appointment, for a held place.
    let now = app.clock.now_ms();
    let slots = app.get(&format!("/api/v1/services/{}/slots?from={now}", ids[1]), None).await.body;
    let slot = slots.as_array().unwrap().iter().find(|s| s["start_ms"].as_i64().unwrap() > now).unwrap().clone();
    let hold_path = location(
        &form(
            &app,
            &format!("/city/services/{}/hold", ids[1]),
            &cookies,
            &format!("csrf={csrf}&slot_id={}", slot["id"].as_str().unwrap()),
        )
        .await,
    );
    let r = page(&app, &hold_path, &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    no_fee(&check(format!("{hold_path}/check"), format!("csrf={csrf}&f_partner=Wang")).await);
    // A service with a fee says it, in both languages.
    let pages = check(format!("/city/services/{}/apply/check", ids[2]), body).await;
    assert!(pages[0].contains("id=\"check-fee\">¥3.00 · paid from your wallet when you submit"), "{}", pages[0]);
    assert!(pages[1].contains("id=\"check-fee\">¥3.00 · 提交时从钱包支付"), "{}", pages[1]);
}
