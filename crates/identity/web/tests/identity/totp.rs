//! The second factor over HTTP: enrolment, log-in with `"totp"`, stable
//! codes for a missing, wrong or replayed code, recovery codes, the page with
//! its QR code, and the operator's requirement for staff.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::json;
use yizhan_identity::totp::{from_base32, totp_at, STEP_MS};

fn now(app: &TestApp) -> i64 {
    yizhan_core::Clock::now_ms(&*app.clock)
}

/// Turn the second factor on for the token's owner; returns (secret, recovery codes).
async fn turn_on(app: &TestApp, token: &str) -> (Vec<u8>, Vec<String>) {
    let r = app.call(Method::POST, "/api/v1/me/totp", Some(token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    assert!(r.body["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/yizhan:"));
    assert!(r.body["otpauth_uri"].as_str().unwrap().contains("&issuer=yizhan"));
    let code = totp_at(&secret, now(app), 6).unwrap();
    let r = app.post("/api/v1/me/totp/confirm", Some(token), json!({"code": code})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes: Vec<String> =
        r.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

async fn log_in(app: &TestApp, login: &str, password: &str, totp: Option<&str>) -> Resp {
    let mut body = json!({"login": login, "password": password});
    if let Some(t) = totp {
        body["totp"] = json!(t);
    }
    app.post("/api/v1/auth/login", None, body).await
}

#[tokio::test]
async fn log_in_needs_the_second_factor_once_it_is_on() {
    let app = spawn_app().await;
    let (_, token) = app.user("two@example.org", "Two").await;
    let r = app.post("/api/v1/me/totp/confirm", Some(&token), json!({"code": "123456"})).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let (secret, recovery) = turn_on(&app, &token).await;
    assert_problem(
        &app.call(Method::POST, "/api/v1/me/totp", Some(&token), None).await,
        StatusCode::CONFLICT,
        "already_exists",
    );

    let r = log_in(&app, "two@example.org", "correct horse", None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "totp_required");
    // A wrong password says nothing of the second factor.
    let r = log_in(&app, "two@example.org", "wrong horse", None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = log_in(&app, "two@example.org", "wrong horse", Some("123456")).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let r = log_in(&app, "two@example.org", "correct horse", Some("12345x")).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "totp_invalid");

    app.clock.advance_ms(yizhan_identity::LOGIN_WINDOW_MS + STEP_MS);
    let code = totp_at(&secret, now(&app), 6).unwrap();
    let r = log_in(&app, "two@example.org", "correct horse", Some(&code)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = log_in(&app, "two@example.org", "correct horse", Some(&code)).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "totp_replayed");
    let r = log_in(&app, "two@example.org", "correct horse", Some(&recovery[0])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = log_in(&app, "two@example.org", "correct horse", Some(&recovery[0])).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "totp_invalid");
}

#[tokio::test]
async fn the_page_shows_a_qr_code_and_the_secret() {
    let app = spawn_app().await;
    let (_, token) = app.user("qr@example.org", "Qr").await;
    let cookies = format!("yz_session={token}");
    let p = page(&app, "/account/totp", &cookies, "en").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    let csrf = csrf_of(&p).unwrap();
    let r = form(&app, "/account/totp", &cookies, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("<svg"), "{}", r.text);
    let at = r.text.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
    let secret_b32 = r.text[at..].split('<').next().unwrap();
    let secret = from_base32(secret_b32).unwrap();
    let code = totp_at(&secret, now(&app), 6).unwrap();
    let r = form(&app, "/account/totp/confirm", &cookies, &format!("csrf={csrf}&code={code}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("id=\"recovery-codes\"") && r.text.contains("id=\"totp-on\""));
    assert_problem(
        &log_in(&app, "qr@example.org", "correct horse", None).await,
        StatusCode::UNAUTHORIZED,
        "totp_required",
    );
}

#[tokio::test]
async fn staff_without_a_second_factor_are_refused_when_the_operator_requires_one() {
    // Not required: the admin acts without one.
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let r = app.post("/api/v1/cities", Some(&admin), json!({"name": "杭州", "services": []})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let app = spawn_app_requiring_totp_for_staff().await;
    let (_, admin) = app.admin().await;
    let r = app.post("/api/v1/cities", Some(&admin), json!({"name": "杭州", "services": []})).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "totp_required_for_staff");
    assert!(r.body["detail"].as_str().unwrap().contains("second factor"), "{}", r.text);
    // Nor do the admin-only pages open: the console, the sandbox outbox (sign-in
    // codes) and the wallet's limit table.
    let cookies = format!("yz_session={admin}");
    for path in ["/admin", "/admin/outbox"] {
        let r = page(&app, path, &cookies, "en").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        assert!(r.text.contains("second factor"), "{path}: {}", r.text);
    }
    let r = page(&app, "/wallet", &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("name=\"per_day\""), "the limit table is offered: {}", r.text);
    // Residents are not asked.
    let (resident_id, resident) = app.user("13912349999", "Resident").await;
    assert_eq!(app.get("/api/v1/me", Some(&resident)).await.status, StatusCode::OK);
    // The admin turns it on (and logs in with it), then acts.
    let (secret, _) = turn_on(&app, &admin).await;
    app.clock.advance_ms(STEP_MS);
    let code = totp_at(&secret, now(&app), 6).unwrap();
    let r = log_in(&app, "root@example.org", "correct horse", Some(&code)).await;
    let admin = r.body["token"].as_str().unwrap().to_string();
    let cookies = format!("yz_session={admin}");
    for path in ["/admin", "/admin/outbox"] {
        assert_eq!(page(&app, path, &cookies, "en").await.status, StatusCode::OK, "{path}");
    }
    assert!(page(&app, "/wallet", &cookies, "en").await.text.contains("name=\"per_day\""));
    let (_, org_id) = app.city_and_org(&admin, "杭州", "市民中心", "city_department").await;
    app.add_staff(&admin, &org_id, &resident_id, "operator").await;
    // Staff without one: refused as staff, with the stable code.
    let r = app.get(&format!("/api/v1/orgs/{org_id}/members"), Some(&resident)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "totp_required_for_staff");
    turn_on(&app, &resident).await;
    assert_eq!(app.get(&format!("/api/v1/orgs/{org_id}/members"), Some(&resident)).await.status, StatusCode::OK);
}
