//! The staff's screens over HTTP: where I work, the till charging a pay code
//! (at once, and waiting for the customer above the threshold), the shop's
//! receiving page and its feed, issuing bills and seeing how they stand.

use crate::common::*;
use crate::{app_now, balance, funded, number_for, transfers, verify};
use axum::http::{Method, StatusCode};
use serde_json::json;

struct Shop {
    org: String,
    cookies: String,
    csrf: String,
}

/// A merchant with one cashier, logged in with a browser session.
async fn shop(app: &TestApp, n: &str, kind: &str) -> Shop {
    let (_, admin) = app.admin().await;
    let (_, org) = app.city_and_org(&admin, &format!("City {n}"), &format!("Shop {n}"), kind).await;
    let (id, token) = app.user(&format!("staff-{n}@example.org"), "Staffer").await;
    app.add_staff(&admin, &org, &id, "operator").await;
    let cookies = format!("yz_session={token}");
    let csrf = session_csrf(app, &cookies).await;
    Shop { org, cookies, csrf }
}

async fn paycode(app: &TestApp, token: &str) -> (String, String) {
    let pc = app.call(Method::POST, "/api/v1/paycodes", Some(token), None).await;
    assert_eq!(pc.status, StatusCode::CREATED, "{}", pc.text);
    (pc.body["id"].as_str().unwrap().to_string(), pc.body["code"].as_str().unwrap().to_string())
}

