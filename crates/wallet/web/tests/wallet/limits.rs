//! Wallet limits over HTTP: the person's limits and today's use, the refusal
//! naming the limit in both languages, the admin's change, replays, races,
//! and the wallet page.

use crate::common::*;
use crate::{balance, key, transfers};
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

const YUAN: i64 = 100;
static NUMBERS: AtomicUsize = AtomicUsize::new(0);

/// Verify a person's real name through the API (level 1).
async fn verify(app: &TestApp, token: &str) {
    let n = NUMBERS.fetch_add(1, Ordering::SeqCst);
    let number = id_number(&format!("4401061990{:02}{:02}{:03}", (n % 12) + 1, (n % 28) + 1, 500 + n % 500));
    let r = app.post("/api/v1/me/real-name", Some(token), json!({"name": "林居民", "id_number": number})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Put money in a wallet without a top-up (receiving is not limited).
async fn credit(app: &TestApp, user_id: &str, fen: i64) {
    let wallet = app.state.pay.wallet(user_id).await.unwrap().account_id;
    let gw = yizhan_pay::gateway_account(app.state.pay.gateway_name());
    app.state.ledger.transfer(yizhan_ledger::TransferSpec::new(gw, wallet, fen, "topup")).await.unwrap();
}

fn limit<'a>(body: &'a serde_json::Value, op: &str) -> &'a serde_json::Value {
    body["limits"].as_array().unwrap().iter().find(|l| l["operation"] == op).unwrap()
}

async fn put_limit(app: &TestApp, token: &str, body: serde_json::Value) -> Resp {
    app.call(Method::PUT, "/api/v1/wallet/limits", Some(token), Some(body)).await
}

