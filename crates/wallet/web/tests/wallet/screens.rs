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
