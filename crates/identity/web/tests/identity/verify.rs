//! Proof over HTTP: the verifier's answers, disputes, the counter, plates.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const CERT: &str = yizhan_identity::verifier::sandbox::VALID_CERTIFICATE;

async fn page_login(app: &TestApp, login: &str) -> String {
    let first = page(app, "/login", "", "en").await;
    let csrf = cookie_of(&first, "yz_csrf").unwrap();
    let r = form(
        app,
        "/login",
        &format!("yz_csrf={csrf}"),
        &format!("csrf={csrf}&login={}&password=correct+horse", login.replace('@', "%40")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    format!("yz_csrf={csrf}; yz_session={}", cookie_of(&r, "yz_session").unwrap())
}

/// The parts of a problem a caller reads.
fn problem(r: &Resp) -> Value {
    json!({"status": r.status.as_u16(), "code": r.body["code"], "title": r.body["title"],
           "detail": r.body["detail"], "fields": r.body["fields"]})
}

#[tokio::test]
async fn the_verifier_decides_and_a_mismatch_tells_nothing_about_the_number() {
    let app = spawn_app().await;
    let (_, holder) = app.user("holder@example.org", "Holder").await;
    let (_, prober) = app.user("prober@example.org", "Prober").await;
    let number = id_number("33010619900307123");
    let free = id_number("33010619900307456");
    let r = app.post("/api/v1/me/real-name", Some(&holder), json!({"name": "王小明", "id_number": number})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["verification_level"], 1);

    let bad = yizhan_identity::verifier::sandbox::NO_MATCH_NAMES[0];
    let bound = app.post("/api/v1/me/real-name", Some(&prober), json!({"name": bad, "id_number": number})).await;
    let unbound = app.post("/api/v1/me/real-name", Some(&prober), json!({"name": bad, "id_number": free})).await;
    assert_problem(&bound, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(problem(&bound), problem(&unbound));
    assert_eq!(app.get("/api/v1/me", Some(&prober)).await.body["verification_level"], 0);

    // The verifier cannot be reached: 503, try again.
    let down = yizhan_identity::verifier::sandbox::UNAVAILABLE_NAMES[0];
    let r = app.post("/api/v1/me/real-name", Some(&prober), json!({"name": down, "id_number": free})).await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE, "verifier_unavailable");
    assert!(r.headers.get("retry-after").is_some());

    // A match for a number another account holds: bound elsewhere, a dispute is offered.
    let r = app.post("/api/v1/me/real-name", Some(&prober), json!({"name": "王小明", "id_number": number})).await;
    assert_problem(&r, StatusCode::CONFLICT, "bound_elsewhere");
    let r = app
        .post("/api/v1/me/disputes", Some(&prober), json!({"kind": "id_number", "name": "王小明", "id_number": number}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "open");
    let mine = app.get("/api/v1/me/disputes", Some(&prober)).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    let inbox = app.get("/api/v1/me/notifications", Some(&holder)).await;
    assert!(inbox.text.contains("claims"), "{}", inbox.text);
}

#[tokio::test]
async fn city_department_staff_verify_at_the_counter_and_decide_disputes() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, bureau) = app.city_and_org(&admin, "Hangzhou", "Public Security Bureau", "city_department").await;
    let (_, shop) = app.city_and_org(&admin, "Hangzhou", "Tea Shop", "merchant").await;
    let (clerk_id, clerk) = app.user("clerk@example.org", "Clerk").await;
    app.add_staff(&admin, &bureau, &clerk_id, "operator").await;
    let (cashier_id, cashier) = app.user("cashier@example.org", "Cashier").await;
    app.add_staff(&admin, &shop, &cashier_id, "admin").await;
    let (person_id, person) = app.user("person@example.org", "Person").await;
    let number = id_number("33010619900307123");
    let body = json!({"user_id": person_id, "name": "王小明", "id_number": number});

    let r = app.post(&format!("/api/v1/orgs/{bureau}/counter/verifications"), Some(&person), body.clone()).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.post(&format!("/api/v1/orgs/{shop}/counter/verifications"), Some(&cashier), body.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a shop does no counter work: {}", r.text);
    assert_eq!(app.get("/api/v1/me", Some(&person)).await.body["verification_level"], 0);

    let r = app.post(&format!("/api/v1/orgs/{bureau}/counter/verifications"), Some(&clerk), body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["verification_level"], 2);
    let log = app.get("/api/v1/me/access-log", Some(&person)).await;
    assert!(log.text.contains("identity_verification") && log.text.contains("counter_verification"), "{}", log.text);

    // A plate at the counter, then a claim to it by someone whose registration matches.
    let r = app
        .post(
            &format!("/api/v1/orgs/{bureau}/counter/vehicles"),
            Some(&clerk),
            json!({"user_id": person_id, "plate": "浙A12345", "certificate": "330100000000"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.get("/api/v1/me/vehicles", Some(&person)).await.body[0]["plate"], "浙A12345");
    let (_, claimant) = app.user("claimant@example.org", "Claimant").await;
    let r = app
        .post(
            "/api/v1/me/real-name",
            Some(&claimant),
            json!({"name": "李四", "id_number": id_number("33010619900307456")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.post("/api/v1/me/vehicles", Some(&claimant), json!({"plate": "浙A12345", "certificate": CERT})).await;
    assert_problem(&r, StatusCode::CONFLICT, "bound_elsewhere");
    let r = app
        .post(
            "/api/v1/me/disputes",
            Some(&claimant),
            json!({"kind": "plate", "plate": "浙A12345", "certificate": CERT}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let list = app.get(&format!("/api/v1/orgs/{bureau}/disputes?limit=10"), Some(&clerk)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let d = list.body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&format!("/api/v1/orgs/{shop}/disputes"), Some(&cashier)).await.status, StatusCode::CONFLICT);
    let path = format!("/api/v1/orgs/{bureau}/disputes/{d}");
    let r = app.post(&path, Some(&clerk), json!({"decision": "maybe"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app.post(&path, Some(&clerk), json!({"decision": "uphold"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "upheld");
    assert_eq!(app.get("/api/v1/me/vehicles", Some(&claimant)).await.body[0]["plate"], "浙A12345");
    assert_eq!(app.get("/api/v1/me/vehicles", Some(&person)).await.body, json!([]));
    let r = app.post(&path, Some(&clerk), json!({"decision": "reject"})).await;
    assert_problem(&r, StatusCode::CONFLICT, "conflict");

    // The claimant unbinds it (a car sold).
    let r = app.call(Method::DELETE, "/api/v1/me/vehicles/%E6%B5%99A12345", Some(&claimant), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

#[tokio::test]
async fn the_profile_says_the_verifier_is_a_sandbox_and_offers_a_dispute() {
    let app = spawn_app().await;
    let (_, holder) = app.user("holder@example.org", "Holder").await;
    let number = id_number("33010619900307123");
    app.post("/api/v1/me/real-name", Some(&holder), json!({"name": "王小明", "id_number": number})).await;
    app.user("me@example.org", "Me").await;
    let cookies = page_login(&app, "me@example.org").await;
    let en = page(&app, "/profile", &cookies, "en").await;
    assert!(en.text.contains("Sandbox verifier: no authority was asked"), "{}", en.text);
    let zh = page(&app, "/profile", &cookies, "zh-CN").await;
    assert!(zh.text.contains("沙盒核验：未向任何主管机关查询"), "{}", zh.text);
    let csrf = csrf_of(&en).unwrap();

    let r = form(
        &app,
        "/profile/real-name",
        &cookies,
        &format!("csrf={csrf}&name=%E7%8E%8B%E5%B0%8F%E6%98%8E&id_number={number}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("could not be bound to your account"), "{}", r.text);
    assert!(r.text.contains("id=\"dispute-form\""), "{}", r.text);
    let r = form(
        &app,
        "/profile/disputes",
        &cookies,
        &format!("csrf={csrf}&kind=id_number&name=%E7%8E%8B%E5%B0%8F%E6%98%8E&id_number={number}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Your dispute is open") && r.text.contains("id=\"my-disputes\""), "{}", r.text);

    // A wrong name: the same page for any number, no dispute offered.
    let bad = "%E4%B8%8D%E5%8C%B9%E9%85%8D"; // 不匹配
    let r = form(&app, "/profile/real-name", &cookies, &format!("csrf={csrf}&name={bad}&id_number={number}")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.text.contains("id=\"dispute-form\""));
    assert!(r.text.contains("do not match the records"), "{}", r.text);
}

#[tokio::test]
async fn a_city_departments_staff_use_the_counter_page() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, bureau) = app.city_and_org(&admin, "Hangzhou", "Public Security Bureau", "city_department").await;
    let (clerk_id, _) = app.user("clerk@example.org", "Clerk").await;
    app.add_staff(&admin, &bureau, &clerk_id, "operator").await;
    let (person_id, _) = app.user("person@example.org", "Person").await;
    app.user("nobody@example.org", "Nobody").await;

    let nobody = page_login(&app, "nobody@example.org").await;
    assert_eq!(page(&app, "/counter", &nobody, "en").await.status, StatusCode::FORBIDDEN);

    let cookies = page_login(&app, "clerk@example.org").await;
    let r = page(&app, "/counter", &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("No open dispute"), "{}", r.text);
    let csrf = csrf_of(&r).unwrap();
    let number = id_number("33010619900307123");
    let body = format!(
        "csrf={csrf}&org_id={bureau}&login=person%40example.org&name=%E7%8E%8B%E5%B0%8F%E6%98%8E&id_number={number}"
    );
    let r = form(&app, "/counter/verify", &cookies, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(app.state.identity.profile(&person_id).await.unwrap().verification_level, 2);
    let r = form(&app, "/counter/verify", &cookies, &format!("{body}&login=x")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let zh = page(&app, "/counter", &cookies, "zh-CN").await;
    assert!(zh.text.contains("服务窗口"), "{}", zh.text);
}
