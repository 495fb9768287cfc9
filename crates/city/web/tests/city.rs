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

    let (_, resident) = app.user("13812345678", "Resident").await;
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
    let (_, resident) = app.user("13812345678", "Resident").await;
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
    let (_, resident) = app.user("13812345678", "Resident").await;
    let (_, other) = app.user("13900000000", "Other").await;
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
    let (_, resident) = app.user("resident@example.com", "Resident").await;
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
    let (_, resident) = app.user("13812345678", "Resident").await;
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
