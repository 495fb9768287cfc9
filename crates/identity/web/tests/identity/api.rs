use crate::common::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn register_login_me_logout() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("13912345678", "Li Hua").await;
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user_id"], user_id.as_str());
    assert_eq!(me.body["name"], "Li Hua");
    assert_eq!(me.body["verification_level"], 0);

    let r = app.call(Method::POST, "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_problem(&app.get("/api/v1/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn tokens_expire() {
    let app = spawn_app().await;
    let (_, token) = app.user("a@example.org", "A").await;
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.status, StatusCode::OK);
    app.clock.advance_ms(8 * 24 * 3600 * 1000);
    assert_problem(&app.get("/api/v1/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn registration_validates_every_field_and_does_not_tell_a_duplicate() {
    let app = spawn_app().await;
    let r = app.post("/api/v1/auth/register", None, json!({"login": "nope", "password": "short", "name": ""})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = r.body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"login") && fields.contains(&"password") && fields.contains(&"name"), "{fields:?}");
    let message = |r: &Resp, field: &str| {
        let f = r.body["fields"].as_array().unwrap().iter().find(|f| f["field"] == field).unwrap();
        f["message"].as_str().unwrap().to_string()
    };
    assert_eq!(message(&r, "password"), "The password must be at least 8 characters");
    assert_eq!(message(&r, "name"), "Must not be empty");
    // In the reader's language, with the arguments in place.
    let body = json!({"login": "nope", "password": "short", "name": ""});
    let zh =
        app.call_with(Method::POST, "/api/v1/auth/register", None, Some(body), &[("accept-language", "zh-CN")]).await;
    assert_eq!(message(&zh, "password"), "密码至少8个字符");
    assert_eq!(message(&zh, "login"), "请输入中国大陆手机号或邮箱地址");
    assert_eq!(zh.body["detail"], "部分字段无效");
    app.user("b@example.org", "B").await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"login": "B@Example.org", "password": "correct horse", "name": "B2"}),
        )
        .await;
    // Answered like any registration (nobody learns the login is taken); no second account.
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let other = r.body["user_id"].as_str().unwrap();
    assert!(app.state.identity.profile(other).await.is_err());
    let r = app.post("/api/v1/auth/login", None, json!({"login": "b@example.org", "password": "correct horse"})).await;
    assert_eq!(r.status, StatusCode::OK, "the owner's account is untouched: {}", r.text);
}

