//! The wallet over HTTP: each route's happy path, bad input that moves
//! nothing, idempotent retries, staff reads in the access log.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod confirm;
mod forms;
mod limits;
mod packets;
mod paycode;
mod screens;
mod staff;
mod texts;

mod common {
    pub use yizhan_app::testing::*;
}

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use yizhan_pay::emvco;

static KEYS: AtomicUsize = AtomicUsize::new(0);

/// A new Idempotency-Key.
fn key() -> String {
    format!("k-{}", KEYS.fetch_add(1, Ordering::SeqCst))
}

async fn balance(app: &TestApp, token: &str) -> i64 {
    let r = app.get("/api/v1/wallet", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["balance"].as_i64().unwrap()
}

/// The identity number a test person verifies with, the same for the same login.
fn number_for(login: &str) -> String {
    let h = login.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    id_number(&format!("3301061985{:02}{:02}{:03}", (h % 12) + 1, ((h / 12) % 28) + 1, (h / 336) % 1000))
}

/// Verify a person's real name through the API (level 1: the limits of an
/// unverified account no longer apply, and they may withdraw).
async fn verify(app: &TestApp, token: &str) {
    let me = app.get("/api/v1/me", Some(token)).await.body;
    if me["verification_level"] == 0 {
        let number = number_for(me["login"].as_str().unwrap());
        let r = app.post("/api/v1/me/real-name", Some(token), json!({"name": "王居民", "id_number": number})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

/// A person with `fen` in the wallet, verified when it has money (so tests may
/// move more than an unverified account's limits); returns (user_id, token).
async fn funded(app: &TestApp, login: &str, name: &str, fen: i64) -> (String, String) {
    let (id, token) = app.user(login, name).await;
    if fen > 0 {
        verify(app, &token).await;
        let r = app.pay("/api/v1/wallet/topup", &token, &key(), json!({"amount": fen})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    (id, token)
}

async fn transfers(app: &TestApp) -> u64 {
    let r = app.state.ledger.check().await.unwrap();
    assert!(r.is_clean(), "{:#?}", r.mismatches);
    r.transfers
}

#[tokio::test]
async fn top_up_withdraw_history_and_statement() {
    let app = spawn_app().await;
    let (_, t) = app.user("w1@example.org", "Wen").await;
    // Withdrawing needs a verified name.
    verify(&app, &t).await;
    let r = app.get("/api/v1/wallet", Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK);
    // The test app runs the sandbox gateway, and the wallet says so.
    assert_eq!(r.body, json!({"balance": 0, "available": 0, "pending": 0, "currency": "CNY", "sandbox": true}));

    let r = app
        .pay(
            "/api/v1/wallet/topup",
            &t,
            &key(),
            json!({"amount": 10_000, "card": "4000000000000002", "currency": "CNY"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["amount"], 10_000);
    assert_eq!(r.body["gateway"], "sandbox");
    assert!(r.body["gateway_ref"].as_str().unwrap().starts_with("sandbox_"));

    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 2_500})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let w = app.get("/api/v1/wallet", Some(&t)).await.body;
    assert_eq!(
        (w["balance"].as_i64(), w["available"].as_i64(), w["pending"].as_i64()),
        (Some(7_500), Some(7_500), Some(0))
    );

    // A declined card moves nothing, and leaves no hold behind.
    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 1_000, "card": "4000000000000069"})).await;
    assert_problem(&r, StatusCode::PAYMENT_REQUIRED, "payment_declined");
    let r = app.pay("/api/v1/wallet/topup", &t, &key(), json!({"amount": 1_000, "card": "4000000000000119"})).await;
    assert_problem(&r, StatusCode::GATEWAY_TIMEOUT, "gateway_timeout");
    let w = app.get("/api/v1/wallet", Some(&t)).await.body;
    assert_eq!((w["balance"].as_i64(), w["available"].as_i64()), (Some(7_500), Some(7_500)));
    // More than there is.
    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 7_501})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");

    let h = app.get("/api/v1/wallet/transactions", Some(&t)).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let items = h.body["items"].as_array().unwrap();
    assert!(items.iter().any(|i| i["category"] == "topup" && i["direction"] == "in" && i["amount"] == 10_000));
    assert!(items.iter().any(|i| i["category"] == "withdrawal" && i["posted_change"] == -2_500));
    let bad = app.get("/api/v1/wallet/transactions?cursor=abc", Some(&t)).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["fields"][0]["field"], "cursor");
    // Any cursor answers at once (a bounded read): beyond the newest row is the
    // first page, at or below the oldest an empty last page.
    for c in [i64::MAX, i64::MIN, -1, 0] {
        let r = app.get(&format!("/api/v1/wallet/transactions?cursor={c}"), Some(&t)).await;
        assert_eq!(r.status, StatusCode::OK, "cursor {c}: {}", r.text);
        let want = if c == i64::MAX { items.len() } else { 0 };
        assert_eq!(r.body["items"].as_array().unwrap().len(), want, "cursor {c}");
        assert!(r.body["next_cursor"].is_null(), "cursor {c}");
    }

    let st = app.get("/api/v1/wallet/statement", Some(&t)).await;
    assert_eq!(st.status, StatusCode::OK, "{}", st.text);
    assert_eq!(st.body["total_in"], 10_000);
    assert_eq!(st.body["total_out"], 2_500);
    let topup = st.body["lines"].as_array().unwrap().iter().find(|l| l["category"] == "topup").unwrap().clone();
    assert_eq!(topup["in"], 10_000);
    let (y, m) = yizhan_core::time::year_month_cst(yizhan_core::testing::T0_MS);
    let other = app.get(&format!("/api/v1/wallet/statement?year={}&month={}", y - 1, m), Some(&t)).await;
    assert_eq!(other.body["total_in"], 0);
    let bad = app.get("/api/v1/wallet/statement?month=13", Some(&t)).await;
    assert_problem(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(bad.body["fields"][0]["field"], "month");
    transfers(&app).await;
}

#[tokio::test]
async fn bad_amounts_and_currencies_are_named_and_move_nothing() {
    let app = spawn_app().await;
    let (_, t) = funded(&app, "w2@example.org", "Amount", 5_000).await;
    let (_, _other) = app.user("w2b@example.org", "Other").await;
    let before = transfers(&app).await;
    let bad_amounts =
        [json!(-100), json!(0), json!(12.5), json!("100"), json!(1e30), json!(10_000_000_000i64), json!(null)];
    type MakeBody = Box<dyn Fn(Value) -> Value>;
    let routes: [(&str, MakeBody); 4] = [
        ("/api/v1/wallet/topup", Box::new(|a| json!({"amount": a}))),
        ("/api/v1/wallet/withdraw", Box::new(|a| json!({"amount": a}))),
        ("/api/v1/transfers", Box::new(|a| json!({"to": "w2b@example.org", "amount": a}))),
        ("/api/v1/red-packets", Box::new(|a| json!({"count": 1, "to": "w2b@example.org", "amount": a}))),
    ];
    for (path, body) in &routes {
        for a in &bad_amounts {
            let r = app.pay(path, &t, &key(), body(a.clone())).await;
            assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert_eq!(r.body["fields"][0]["field"], "amount", "{path} {a}: {}", r.text);
        }
        let mut b = body(json!(100));
        b["currency"] = json!("USD");
        let r = app.pay(path, &t, &key(), b).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["fields"][0]["field"], "currency", "{path}");
        // No key, or a bad one: refused before anything runs.
        let r = app.post(path, Some(&t), body(json!(100))).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "idempotency_key_required");
        let r = app.pay(path, &t, "has space", body(json!(100))).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let r = app.pay(path, &t, &"x".repeat(65), body(json!(100))).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        // Unknown fields.
        let mut b = body(json!(100));
        b["amount_fen"] = json!(100);
        let r = app.pay(path, &t, &key(), b).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    // Merchant charges and QR payments check amounts too.
    let r = app.pay("/api/v1/qr/pay", &t, &key(), json!({"payload": "x", "amount": -1})).await;
    assert_eq!(r.body["fields"][0]["field"], "amount", "{}", r.text);
    let r = app.pay("/api/v1/merchant/charge", &t, &key(), json!({"org_id": "o", "code": "1", "amount": 0.5})).await;
    assert_eq!(r.body["fields"][0]["field"], "amount", "{}", r.text);
    // Both wrong: both named.
    let r = app.pay("/api/v1/wallet/topup", &t, &key(), json!({"amount": 0, "currency": "EUR"})).await;
    let fields: Vec<&str> = r.body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["amount", "currency"]);

    assert_eq!(transfers(&app).await, before, "nothing moved");
    assert_eq!(balance(&app, &t).await, 5_000);
}

