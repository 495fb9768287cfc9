//! The first start's setup link over HTTP: it opens the page only with the
//! token the server drew, once, within a day on the clock, and not at all
//! once an administrator exists; the page (CSRF, both languages) makes the
//! first administrator (able to log in, their login proved) and the first city.

use crate::common::*;
use axum::http::StatusCode;
use yizhan_core::time::HOUR_MS;

/// The page's CSRF cookie and the form's token, as a browser would have them.
async fn opened(app: &TestApp, token: &str, lang: &str) -> (Resp, String) {
    let r = page(app, &format!("/setup?token={token}"), "", lang).await;
    let csrf = cookie_of(&r, "yz_csrf").unwrap_or_default();
    (r, csrf)
}

fn body(csrf: &str, token: &str, login: &str, city: &str) -> String {
    format!("csrf={csrf}&token={token}&login={login}&password=correct+horse+battery&name=Operator&city={city}")
}

#[tokio::test]
async fn the_setup_link_makes_the_first_administrator_and_city_once() {
    let app = spawn_app().await;
    let id = &app.state.identity;
    assert!(!id.has_admin().await.unwrap());
    let first = id.new_setup_token().await.unwrap().expect("no administrator: a link");
    // A new start draws a new link; the old one no longer opens anything.
    let token = id.new_setup_token().await.unwrap().unwrap();
    assert_ne!(first, token);
    let (r, _) = opened(&app, &first, "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let (r, _) = opened(&app, "nonsense", "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text.contains("This setup link is not valid"), "{}", r.text);

    let (r, csrf) = opened(&app, &token, "zh-CN").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("设置驿站") && r.text.contains("第一个城市"), "{}", r.text);
    let (r, csrf_en) = opened(&app, &token, "en").await;
    assert!(r.text.contains("The first administrator") && r.text.contains("id=\"setup-form\""), "{}", r.text);
    assert!(!csrf.is_empty() && !csrf_en.is_empty());

    // Without the CSRF token: nothing is made.
    let r =
        form(&app, "/setup", &format!("yz_csrf={csrf}"), &body("wrong", &token, "ops%40example.org", "Ningbo")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // A field wrong: said on the page, the link still works.
    let r = form(&app, "/setup", &format!("yz_csrf={csrf}"), &body(&csrf, &token, "not+a+login", "Ningbo")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("class=\"flash error\"") && r.text.contains("id=\"setup-form\""), "{}", r.text);
    assert!(!id.has_admin().await.unwrap());

    let r = form(&app, "/setup", &format!("yz_csrf={csrf}"), &body(&csrf, &token, "ops%40example.org", "Ningbo")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.headers.get("location").unwrap(), "/setup/done");
    let done = page(&app, "/setup/done", "", "en").await;
    assert!(done.text.contains("id=\"setup-done\""), "{}", done.text);
    assert!(id.has_admin().await.unwrap());
    let cities = id.list_cities().await.unwrap();
    assert_eq!(cities.len(), 1);
    assert_eq!(cities[0].name, "Ningbo");
    assert!(cities[0].services.iter().any(|s| s == "wallet"), "{:?}", cities[0].services);
    // The administrator logs in; their login counts as proved.
    let t = app
        .post(
            "/api/v1/auth/login",
            None,
            serde_json::json!({"login": "ops@example.org", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let me = app.get("/api/v1/me", Some(t.body["token"].as_str().unwrap())).await;
    assert_eq!(me.body["is_admin"], true, "{}", me.text);
    assert_eq!(me.body["login_verified"], true, "{}", me.text);

    // Used: the same link again, or the form again, makes nothing more.
    let (r, _) = opened(&app, &token, "en").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "an administrator exists: {}", r.text);
    let r = form(&app, "/setup", &format!("yz_csrf={csrf}"), &body(&csrf, &token, "ops2%40example.org", "Hefei")).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert_eq!(id.list_cities().await.unwrap().len(), 1);
    // An administrator exists: no new link at the next start.
    assert!(id.new_setup_token().await.unwrap().is_none());
}

#[tokio::test]
async fn a_setup_link_expires_after_a_day_and_an_existing_admin_closes_it() {
    let app = spawn_app().await;
    let id = &app.state.identity;
    let token = id.new_setup_token().await.unwrap().unwrap();
    app.clock.advance_ms(24 * HOUR_MS + 1);
    let (r, csrf) = opened(&app, &token, "en").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.text.contains("expired"), "{}", r.text);
    let r = form(&app, "/setup", &format!("yz_csrf={csrf}"), &body(&csrf, &token, "late%40example.org", "Wuxi")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(!id.has_admin().await.unwrap());

    // A fresh link, then an administrator made another way (the command line): the link is closed.
    let token = id.new_setup_token().await.unwrap().unwrap();
    app.admin().await;
    let (r, csrf) = opened(&app, &token, "en").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("An administrator already exists"), "{}", r.text);
    let r = form(&app, "/setup", &format!("yz_csrf={csrf}"), &body(&csrf, &token, "late%40example.org", "Wuxi")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(id.list_cities().await.unwrap().iter().all(|c| c.name != "Wuxi"));
}