#[tokio::test]
async fn bad_requests_are_problems_and_change_nothing() {
    let app = spawn_app().await;
    // Malformed JSON.
    let req = Request::post("/api/v1/auth/register")
        .header("content-type", "application/json")
        .body(Body::from("{\"login\": "))
        .unwrap();
    assert_problem(&app.request(req).await, StatusCode::BAD_REQUEST, "malformed_json");
    // Wrong type names the field.
    let r =
        app.post("/api/v1/auth/register", None, json!({"login": 5, "password": "correct horse", "name": "x"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "login");
    // Unknown field.
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"login": "c@example.org", "password": "correct horse", "name": "x", "is_admin": true}),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "is_admin");
    assert_eq!(r.body["fields"][0]["message"], "This field is not part of the request");
    // A missing field is named too.
    let r = app.post("/api/v1/auth/register", None, json!({"login": "c@example.org", "name": "x"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "password");
    assert_eq!(r.body["fields"][0]["message"], "This is required");
    // Not JSON at all.
    let req =
        Request::post("/api/v1/auth/register").header("content-type", "text/plain").body(Body::from("hi")).unwrap();
    assert_problem(&app.request(req).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    // Oversize body.
    let big = "x".repeat(200 * 1024);
    let r = app.post("/api/v1/auth/register", None, json!({"login": big, "password": "p", "name": "n"})).await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // None of these created an account.
    let r = app.post("/api/v1/auth/login", None, json!({"login": "c@example.org", "password": "correct horse"})).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    // Missing and bad tokens.
    assert_problem(&app.get("/api/v1/me", None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_problem(&app.get("/api/v1/me", Some("forged")).await, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn repeated_login_failures_are_rate_limited_with_a_clear_error() {
    let app = spawn_app().await;
    app.user("d@example.org", "D").await;
    let mut last = None;
    for _ in 0..8 {
        last = Some(
            app.post("/api/v1/auth/login", None, json!({"login": "d@example.org", "password": "wrong pass"})).await,
        );
    }
    let r = last.unwrap();
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(r.body["detail"], "Too many failed log-ins; try again in about 15 min");
    // Even the right password waits.
    let r = app.post("/api/v1/auth/login", None, json!({"login": "d@example.org", "password": "correct horse"})).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    app.clock.advance_ms(16 * 60 * 1000);
    app.login("d@example.org").await;
}

#[tokio::test]
async fn real_name_is_masked_encrypted_and_staff_reads_are_logged() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("13700000000", "Zhao Lei").await;
    let number = id_number("33010619900307123");
    let bad = format!("{}{}", &number[..17], if number.ends_with('0') { '1' } else { '0' });
    let r = app.post("/api/v1/me/real-name", Some(&token), json!({"name": "Zhao Lei", "id_number": bad})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "id_number");
    let r = app.post("/api/v1/me/real-name", Some(&token), json!({"name": "Zhao Lei", "id_number": number})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["verification_level"], 1);
    let masked = r.body["id_number_masked"].as_str().unwrap();
    assert_eq!(masked, format!("3301**********{}", &number[14..]));
    assert!(!r.text.contains(&number));

    // Staff of a hospital reads the person, with a reason; the person sees it.
    let (_, admin) = app.admin().await;
    let (_, org) = app.city_and_org(&admin, "Hangzhou", "First Hospital", "hospital").await;
    let (staff_id, staff) = app.user("doc@example.org", "Dr Chen").await;
    app.add_staff(&admin, &org, &staff_id, "operator").await;
    let path = format!("/api/v1/orgs/{org}/residents/{user_id}?reason=registration&include_id_number=true");
    let r = app.get(&path, Some(&staff)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["resident"]["id_number"], number.as_str());
    // Without a reason: refused, nothing logged.
    let r = app.get(&format!("/api/v1/orgs/{org}/residents/{user_id}"), Some(&staff)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let log = app.get("/api/v1/me/access-log", Some(&token)).await;
    assert_eq!(log.status, StatusCode::OK);
    let entries = log.body["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["why"] == "registration" && e["actor_user_id"] == staff_id.as_str()));
    assert!(entries.iter().any(|e| e["what"] == "identity_number"));
    assert_eq!(log.body["chain_ok"], true);
}

#[tokio::test]
async fn export_says_what_is_kept_and_delete_erases_the_rest() {
    let app = spawn_app().await;
    let (_, token) = app.user("e@example.org", "Erin").await;
    let r = app.get("/api/v1/me/export", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK);
    let sections = &r.body["sections"];
    assert_eq!(sections["profile"]["retained_after_deletion"], false);
    assert_eq!(sections["access_log"]["retained_after_deletion"], true);
    assert_eq!(sections["profile"]["data"]["profile"]["name"], "Erin");
    assert_eq!(sections["notifications"]["data"]["notifications"][0]["kind"], "welcome");

    let r = app.call(Method::DELETE, "/api/v1/me", Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_problem(&app.get("/api/v1/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = app.post("/api/v1/auth/login", None, json!({"login": "e@example.org", "password": "correct horse"})).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    // The login is free again.
    app.user("e@example.org", "Erin again").await;
}

#[tokio::test]
async fn notifications_inbox_and_unread_count() {
    let app = spawn_app().await;
    let (_, token) = app.user("f@example.org", "F").await;
    let r = app.get("/api/v1/me/notifications", Some(&token)).await;
    assert_eq!(r.body["unread"], 1);
    assert_eq!(r.body["items"][0]["kind"], "welcome");
    let r = app.post("/api/v1/me/notifications/read", Some(&token), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me/notifications", Some(&token)).await.body["unread"], 0);
}

#[tokio::test]
async fn a_shop_cannot_read_identity_numbers() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("13600000000", "Qian").await;
    let number = id_number("44030519851212345");
    let r = app.post("/api/v1/me/real-name", Some(&token), json!({"name": "Qian", "id_number": number})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (_, admin) = app.admin().await;
    let (_, shop) = app.city_and_org(&admin, "Shenzhen", "Corner Shop", "merchant").await;
    let (cashier_id, cashier) = app.user("cashier@example.org", "Cashier").await;
    app.add_staff(&admin, &shop, &cashier_id, "admin").await;
    let base = format!("/api/v1/orgs/{shop}/residents/{user_id}?reason=loyalty%20card");
    let r = app.get(&format!("{base}&include_id_number=true"), Some(&cashier)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(!r.text.contains(&number));
    // Nothing was read, so nothing was logged.
    let log = app.get("/api/v1/me/access-log", Some(&token)).await;
    assert!(log.body["entries"].as_array().unwrap().is_empty());
    // The profile (masked number) is still readable, and logged.
    let r = app.get(&base, Some(&cashier)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["resident"]["id_number"].is_null());
    let log = app.get("/api/v1/me/access-log", Some(&token)).await;
    assert_eq!(log.body["entries"][0]["what"], "profile");
}

#[tokio::test]
async fn refusals_say_why_in_the_callers_language() {
    let app = spawn_app().await;
    let (_, token) = app.user("e@example.org", "E").await;
    let body = json!({"name": "Rogue", "services": []});
    let r = app.post("/api/v1/cities", Some(&token), body.clone()).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(r.body["detail"], "Only platform administrators may do this");
    let r =
        app.call_with(Method::POST, "/api/v1/cities", Some(&token), Some(body), &[("accept-language", "zh-CN")]).await;
    assert_eq!(r.body["detail"], "只有平台管理员可以执行此操作");
    let r = app.get("/api/v1/me", None).await;
    assert_eq!(r.body["detail"], "Please log in: the request carries no session token");
    let r = app.get("/api/v1/orgs/nowhere/members", Some(&token)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(r.body["detail"], "You are not staff of this organisation");
}