#[tokio::test]
async fn the_limits_are_shown_and_a_payment_over_one_is_refused_naming_it_in_both_languages() {
    let app = spawn_app().await;
    let (a, t) = app.user("lim-a@example.org", "Ann").await;
    app.user("lim-b@example.org", "Bo").await;
    credit(&app, &a, 1_000 * YUAN).await;
    let r = app.get("/api/v1/wallet/limits", Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["level"], 0);
    let pay = limit(&r.body, "payment");
    assert_eq!((pay["per_transaction"].as_i64(), pay["per_day"].as_i64()), (Some(200 * YUAN), Some(500 * YUAN)));
    assert_eq!((pay["used_today"].as_i64(), pay["remaining_today"].as_i64()), (Some(0), Some(500 * YUAN)));
    assert_eq!(limit(&r.body, "withdrawal")["per_transaction"], 0);
    assert_eq!(r.body["levels"].as_array().unwrap().len(), 9);
    let resets = r.body["resets_at"].as_i64().unwrap();
    assert_eq!(resets, yizhan_pay::limits::next_china_midnight(app_now(&app)));

    let body = json!({"to": "lim-b@example.org", "amount": 200 * YUAN + 1});
    let r = app.pay("/api/v1/transfers", &t, &key(), body.clone()).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded");
    let when = yizhan_core::time::fmt_cst(resets);
    let detail = r.body["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        format!(
            "This is over your per-transaction payment limit of ¥200.00. You have ¥500.00 left today; \
             daily limits reset at {when} (China time). Verify your real name to raise your limits."
        )
    );
    assert_eq!(r.body["title"], "Over a wallet limit");
    let zh = app
        .call_with(
            Method::POST,
            "/api/v1/transfers",
            Some(&t),
            Some(body),
            &[("idempotency-key", &key()), ("accept-language", "zh-CN")],
        )
        .await;
    assert_problem(&zh, StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded");
    assert_eq!(
        zh.body["detail"],
        format!(
            "超出付款单笔限额 ¥200.00。今日还可用 ¥500.00，每日限额于 {when}（北京时间）重置。完成实名认证可提高限额。"
        )
    );
    assert_eq!(zh.body["title"], "超出钱包限额");

    // Withdrawing needs a verified name.
    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 100})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded");
    assert!(r.body["detail"].as_str().unwrap().starts_with("Your account cannot make a withdrawal yet."), "{}", r.text);

    // Paid within the limit: used and remaining follow.
    let r = app.pay("/api/v1/transfers", &t, &key(), json!({"to": "lim-b@example.org", "amount": 150 * YUAN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.get("/api/v1/wallet/limits", Some(&t)).await;
    let pay = limit(&r.body, "payment");
    assert_eq!((pay["used_today"].as_i64(), pay["remaining_today"].as_i64()), (Some(150 * YUAN), Some(350 * YUAN)));

    // Verified: the higher level's limits.
    verify(&app, &t).await;
    let r = app.get("/api/v1/wallet/limits", Some(&t)).await;
    assert_eq!(r.body["level"], 1);
    assert_eq!(limit(&r.body, "payment")["per_transaction"], 5_000 * YUAN);
    assert_eq!(limit(&r.body, "payment")["used_today"], 150 * YUAN);
    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 100 * YUAN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    transfers(&app).await;
}

#[tokio::test]
async fn only_an_admin_changes_a_limit_and_it_applies_at_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (a, t) = app.user("lim-c@example.org", "Cai").await;
    app.user("lim-d@example.org", "Dan").await;
    credit(&app, &a, 100 * YUAN).await;
    let change = json!({"level": 0, "operation": "payment", "per_transaction": 10 * YUAN, "per_day": 30 * YUAN});
    let r = put_limit(&app, &t, change.clone()).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let bad = json!({"level": 0, "operation": "gifts", "per_transaction": -1, "per_day": 1.5});
    let r = put_limit(&app, &admin, bad).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let fields: Vec<&str> = r.body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["operation", "per_day"]);
    let r = put_limit(&app, &admin, json!({"level": 0, "operation": "payment", "per_transaction": 20, "per_day": 10}))
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "per_transaction");
    let r =
        put_limit(&app, &admin, json!({"level": 9, "operation": "payment", "per_transaction": 1, "per_day": 1})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");

    // The document's bounds are Pay's.
    let doc = app.get("/api/openapi.json", None).await.body;
    let req = &doc["components"]["schemas"]["SetLimitReq"]["properties"];
    assert_eq!(req["per_transaction"]["maximum"], yizhan_core::Fen::MAX_AMOUNT, "{req}");
    assert_eq!(req["per_day"]["maximum"], yizhan_pay::limits::MAX_DAILY_LIMIT_FEN, "{req}");
    assert_eq!(req["level"]["maximum"], yizhan_pay::limits::MAX_LEVEL, "{req}");

    let r = put_limit(&app, &admin, change).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["per_transaction"].as_i64(), r.body["per_day"].as_i64()), (Some(10 * YUAN), Some(30 * YUAN)));
    let r = app.pay("/api/v1/transfers", &t, &key(), json!({"to": "lim-d@example.org", "amount": 11 * YUAN})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded");
    let mine = app.get("/api/v1/wallet/limits", Some(&t)).await;
    assert_eq!(limit(&mine.body, "payment")["per_transaction"], 10 * YUAN);
    let changes = app.state.pay.limit_changes(5).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(balance(&app, &t).await, 100 * YUAN);
}

