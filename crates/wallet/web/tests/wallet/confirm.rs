//! Confirming before money moves, over HTTP: a QR payment, a bill and a
//! withdrawal show payee, amount and fee and ask the payment PIN when one is
//! set (a wrong PIN moves nothing and is counted, API and pages); one's own
//! code is refused at the preview; the answer to a confirmed form is 303 to
//! the transfer's page (post/redirect/get); a transfer's page is its owner's
//! alone; the history filters by type and month.

use crate::common::*;
use crate::pages::{browser, hidden, urlencode};
use crate::{balance, funded, issue_bill_to, key, transfers};
use axum::http::StatusCode;
use serde_json::json;

const PIN: &str = "274951";

async fn set_pin(app: &TestApp, token: &str) {
    let r = app.post("/api/v1/wallet/pin", Some(token), json!({"password": "correct horse", "pin": PIN})).await;
    assert!(r.status.is_success(), "{}", r.text);
}

fn location(r: &Resp) -> String {
    r.headers.get("location").unwrap_or_else(|| panic!("no location: {} {}", r.status, r.text)).to_str().unwrap().into()
}

#[tokio::test]
async fn a_qr_payment_with_a_pin_is_confirmed_and_a_wrong_pin_moves_nothing() {
    let app = spawn_app().await;
    let (_, a) = funded(&app, "qr-pin-a@example.org", "Payer A", 10_000).await;
    let (_, b) = app.user("qr-pin-b@example.org", "Payee Bo").await;
    set_pin(&app, &a).await;
    let (cookies, csrf) = browser(&app, "qr-pin-a@example.org").await;
    let payload = app.get("/api/v1/qr/me", Some(&b)).await.body["payload"].as_str().unwrap().to_string();

    let r = form(&app, "/wallet/pay/preview", &cookies, &format!("csrf={csrf}&payload={}", urlencode(&payload))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("id=\"payee-name\">***o<") && !r.text.contains("Payee Bo"), "{}", r.text);
    let k = hidden(&r.text, "idem");
    let body = format!("csrf={csrf}&idem={k}&payload={}&amount=2.50", urlencode(&payload));
    let r = form(&app, "/wallet/pay", &cookies, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("id=\"check-amount\">¥2.50") && r.text.contains("id=\"check-fee\">Fee: ¥0.00"),
        "{}",
        r.text
    );
    assert!(r.text.contains("name=\"pin\""), "the PIN is asked: {}", r.text);
    let before = transfers(&app).await;

    // No PIN, then a wrong one: refused, nothing moves, the form keeps its key.
    let r = form(&app, "/wallet/pay", &cookies, &format!("{body}&confirm=1")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = form(&app, "/wallet/pay", &cookies, &format!("{body}&confirm=1&pin=111112")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("class=\"flash error\""), "{}", r.text);
    assert_eq!(transfers(&app).await, before);
    assert_eq!(balance(&app, &b).await, 0);

    let r = form(&app, "/wallet/pay", &cookies, &format!("{body}&confirm=1&pin={PIN}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let done = location(&r);
    assert_eq!(balance(&app, &b).await, 250);
    // A reload is a GET of the transfer's page: nothing is posted again.
    for _ in 0..2 {
        let d = page(&app, &done, &cookies, "en").await;
        assert_eq!(d.status, StatusCode::OK);
        assert!(d.text.contains("Paid ¥2.50") && d.text.contains("***o"), "{}", d.text);
    }
    assert_eq!(balance(&app, &b).await, 250);

    // Wrong PINs are counted (one above, four here): after five, even the right one waits.
    let body = body.replace(&k, &format!("{k}x"));
    for _ in 0..4 {
        let r = form(&app, "/wallet/pay", &cookies, &format!("{body}&confirm=1&pin=111112")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    }
    let r = form(&app, "/wallet/pay", &cookies, &format!("{body}&confirm=1&pin={PIN}")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(balance(&app, &b).await, 250);
}

#[tokio::test]
async fn paying_ones_own_code_is_refused_at_the_preview() {
    let app = spawn_app().await;
    let (_, a) = funded(&app, "self-qr@example.org", "Self Payer", 1_000).await;
    let (cookies, csrf) = browser(&app, "self-qr@example.org").await;
    let mine = app.get("/api/v1/qr/me", Some(&a)).await.body["payload"].as_str().unwrap().to_string();
    let r = form(&app, "/wallet/pay/preview", &cookies, &format!("csrf={csrf}&payload={}", urlencode(&mine))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("You cannot pay yourself") && !r.text.contains("id=\"pay-form\""), "{}", r.text);
    let r = app.post("/api/v1/qr/preview", Some(&a), json!({"payload": mine})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "self_payment");
    // Another's code: masked, with the fee and whether the PIN is asked.
    let (_, b) = app.user("self-qr-b@example.org", "Other Person").await;
    let theirs = app.get("/api/v1/qr/me", Some(&b)).await.body["payload"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/qr/preview", Some(&a), json!({"payload": theirs})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["payee_name"], "***n");
    assert_eq!(r.body["fee"], 0);
    assert_eq!(r.body["pin_required"], false);
}

#[tokio::test]
async fn a_bill_and_a_withdrawal_ask_the_pin_on_their_confirmation() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, water) = app.city_and_org(&admin, "Pin City", "Pin Water", "city_department").await;
    let (_, t) = funded(&app, "bill-pin@example.org", "Bill Payer", 10_000).await;
    let bill = issue_bill_to(&app, &admin, &water, &t, 1_234).await;
    set_pin(&app, &t).await;
    let (cookies, csrf) = browser(&app, "bill-pin@example.org").await;

    let bills = page(&app, "/bills", &cookies, "en").await;
    let k = hidden(&bills.text, "idem");
    let r = form(&app, &format!("/bills/{bill}/pay"), &cookies, &format!("csrf={csrf}&idem={k}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("id=\"check-payee\">Pin Water<") && r.text.contains("¥12.34"), "{}", r.text);
    assert!(r.text.contains("name=\"pin\"") && r.text.contains(&format!("action=\"/bills/{bill}/pay\"")), "{}", r.text);
    let r = form(&app, &format!("/bills/{bill}/pay"), &cookies, &format!("csrf={csrf}&idem={k}&confirm=1&pin=111112"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(balance(&app, &t).await, 10_000);
    let r =
        form(&app, &format!("/bills/{bill}/pay"), &cookies, &format!("csrf={csrf}&idem={k}&confirm=1&pin={PIN}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(location(&r).starts_with("/wallet/history/"));
    assert_eq!(balance(&app, &t).await, 10_000 - 1_234);
    // Paid: a second preview says so instead of asking again.
    let r = form(&app, &format!("/bills/{bill}/pay"), &cookies, &format!("csrf={csrf}&idem=web-again")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    let w = page(&app, "/wallet", &cookies, "en").await;
    let wk = hidden(&w.text[w.text.find("/wallet/withdraw").unwrap()..], "idem");
    let body = format!("csrf={csrf}&idem={wk}&amount=10&card=");
    let r = form(&app, "/wallet/withdraw", &cookies, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("id=\"check-payee\">Bank card (test)<") && r.text.contains("name=\"pin\""), "{}", r.text);
    let r = form(&app, "/wallet/withdraw", &cookies, &format!("{body}&confirm=1&pin=111112")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(balance(&app, &t).await, 10_000 - 1_234);
    let r = form(&app, "/wallet/withdraw", &cookies, &format!("{body}&confirm=1&pin={PIN}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(balance(&app, &t).await, 10_000 - 1_234 - 1_000);
    let d = page(&app, &location(&r), &cookies, "zh-CN").await;
    assert!(d.text.contains("提现成功 ¥10.00") && d.text.contains("已完成"), "{}", d.text);
}

#[tokio::test]
async fn the_api_takes_the_pin_for_qr_bill_and_withdrawal() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, water) = app.city_and_org(&admin, "Api Pin City", "Api Pin Water", "city_department").await;
    let (_, t) = funded(&app, "api-pin@example.org", "Api Payer", 10_000).await;
    let (_, b) = app.user("api-pin-b@example.org", "Api Payee").await;
    let bill = issue_bill_to(&app, &admin, &water, &t, 500).await;
    set_pin(&app, &t).await;
    let payload = app.get("/api/v1/qr/me", Some(&b)).await.body["payload"].as_str().unwrap().to_string();
    let before = transfers(&app).await;

    let qr = |pin: Option<&str>| {
        let mut body = json!({"payload": payload, "amount": 100});
        if let Some(p) = pin {
            body["pin"] = json!(p);
        }
        body
    };
    let bill_path = format!("/api/v1/bills/{bill}/pay");
    // Without the PIN, or with a wrong one: refused, nothing moves.
    let r = app.pay("/api/v1/qr/pay", &t, &key(), qr(None)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "pin", "{}", r.text);
    let r = app.pay("/api/v1/qr/pay", &t, &key(), qr(Some("111112"))).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "wrong_pin");
    let r = app.pay(&bill_path, &t, &key(), json!({})).await;
    assert_eq!(r.body["fields"][0]["field"], "pin", "{}", r.text);
    let r = app.pay(&bill_path, &t, &key(), json!({"pin": "111112"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "wrong_pin");
    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 100, "pin": "111112"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "wrong_pin");
    assert_eq!(transfers(&app).await, before);
    assert_eq!(balance(&app, &t).await, 10_000);

    let r = app.pay("/api/v1/qr/pay", &t, &key(), qr(Some(PIN))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.pay(&bill_path, &t, &key(), json!({"pin": PIN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 100, "pin": PIN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balance(&app, &t).await, 10_000 - 100 - 500 - 100);
    assert_eq!(balance(&app, &b).await, 100);

    // The OpenAPI document names the PIN on all three.
    let doc = app.get("/api/openapi.json", None).await.body;
    for schema in ["QrPayReq", "PayBillReq", "WithdrawReq"] {
        assert!(doc["components"]["schemas"][schema]["properties"]["pin"].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn a_transfers_page_is_its_owners_alone_and_the_history_filters() {
    let app = spawn_app().await;
    let (_, a) = funded(&app, "detail-a@example.org", "Detail Ann", 10_000).await;
    let (_, b) = app.user("detail-b@example.org", "Detail Ben").await;
    app.user("detail-c@example.org", "Detail Cai").await;
    let r = app
        .pay("/api/v1/transfers", &a, &key(), json!({"to": "detail-b@example.org", "amount": 321, "memo": "tea"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sent = r.body["transfer_id"].as_str().unwrap().to_string();
    let (ca, _) = browser(&app, "detail-a@example.org").await;
    let (cb, _) = browser(&app, "detail-b@example.org").await;
    let (cc, _) = browser(&app, "detail-c@example.org").await;

    // Both sides see it, the other side's name masked; anyone else: not found.
    let d = page(&app, &format!("/wallet/history/{sent}"), &ca, "en").await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert!(d.text.contains("id=\"receipt-payee\">***n<") && d.text.contains("id=\"transfer-amount\">-3.21<"));
    assert!(d.text.contains(&format!("id=\"transfer-ref\">{sent}<")) && d.text.contains("id=\"transfer-fee\">¥0.00<"));
    assert!(d.text.contains("id=\"transfer-status\">Done<") && d.text.contains("Transfers"), "{}", d.text);
    let d = page(&app, &format!("/wallet/history/{sent}"), &cb, "zh-CN").await;
    assert!(d.text.contains("+3.21") && d.text.contains("付款方"), "{}", d.text);
    let d = page(&app, &format!("/wallet/history/{sent}"), &cc, "en").await;
    assert_eq!(d.status, StatusCode::NOT_FOUND, "{}", d.text);
    assert!(!d.text.contains("3.21"));
    assert_eq!(page(&app, "/wallet/history/nope", &ca, "en").await.status, StatusCode::NOT_FOUND);
    let (_, c) = (0, app.login("detail-c@example.org").await);
    assert_problem(
        &app.get(&format!("/api/v1/wallet/transactions/{sent}"), Some(&c)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let r = app.get(&format!("/api/v1/wallet/transactions/{sent}"), Some(&a)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["counterparty_masked"], "***n");
    assert_eq!(r.body["status"], "done");
    assert_eq!(r.body["amount"], 321);
    // The notification's link goes to the same page.
    let old = page(&app, &format!("/wallet/transfers/{sent}"), &cb, "en").await;
    assert_eq!(location(&old), format!("/wallet/history/{sent}"));

    // Every row opens its page; the filters keep to a type or a month.
    let h = page(&app, "/wallet/history", &ca, "en").await;
    assert!(h.text.contains(&format!("href=\"/wallet/history/{sent}\"")), "{}", h.text);
    assert!(h.text.contains("data-category=\"topup\""));
    let h = page(&app, "/wallet/history?type=p2p", &ca, "en").await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    assert!(h.text.contains("data-category=\"p2p\"") && !h.text.contains("data-category=\"topup\""), "{}", h.text);
    assert!(h.text.contains("<option value=\"p2p\" selected>"), "{}", h.text);
    let (y, m) = yizhan_core::time::year_month_cst(yizhan_core::Clock::now_ms(&*app.clock));
    let this_month = format!("{y}-{m:02}");
    let h = page(&app, &format!("/wallet/history?month={this_month}"), &ca, "en").await;
    assert!(h.text.contains("data-category=\"p2p\"") && h.text.contains("data-category=\"topup\""), "{}", h.text);
    let h = page(&app, "/wallet/history?month=2001-01&type=p2p", &ca, "en").await;
    assert!(h.text.contains("id=\"history-empty\""), "{}", h.text);
    for bad in ["type=bogus", "month=2026-13", "month=March"] {
        let h = page(&app, &format!("/wallet/history?{bad}"), &ca, "en").await;
        assert_eq!(h.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", h.text);
    }

    // The API: the same filters, and a bounded page with the cursor as before.
    let r = app.get("/api/v1/wallet/transactions?type=topup", Some(&a)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.iter().all(|i| i["category"] == "topup"), "{}", r.text);
    let r = app.get("/api/v1/wallet/transactions?limit=1", Some(&a)).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
    let cursor = r.body["next_cursor"].as_i64().expect("another page");
    let r = app.get(&format!("/api/v1/wallet/transactions?limit=1&cursor={cursor}"), Some(&a)).await;
    assert_eq!(r.body["items"][0]["category"], "topup", "{}", r.text);
    let r = app.get("/api/v1/wallet/transactions?month=2001-01", Some(&a)).await;
    assert!(r.body["items"].as_array().unwrap().is_empty(), "{}", r.text);
    for bad in ["limit=0", "limit=201", "type=bogus", "month=1-1"] {
        let r = app.get(&format!("/api/v1/wallet/transactions?{bad}"), Some(&a)).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let _ = b;
}