#[tokio::test]
async fn transfers_to_a_login_or_a_qr_payload_and_never_to_yourself() {
    let app = spawn_app().await;
    let (_, a) = funded(&app, "13911110001", "Ann", 10_000).await;
    let (_, b) = app.user("bob@example.org", "Bob").await;
    let r = app
        .pay("/api/v1/transfers", &a, &key(), json!({"to": "bob@example.org", "amount": 1_234, "memo": "lunch"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["payee_name"], "Bob");
    assert_eq!(r.body["payee"]["kind"], "user");
    assert_eq!(r.body["category"], "p2p");
    assert_eq!(balance(&app, &b).await, 1_234);
    // Bob's inbox says so.
    let inbox = app.get("/api/v1/me/notifications", Some(&b)).await;
    assert!(inbox.text.contains("12.34"), "{}", inbox.text);

    // By Bob's QR code.
    let qr = app.get("/api/v1/qr/me", Some(&b)).await;
    assert_eq!(qr.status, StatusCode::OK, "{}", qr.text);
    let payload = qr.body["payload"].as_str().unwrap().to_string();
    assert!(payload.starts_with("000201"));
    assert!(qr.body["svg"].as_str().unwrap().contains("<svg"));
    let r = app.pay("/api/v1/transfers", &a, &key(), json!({"to": payload, "amount": 100})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balance(&app, &b).await, 1_334);

    let before = transfers(&app).await;
    // Yourself, by login or by your own code.
    let r = app.pay("/api/v1/transfers", &a, &key(), json!({"to": "13911110001", "amount": 100})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "self_payment");
    let mine = app.get("/api/v1/qr/me", Some(&a)).await.body["payload"].as_str().unwrap().to_string();
    let r = app.pay("/api/v1/qr/pay", &a, &key(), json!({"payload": mine, "amount": 100})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "self_payment");
    // Nobody, and more than there is.
    let r = app.pay("/api/v1/transfers", &a, &key(), json!({"to": "nobody@example.org", "amount": 100})).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let r = app.pay("/api/v1/transfers", &b, &key(), json!({"to": "13911110001", "amount": 1_335})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(transfers(&app).await, before);
    assert_eq!(balance(&app, &a).await, 10_000 - 1_334);
}

#[tokio::test]
async fn qr_images_previews_fixed_amounts_and_tampered_codes() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, shop) = app.city_and_org(&admin, "QR City", "Noodle Bar", "merchant").await;
    let (cashier_id, cashier) = app.user("cashier@example.org", "Cashier").await;
    app.add_staff(&admin, &shop, &cashier_id, "operator").await;
    let (_, payer) = funded(&app, "payer@example.org", "Payer", 10_000).await;

    let png = app.get("/api/v1/qr/me?format=png", Some(&payer)).await;
    assert_eq!(png.status, StatusCode::OK);
    assert_eq!(png.headers.get("content-type").unwrap(), "image/png");
    let svg = app.get("/api/v1/qr/me?format=svg", Some(&payer)).await;
    assert_eq!(svg.headers.get("content-type").unwrap(), "image/svg+xml");
    assert!(svg.text.contains("<svg"));
    let r = app.get("/api/v1/qr/me?format=gif", Some(&payer)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // Only the shop's staff get its code.
    assert_problem(
        &app.get(&format!("/api/v1/orgs/{shop}/qr"), Some(&payer)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = app.get(&format!("/api/v1/orgs/{shop}/qr?amount=0"), Some(&cashier)).await;
    assert_eq!(r.body["fields"][0]["field"], "amount", "{}", r.text);
    let fixed = app.get(&format!("/api/v1/orgs/{shop}/qr?amount=2500"), Some(&cashier)).await;
    assert_eq!(fixed.status, StatusCode::OK, "{}", fixed.text);
    assert_eq!(fixed.body["amount"], 2_500);
    let fixed = fixed.body["payload"].as_str().unwrap().to_string();

    let p = app.post("/api/v1/qr/preview", Some(&payer), json!({"payload": fixed})).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.body["payee_name"], "Noodle Bar");
    assert_eq!(p.body["payee"], json!({"kind": "org", "id": shop}));
    assert_eq!(p.body["amount"], 2_500);

    let before = transfers(&app).await;
    // The wrong amount for a fixed code.
    let r = app.pay("/api/v1/qr/pay", &payer, &key(), json!({"payload": fixed, "amount": 2_000})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "amount");
    // One character changed (the checksum catches it), a forged payee and a lowered amount (the signature does).
    let mut chars: Vec<char> = fixed.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == '1' { '2' } else { '1' };
    let tampered: String = chars.into_iter().collect();
    let mut cheaper = emvco::parse(&fixed).unwrap();
    cheaper.amount_fen = Some(1);
    let cheaper = emvco::encode(&cheaper);
    let mut forged = emvco::parse(&fixed).unwrap();
    for f in forged.account.fields.iter_mut() {
        if f.0 == 2 {
            f.1 = cashier_id.clone();
        }
        if f.0 == 1 {
            f.1 = "user".into();
        }
    }
    let forged = emvco::encode(&forged);
    for (bad, amount) in [(&tampered, 2_500), (&cheaper, 1), (&forged, 2_500), (&"hello".to_string(), 100)] {
        let r = app.post("/api/v1/qr/preview", Some(&payer), json!({"payload": bad})).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "qr_invalid");
        let r = app.pay("/api/v1/qr/pay", &payer, &key(), json!({"payload": bad, "amount": amount})).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "qr_invalid");
    }
    assert_eq!(transfers(&app).await, before, "nothing moved");

    let r = app.pay("/api/v1/qr/pay", &payer, &key(), json!({"payload": fixed, "amount": 2_500})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["payee_name"], "Noodle Bar");
    assert_eq!(balance(&app, &payer).await, 7_500);
}

#[tokio::test]
async fn pay_codes_are_charged_once_by_the_merchants_staff_only() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, shop) = app.city_and_org(&admin, "Code City", "Bakery", "merchant").await;
    let (_, other_shop) = app.city_and_org(&admin, "Code City", "Butcher", "merchant").await;
    let (cashier_id, cashier) = app.user("baker@example.org", "Baker").await;
    app.add_staff(&admin, &shop, &cashier_id, "operator").await;
    let (_, customer) = funded(&app, "customer@example.org", "Customer", 5_000).await;
    let (_, stranger) = funded(&app, "stranger@example.org", "Stranger", 5_000).await;

    let pc = app.call(Method::POST, "/api/v1/paycodes", Some(&customer), None).await;
    assert_eq!(pc.status, StatusCode::CREATED, "{}", pc.text);
    let code = pc.body["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 18);
    assert_eq!(pc.body["expires_at"].as_i64().unwrap(), yizhan_core::testing::T0_MS + 60_000);
    assert!(pc.body["qr_svg"].as_str().unwrap().contains("<svg"));
    assert!(pc.body["barcode_svg"].as_str().unwrap().contains(&code));

    let before = transfers(&app).await;
    // Someone else's pay code: a resident cannot charge it, nor staff for another shop.
    let r = app
        .pay("/api/v1/merchant/charge", &stranger, &key(), json!({"org_id": shop, "code": code, "amount": 100}))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .pay("/api/v1/merchant/charge", &cashier, &key(), json!({"org_id": other_shop, "code": code, "amount": 100}))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app
        .pay("/api/v1/merchant/charge", &cashier, &key(), json!({"org_id": shop, "code": "12", "amount": 100}))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(transfers(&app).await, before);

    let r = app
        .pay("/api/v1/merchant/charge", &cashier, &key(), json!({"org_id": shop, "code": code, "amount": 1_800}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["payee_name"], "Bakery");
    assert_eq!(balance(&app, &customer).await, 3_200);
    let r = app
        .pay("/api/v1/merchant/charge", &cashier, &key(), json!({"org_id": shop, "code": code, "amount": 1_800}))
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "code_used");

    let pc = app.call(Method::POST, "/api/v1/paycodes", Some(&customer), None).await;
    let code = pc.body["code"].as_str().unwrap().to_string();
    app.clock.advance_ms(61_000);
    let r = app
        .pay("/api/v1/merchant/charge", &cashier, &key(), json!({"org_id": shop, "code": code, "amount": 100}))
        .await;
    assert_problem(&r, StatusCode::GONE, "code_expired");
    assert_eq!(balance(&app, &customer).await, 3_200);
    assert_eq!(balance(&app, &stranger).await, 5_000);
}

