//! Pay code charges above the threshold over HTTP: the till's 202 and its
//! retries, the customer's status, confirm and decline (API and pages), the
//! payment PIN; someone else's code is not found.

use crate::common::*;
use crate::{balance, funded, key, transfers};
use axum::http::{Method, StatusCode};
use serde_json::json;

/// Above the default threshold (¥500).
const BIG: i64 = 60_000;

struct Till {
    shop: String,
    cashier: String,
}

async fn till(app: &TestApp, n: &str) -> Till {
    let (_, admin) = app.admin().await;
    let (_, shop) = app.city_and_org(&admin, &format!("City {n}"), &format!("Shop {n}"), "merchant").await;
    let (cashier_id, cashier) = app.user(&format!("cashier-{n}@example.org"), "Cashier").await;
    app.add_staff(&admin, &shop, &cashier_id, "operator").await;
    Till { shop, cashier }
}

/// A fresh pay code: (id, digits).
async fn paycode(app: &TestApp, token: &str) -> (String, String) {
    let pc = app.call(Method::POST, "/api/v1/paycodes", Some(token), None).await;
    assert_eq!(pc.status, StatusCode::CREATED, "{}", pc.text);
    (pc.body["id"].as_str().unwrap().to_string(), pc.body["code"].as_str().unwrap().to_string())
}

async fn charge(app: &TestApp, t: &Till, key: &str, code: &str, amount: i64) -> Resp {
    app.pay("/api/v1/merchant/charge", &t.cashier, key, json!({"org_id": t.shop, "code": code, "amount": amount})).await
}

async fn status(app: &TestApp, token: &str, id: &str) -> Resp {
    app.get(&format!("/api/v1/paycodes/{id}/status"), Some(token)).await
}