#[tokio::test]
async fn a_replay_after_the_daily_cap_gets_its_receipt() {
    let app = spawn_app().await;
    let (a, t) = app.user("lim-e@example.org", "Eve").await;
    app.user("lim-f@example.org", "Fei").await;
    credit(&app, &a, 1_000 * YUAN).await;
    let k = key();
    let first = app.pay("/api/v1/transfers", &t, &k, json!({"to": "lim-f@example.org", "amount": 200 * YUAN})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    for _ in 0..2 {
        let r =
            app.pay("/api/v1/transfers", &t, &key(), json!({"to": "lim-f@example.org", "amount": 150 * YUAN})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app.pay("/api/v1/transfers", &t, &key(), json!({"to": "lim-f@example.org", "amount": YUAN})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded");
    let again = app.pay("/api/v1/transfers", &t, &k, json!({"to": "lim-f@example.org", "amount": 200 * YUAN})).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.body["transfer_id"], first.body["transfer_id"]);
    // Also when the HTTP layer forgot the answer: the ledger has the payment.
    app.state.pay.transfer_to_user(&a, "lim-f@example.org", 200 * YUAN, "", &k).await.unwrap();
    assert_eq!(balance(&app, &t).await, 500 * YUAN);
    // The next China day the limit is whole again.
    app.clock.set_ms(yizhan_pay::limits::next_china_midnight(app_now(&app)));
    let r = app.pay("/api/v1/transfers", &t, &key(), json!({"to": "lim-f@example.org", "amount": 200 * YUAN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    transfers(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_payments_at_once_against_the_daily_cap_let_exactly_five_through() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (a, t) = app.user("lim-g@example.org", "Gu").await;
    let (_, tb) = app.user("lim-h@example.org", "He").await;
    credit(&app, &a, 2_000 * YUAN).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (app, t) = (app.clone(), t.clone());
            tokio::spawn(async move {
                let body = json!({"to": "lim-h@example.org", "amount": 100 * YUAN});
                let r = app.pay("/api/v1/transfers", &t, &format!("race-{i}"), body).await;
                (r.status, r.body["code"].clone())
            })
        })
        .collect();
    let results: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert_eq!(ok, 5, "{results:?}");
    assert!(results.iter().all(|(s, c)| *s == StatusCode::CREATED || c == "limit_exceeded"), "{results:?}");
    assert_eq!(balance(&app, &t).await, 1_500 * YUAN);
    assert_eq!(balance(&app, &tb).await, 500 * YUAN);
    let r = app.get("/api/v1/wallet/limits", Some(&t)).await;
    assert_eq!(limit(&r.body, "payment")["used_today"], 500 * YUAN);
    transfers(&app).await;
}

#[tokio::test]
async fn the_wallet_page_shows_the_limits_and_an_admin_changes_them_there() {
    let app = spawn_app().await;
    let (_, t) = app.user("lim-i@example.org", "Ivy").await;
    let cookies = format!("yz_session={t}");
    let r = app.pay("/api/v1/wallet/topup", &t, &key(), json!({"amount": 50 * YUAN})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let en = page(&app, "/wallet", &cookies, "en").await;
    assert_eq!(en.status, StatusCode::OK);
    assert!(en.text.contains("id=\"limits\""), "{}", en.text);
    assert!(en.text.contains("Up to ¥200.00 at a time"), "{}", en.text);
    assert!(en.text.contains("Today ¥50.00 of ¥500.00, ¥450.00 left"), "{}", en.text);
    assert!(en.text.contains("<progress value=\"10\""), "{}", en.text);
    assert!(en.text.contains("Not available at your verification level"), "{}", en.text);
    assert!(!en.text.contains("limit-form-"), "only an admin sees the forms");
    let zh = page(&app, "/wallet", &cookies, "zh-CN").await;
    assert!(zh.text.contains("今日已用 ¥50.00 / ¥500.00，剩余 ¥450.00"), "{}", zh.text);

    // Over the limit on the page: the same words, in the person's language.
    let csrf = csrf_of(&en).unwrap();
    let r = form(&app, "/wallet/topup", &cookies, &format!("csrf={csrf}&amount=300&card=&idem={}", key())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("per-transaction top-up limit of ¥200.00"), "{}", r.text);

    // A non-admin cannot post the admin's form.
    let body = format!("csrf={csrf}&level=0&operation=topup&per_tx=300&per_day=600");
    let r = form(&app, "/wallet/limits", &cookies, &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let (_, admin) = app.admin().await;
    let admin_cookies = format!("yz_session={admin}");
    let ap = page(&app, "/wallet", &admin_cookies, "en").await;
    assert!(ap.text.contains("id=\"limit-form-0-topup\""), "{}", ap.text);
    let admin_csrf = csrf_of(&ap).unwrap();
    let r = form(
        &app,
        "/wallet/limits",
        &admin_cookies,
        &format!("csrf={admin_csrf}&level=0&operation=topup&per_tx=300&per_day=600"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.headers.get("location").unwrap(), "/wallet?saved=limits");
    let r = page(&app, "/wallet?saved=limits", &admin_cookies, "en").await;
    assert!(r.text.contains("Limit saved"), "{}", r.text);
    let r = form(
        &app,
        "/wallet/limits",
        &admin_cookies,
        &format!("csrf={admin_csrf}&level=0&operation=topup&per_tx=700&per_day=600"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Without the CSRF token nothing changes.
    let r = form(&app, "/wallet/limits", &admin_cookies, "level=0&operation=topup&per_tx=1&per_day=1").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = form(&app, "/wallet/topup", &cookies, &format!("csrf={csrf}&amount=300&card=&idem={}", key())).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(balance(&app, &t).await, 350 * YUAN);
}

fn app_now(app: &TestApp) -> i64 {
    use yizhan_core::Clock;
    app.clock.now_ms()
}
