//! Everyday screens: a withdrawal reads once in the history, the statement's
//! month links are zero-padded and offer no month still to come.

use crate::common::*;
use crate::{funded, key};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_withdrawal_shows_once_and_the_statement_offers_no_future_month() {
    let app = spawn_app().await;
    let (_, t) = funded(&app, "screens@example.org", "Screens", 10_000).await;
    let r = app.pay("/api/v1/wallet/withdraw", &t, &key(), json!({"amount": 1_000})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The ledger holds then posts: two rows in the API, one line on the page.
    let api = app.get("/api/v1/wallet/transactions", Some(&t)).await;
    let withdrawal_rows =
        api.body["items"].as_array().unwrap().iter().filter(|i| i["category"] == "withdrawal").count();
    assert!(withdrawal_rows >= 2, "{}", api.text);
    let cookies = format!("yz_session={t}");
    let h = page(&app, "/wallet/history", &cookies, "en").await;
    assert_eq!(h.text.matches("-10.00").count(), 1, "{}", h.text);
    assert!(!h.text.contains("on hold"), "{}", h.text);

    let (y, m) = yizhan_core::time::year_month_cst(yizhan_core::testing::T0_MS);
    let st = page(&app, "/wallet/statement", &cookies, "en").await;
    assert_eq!(st.status, StatusCode::OK);
    assert!(st.text.contains(&format!("id=\"statement-month\">{y}-{m:02}<")), "{}", st.text);
    assert!(!st.text.contains("statement-next"), "no month still to come: {}", st.text);
    let (py, pm) = if m == 1 { (y - 1, 12) } else { (y, m - 1) };
    assert!(st.text.contains(&format!("year={py}&amp;month={pm:02}\" id=\"statement-prev\"")), "{}", st.text);
    let old = page(&app, &format!("/wallet/statement?year={py}&month={pm:02}"), &cookies, "en").await;
    assert!(old.text.contains(&format!("month={m:02}\" id=\"statement-next\"")), "{}", old.text);
}

#[tokio::test]
async fn the_qr_decoder_is_a_static_file_the_scan_buttons_load_only_when_needed() {
    let app = spawn_app().await;
    let (_, t) = app.user("scanner@example.org", "Scanner").await;
    let cookies = format!("yz_session={t}");
    let p = page(&app, "/wallet/pay", &cookies, "en").await;
    // The buttons name the decoder and stay hidden until the script finds a way to read codes.
    assert!(p.text.contains("data-decoder=\"/wallet/static/jsqr-1.4.0.js\" hidden"), "{}", p.text);
    assert!(p.text.contains("id=\"scan-photo\" hidden") && p.text.contains("accept=\"image/*\" capture"), "{}", p.text);
    assert!(!p.text.contains("jsqr-1.4.0.js\"></script>"), "not loaded by every page");
    let js = page(&app, "/wallet/static/jsqr-1.4.0.js", "", "en").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/javascript"));
    assert!(js.headers.get("cache-control").unwrap().to_str().unwrap().contains("immutable"));
    assert!(js.text.contains("jsQR"), "the decoder itself");
    // The stylesheet lets the hidden attribute win over the buttons' display.
    let css = page(&app, "/static/app.css", "", "en").await;
    assert!(css.text.contains("[hidden] { display:none !important; }"));
}

#[tokio::test]
async fn setting_the_city_asks_first() {
    let app = spawn_app().await;
    let (_, t) = app.user("city-asker@example.org", "Asker").await;
    let cookies = format!("yz_session={t}");
    let p = page(&app, "/profile", &cookies, "en").await;
    assert!(
        p.text.contains("action=\"/profile/city\" class=\"card row\" data-confirm=\"Make this your city?"),
        "{}",
        p.text
    );
    let zh = page(&app, "/profile", &cookies, "zh-CN").await;
    assert!(zh.text.contains("data-confirm=\"确定设为你的城市吗？"), "{}", zh.text);
    let js = page(&app, "/static/app.js", "", "en").await;
    assert!(js.text.contains("form[data-confirm]") && js.text.contains("window.confirm"));
}