#[tokio::test]
async fn a_retry_gets_the_first_answer_and_money_moves_once() {
    let app = spawn_app().await;
    let (_, a) = funded(&app, "idem-a@example.org", "A", 10_000).await;
    let (_, b) = app.user("idem-b@example.org", "B").await;
    let k = key();
    let body = json!({"to": "idem-b@example.org", "amount": 700});
    let first = app.pay("/api/v1/transfers", &a, &k, body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app.pay("/api/v1/transfers", &a, &k, body.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.headers.get("content-type").unwrap(), "application/json");
    assert_eq!(again.body, first.body);
    assert_eq!(balance(&app, &b).await, 700);
    // The payee's notice committed with the money, once, about this transfer.
    let inbox = app.get("/api/v1/me/notifications", Some(&b)).await;
    let items = inbox.body["items"].as_array().unwrap_or_else(|| panic!("{}", inbox.text)).clone();
    let received: Vec<_> = items.iter().filter(|n| n["kind"] == "pay.received").collect();
    assert_eq!(received.len(), 1, "{}", inbox.text);
    let link = received[0]["link"].as_str().unwrap_or_default();
    assert!(link.ends_with(first.body["transfer_id"].as_str().unwrap()), "{}", inbox.text);

    // The same key for another request.
    let r = app.pay("/api/v1/transfers", &a, &k, json!({"to": "idem-b@example.org", "amount": 701})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    let r = app.pay("/api/v1/wallet/withdraw", &a, &k, json!({"to": "idem-b@example.org", "amount": 700})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"); // the body is checked first
    let r = app.pay("/api/v1/wallet/withdraw", &a, &k, json!({"amount": 700})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    // Someone else's use of the same key is theirs.
    let (_, c) = funded(&app, "idem-c@example.org", "C", 1_000).await;
    let r = app.pay("/api/v1/transfers", &c, &k, json!({"to": "idem-b@example.org", "amount": 1})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balance(&app, &b).await, 701);

    // A refusal is an answer too: replayed, in the caller's language.
    let k2 = key();
    let r = app.pay("/api/v1/transfers", &a, &k2, json!({"to": "idem-b@example.org", "amount": 100_000})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("1,000.00 yuan is needed") && !detail.contains("wallet:"), "{detail}");
    let r = app
        .call_with(
            Method::POST,
            "/api/v1/transfers",
            Some(&a),
            Some(json!({"to": "idem-b@example.org", "amount": 100_000})),
            &[("idempotency-key", &k2), ("accept-language", "zh-CN")],
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(r.body["title"], "余额不足");
    assert_eq!(r.headers.get("idempotent-replayed").unwrap(), "true");
    let replayed = r.body["detail"].as_str().unwrap();
    assert!(replayed.contains("需要 1,000.00 元"), "the replay speaks the caller's language: {replayed}");
    assert!(r.body.get("words").is_none() && r.body.get("problem").is_none(), "{}", r.body);
    // A new request in Chinese is told why in Chinese, with the amounts in yuan.
    let r = app
        .call_with(
            Method::POST,
            "/api/v1/transfers",
            Some(&a),
            Some(json!({"to": "idem-b@example.org", "amount": 100_000})),
            &[("idempotency-key", &key()), ("accept-language", "zh-CN")],
        )
        .await;
    assert!(r.body["detail"].as_str().unwrap().contains("需要 1,000.00 元"), "{}", r.body);

    // While the first request with a key still runs, a retry is told to wait.
    let k3 = key();
    let body = json!({"to": "idem-b@example.org", "amount": 5});
    let hash = yizhan_idempotency::request_hash("POST", "/api/v1/transfers", body.to_string().as_bytes());
    let me = app.get("/api/v1/me", Some(&a)).await.body["user_id"].as_str().unwrap().to_string();
    let yizhan_idempotency::Begin::Fresh(lease) = app.state.idempotency.begin(&me, &k3, &hash).await.unwrap() else {
        panic!("the key is new")
    };
    let r = app.pay("/api/v1/transfers", &a, &k3, body.clone()).await;
    assert_problem(&r, StatusCode::CONFLICT, "idempotency_in_progress");
    // It died without an answer: once released, the retry runs (once).
    assert!(app.state.idempotency.release(&me, &k3, &lease).await.unwrap());
    assert_eq!(app.pay("/api/v1/transfers", &a, &k3, body.clone()).await.status, StatusCode::CREATED);
    assert_eq!(app.pay("/api/v1/transfers", &a, &k3, body).await.status, StatusCode::CREATED);
    assert_eq!(balance(&app, &b).await, 706);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_at_once_runs_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (_, a) = funded(&app, "race-a@example.org", "A", 10_000).await;
    let (_, b) = app.user("race-b@example.org", "B").await;
    for round in 0..3 {
        let k = format!("race-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (app, a, k) = (app.clone(), a.clone(), k.clone());
                tokio::spawn(async move {
                    app.pay("/api/v1/transfers", &a, &k, json!({"to": "race-b@example.org", "amount": 100})).await
                })
            })
            .collect();
        let results: Vec<Resp> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
        let ok: Vec<&Resp> = results.iter().filter(|r| r.status == StatusCode::CREATED).collect();
        assert!(!ok.is_empty());
        assert!(ok.iter().all(|r| r.body == ok[0].body), "every success is the same answer");
        for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
            assert_problem(r, StatusCode::CONFLICT, "idempotency_in_progress");
        }
        assert_eq!(balance(&app, &b).await, 100 * (round + 1), "round {round}");
    }
    // Money routes without a body race the same way.
    let (_, admin) = app.admin().await;
    let (_, water) = app.city_and_org(&admin, "Race City", "Water Co", "city_department").await;
    let bill = issue_bill_to(&app, &admin, &water, &a, 300).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (app, a, path) = (app.clone(), a.clone(), format!("/api/v1/bills/{bill}/pay"));
            tokio::spawn(async move { app.pay(&path, &a, "bill-race", json!({})).await.status })
        })
        .collect();
    let statuses: Vec<StatusCode> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
    assert_eq!(balance(&app, &a).await, 10_000 - 300 - 300);
    transfers(&app).await;
}

/// Verify the person's real name and bill them through the API; returns the bill id.
pub(crate) async fn issue_bill_to(app: &TestApp, admin: &str, org: &str, person: &str, fen: i64) -> String {
    let me = app.get("/api/v1/me", Some(person)).await.body;
    let number = number_for(me["login"].as_str().unwrap());
    verify(app, person).await;
    let due = app_now(app) + 7 * 86_400_000;
    let r = app
        .pay(
            &format!("/api/v1/orgs/{org}/bills"),
            admin,
            &key(),
            json!({"id_number": number, "kind": "water", "amount": fen, "due_at": due, "description": "Water, November"}),
        )
        .await;
    if r.status == StatusCode::NOT_FOUND {
        panic!("person not verified with this number: {}", r.text);
    }
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

fn app_now(app: &TestApp) -> i64 {
    use yizhan_core::Clock;
    app.clock.now_ms()
}

#[tokio::test]
async fn bills_by_identity_number_and_plate_paid_once_and_staff_reads_are_logged() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, police) = app.city_and_org(&admin, "Bill City", "Traffic Police", "city_department").await;
    let (_, shop) = app.city_and_org(&admin, "Bill City", "Corner Shop", "merchant").await;
    let (officer_id, officer) = app.user("officer@example.org", "Officer Zhang").await;
    app.add_staff(&admin, &police, &officer_id, "operator").await;
    let (driver_id, driver) = funded(&app, "driver@example.org", "Driver", 0).await;

    let number = id_number("11010519491231002");
    let r = app.post("/api/v1/me/real-name", Some(&driver), json!({"name": "Driver", "id_number": number})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.pay("/api/v1/wallet/topup", &driver, &key(), json!({"amount": 50_000})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The plate is bound in the identity room, with its registration certificate.
    let cert = yizhan_identity::verifier::sandbox::VALID_CERTIFICATE;
    let r = app.post("/api/v1/me/vehicles", Some(&driver), json!({"plate": "浙a·12345", "certificate": cert})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["plate"], "浙A12345");
    let r = app.post("/api/v1/me/vehicles", Some(&driver), json!({"plate": "ABC", "certificate": cert})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    let due = app_now(&app) + 86_400_000;
    let fine = app
        .pay(
            &format!("/api/v1/orgs/{police}/bills"),
            &officer,
            &key(),
            json!({"plate": "浙A12345", "kind": "fine", "amount": 20_000, "due_at": due, "description": "Speeding on Tianmushan Rd"}),
        )
        .await;
    assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.text);
    assert_eq!(fine.body["plate"], "浙A12345");
    let fine_id = fine.body["id"].as_str().unwrap().to_string();
    let fee = app
        .pay(
            &format!("/api/v1/orgs/{police}/bills"),
            &officer,
            &key(),
            json!({"id_number": number, "kind": "fee", "amount": 1_000, "due_at": due, "description": "Licence renewal"}),
        )
        .await;
    assert_eq!(fee.status, StatusCode::CREATED, "{}", fee.text);
    // Bad bills: neither or both targets, bad amount, a past due time, a merchant's fine, a resident issuing.
    let base = json!({"kind": "fee", "amount": 100, "due_at": due, "description": "x"});
    let mut both = base.clone();
    both["plate"] = json!("浙A12345");
    both["id_number"] = json!(number);
    for (body, field) in [(base.clone(), "id_number"), (both, "id_number")] {
        let r = app.pay(&format!("/api/v1/orgs/{police}/bills"), &officer, &key(), body).await;
        assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["fields"][0]["field"], field);
    }
    let mut past = base.clone();
    past["plate"] = json!("浙A12345");
    past["due_at"] = json!(app_now(&app) - 1);
    let r = app.pay(&format!("/api/v1/orgs/{police}/bills"), &officer, &key(), past.clone()).await;
    assert_eq!(r.body["fields"][0]["field"], "due_at", "{}", r.text);
    let mut merchant_fine = past.clone();
    merchant_fine["due_at"] = json!(due);
    merchant_fine["kind"] = json!("fine");
    let r = app.pay(&format!("/api/v1/orgs/{shop}/bills"), &admin, &key(), merchant_fine.clone()).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.pay(&format!("/api/v1/orgs/{police}/bills"), &driver, &key(), merchant_fine).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");

    let list = app.get("/api/v1/bills", Some(&driver)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    assert!(list.body.as_array().unwrap().iter().all(|b| b["status"] == "unpaid" && b["late"] == false));

    // Someone else cannot pay (or see) the driver's bill.
    let (_, other) = funded(&app, "other@example.org", "Other", 50_000).await;
    let r = app.pay(&format!("/api/v1/bills/{fine_id}/pay"), &other, &key(), json!({})).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");

    // Two days later: late, then paid late.
    app.clock.advance_ms(2 * 86_400_000);
    let list = app.get("/api/v1/bills", Some(&driver)).await;
    assert!(list.body.as_array().unwrap().iter().all(|b| b["late"] == true));
    let k = key();
    let r = app.pay(&format!("/api/v1/bills/{fine_id}/pay"), &driver, &k, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["amount"], 20_000);
    assert_eq!(r.body["late"], true);
    assert_eq!(r.body["payee_org_name"], "Traffic Police");
    let again = app.pay(&format!("/api/v1/bills/{fine_id}/pay"), &driver, &k, json!({})).await;
    assert_eq!(again.body, r.body);
    let r = app.pay(&format!("/api/v1/bills/{fine_id}/pay"), &driver, &key(), json!({})).await;
    assert_problem(&r, StatusCode::CONFLICT, "already_paid");
    assert_eq!(balance(&app, &driver).await, 30_000);
    assert_eq!(balance(&app, &other).await, 50_000);

    // Staff read the driver's bills: with a reason, and it shows in the driver's access log.
    let path = format!("/api/v1/orgs/{police}/residents/{driver_id}/bills");
    let r = app.get(&path, Some(&officer)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "reason");
    let r = app.get(&format!("/api/v1/orgs/{shop}/residents/{driver_id}/bills?reason=curious"), Some(&officer)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.get(&format!("{path}?reason=unpaid%20fine%20follow-up"), Some(&officer)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let log = app.get("/api/v1/me/access-log", Some(&driver)).await;
    let entries = log.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", log.text);
    assert_eq!(entries[0]["what"], "bills");
    assert_eq!(entries[0]["why"], "unpaid fine follow-up");
    assert_eq!(entries[0]["actor_user_id"], officer_id.as_str());
    assert_eq!(log.body["chain_ok"], true);
    transfers(&app).await;
}

#[tokio::test]
async fn red_packets_for_a_group_and_for_one_person() {
    let app = spawn_app().await;
    let (_, sender) = funded(&app, "sender@example.org", "Sender", 10_000).await;
    let mut claimers = Vec::new();
    for i in 0..4 {
        claimers.push(app.user(&format!("claimer{i}@example.org"), &format!("Claimer {i}")).await.1);
    }
    let r = app
        .pay(
            "/api/v1/red-packets",
            &sender,
            &key(),
            json!({"count": 3, "amount": 900, "mode": "lucky", "greeting": "恭喜发财"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["mine"], true);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(balance(&app, &sender).await, 9_100);

    let mut got = 0;
    for c in &claimers[..3] {
        let r = app.pay(&format!("/api/v1/red-packets/{id}/claim"), c, &key(), json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let share = r.body["amount"].as_i64().unwrap();
        assert!(share >= 1);
        assert_eq!(balance(&app, c).await, share);
        got += share;
    }
    assert_eq!(got, 900);
    let r = app.pay(&format!("/api/v1/red-packets/{id}/claim"), &claimers[3], &key(), json!({})).await;
    assert_problem(&r, StatusCode::GONE, "packet_empty");
    let r = app.pay(&format!("/api/v1/red-packets/{id}/claim"), &claimers[0], &key(), json!({})).await;
    assert_problem(&r, StatusCode::CONFLICT, "already_claimed");
    let view = app.get(&format!("/api/v1/red-packets/{id}"), Some(&claimers[1])).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text);
    assert_eq!(view.body["claimed_count"], 3);
    assert_eq!(view.body["sender_name"], "Sender");
    assert!(view.body["my_share"].as_i64().is_some());
    assert_eq!(view.body["claims"].as_array().unwrap().len(), 3);

    // One person's packet: only they may open (or see) it.
    let r = app.pay("/api/v1/red-packets", &sender, &key(), json!({"to": "claimer3@example.org", "amount": 888})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["personal"], true);
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = app.pay(&format!("/api/v1/red-packets/{id}/claim"), &claimers[0], &key(), json!({})).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_problem(
        &app.get(&format!("/api/v1/red-packets/{id}"), Some(&claimers[0])).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = app.pay(&format!("/api/v1/red-packets/{id}/claim"), &claimers[3], &key(), json!({})).await;
    assert_eq!(r.body["amount"], 888, "{}", r.text);

    // Bad packets move nothing.
    let before = transfers(&app).await;
    let r = app.pay("/api/v1/red-packets", &sender, &key(), json!({"to": "sender@example.org", "amount": 100})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "self_payment");
    let r = app.pay("/api/v1/red-packets", &sender, &key(), json!({"count": 3, "amount": 100, "mode": "fixed"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = app.pay("/api/v1/red-packets", &sender, &key(), json!({"count": 2, "amount": 100, "mode": "greedy"})).await;
    assert_eq!(r.body["fields"][0]["field"], "mode", "{}", r.text);
    let r = app.pay("/api/v1/red-packets", &sender, &key(), json!({"count": 2, "amount": 100_000})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds");
    assert_eq!(transfers(&app).await, before);
    assert_eq!(balance(&app, &sender).await, 10_000 - 900 - 888);
    let r = app.get("/api/v1/red-packets/nope", Some(&sender)).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_gateway_webhook_is_signed_and_credits_a_lost_top_up_once() {
    let app = spawn_app().await;
    let (uid, t) = app.user("hook@example.org", "Hook").await;
    let n = yizhan_pay::Notification {
        id: "evt_1".into(),
        kind: "charge.succeeded".into(),
        reference: format!("user:{uid}:topup:lost-answer"),
        amount_fen: 4_200,
        gateway_ref: "sandbox_ch_99".into(),
    };
    let (body, _) = app.gateway.notification(&n).unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    // Signed as sent (the test client writes the JSON again, keys sorted).
    let sig = app.gateway.sign(body.to_string().as_bytes());
    let send = |sig: String| {
        let body = body.clone();
        let app = &app;
        async move {
            app.call_with(
                Method::POST,
                "/api/v1/gateway/sandbox/notify",
                None,
                Some(body),
                &[("x-sandbox-signature", &sig)],
            )
            .await
        }
    };
    let r = send("00".repeat(32)).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = app.post("/api/v1/gateway/sandbox/notify", None, body.clone()).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(balance(&app, &t).await, 0);

    let r = send(sig.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["duplicate"], false);
    assert_eq!(balance(&app, &t).await, 4_200);
    let r = send(sig).await;
    assert_eq!(r.body["duplicate"], true);
    assert_eq!(balance(&app, &t).await, 4_200);
    // The top-up itself, retried with the key whose answer was lost, credits nothing more.
    let r = app.pay("/api/v1/wallet/topup", &t, "lost-answer", json!({"amount": 4_200})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balance(&app, &t).await, 4_200);
    transfers(&app).await;
}

// ---- the pages ----

pub(crate) mod pages {
    use super::*;
    use crate::common::{cookie_of, form, page};

    /// A browser logged in as `login`: its cookie header and CSRF token.
    pub(crate) async fn browser(app: &TestApp, login: &str) -> (String, String) {
        let first = page(app, "/login", "", "en").await;
        let csrf = cookie_of(&first, "yz_csrf").unwrap();
        let body = format!("csrf={csrf}&login={}&password=correct+horse", urlencode(login));
        let r = form(app, "/login", &format!("yz_csrf={csrf}"), &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let session = cookie_of(&r, "yz_session").unwrap();
        let cookies = format!("yz_csrf={csrf}; yz_session={session}");
        // Logged in, the token is bound to the session: the pages carry it.
        let csrf = yizhan_app::testing::session_csrf(app, &cookies).await;
        (cookies, csrf)
    }

    pub(crate) fn urlencode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// The value of the first hidden `name` field in a page.
    pub(crate) fn hidden(html: &str, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_string()
    }

    pub(crate) fn assert_no_inline_code(html: &str) {
        assert!(!html.contains("style="), "inline style");
        assert!(!html.contains("<style"), "inline style");
        assert_eq!(html.matches("<script").count(), html.matches("<script src=").count(), "inline script");
    }

    #[tokio::test]
    async fn the_wallet_page_tops_up_once_per_form_and_shows_the_qr_code() {
        let app = spawn_app().await;
        let (_, t) = app.user("page-w@example.org", "Page W").await;
        // Withdrawing needs a verified name.
        verify(&app, &t).await;
        let (cookies, csrf) = browser(&app, "page-w@example.org").await;

        let w = page(&app, "/wallet", &cookies, "en").await;
        assert_eq!(w.status, StatusCode::OK, "{}", w.text);
        assert!(w.text.contains("id=\"balance\">¥0.00"), "{}", w.text);
        assert!(w.text.contains("id=\"my-qr\"") && w.text.contains("<svg"), "the QR code is inline");
        assert!(!w.text.contains("<?xml"));
        assert_no_inline_code(&w.text);
        let key = hidden(&w.text, "idem");
        assert!(key.starts_with("web-"));

        let body = format!("csrf={csrf}&idem={key}&amount=12.50&card=");
        let r = form(&app, "/wallet/topup", &cookies, &body).await;
        // Post/redirect/get: the answer is the transfer's page, which says what happened.
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let done = r.headers.get("location").unwrap().to_str().unwrap().to_string();
        assert!(done.starts_with("/wallet/history/") && done.ends_with("?done=1"), "{done}");
        let d = page(&app, &done, &cookies, "en").await;
        assert_eq!(d.status, StatusCode::OK, "{}", d.text);
        assert!(d.text.contains("Topped up ¥12.50") && d.text.contains("id=\"transfer-amount\">+12.50"), "{}", d.text);
        let w2 = page(&app, "/wallet", &cookies, "en").await;
        assert!(w2.text.contains("id=\"balance\">¥12.50"));
        assert_ne!(hidden(&w2.text, "idem"), key, "the next form has a new key");
        // The same form sent twice (a double tap): once, and the same page.
        let r = form(&app, "/wallet/topup", &cookies, &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.headers.get("location").unwrap().to_str().unwrap(), done);
        assert_eq!(balance(&app, &t).await, 1_250);

        // Bad amounts name the problem and move nothing.
        for bad in ["0", "-5", "abc", "1.234", ""] {
            let body = format!("csrf={csrf}&idem={}&amount={}", key.replace("web-", "web-x"), urlencode(bad));
            let r = form(&app, "/wallet/topup", &cookies, &body).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.text);
            assert!(r.text.contains("class=\"flash error\""), "{bad}");
        }
        assert_eq!(balance(&app, &t).await, 1_250);

        // Withdraw, declined card: shown, nothing moves.
        let w = page(&app, "/wallet", &cookies, "en").await;
        let wkey = hidden(&w.text[w.text.find("/wallet/withdraw").unwrap()..], "idem");
        let body = format!("csrf={csrf}&idem={wkey}&amount=2&card=4000000000000069");
        // First the confirmation: the card masked, the amount, the fee; nothing moved.
        let r = form(&app, "/wallet/withdraw", &cookies, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("id=\"check-payee\">Bank card •••• 0069<") && r.text.contains("¥2.00"), "{}", r.text);
        assert_eq!(balance(&app, &t).await, 1_250);
        let r = form(&app, "/wallet/withdraw", &cookies, &format!("{body}&confirm=1")).await;
        assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.text);
        assert!(r.text.contains("The payment was declined"));
        let body = format!("csrf={csrf}&idem={wkey}-2&amount=2.50&confirm=1");
        let r = form(&app, "/wallet/withdraw", &cookies, &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let done = r.headers.get("location").unwrap().to_str().unwrap().to_string();
        let d = page(&app, &done, &cookies, "en").await;
        assert!(d.text.contains("Withdrawn ¥2.50") && d.text.contains("data-status=\"done\""), "{}", d.text);
        assert_eq!(balance(&app, &t).await, 1_000);

        // In Chinese.
        let w = page(&app, "/wallet", &cookies, "zh-CN").await;
        assert!(w.text.contains("钱包") && w.text.contains("我的收款码"), "{}", w.text);
    }

    #[tokio::test]
    async fn wallet_forms_without_the_csrf_token_move_nothing() {
        let app = spawn_app().await;
        let (_, t) = funded(&app, "csrf-w@example.org", "Csrf", 5_000).await;
        app.user("csrf-b@example.org", "B").await;
        let (cookies, _) = browser(&app, "csrf-w@example.org").await;
        let session_only: String = cookies.split("; ").filter(|c| c.starts_with("yz_session")).collect();
        for (path, body) in [
            ("/wallet/topup", "idem=web-1&amount=10"),
            ("/wallet/withdraw", "idem=web-2&amount=10"),
            ("/wallet/send", "idem=web-3&to=csrf-b%40example.org&amount=10"),
            ("/wallet/pay", "idem=web-4&payload=x&amount=10"),
            ("/red-packets", "idem=web-5&amount=10&count=1"),
        ] {
            let r = form(&app, path, &cookies, body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} without the token");
            let r = form(&app, path, &cookies, &format!("csrf=wrong&{body}")).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} with a wrong token");
            let r = form(&app, path, &session_only, &format!("csrf=x&{body}")).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} without the cookie");
        }
        assert_eq!(balance(&app, &t).await, 5_000);
        assert_eq!(transfers(&app).await, 1);
    }

    #[tokio::test]
    async fn send_pay_by_code_history_and_statement_pages() {
        let app = spawn_app().await;
        let (_, a) = funded(&app, "page-a@example.org", "Page A", 10_000).await;
        let (_, b) = app.user("page-b@example.org", "Page B").await;
        let (cookies, csrf) = browser(&app, "page-a@example.org").await;

        let s = page(&app, "/wallet/send", &cookies, "en").await;
        let key = hidden(&s.text, "idem");
        let body = format!("csrf={csrf}&idem={key}&to=page-b%40example.org&amount=3.21&memo=tea");
        // First the confirmation: the payee's name masked, the amount, the fee; nothing moved.
        let r = form(&app, "/wallet/send", &cookies, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("id=\"check-payee\">***B</strong>"), "{}", r.text);
        assert!(r.text.contains("id=\"check-amount\">¥3.21") && r.text.contains("p***@example.org"), "{}", r.text);
        assert!(!r.text.contains("name=\"pin\""), "no PIN set, none asked");
        assert_eq!(balance(&app, &b).await, 0);
        let body = format!("{body}&confirm=1");
        let r = form(&app, "/wallet/send", &cookies, &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let done = r.headers.get("location").unwrap().to_str().unwrap().to_string();
        let d = page(&app, &done, &cookies, "en").await;
        assert!(d.text.contains("id=\"receipt\"") && d.text.contains("id=\"receipt-payee\">***B<"), "{}", d.text);
        assert!(d.text.contains("Sent ¥3.21") && d.text.contains("id=\"transfer-memo\">tea<"), "{}", d.text);
        let again = form(&app, "/wallet/send", &cookies, &body).await;
        assert_eq!(again.headers.get("location").unwrap().to_str().unwrap(), done, "a resubmit pays once");
        assert_eq!(balance(&app, &b).await, 321);
        let r = form(
            &app,
            "/wallet/send",
            &cookies,
            &format!("csrf={csrf}&idem=web-self&to=page-a%40example.org&amount=1"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text.contains("You cannot pay yourself"), "{}", r.text);

        // Pay B by B's code: preview shows B's name, then pay.
        let payload = app.get("/api/v1/qr/me", Some(&b)).await.body["payload"].as_str().unwrap().to_string();
        let r =
            form(&app, "/wallet/pay/preview", &cookies, &format!("csrf={csrf}&payload={}", urlencode(&payload))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        // The person's name is masked on the preview, as for a payment by login.
        assert!(r.text.contains("id=\"payee-name\">***B<") && !r.text.contains("Page B"), "{}", r.text);
        let key = hidden(&r.text, "idem");
        let body = format!("csrf={csrf}&idem={key}&payload={}&amount=1", urlencode(&payload));
        let r = form(&app, "/wallet/pay", &cookies, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.text.contains("id=\"check-payee\">***B<") && r.text.contains("id=\"check-amount\">¥1.00"),
            "{}",
            r.text
        );
        assert_eq!(balance(&app, &b).await, 321, "nothing moved before confirming");
        let body = format!("{body}&confirm=1");
        let r = form(&app, "/wallet/pay", &cookies, &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let done = r.headers.get("location").unwrap().to_str().unwrap().to_string();
        let d = page(&app, &done, &cookies, "en").await;
        assert!(d.text.contains("id=\"receipt-payee\">***B<") && d.text.contains("Paid ¥1.00"), "{}", d.text);
        form(&app, "/wallet/pay", &cookies, &body).await;
        assert_eq!(balance(&app, &b).await, 421);
        let r = form(&app, "/wallet/pay/preview", &cookies, &format!("csrf={csrf}&payload=000201garbage")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text.contains("The QR code is not valid"));
        let p = page(&app, "/wallet/pay", &cookies, "en").await;
        assert!(
            p.text.contains("id=\"scan\" data-scan=\"payload\" data-scan-video=\"scan-video\" data-scan-submit data-decoder=\"/wallet/static/jsqr-1.4.0.js\" hidden"),
            "the camera button waits for JavaScript"
        );

        let h = page(&app, "/wallet/history", &cookies, "en").await;
        assert_eq!(h.status, StatusCode::OK);
        assert!(h.text.contains("Page B") && h.text.contains("-3.21") && h.text.contains("+100.00"), "{}", h.text);
        assert!(h.text.contains("Bank card (test)") && !h.text.contains("sandbox"), "{}", h.text);
        let h = page(&app, "/wallet/history", &cookies, "zh-CN").await;
        assert!(h.text.contains("银行卡（测试）") && h.text.contains("充值"), "{}", h.text);
        for c in [i64::MAX, i64::MIN, -1, 0] {
            let h = page(&app, &format!("/wallet/history?cursor={c}"), &cookies, "en").await;
            assert_eq!(h.status, StatusCode::OK, "cursor {c}");
            assert_eq!(h.text.contains("Page B"), c == i64::MAX, "cursor {c}");
        }
        let st = page(&app, "/wallet/statement", &cookies, "en").await;
        assert_eq!(st.status, StatusCode::OK, "{}", st.text);
        assert!(st.text.contains("id=\"statement-chart\"") && st.text.contains("class=\"bar-in\""), "{}", st.text);
        assert!(st.text.contains("Top-ups") && st.text.contains("QR payments"), "{}", st.text);
        assert_no_inline_code(&st.text);
        let st = page(&app, "/wallet/statement?year=2001&month=1", &cookies, "zh-CN").await;
        assert!(st.text.contains("本月没有收支"), "{}", st.text);

        let pc = page(&app, "/wallet/paycode", &cookies, "en").await;
        assert_eq!(pc.status, StatusCode::OK, "{}", pc.text);
        let start = pc.text.find("id=\"paycode-digits\">").unwrap() + "id=\"paycode-digits\">".len();
        let digits = &pc.text[start..start + 18];
        assert!(digits.bytes().all(|c| c.is_ascii_digit()), "{digits}");
        assert!(pc.text.contains("paycode-barcode") && pc.text.contains("data-expires-in=\"60\""));
        assert!(pc.text.contains("(<span id=\"paycode-ttl\">60</span> s)"), "{}", pc.text);
        let pc = page(&app, "/wallet/paycode", &cookies, "zh-CN").await;
        assert!(pc.text.contains("（<span id=\"paycode-ttl\">60</span> 秒）"), "{}", pc.text);
        let _ = a;
    }

    #[tokio::test]
    async fn red_packet_and_bill_pages() {
        let app = spawn_app().await;
        let (_, admin) = app.admin().await;
        let (city, water) = app.city_and_org(&admin, "Page City", "Page Water", "city_department").await;
        let (_, a) = funded(&app, "packet-a@example.org", "Packet A", 10_000).await;
        let (_, b) = app.user("packet-b@example.org", "Packet B").await;
        let (ca, csrf_a) = browser(&app, "packet-a@example.org").await;
        let (cb, csrf_b) = browser(&app, "packet-b@example.org").await;

        let r = form(
            &app,
            "/red-packets",
            &ca,
            &format!("csrf={csrf_a}&idem=web-rp1&to=&count=2&mode=fixed&amount=2&greeting=Hi"),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let link = r.headers.get("location").unwrap().to_str().unwrap().to_string();
        let again = form(
            &app,
            "/red-packets",
            &ca,
            &format!("csrf={csrf_a}&idem=web-rp1&to=&count=2&mode=fixed&amount=2&greeting=Hi"),
        )
        .await;
        assert_eq!(again.headers.get("location").unwrap().to_str().unwrap(), link, "a double submit makes one packet");
        assert_eq!(balance(&app, &a).await, 9_800);
        let id = link.rsplit('/').next().unwrap();
        let opened =
            page(&app, &format!("/red-packets/open?id=http%3A%2F%2Fhost{}", urlencode(&link)), &cb, "en").await;
        assert_eq!(opened.headers.get("location").unwrap().to_str().unwrap(), link);
        let p = page(&app, &link, &cb, "en").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert!(p.text.contains("id=\"claim\""));
        let r = form(&app, &format!("/red-packets/{id}/claim"), &cb, &format!("csrf={csrf_b}&idem=web-c1")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let opened = r.headers.get("location").unwrap().to_str().unwrap().to_string();
        assert_eq!(opened, format!("{link}?opened=1"));
        let r = page(&app, &opened, &cb, "en").await;
        assert!(r.text.contains("You got ¥1.00") && r.text.contains("id=\"my-share\""), "{}", r.text);
        assert!(!r.text.contains("id=\"claim\""));
        let r = form(&app, &format!("/red-packets/{id}/claim"), &cb, &format!("csrf={csrf_b}&idem=web-c1")).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(balance(&app, &b).await, 100);

        // A bill, late, paid once from the page.
        let r = app.call(Method::PUT, "/api/v1/me/city", Some(&b), Some(json!({"city_id": city}))).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        let home = page(&app, "/home", &cb, "en").await;
        assert!(home.text.contains("data-service=\"wallet\""), "the city offers the wallet");
        let bill = issue_bill_to(&app, &admin, &water, &b, 50).await;
        app.clock.advance_ms(8 * 86_400_000);
        // Sessions last a week: log in again.
        let b = app.login("packet-b@example.org").await;
        let (cb, csrf_b) = browser(&app, "packet-b@example.org").await;
        let page_b = page(&app, "/bills", &cb, "en").await;
        assert!(page_b.text.contains("is-late") && page_b.text.contains("Late"), "{}", page_b.text);
        let key = hidden(&page_b.text, "idem");
        let body = format!("csrf={csrf_b}&idem={key}");
        let r = form(&app, &format!("/bills/{bill}/pay"), &cb, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("id=\"check-payee\">Page Water<") && r.text.contains("¥0.50"), "{}", r.text);
        assert_eq!(balance(&app, &b).await, 100, "nothing moved before confirming");
        let body = format!("{body}&confirm=1");
        let r = form(&app, &format!("/bills/{bill}/pay"), &cb, &body).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        let done = r.headers.get("location").unwrap().to_str().unwrap().to_string();
        let d = page(&app, &done, &cb, "en").await;
        assert!(d.text.contains("id=\"receipt\"") && d.text.contains("Page Water"), "{}", d.text);
        let r = form(&app, &format!("/bills/{bill}/pay"), &cb, &body).await;
        assert_eq!(r.headers.get("location").unwrap().to_str().unwrap(), done, "the same form again: the same page");
        assert_eq!(balance(&app, &b).await, 50);
        let zh = page(&app, "/bills", &cb, "zh-CN").await;
        assert!(zh.text.contains("账单与罚款") && zh.text.contains("已缴纳"), "{}", zh.text);
    }
}

#[tokio::test]
async fn a_server_error_or_a_panic_is_not_stored_so_a_retry_runs_again() {
    use axum::response::IntoResponse;
    use yizhan_idempotency::Begin;
    let app = spawn_app().await;
    let s = &app.state;
    let r = yizhan_kit::idem::run(&s.idempotency, "u1", "k500", "h", async {
        (StatusCode::BAD_GATEWAY, "upstream").into_response()
    })
    .await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(matches!(s.idempotency.begin("u1", "k500", "h").await.unwrap(), Begin::Fresh(_)), "released");

    let r = yizhan_kit::idem::run(&s.idempotency, "u1", "kpanic", "h", async {
        if KEYS.load(Ordering::SeqCst) < usize::MAX {
            panic!("handler bug");
        }
        StatusCode::OK
    })
    .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(matches!(s.idempotency.begin("u1", "kpanic", "h").await.unwrap(), Begin::Fresh(_)), "released");

    // "Try again" answers (409, 429) are not stored either: the retry runs.
    let r = yizhan_kit::idem::run(&s.idempotency, "u1", "k409", "h", async { StatusCode::CONFLICT }).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let again = yizhan_kit::idem::run(&s.idempotency, "u1", "k409", "h", async { StatusCode::OK }).await;
    assert_eq!(again.status(), StatusCode::OK);

    // Any other 4xx is an answer: stored and replayed.
    let r = yizhan_kit::idem::run(&s.idempotency, "u1", "k422", "h", async { StatusCode::UNPROCESSABLE_ENTITY }).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = yizhan_kit::idem::run(&s.idempotency, "u1", "k422", "h", async { StatusCode::OK }).await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
}

#[tokio::test]
async fn support_reads_of_transactions_need_a_reason_and_are_logged() {
    let app = spawn_app().await;
    let (person_id, person) = funded(&app, "support-subject@example.org", "Subject", 5_000).await;
    let (_, admin) = app.admin().await;
    let path = format!("/api/v1/admin/users/{person_id}/transactions");
    // A resident, even the person, is not support.
    assert_problem(&app.get(&format!("{path}?reason=x"), Some(&person)).await, StatusCode::FORBIDDEN, "forbidden");
    let r = app.get(&path, Some(&admin)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "reason");
    let before = app.get("/api/v1/me/access-log", Some(&person)).await.body["entries"].as_array().unwrap().len();
    assert_eq!(before, 0);
    let r = app.get(&format!("{path}?reason=disputed%20top-up"), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.body["items"].as_array().unwrap().is_empty());
    for c in [i64::MAX, i64::MIN] {
        let r = app.get(&format!("{path}?reason=disputed%20top-up&cursor={c}"), Some(&admin)).await;
        assert_eq!(r.status, StatusCode::OK, "cursor {c}: {}", r.text);
        assert!(r.body["next_cursor"].is_null(), "cursor {c}");
    }
    let log = app.get("/api/v1/me/access-log", Some(&person)).await;
    let entries = log.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "each read is logged");
    assert_eq!(entries[0]["what"], "transactions");
    assert_eq!(entries[0]["why"], "disputed top-up");
    assert_eq!(log.body["chain_ok"], true);
    // On the person's page, who read it is named in their language.
    let cookies = format!("yz_session={person}");
    let zh = page(&app, "/access-log", &cookies, "zh-CN").await;
    assert!(zh.text.contains("一站平台客服") && !zh.text.contains("platform_support"), "{}", zh.text);
    let en = page(&app, "/access-log", &cookies, "en").await;
    assert!(en.text.contains("yizhan platform support"), "{}", en.text);
}

#[tokio::test]
async fn export_holds_the_money_records_and_deletion_waits_for_an_empty_wallet() {
    let app = spawn_app().await;
    // ¥30 is within an unverified account's limits; the person verifies with their own number below.
    let (user_id, t) = app.user("leaver@example.org", "Leaver").await;
    let r = app.pay("/api/v1/wallet/topup", &t, &key(), json!({"amount": 3_000})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let number = id_number("33010619900307123");
    let r = app.post("/api/v1/me/real-name", Some(&t), json!({"name": "Leaver", "id_number": number})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let cert = yizhan_identity::verifier::sandbox::VALID_CERTIFICATE;
    let r = app.post("/api/v1/me/vehicles", Some(&t), json!({"plate": "浙A12345", "certificate": cert})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let export = app.get("/api/v1/me/export", Some(&t)).await;
    let payments = &export.body["sections"]["payments"];
    assert_eq!(payments["retained_after_deletion"], true);
    assert_eq!(payments["data"]["wallet"]["balance_fen"], 3_000);
    assert_eq!(payments["data"]["transactions"].as_array().unwrap().len(), 1);
    // Plates are the identity room's now, and erased with the account.
    assert_eq!(export.body["sections"]["profile"]["data"]["vehicles"][0]["plate"], "浙A12345");
    assert_eq!(payments["data"].get("vehicles"), None);

    // Money in the wallet: refused, and nothing is erased.
    let r = app.call(Method::DELETE, "/api/v1/me", Some(&t), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "conflict");
    assert_eq!(app.get("/api/v1/me", Some(&t)).await.status, StatusCode::OK);

    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 3_000})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.call(Method::DELETE, "/api/v1/me", Some(&t), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["vehicles_removed"], 1);
    // The money records stay, and the books still balance.
    let kept = app.state.pay.history(&user_id, None).await.unwrap().items;
    assert!(kept.iter().any(|l| l.category == "topup") && kept.iter().any(|l| l.category == "withdrawal"), "{kept:?}");
    assert!(app.state.identity.vehicles(&user_id).await.unwrap().is_empty());
    transfers(&app).await;
}

#[tokio::test]
async fn two_tills_sending_the_same_key_for_two_codes_charge_both() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, shop) = app.city_and_org(&admin, "Till City", "Noodles", "merchant").await;
    let mut tills = Vec::new();
    for i in 0..2 {
        let (id, token) = app.user(&format!("till{i}@example.org"), &format!("Till {i}")).await;
        app.add_staff(&admin, &shop, &id, "operator").await;
        tills.push(token);
    }
    let (_, customer) = funded(&app, "noodle-eater@example.org", "Eater", 5_000).await;
    for till in &tills {
        let pc = app.call(Method::POST, "/api/v1/paycodes", Some(&customer), None).await;
        let code = pc.body["code"].as_str().unwrap().to_string();
        // Each till counts its own keys from 1: the same key, another code.
        let r =
            app.pay("/api/v1/merchant/charge", till, "1", json!({"org_id": shop, "code": code, "amount": 800})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    assert_eq!(balance(&app, &customer).await, 5_000 - 2 * 800, "both codes moved money");
    transfers(&app).await;
}

#[tokio::test]
async fn a_retried_bill_is_issued_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, water) = app.city_and_org(&admin, "Retry City", "Retry Water", "city_department").await;
    let (_, person) = app.user("billed@example.org", "Billed").await;
    let number = id_number("32050219800101123");
    let r = app.post("/api/v1/me/real-name", Some(&person), json!({"name": "Billed", "id_number": number})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let due = app_now(&app) + 86_400_000;
    let body = json!({"id_number": number, "kind": "water", "amount": 3_000, "due_at": due, "description": "Water"});
    let path = format!("/api/v1/orgs/{water}/bills");
    let first = app.pay(&path, &admin, "bill-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = app.pay(&path, &admin, "bill-1", body.clone()).await;
    assert_eq!(again.body, first.body);
    let r = app.post(&path, Some(&admin), body).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "idempotency_key_required");
    assert_eq!(app.get("/api/v1/bills", Some(&person)).await.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deletion_waits_for_open_red_packets() {
    let app = spawn_app().await;
    let (_, sender) = funded(&app, "packet-leaver@example.org", "Leaver", 1_000).await;
    let r =
        app.pay("/api/v1/red-packets", &sender, &key(), json!({"count": 2, "amount": 1_000, "mode": "fixed"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balance(&app, &sender).await, 0, "the wallet is empty, the packet is open");
    let r = app.call(Method::DELETE, "/api/v1/me", Some(&sender), None).await;
    assert_problem(&r, StatusCode::CONFLICT, "conflict");
    assert_eq!(app.get("/api/v1/me", Some(&sender)).await.status, StatusCode::OK, "nothing erased");
    // After 24 hours the unclaimed money returns; withdrawn, the account can go.
    app.clock.advance_ms(24 * 3_600_000 + 1);
    app.state.pay.refund_expired().await.unwrap();
    assert_eq!(balance(&app, &sender).await, 1_000);
    let r = app.pay("/api/v1/wallet/withdraw", &sender, &key(), json!({"amount": 1_000})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.call(Method::DELETE, "/api/v1/me", Some(&sender), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    transfers(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletion_racing_incoming_payments_strands_no_money() {
    let app = spawn_app().await;
    let (_, payer) = funded(&app, "race-payer@example.org", "Payer", 100_000).await;
    for round in 0..4 {
        let login = format!("race-leaver-{round}@example.org");
        let (leaver_id, leaver) = funded(&app, &login, "Leaver", 0).await;
        let pays: Vec<_> = (0..6)
            .map(|i| {
                let (router, payer, login) = (app.router.clone(), payer.clone(), login.clone());
                tokio::spawn(async move {
                    let req = axum::http::Request::post("/api/v1/transfers")
                        .header("authorization", format!("Bearer {payer}"))
                        .header("content-type", "application/json")
                        .header("idempotency-key", format!("race-{round}-{i}"))
                        .body(axum::body::Body::from(json!({"to": login, "amount": 10}).to_string()))
                        .unwrap();
                    tower::ServiceExt::oneshot(router, req).await.unwrap().status()
                })
            })
            .collect();
        let deleted = app.call(Method::DELETE, "/api/v1/me", Some(&leaver), None).await;
        let statuses: Vec<StatusCode> = futures::future::join_all(pays).await.into_iter().map(|r| r.unwrap()).collect();
        let landed = statuses.iter().filter(|s| s.is_success()).count() as i64;
        let wallet = app.state.pay.wallet(&leaver_id).await.unwrap();
        if deleted.status == StatusCode::OK {
            // Deleted: nothing may have landed in the closed wallet.
            assert_eq!(wallet.balance_fen, 0, "round {round}: money stranded in a deleted account ({statuses:?})");
        } else {
            assert_problem(&deleted, StatusCode::CONFLICT, "conflict");
            assert_eq!(wallet.balance_fen, 10 * landed, "round {round}");
        }
    }
    let check = app.state.ledger.check().await.unwrap();
    assert!(check.is_clean() && check.sum_posted_fen == 0, "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_money_work_finishes_when_the_browser_hangs_up() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    // The request future is dropped while the money work is under way
    // (what a client hanging up does); the work still runs to its end.
    let done = Arc::new(AtomicBool::new(false));
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let (started, under_way) = tokio::sync::oneshot::channel::<()>();
    let flag = done.clone();
    let request = tokio::spawn(async move {
        yizhan_kit::idem::to_completion(async move {
            let _ = started.send(());
            let _ = wait.await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await
    });
    under_way.await.unwrap();
    request.abort();
    let _ = request.await;
    go.send(()).unwrap();
    for _ in 0..200 {
        if done.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(done.load(Ordering::SeqCst), "the money work was abandoned with the request");

    // And through a real page: the top-up form moves the money once however it ends.
    let app = spawn_app().await;
    let (_, token) = funded(&app, "hangup@example.org", "Hangup", 0).await;
    let cookies = format!("yz_session={token}");
    let page_ = page(&app, "/wallet", &cookies, "en").await;
    let csrf = csrf_of(&page_).unwrap();
    let idem = "web-hangup-key";
    let body = format!("csrf={csrf}&amount=12.00&card=&idem={idem}");
    let r = form(&app, "/wallet/topup", &cookies, &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let again = form(&app, "/wallet/topup", &cookies, &body).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(again.headers.get("location"), r.headers.get("location"), "the same transfer's page");
    assert_eq!(balance(&app, &token).await, 1_200, "one top-up for one form key");
}

#[tokio::test]
async fn a_bill_is_a_reason_to_read_the_identity_number_only_for_the_org_that_issued_it() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, dept) = app.city_and_org(&admin, "Reason City", "Water Bureau", "city_department").await;
    let (clerk_id, clerk) = app.user("reason-clerk@example.org", "Clerk").await;
    app.add_staff(&admin, &dept, &clerk_id, "operator").await;
    let (person_id, person) = funded(&app, "reason-person@example.org", "Person", 0).await;
    let me = app.get("/api/v1/me", Some(&person)).await.body;
    assert_eq!(me["verification_level"], 0);
    let read = format!("/api/v1/orgs/{dept}/residents/{person_id}?reason=bill&include_id_number=true");
    issue_bill_to(&app, &admin, &dept, &person, 1_000).await;
    // The bureau billed the person: its clerk may read the number for that.
    let r = app.get(&read, Some(&clerk)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["resident"]["id_number"].is_string(), "{}", r.text);
    // Another department that never billed them may not.
    let (_, other) = app.city_and_org(&admin, "Reason City", "Parks", "city_department").await;
    app.add_staff(&admin, &other, &clerk_id, "operator").await;
    let r = app
        .get(&format!("/api/v1/orgs/{other}/residents/{person_id}?reason=bill&include_id_number=true"), Some(&clerk))
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    // A reason off the list is refused for the number.
    let r = app
        .get(&format!("/api/v1/orgs/{dept}/residents/{person_id}?reason=curious&include_id_number=true"), Some(&clerk))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // The person sees the reason in their language.
    let cookies = format!("yz_session={person}");
    let zh = page(&app, "/access-log", &cookies, "zh-CN").await;
    assert!(zh.text.contains("账单或罚款"), "{}", zh.text);
}

/// Before paying, the payer sees who is paid (the name masked, the login
/// masked) and whether the PIN is asked; paying oneself is refused there.
/// With a payment PIN set, a transfer needs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_previewed_with_the_payee_masked_and_needs_the_pin_once_set() {
    let app = spawn_app().await;
    let (a_id, a) = funded(&app, "pv-a@example.org", "Preview A", 10_000).await;
    app.user("13800138555", "王小伟").await;
    let r = app.post("/api/v1/transfers/preview", Some(&a), json!({"to": "13800138555"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["payee_name"], "**伟");
    assert_eq!(r.body["login_masked"], "138****8555");
    assert_eq!(r.body["fee"], 0);
    assert_eq!(r.body["pin_required"], false);
    assert_eq!(r.body["payee"]["kind"], "user");
    let r = app.post("/api/v1/transfers/preview", Some(&a), json!({"to": "pv-a@example.org"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "self_payment");
    let own = app.get("/api/v1/qr/me", Some(&a)).await.body["payload"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/transfers/preview", Some(&a), json!({"to": own})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "self_payment");
    let r = app.post("/api/v1/transfers/preview", Some(&a), json!({"to": "13900000000"})).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");

    // A PIN set: the preview says so, and a transfer without it (or with a wrong one) moves nothing.
    app.state.pay.set_payment_pin(&a_id, "correct horse", "258036").await.unwrap();
    let r = app.post("/api/v1/transfers/preview", Some(&a), json!({"to": "13800138555"})).await;
    assert_eq!(r.body["pin_required"], true, "{}", r.text);
    let r = app.pay("/api/v1/transfers", &a, &key(), json!({"to": "13800138555", "amount": 100})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["fields"][0]["field"], "pin", "{}", r.text);
    let r =
        app.pay("/api/v1/transfers", &a, &key(), json!({"to": "13800138555", "amount": 100, "pin": "111111"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "wrong_pin");
    assert_eq!(balance(&app, &a).await, 10_000);
    let r =
        app.pay("/api/v1/transfers", &a, &key(), json!({"to": "13800138555", "amount": 100, "pin": "258036"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balance(&app, &a).await, 9_900);
}
