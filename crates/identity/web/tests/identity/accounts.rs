//! Accounts people can trust, over HTTP and on the clock: the login proved by
//! a one-time code from the sandbox outbox (expiry, tries, single use, rate
//! limits, answers that tell an outsider nothing, the race for one number),
//! an unproved account neither found by its login nor able to pay, the
//! password reset by code ending every session, the login changed only once
//! the new one is proved, and the second factor turned off.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use yizhan_core::time::MINUTE_MS;
use yizhan_identity::totp::{from_base32, totp_at, STEP_MS};

fn now(app: &TestApp) -> i64 {
    yizhan_core::Clock::now_ms(&*app.clock)
}

async fn register(app: &TestApp, login: &str, password: &str) -> String {
    let r = app.post("/api/v1/auth/register", None, json!({"login": login, "password": password, "name": "Wu"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["login_verified"], false);
    r.body["user_id"].as_str().unwrap().to_string()
}

async fn verify(app: &TestApp, login: &str, code: &str) -> Resp {
    app.post("/api/v1/auth/verify", None, json!({"login": login, "code": code})).await
}

async fn log_in(app: &TestApp, login: &str, password: &str) -> Resp {
    app.post("/api/v1/auth/login", None, json!({"login": login, "password": password})).await
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

/// What a problem says, without what differs per request.
fn said(r: &Resp) -> Value {
    json!({"status": r.status.as_u16(), "code": r.body["code"], "title": r.body["title"],
        "detail": r.body["detail"], "fields": r.body["fields"]})
}

#[tokio::test]
async fn a_registration_is_proved_by_the_code_sent_to_the_number() {
    let app = spawn_app().await;
    let login = "13912350001";
    let user_id = register(&app, login, "correct horse").await;
    let texts = app.outbox_to(login).await;
    assert_eq!(texts.len(), 1, "one text message to the number");
    let code = code_in(&texts[0]).expect("the text holds a 6-digit code");

    // Until proved: the account signs in and looks around, but is not found by its login and cannot pay.
    let r = log_in(&app, login, "correct horse").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    let me = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(me.body["login"], login);
    assert_eq!(me.body["login_verified"], false);
    assert!(app.state.identity.find_by_login(login).await.unwrap().is_none());
    let r = app.pay("/api/v1/wallet/topup", &token, "top-1", json!({"amount": 5000})).await;
    let paid_in = r.status == StatusCode::CREATED;
    let (_, friend) = app.user("13912350002", "Friend").await;
    let r = app.pay("/api/v1/transfers", &token, "t-1", json!({"to": "13912350002", "amount": 100})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "login_unproved");
    // Nobody can send money to it by its login either.
    let r = app.pay("/api/v1/transfers", &friend, "t-2", json!({"to": login, "amount": 100})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    assert_problem(&verify(&app, login, &other_than(&code)).await, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    let r = verify(&app, login, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"login_verified": true}));
    // Once only.
    assert_problem(&verify(&app, login, &code).await, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    assert_eq!(app.state.identity.find_by_login(login).await.unwrap().unwrap().user_id, user_id);
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.body["login_verified"], true);
    if paid_in {
        let r = app.pay("/api/v1/transfers", &token, "t-3", json!({"to": "13912350002", "amount": 100})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

#[tokio::test]
async fn an_address_gets_its_code_by_mail_and_a_signed_in_caller_proves_only_its_own() {
    let app = spawn_app().await;
    register(&app, "mail-proof@example.org", "correct horse").await;
    let code = app.last_code("mail-proof@example.org").await.expect("a mail with the code");
    let token = app.login("mail-proof@example.org").await;
    let r = app.post("/api/v1/auth/resend", Some(&token), json!({"login": "mail-proof@example.org"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let fresh = app.last_code("mail-proof@example.org").await.unwrap();
    // The new code replaced the old one.
    if fresh != code {
        assert_problem(
            &verify(&app, "mail-proof@example.org", &code).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_invalid",
        );
    }
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/verify",
            Some(&token),
            Some(json!({"login": "mail-proof@example.org", "code": fresh})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes_and_a_new_one_works() {
    let app = spawn_app().await;
    let login = "13912350011";
    register(&app, login, "correct horse").await;
    let code = app.last_code(login).await.unwrap();
    app.clock.advance_ms(10 * MINUTE_MS);
    assert_problem(&verify(&app, login, &code).await, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    let r = app.post("/api/v1/auth/resend", None, json!({"login": login})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let fresh = app.last_code(login).await.unwrap();
    app.clock.advance_ms(10 * MINUTE_MS - 1);
    assert_eq!(verify(&app, login, &fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_code_is_dead_after_five_wrong_tries() {
    let app = spawn_app().await;
    let login = "13912350021";
    register(&app, login, "correct horse").await;
    let code = app.last_code(login).await.unwrap();
    for _ in 0..5 {
        assert_problem(
            &verify(&app, login, &other_than(&code)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_invalid",
        );
    }
    assert_problem(&verify(&app, login, &code).await, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    assert!(app.state.identity.find_by_login(login).await.unwrap().is_none());
    app.post("/api/v1/auth/resend", None, json!({"login": login})).await;
    let fresh = app.last_code(login).await.unwrap();
    assert_eq!(verify(&app, login, &fresh).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_answers_do_not_tell_whether_an_account_exists() {
    let app = spawn_app().await;
    let (owner_id, _) = app.user("13912350031", "Owner").await;
    register(&app, "13912350032", "correct horse").await;

    // A wrong code for a registered login, any code for a login nobody has, a malformed one: one answer.
    let wrong = said(&verify(&app, "13912350032", "000000").await);
    assert_eq!(wrong["code"], "code_invalid");
    assert_eq!(said(&verify(&app, "13912350039", "000000").await), wrong);
    assert_eq!(said(&verify(&app, "13912350031", "000000").await), wrong, "a proved login has no registration code");
    assert_eq!(said(&verify(&app, "nobody", "12").await), wrong);

    // Registering a proved login: answered like any registration, nothing stored, the owner told.
    let before = app.outbox_to("13912350031").await.len();
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"login": "13912350031", "password": "another pass", "name": "Squat"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["login_verified"], false);
    let phantom = r.body["user_id"].as_str().unwrap();
    assert_ne!(phantom, owner_id);
    assert!(app.state.identity.profile(phantom).await.is_err(), "no account was made");
    let texts = app.outbox_to("13912350031").await;
    assert_eq!(texts.len(), before + 1);
    assert!(code_in(&texts[0]).is_none(), "the owner is told, with no code: {}", texts[0]);
    assert_eq!(app.state.identity.find_by_login("13912350031").await.unwrap().unwrap().user_id, owner_id);

    // A reset or a resend is accepted for every login.
    for login in ["13912350031", "13912350039", "nobody@example.org"] {
        let r = app.post("/api/v1/auth/password-reset", None, json!({"login": login})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let r = app.post("/api/v1/auth/resend", None, json!({"login": login})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    assert!(app.outbox_to("13912350039").await.is_empty(), "nothing goes to a login nobody has");
    let r = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({"login": "13912350039", "code": "123456", "password": "new password"}),
        )
        .await;
    assert_eq!(said(&r), wrong);
}

#[tokio::test]
async fn sending_is_limited_per_destination_and_per_address_and_checking_per_address() {
    let app = spawn_app().await;
    let login = "13912350041";
    register(&app, login, "correct horse").await;
    for _ in 0..4 {
        let r = app.post("/api/v1/auth/resend", None, json!({"login": login})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    assert_eq!(app.outbox_to(login).await.len(), 5);
    let r = app.post("/api/v1/auth/resend", None, json!({"login": login})).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    let wait: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 3600, "{wait}");
    // The same for a login nobody has: the limit tells nothing.
    for _ in 0..5 {
        app.post("/api/v1/auth/password-reset", None, json!({"login": "13912350049"})).await;
    }
    let r = app.post("/api/v1/auth/password-reset", None, json!({"login": "13912350049"})).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    app.clock.advance_ms(60 * MINUTE_MS);
    let r = app.post("/api/v1/auth/resend", None, json!({"login": login})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);

    let app = spawn_app_with_identity(|c| {
        c.fast_hashing_for_tests = true;
        c.registrations_per_address_hour = 1000;
        c.codes_per_address_hour = 3;
        c.code_checks_per_address = 4;
    })
    .await;
    for i in 0..3 {
        let r = app.post("/api/v1/auth/password-reset", None, json!({"login": format!("1391235006{i}")})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    let r = app.post("/api/v1/auth/password-reset", None, json!({"login": "13912350069"})).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(r.headers.get("retry-after").is_some());
    for _ in 0..4 {
        assert_problem(&verify(&app, "13912350061", "111111").await, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    }
    assert_problem(&verify(&app, "13912350061", "111111").await, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    app.clock.advance_ms(15 * MINUTE_MS);
    assert_problem(&verify(&app, "13912350061", "111111").await, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_people_registering_one_number_at_once_one_ends_up_with_it() {
    let app = std::sync::Arc::new(spawn_app().await);
    for round in 0..4 {
        let login = format!("1391236{round:04}");
        let (a, b) = tokio::join!(
            {
                let app = app.clone();
                let login = login.clone();
                tokio::spawn(async move { register(&app, &login, "first person pw").await })
            },
            {
                let app = app.clone();
                let login = login.clone();
                tokio::spawn(async move { register(&app, &login, "second person pw").await })
            }
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a, b);
        // Both may sign in with their own password while neither proved the number.
        assert_eq!(log_in(&app, &login, "first person pw").await.status, StatusCode::OK);
        assert_eq!(log_in(&app, &login, "second person pw").await.status, StatusCode::OK);
        let codes: Vec<String> = app.outbox_to(&login).await.iter().filter_map(|t| code_in(t)).collect();
        assert_eq!(codes.len(), 2, "a code for each");
        let tasks: Vec<_> = codes
            .iter()
            .map(|c| {
                let app = app.clone();
                let login = login.clone();
                let c = c.clone();
                tokio::spawn(async move { verify(&app, &login, &c).await.status })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY).count(), 1, "{statuses:?}");
        let owner = app.state.identity.find_by_login(&login).await.unwrap().unwrap().user_id;
        assert!(owner == a || owner == b);
        let loser = if owner == a { &b } else { &a };
        let lost = app.state.identity.profile(loser).await.unwrap();
        assert!(!lost.login_verified);
        assert_ne!(lost.login, login, "the other claim was dropped");
        let (won_pw, lost_pw) =
            if owner == a { ("first person pw", "second person pw") } else { ("second person pw", "first person pw") };
        assert_eq!(log_in(&app, &login, won_pw).await.status, StatusCode::OK);
        assert_problem(&log_in(&app, &login, lost_pw).await, StatusCode::UNAUTHORIZED, "invalid_credentials");
        let inbox = app.state.notify.inbox(loser, 10).await.unwrap();
        assert!(inbox.iter().any(|n| n.kind == "identity.login_claim_dropped"));
    }
}

#[tokio::test]
async fn a_password_reset_by_code_ends_every_session_and_tells_the_account() {
    let app = spawn_app().await;
    let login = "13912350071";
    let (user_id, first) = app.user(login, "Reset Me").await;
    let second = app.login(login).await;
    let r = app.post("/api/v1/auth/password-reset", None, json!({"login": login})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let code = app.last_code(login).await.unwrap();
    let confirm = |code: String, password: &'static str| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/auth/password-reset/confirm",
                None,
                json!({"login": login, "code": code, "password": password}),
            )
            .await
        }
    };
    let r = confirm(code.clone(), "short").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["fields"][0]["field"], "password", "{}", r.text);
    assert_problem(
        &confirm(other_than(&code), "a new password").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_invalid",
    );
    assert_eq!(app.get("/api/v1/me", Some(&first)).await.status, StatusCode::OK);
    let r = confirm(code.clone(), "a new password").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for t in [&first, &second] {
        assert_problem(&app.get("/api/v1/me", Some(t)).await, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_problem(&log_in(&app, login, "correct horse").await, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert_eq!(log_in(&app, login, "a new password").await.status, StatusCode::OK);
    assert_problem(&confirm(code, "yet another pw").await, StatusCode::UNPROCESSABLE_ENTITY, "code_invalid");
    let inbox = app.state.notify.inbox(&user_id, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "identity.password_reset"));
    let told = &app.outbox_to(login).await[0];
    assert!(code_in(told).is_none(), "the number is told too: {told}");
}

#[tokio::test]
async fn the_login_changes_once_the_new_one_is_proved_and_the_old_one_is_told() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("13912350081", "Mover").await;
    app.user("13912350089", "Holder").await;
    let r =
        app.post("/api/v1/me/login", Some(&token), json!({"login": "13912350082", "password": "wrong password"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["fields"][0]["field"], "password");
    let r =
        app.post("/api/v1/me/login", Some(&token), json!({"login": "13912350081", "password": "correct horse"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Another account's login: the same answer, and no code goes out.
    let before = app.outbox_to("13912350089").await.len();
    let r =
        app.post("/api/v1/me/login", Some(&token), json!({"login": "13912350089", "password": "correct horse"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let texts = app.outbox_to("13912350089").await;
    assert_eq!(texts.len(), before + 1);
    assert!(code_in(&texts[0]).is_none());
    assert_problem(
        &app.post("/api/v1/me/login/confirm", Some(&token), json!({"code": "123456"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_invalid",
    );

    let r =
        app.post("/api/v1/me/login", Some(&token), json!({"login": "13912350082", "password": "correct horse"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let code = app.last_code("13912350082").await.unwrap();
    assert_problem(
        &app.post("/api/v1/me/login/confirm", Some(&token), json!({"code": other_than(&code)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_invalid",
    );
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.body["login"], "13912350081");
    let r = app.post("/api/v1/me/login/confirm", Some(&token), json!({"code": code})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"login": "13912350082", "login_verified": true}));
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.body["login"], "13912350082");
    assert_problem(
        &log_in(&app, "13912350081", "correct horse").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_eq!(log_in(&app, "13912350082", "correct horse").await.status, StatusCode::OK);
    assert!(app.state.identity.find_by_login("13912350081").await.unwrap().is_none());
    assert_eq!(app.state.identity.find_by_login("13912350082").await.unwrap().unwrap().user_id, user_id);
    let old = &app.outbox_to("13912350081").await[0];
    assert!(old.contains("139****0082"), "the old number is told: {old}");
    assert!(app.state.notify.inbox(&user_id, 10).await.unwrap().iter().any(|n| n.kind == "identity.login_changed"));
}

#[tokio::test]
async fn the_second_factor_turns_off_with_the_password_and_a_code_and_recovery_codes_are_replaced() {
    let app = spawn_app().await;
    let (_, token) = app.user("totp-off@example.org", "Two Step").await;
    let r = app.call(Method::POST, "/api/v1/me/totp", Some(&token), None).await;
    let secret = from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    let code = totp_at(&secret, now(&app), 6).unwrap();
    let r = app.post("/api/v1/me/totp/confirm", Some(&token), json!({"code": code})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let old_recovery = r.body["recovery_codes"][0].as_str().unwrap().to_string();

    app.clock.advance_ms(STEP_MS);
    let code = totp_at(&secret, now(&app), 6).unwrap();
    let r = app.post("/api/v1/me/totp/recovery-codes", Some(&token), json!({"code": code})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["recovery_codes"].as_array().unwrap().len(), 10);
    let r = app
        .post("/api/v1/me/totp/disable", Some(&token), json!({"password": "correct horse", "code": old_recovery}))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "totp_invalid");

    app.clock.advance_ms(STEP_MS);
    let code = totp_at(&secret, now(&app), 6).unwrap();
    let r =
        app.post("/api/v1/me/totp/disable", Some(&token), json!({"password": "wrong password", "code": code})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app.post("/api/v1/me/totp/disable", Some(&token), json!({"password": "correct horse", "code": code})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = log_in(&app, "totp-off@example.org", "correct horse").await;
    assert_eq!(r.status, StatusCode::OK, "no second factor asked: {}", r.text);
    let r = app.post("/api/v1/me/totp/disable", Some(&token), json!({"password": "correct horse", "code": code})).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn on_the_pages_register_enter_the_code_and_recover_the_password() {
    let app = spawn_app().await;
    let first = page(&app, "/register", "", "en").await;
    let csrf = cookie_of(&first, "yz_csrf").unwrap();
    let r = form(
        &app,
        "/register",
        &format!("yz_csrf={csrf}"),
        &format!("csrf={csrf}&name=Page&login=13912350091&password=correct+horse"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.headers.get("location").unwrap(), "/register/verify?login=13912350091");
    let session = cookie_of(&r, "yz_session").unwrap();
    let cookies = format!("yz_csrf={csrf}; yz_session={session}");
    let csrf = session_csrf(&app, &cookies).await;
    let v = page(&app, "/register/verify?login=13912350091", &cookies, "zh-CN").await;
    assert!(v.text.contains("输入验证码") && v.text.contains("13912350091"), "{}", v.text);
    let r = form(&app, "/register/verify", &cookies, &format!("csrf={csrf}&login=13912350091&code=12")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("id=\"code-error\""), "the error is at the field: {}", r.text);
    let r = form(&app, "/register/resend", &cookies, &format!("csrf={csrf}&login=13912350091")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = app.last_code("13912350091").await.unwrap();
    let r = form(&app, "/register/verify", &cookies, &format!("csrf={csrf}&login=13912350091&code={code}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.headers.get("location").unwrap(), "/home");
    assert!(app.state.identity.find_by_login("13912350091").await.unwrap().is_some());

    // Forgot the password: from the log-in page.
    let login_page = page(&app, "/login", "", "en").await;
    assert!(login_page.text.contains("href=\"/forgot-password\""));
    let anon = cookie_of(&login_page, "yz_csrf").unwrap();
    let anon_cookies = format!("yz_csrf={anon}");
    let r = form(&app, "/forgot-password", &anon_cookies, &format!("csrf={anon}&login=13912350091")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("id=\"reset-code\""));
    let code = app.last_code("13912350091").await.unwrap();
    let r = form(
        &app,
        "/forgot-password/confirm",
        &anon_cookies,
        &format!("csrf={anon}&login=13912350091&code={code}&password=short"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("id=\"password-error\""), "{}", r.text);
    let r = form(
        &app,
        "/forgot-password/confirm",
        &anon_cookies,
        &format!("csrf={anon}&login=13912350091&code={code}&password=brand+new+pass"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(page(&app, "/home", &cookies, "en").await.status, StatusCode::SEE_OTHER, "the session ended");
    assert_eq!(log_in(&app, "13912350091", "brand new pass").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_devices_page_changes_the_login_once_the_code_is_entered() {
    let app = spawn_app().await;
    let (user_id, _) = app.user("13912350101", "Page Mover").await;
    let first = page(&app, "/login", "", "en").await;
    let csrf = cookie_of(&first, "yz_csrf").unwrap();
    let r = form(
        &app,
        "/login",
        &format!("yz_csrf={csrf}"),
        &format!("csrf={csrf}&login=13912350101&password=correct+horse"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let cookies = format!("yz_csrf={csrf}; yz_session={}", cookie_of(&r, "yz_session").unwrap());
    let csrf = session_csrf(&app, &cookies).await;
    let d = page(&app, "/account/devices", &cookies, "zh-CN").await;
    assert!(d.text.contains("更换手机号或邮箱") && !d.text.contains("id=\"cl-pending\""), "{}", d.text);
    let r =
        form(&app, "/account/login", &cookies, &format!("csrf={csrf}&login=13912350102&password=correct+horse")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("id=\"cl-pending\"") && r.text.contains("139****0102"), "{}", r.text);
    let code = app.last_code("13912350102").await.unwrap();
    let r = form(&app, "/account/login/confirm", &cookies, &format!("csrf={csrf}&code={code}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("id=\"cl-pending\""));
    assert_eq!(app.state.identity.find_by_login("13912350102").await.unwrap().unwrap().user_id, user_id);
}