#[tokio::test]
async fn the_till_waits_for_the_customer_and_its_retry_answers_the_receipt() {
    let app = spawn_app().await;
    let t = till(&app, "a").await;
    let (_, customer) = funded(&app, "big-a@example.org", "Customer", 100_000).await;
    let (_, stranger) = funded(&app, "nosy-a@example.org", "Stranger", 100_000).await;

    // Up to the threshold: paid at once, and the status says so.
    let (id, code) = paycode(&app, &customer).await;
    assert_eq!(status(&app, &customer, &id).await.body["state"], "waiting");
    let r = charge(&app, &t, &key(), &code, 50_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let s = status(&app, &customer, &id).await;
    assert_eq!(
        (s.body["state"].as_str(), s.body["transfer_id"].clone()),
        (Some("paid"), r.body["transfer_id"].clone())
    );
    assert_eq!(s.body["payee_name"], "Shop a");
    assert_eq!(balance(&app, &customer).await, 50_000);
    let r = app.pay("/api/v1/wallet/topup", &customer, &key(), json!({"amount": 50_000})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Above it: 202, nothing moves, and the same request again still waits (not a stored replay).
    let before = transfers(&app).await;
    let (id, code) = paycode(&app, &customer).await;
    let k = key();
    let r = charge(&app, &t, &k, &code, BIG).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["status"], "awaiting_confirmation");
    assert_eq!((r.body["amount"].as_i64(), r.body["payee_name"].as_str()), (Some(BIG), Some("Shop a")));
    let again = charge(&app, &t, &k, &code, BIG).await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert!(again.headers.get("idempotent-replayed").is_none());
    assert_eq!(transfers(&app).await, before);

    // Only the owner sees or answers it.
    let s = status(&app, &customer, &id).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!((s.body["state"].as_str(), s.body["amount"].as_i64()), (Some("awaiting_confirmation"), Some(BIG)));
    assert_problem(&status(&app, &stranger, &id).await, StatusCode::NOT_FOUND, "not_found");
    let confirm = format!("/api/v1/paycodes/{id}/confirm");
    assert_problem(&app.pay(&confirm, &stranger, &key(), json!({})).await, StatusCode::NOT_FOUND, "not_found");
    let decline = format!("/api/v1/paycodes/{id}/decline");
    assert_problem(&app.post(&decline, Some(&stranger), json!({})).await, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(transfers(&app).await, before);

    let r = app.pay(&confirm, &customer, &key(), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balance(&app, &customer).await, 100_000 - BIG);
    let till_answer = charge(&app, &t, &k, &code, BIG).await;
    assert_eq!(till_answer.status, StatusCode::CREATED, "{}", till_answer.text);
    assert_eq!(till_answer.body["transfer_id"], r.body["transfer_id"]);
    assert_eq!(transfers(&app).await, before + 1);
    assert_eq!(status(&app, &customer, &id).await.body["state"], "paid");
    assert_eq!(balance(&app, &stranger).await, 100_000);
}

#[tokio::test]
async fn a_declined_charge_tells_the_till_and_moves_nothing() {
    let app = spawn_app().await;
    let t = till(&app, "b").await;
    let (_, customer) = funded(&app, "big-b@example.org", "Customer", 100_000).await;
    let before = transfers(&app).await;
    let (id, code) = paycode(&app, &customer).await;
    let k = key();
    assert_eq!(charge(&app, &t, &k, &code, BIG).await.status, StatusCode::ACCEPTED);
    let r = app.post(&format!("/api/v1/paycodes/{id}/decline"), Some(&customer), json!({})).await;
    assert_eq!((r.status, r.body["state"].as_str()), (StatusCode::OK, Some("declined")), "{}", r.text);
    assert_problem(&charge(&app, &t, &k, &code, BIG).await, StatusCode::PAYMENT_REQUIRED, "paycode_declined");
    let r = app.pay(&format!("/api/v1/paycodes/{id}/confirm"), &customer, &key(), json!({})).await;
    assert_problem(&r, StatusCode::PAYMENT_REQUIRED, "paycode_declined");

    // No answer in time: the till hears the charge lapsed.
    let (_, code) = paycode(&app, &customer).await;
    let k = key();
    assert_eq!(charge(&app, &t, &k, &code, BIG).await.status, StatusCode::ACCEPTED);
    app.clock.advance_ms(yizhan_pay::qrpay::PAYCODE_CONFIRM_WINDOW_MS);
    assert_problem(&charge(&app, &t, &k, &code, BIG).await, StatusCode::GONE, "code_expired");
    assert_eq!(transfers(&app).await, before);
    assert_eq!(balance(&app, &customer).await, 100_000);
}

#[tokio::test]
async fn a_payment_pin_is_set_with_the_password_and_asked_on_confirmation() {
    let app = spawn_app().await;
    let t = till(&app, "c").await;
    let (_, customer) = funded(&app, "big-c@example.org", "Customer", 100_000).await;
    let r = app.post("/api/v1/wallet/pin", Some(&customer), json!({"password": "wrong", "pin": "274951"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r =
        app.post("/api/v1/wallet/pin", Some(&customer), json!({"password": "correct horse", "pin": "111111"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r =
        app.post("/api/v1/wallet/pin", Some(&customer), json!({"password": "correct horse", "pin": "274951"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let (id, code) = paycode(&app, &customer).await;
    assert_eq!(charge(&app, &t, &key(), &code, BIG).await.status, StatusCode::ACCEPTED);
    assert_eq!(status(&app, &customer, &id).await.body["pin_required"], true);
    let confirm = format!("/api/v1/paycodes/{id}/confirm");
    assert_problem(
        &app.pay(&confirm, &customer, &key(), json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    for _ in 0..yizhan_pay::PIN_MAX_FAILURES {
        let r = app.pay(&confirm, &customer, &key(), json!({"pin": "000001"})).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "wrong_pin");
    }
    let r = app.pay(&confirm, &customer, &key(), json!({"pin": "274951"})).await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(balance(&app, &customer).await, 100_000);
}

mod pages {
    use super::*;

    async fn browser(app: &TestApp, login: &str) -> (String, String) {
        let first = page(app, "/login", "", "en").await;
        let csrf = cookie_of(&first, "yz_csrf").unwrap();
        let body = format!("csrf={csrf}&login={}&password=correct+horse", login.replace('@', "%40"));
        let r = form(app, "/login", &format!("yz_csrf={csrf}"), &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let cookies = format!("yz_csrf={csrf}; yz_session={}", cookie_of(&r, "yz_session").unwrap());
        let csrf = session_csrf(app, &cookies).await;
        (cookies, csrf)
    }

    fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
        let at = html.find(start).unwrap_or_else(|| panic!("no {start} in {html}")) + start.len();
        &html[at..at + html[at..].find(end).unwrap()]
    }

    #[tokio::test]
    async fn the_pay_code_page_follows_the_charge_and_the_customer_confirms_there() {
        let app = spawn_app().await;
        let t = till(&app, "d").await;
        let (_, customer) = funded(&app, "page-d@example.org", "Customer", 100_000).await;
        let (cookies, csrf) = browser(&app, "page-d@example.org").await;

        let pc = page(&app, "/wallet/paycode", &cookies, "en").await;
        assert_eq!(pc.status, StatusCode::OK, "{}", pc.text);
        let digits = between(&pc.text, "id=\"paycode-digits\">", "<").to_string();
        let state_url = between(&pc.text, "data-state-url=\"", "\"").to_string();
        let status_url = between(&pc.text, "data-status-url=\"", "\"").to_string();
        // The digits are a bearer credential: never in a link.
        assert!(!state_url.contains(&digits) && !status_url.contains(&digits));
        // Shown masked at first (all but the last four), behind a "show" for reading out, with a warning.
        let masked = between(&pc.text, "id=\"paycode-masked\" aria-hidden=\"true\">", "<").to_string();
        assert_eq!(masked.chars().filter(|c| *c == '•').count(), digits.len() - 4, "{masked}");
        assert!(masked.ends_with(&digits[digits.len() - 4..].chars().collect::<String>()[2..]), "{masked}");
        assert!(pc.text.contains("id=\"paycode-show\"") && pc.text.contains("id=\"paycode-warning\""));
        assert!(pc.text.contains(&format!("href=\"{status_url}\"")), "a link for browsers without the script");

        let st = page(&app, &state_url, &cookies, "en").await;
        assert_eq!((st.status, st.body["state"].as_str()), (StatusCode::OK, Some("waiting")), "{}", st.text);
        let waiting = page(&app, &status_url, &cookies, "en").await;
        assert!(waiting.text.contains("http-equiv=\"refresh\""), "{}", waiting.text);

        let k = key();
        assert_eq!(charge(&app, &t, &k, &digits, BIG).await.status, StatusCode::ACCEPTED);
        assert_eq!(page(&app, &state_url, &cookies, "en").await.body["state"], "awaiting_confirmation");
        let ask = page(&app, &status_url, &cookies, "en").await;
        assert!(ask.text.contains("Pay ¥600.00 to Shop d?"), "{}", ask.text);
        assert!(!ask.text.contains("http-equiv=\"refresh\""), "no reload while the person answers");
        let zh = page(&app, &status_url, &cookies, "zh-CN").await;
        assert!(zh.text.contains("向Shop d支付 ¥600.00？"), "{}", zh.text);

        // Someone else gets nothing.
        funded(&app, "page-e@example.org", "Other", 0).await;
        let (other, other_csrf) = browser(&app, "page-e@example.org").await;
        assert_eq!(page(&app, &status_url, &other, "en").await.status, StatusCode::NOT_FOUND);
        assert_eq!(page(&app, &state_url, &other, "en").await.status, StatusCode::NOT_FOUND);
        let r = form(&app, &format!("{status_url}/confirm"), &other, &format!("csrf={other_csrf}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        let r = form(&app, &format!("{status_url}/confirm"), &cookies, &format!("csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("id=\"paycode-paid\"") && r.text.contains("id=\"paycode-transfer\""), "{}", r.text);
        assert_eq!(balance(&app, &customer).await, 100_000 - BIG);
        assert_eq!(page(&app, &state_url, &cookies, "en").await.body["state"], "paid");
        // The till's retry gets the receipt; a second confirmation moves nothing more.
        assert_eq!(charge(&app, &t, &k, &digits, BIG).await.status, StatusCode::CREATED);
        form(&app, &format!("{status_url}/confirm"), &cookies, &format!("csrf={csrf}")).await;
        assert_eq!(balance(&app, &customer).await, 100_000 - BIG);
    }

    #[tokio::test]
    async fn the_settings_page_sets_the_pin_with_the_password() {
        let app = spawn_app().await;
        let (user, _) = funded(&app, "page-f@example.org", "Customer", 0).await;
        let (cookies, csrf) = browser(&app, "page-f@example.org").await;
        let p = page(&app, "/wallet/settings", &cookies, "en").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert!(p.text.contains("above ¥500.00"), "{}", p.text);
        let r =
            form(&app, "/wallet/settings", &cookies, &format!("csrf={csrf}&password=nope&pin=274951&pin_again=274951"))
                .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        let r = form(
            &app,
            "/wallet/settings",
            &cookies,
            &format!("csrf={csrf}&password=correct+horse&pin=274951&pin_again=274950"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert!(!app.state.pay.has_payment_pin(&user).await.unwrap());
        let r = form(
            &app,
            "/wallet/settings",
            &cookies,
            &format!("csrf={csrf}&password=correct+horse&pin=274951&pin_again=274951"),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert_eq!(r.headers.get("location").unwrap(), "/wallet/settings?done=saved");
        let r = page(&app, "/wallet/settings?done=saved", &cookies, "en").await;
        assert!(r.text.contains("Payment PIN saved") && r.text.contains("id=\"pin-remove\""), "{}", r.text);
        assert!(app.state.pay.has_payment_pin(&user).await.unwrap());
        // Without the CSRF token nothing changes.
        let r = form(&app, "/wallet/settings", &cookies, "password=correct+horse&remove=1").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(app.state.pay.has_payment_pin(&user).await.unwrap());
    }
}