fn location(r: &Resp) -> String {
    r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

#[tokio::test]
async fn staff_see_where_they_work_and_residents_see_nothing_to_do() {
    let app = spawn_app().await;
    let s = shop(&app, "home", "merchant").await;
    let p = page(&app, "/wallet/staff", &s.cookies, "en").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(p.text.contains(&format!("id=\"org-{}\"", s.org)), "{}", p.text);
    assert!(p.text.contains(&format!("href=\"/wallet/orgs/{}/cashier\"", s.org)));
    assert!(p.text.contains(&format!("href=\"/wallet/orgs/{}/receive\"", s.org)));
    assert!(p.text.contains("Merchant · Operator"), "{}", p.text);
    let zh = page(&app, "/wallet/staff", &s.cookies, "zh-CN").await;
    assert!(zh.text.contains("收银台") && zh.text.contains("我的工作"), "{}", zh.text);

    let (_, resident) = app.user("nobody-staff@example.org", "Resident").await;
    let cookies = format!("yz_session={resident}");
    let p = page(&app, "/wallet/staff", &cookies, "en").await;
    assert!(p.text.contains("id=\"staff-none\""), "{}", p.text);
    // Another organisation's tools are refused, the same whether it exists or not.
    for org in [s.org.as_str(), "no-such-org"] {
        for tool in ["cashier", "receive", "bills", "receive/feed"] {
            let r = page(&app, &format!("/wallet/orgs/{org}/{tool}"), &cookies, "en").await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{org} {tool}: {}", r.text);
        }
    }
}

#[tokio::test]
async fn the_till_charges_a_pay_code_and_waits_for_the_customer_above_the_threshold() {
    let app = spawn_app().await;
    let s = shop(&app, "till", "merchant").await;
    let (_, customer) = funded(&app, "till-customer@example.org", "Customer", 100_000).await;
    let p = page(&app, &format!("/wallet/orgs/{}/cashier", s.org), &s.cookies, "en").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(p.text.contains("id=\"cashier-code\"") && p.text.contains("data-scan=\"cashier-code\""));

    // A small charge: paid at once, and the answer is a page of its own (post/redirect/get).
    let (code_id, code) = paycode(&app, &customer).await;
    let spaced = format!("{} {} {}", &code[..6], &code[6..12], &code[12..]);
    let body = format!("csrf={}&idem=web-till-1&amount=12.50&code={}", s.csrf, spaced.replace(' ', "+"));
    let r = form(&app, &format!("/wallet/orgs/{}/cashier", s.org), &s.cookies, &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let result_url = location(&r);
    assert_eq!(result_url, format!("/wallet/orgs/{}/cashier/web-till-1", s.org));
    let p = page(&app, &result_url, &s.cookies, "en").await;
    assert!(p.text.contains("id=\"till-paid\"") && p.text.contains("¥12.50"), "{}", p.text);
    assert!(!p.text.contains("http-equiv=\"refresh\""), "a finished charge does not refresh");
    assert_eq!(balance(&app, &customer).await, 100_000 - 1_250);
    // The customer's code page says so.
    let st = app.get(&format!("/api/v1/paycodes/{code_id}/status"), Some(&customer)).await;
    assert_eq!(st.body["state"], "paid");
    // The same form again (a double tap) charges nothing more and lands on the same answer.
    let again = form(&app, &format!("/wallet/orgs/{}/cashier", s.org), &s.cookies, &body).await;
    assert_eq!(location(&again), result_url, "{}", again.text);
    assert_eq!(balance(&app, &customer).await, 100_000 - 1_250);

    // A bad code: the form again with the error, nothing moved.
    let before = transfers(&app).await;
    let bad = format!("csrf={}&idem=web-till-2&amount=1.00&code=12345", s.csrf);
    let r = form(&app, &format!("/wallet/orgs/{}/cashier", s.org), &s.cookies, &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("class=\"flash error\"") && r.text.contains("value=\"1.00\""), "{}", r.text);
    assert_eq!(transfers(&app).await, before);

    // Above the threshold: the till waits, refreshing, until the customer confirms.
    let (code_id, code) = paycode(&app, &customer).await;
    let body = format!("csrf={}&idem=web-till-3&amount=600.00&code={code}", s.csrf);
    let r = form(&app, &format!("/wallet/orgs/{}/cashier", s.org), &s.cookies, &body).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let p = page(&app, &location(&r), &s.cookies, "zh-CN").await;
    assert!(p.text.contains("id=\"till-waiting\"") && p.text.contains("等待顾客"), "{}", p.text);
    assert!(p.text.contains("http-equiv=\"refresh\""));
    assert_eq!(transfers(&app).await, before, "nothing moved yet");
    let r = app.pay(&format!("/api/v1/paycodes/{code_id}/confirm"), &customer, "confirm-1", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let p = page(
        &app,
        &location(&form(&app, &format!("/wallet/orgs/{}/cashier", s.org), &s.cookies, &body).await),
        &s.cookies,
        "en",
    )
    .await;
    assert!(p.text.contains("id=\"till-paid\"") && p.text.contains("¥600.00"), "{}", p.text);

    // Declined: the till says nothing was charged.
    let (code_id, code) = paycode(&app, &customer).await;
    let body = format!("csrf={}&idem=web-till-4&amount=700.00&code={code}", s.csrf);
    let r = form(&app, &format!("/wallet/orgs/{}/cashier", s.org), &s.cookies, &body).await;
    let url = location(&r);
    let r = app.call(Method::POST, &format!("/api/v1/paycodes/{code_id}/decline"), Some(&customer), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = page(&app, &url, &s.cookies, "en").await;
    assert!(p.text.contains("id=\"till-declined\""), "{}", p.text);
    // A key this till never used is not found.
    let p = page(&app, &format!("/wallet/orgs/{}/cashier/web-never", s.org), &s.cookies, "en").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(balance(&app, &customer).await, 100_000 - 1_250 - 60_000);
}

#[tokio::test]
async fn the_receiving_page_shows_the_code_and_todays_payments() {
    let app = spawn_app().await;
    let s = shop(&app, "recv", "merchant").await;
    let (_, customer) = funded(&app, "recv-customer@example.org", "王小明", 100_000).await;
    let url = format!("/wallet/orgs/{}/receive", s.org);
    let p = page(&app, &url, &s.cookies, "en").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(p.text.contains("<svg") && p.text.contains("id=\"receive-empty\" >"), "{}", p.text);
    assert!(p.text.contains(&format!("data-feed=\"{url}/feed\"")));

    // Paid by pay code and by the shop's QR code: both arrive, with the day's total.
    let (_, code) = paycode(&app, &customer).await;
    let r = app
        .pay(
            "/api/v1/merchant/charge",
            &app.login("staff-recv@example.org").await,
            "c1",
            json!({"org_id": s.org, "code": code, "amount": 123_456}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "above the threshold: {}", r.text);
    let (_, code) = paycode(&app, &customer).await;
    let r = app
        .pay(
            "/api/v1/merchant/charge",
            &app.login("staff-recv@example.org").await,
            "c2",
            json!({"org_id": s.org, "code": code, "amount": 2_000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let fixed = page(&app, &format!("{url}?amount=8.80"), &s.cookies, "en").await;
    assert!(fixed.text.contains("id=\"receive-fixed\">¥8.80"), "{}", fixed.text);
    let qr = app
        .get(&format!("/api/v1/orgs/{}/qr?amount=880", s.org), Some(&app.login("staff-recv@example.org").await))
        .await;
    let payload = qr.body["payload"].as_str().unwrap();
    let r = app.pay("/api/v1/qr/pay", &customer, "q1", json!({"payload": payload, "amount": 880})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let feed = page(&app, &format!("{url}/feed"), &s.cookies, "en").await;
    assert_eq!(feed.status, StatusCode::OK, "{}", feed.text);
    assert_eq!(feed.headers.get("cache-control").unwrap(), "no-store");
    let f: serde_json::Value = serde_json::from_str(&feed.text).unwrap();
    assert_eq!(f["total"], "¥28.80", "{f}");
    assert_eq!(f["count"], "2 payments today");
    let items = f["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!((items[0]["amount"].as_str(), items[0]["what"].as_str()), (Some("+¥8.80"), Some("QR payments")));
    let from = items[1]["from"].as_str().unwrap();
    assert!(from.starts_with("**") && from.chars().count() == 3, "the payer's name is masked: {from}");
    let zh = page(&app, &format!("{url}/feed"), &s.cookies, "zh-CN").await;
    assert!(zh.text.contains("今日2笔收款"), "{}", zh.text);

    // Tomorrow (China time) the day starts again at zero.
    app.clock.advance_ms(yizhan_core::time::DAY_MS);
    let p = page(&app, &url, &s.cookies, "en").await;
    assert!(p.text.contains("id=\"receive-total\">¥0.00"), "{}", p.text);
    // An amount no code may carry: said, and the open code shows.
    let p = page(&app, &format!("{url}?amount=-3"), &s.cookies, "en").await;
    assert!(p.text.contains("class=\"flash error\"") && !p.text.contains("receive-fixed"), "{}", p.text);
}

/// A date `days` from the app's clock, as a date field sends it.
fn date_in(app: &TestApp, days: i64) -> String {
    let (y, m, d) = yizhan_core::time::civil_from_days(
        (app_now(app) + yizhan_core::time::CST_OFFSET_MS).div_euclid(yizhan_core::time::DAY_MS) + days,
    );
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test]
async fn a_department_issues_bills_from_its_page_and_sees_them_paid_and_overdue() {
    let app = spawn_app().await;
    let s = shop(&app, "dept", "city_department").await;
    let (_, person) = funded(&app, "billed-by-page@example.org", "Billed", 100_000).await;
    verify(&app, &person).await;
    let number = number_for("billed-by-page@example.org");
    let url = format!("/wallet/orgs/{}/bills", s.org);
    let p = page(&app, &url, &s.cookies, "en").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(p.text.contains("value=\"fine\""), "a department may fine");

    let body = |idem: &str, amount: &str, due: &str| {
        format!(
            "csrf={}&idem={idem}&by=id_number&to={number}&kind=fine&amount={amount}&due={due}&description=Parking",
            s.csrf
        )
    };
    let r = form(&app, &url, &s.cookies, &body("web-bill-1", "200.00", &date_in(&app, 15))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let to = location(&r);
    assert!(to.starts_with(&format!("{url}?issued=")), "{to}");
    let bill_id = to.split("issued=").nth(1).unwrap().to_string();
    let p = page(&app, &to, &s.cookies, "en").await;
    assert!(p.text.contains("class=\"flash ok\""), "{}", p.text);
    assert!(p.text.contains(&format!("id=\"issued-{bill_id}\" data-standing=\"open\"")), "{}", p.text);
    // The same form again issues nothing new.
    form(&app, &url, &s.cookies, &body("web-bill-1", "200.00", &date_in(&app, 15))).await;
    assert_eq!(app.get("/api/v1/bills", Some(&person)).await.body.as_array().unwrap().len(), 1);

    // Bad fields are named, and nothing is issued.
    let r = form(&app, &url, &s.cookies, &body("web-bill-2", "abc", "tomorrow")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("Choose a date"), "{}", r.text);
    let r = form(&app, &url, &s.cookies, &body("web-bill-3", "5.00", &date_in(&app, -1))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(app.get("/api/v1/bills", Some(&person)).await.body.as_array().unwrap().len(), 1);

    // A second one, due tomorrow; the person pays the first.
    let r = form(&app, &url, &s.cookies, &body("web-bill-4", "50.00", &date_in(&app, 1))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = app.pay(&format!("/api/v1/bills/{bill_id}/pay"), &person, "pay-1", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.clock.advance_ms(3 * yizhan_core::time::DAY_MS);
    let p = page(&app, &url, &s.cookies, "en").await;
    assert!(p.text.contains(&format!("id=\"issued-{bill_id}\" data-standing=\"paid\"")), "{}", p.text);
    assert!(p.text.contains("data-standing=\"overdue\""), "{}", p.text);
    assert!(p.text.contains("Open 0 · Overdue 1 · Paid 1"), "{}", p.text);

    // A shop may bill, not fine.
    let m = shop(&app, "dept-shop", "merchant").await;
    let p = page(&app, &format!("/wallet/orgs/{}/bills", m.org), &m.cookies, "en").await;
    assert!(!p.text.contains("value=\"fine\"") && p.text.contains("value=\"water\""), "{}", p.text);
}
