//! Sessions and the password over HTTP: listed with the current one marked,
//! ended one at a time or all but this one (at once, cached or not), the
//! password changed with the current one.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::json;

async fn login_as(app: &TestApp, login: &str, ua: &str) -> String {
    let r = app
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": login, "password": "correct horse"})),
            &[("user-agent", ua)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

const FIREFOX: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0";

#[tokio::test]
async fn sessions_are_listed_and_ended_at_once() {
    let app = spawn_app().await;
    let (_, first) = app.user("13912340001", "Zhang San").await;
    let second = login_as(&app, "13912340001", FIREFOX).await;
    let third = login_as(&app, "13912340001", "curl/8.5.0").await;
    let (_, stranger) = app.user("13912340002", "Li Si").await;
    // Every token remembered by the cache.
    for t in [&first, &second, &third] {
        assert_eq!(app.get("/api/v1/me", Some(t)).await.status, StatusCode::OK);
    }
    let r = app.get("/api/v1/me/sessions", Some(&first)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let ff = list.iter().find(|s| s["device"] == "Firefox · Windows").unwrap();
    assert!(ff["last_seen_ms"].as_i64().unwrap() > 0);
    assert!(ff["network"].is_string());
    assert!(!r.text.contains(&second) && !r.text.contains(&first));
    let ff_id = ff["id"].as_str().unwrap().to_string();

    // Someone else's session: not found, and it keeps working.
    let r = app.call(Method::DELETE, &format!("/api/v1/me/sessions/{ff_id}"), Some(&stranger), None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(app.get("/api/v1/me", Some(&second)).await.status, StatusCode::OK);

    let r = app.call(Method::DELETE, &format!("/api/v1/me/sessions/{ff_id}"), Some(&first), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_problem(&app.get("/api/v1/me", Some(&second)).await, StatusCode::UNAUTHORIZED, "unauthorized");

    let r = app.call(Method::DELETE, "/api/v1/me/sessions", Some(&first), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["ended"], 1);
    assert_problem(&app.get("/api/v1/me", Some(&third)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(app.get("/api/v1/me", Some(&first)).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/me", Some(&stranger)).await.status, StatusCode::OK);
    let r = app.get("/api/v1/me/sessions", Some(&first)).await;
    assert_eq!(r.body["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_password_changes_with_the_current_one_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let (user_id, here) = app.user("pw@example.org", "Pat").await;
    let there = app.login("pw@example.org").await;
    assert_eq!(app.get("/api/v1/me", Some(&there)).await.status, StatusCode::OK);

    let body = json!({"current_password": "wrong password", "new_password": "a brand new one"});
    let r = app.post("/api/v1/me/password", Some(&here), body).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "current_password");
    let body = json!({"current_password": "correct horse", "new_password": "short"});
    let r = app.post("/api/v1/me/password", Some(&here), body).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "new_password");

    let body = json!({"current_password": "correct horse", "new_password": "a brand new one"});
    let r = app.post("/api/v1/me/password", Some(&here), body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_problem(&app.get("/api/v1/me", Some(&there)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(app.get("/api/v1/me", Some(&here)).await.status, StatusCode::OK);
    let r = app.post("/api/v1/auth/login", None, json!({"login": "pw@example.org", "password": "correct horse"})).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r =
        app.post("/api/v1/auth/login", None, json!({"login": "pw@example.org", "password": "a brand new one"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let inbox = app.state.notify.inbox(&user_id, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "identity.password_changed"));

    // Wrong current passwords are limited.
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        let body = json!({"current_password": "wrong password", "new_password": "another new one"});
        last = app.post("/api/v1/me/password", Some(&here), body).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_devices_page_lists_and_signs_out() {
    let app = spawn_app().await;
    app.user("13912340011", "Wang Wu").await;
    let other = login_as(&app, "13912340011", FIREFOX).await;
    let r = app
        .call_with(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "13912340011", "password": "correct horse"})),
            &[],
        )
        .await;
    let token = r.body["token"].as_str().unwrap().to_string();
    let cookies = format!("yz_session={token}");
    let p = page(&app, "/account/devices", &cookies, "zh-CN").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(p.text.contains("Firefox · Windows") && p.text.contains("登录设备"), "{}", p.text);
    assert!(p.text.contains("id=\"session-current\""));
    let csrf = csrf_of(&p).unwrap();
    let r = form(&app, "/account/devices/end-others", &cookies, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_problem(&app.get("/api/v1/me", Some(&other)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    // Without the CSRF token nothing happens.
    let third = login_as(&app, "13912340011", FIREFOX).await;
    let r = form(&app, "/account/devices/end-others", &cookies, "csrf=nope").await;
    assert_ne!(r.status, StatusCode::OK);
    assert_eq!(app.get("/api/v1/me", Some(&third)).await.status, StatusCode::OK);
}
