//! The pages, as a browser without JavaScript would use them.

use crate::common::*;
use axum::http::StatusCode;

#[tokio::test]
async fn register_on_the_page_then_see_home_and_access_log_in_both_languages() {
    let app = spawn_app().await;
    let first = page(&app, "/register", "", "en").await;
    assert_eq!(first.status, StatusCode::OK);
    let csrf = cookie_of(&first, "yz_csrf").expect("csrf cookie");
    assert!(set_cookie_line(&first, "yz_csrf").contains("HttpOnly"));
    assert_eq!(unmasked(&csrf_of(&first).unwrap()), csrf, "the form carries the token, masked");
    assert!(!first.text.contains(&csrf));

    let r = form(
        &app,
        "/register",
        &format!("yz_csrf={csrf}"),
        &format!("csrf={csrf}&name=Mei&login=mei%40example.org&password=correct+horse"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let session_line = set_cookie_line(&r, "yz_session");
    assert!(session_line.contains("HttpOnly") && session_line.contains("SameSite=Lax"), "{session_line}");
    let session = cookie_of(&r, "yz_session").unwrap();
    let cookies = format!("yz_csrf={csrf}; yz_session={session}");

    let home = page(&app, "/home", &cookies, "en").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("Hello, Mei"));
    assert!(home.text.contains("Access log"));
    let home_zh = page(&app, "/home", &cookies, "zh-CN").await;
    assert!(home_zh.text.contains("你好, Mei"), "{}", home_zh.text);

    let log = page(&app, "/access-log", &cookies, "en").await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.text.contains("Who accessed my data"));
    assert!(log.text.contains("Nobody has read your data yet."));
}

#[tokio::test]
async fn forms_without_the_csrf_token_change_nothing() {
    let app = spawn_app().await;
    let r =
        form(&app, "/register", "yz_csrf=aaaa", "csrf=bbbb&name=X&login=x%40example.org&password=correct+horse").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = form(&app, "/register", "", "name=X&login=x%40example.org&password=correct+horse").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post("/api/v1/auth/login", None, serde_json::json!({"login": "x@example.org", "password": "correct horse"}))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn pages_need_a_session_and_the_language_switch_sticks() {
    let app = spawn_app().await;
    let r = page(&app, "/home", "", "en").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers.get("location").unwrap(), "/login");
    let r = page(&app, "/lang?to=zh&back=/login", "", "en").await;
    assert_eq!(r.headers.get("location").unwrap(), "/login");
    let lang = cookie_of(&r, "lang").unwrap();
    let r = page(&app, "/login", &format!("lang={lang}"), "en").await;
    assert!(r.text.contains("登录"), "{}", r.text);
    // No open redirect.
    let r = page(&app, "/lang?to=en&back=//evil.example", "", "en").await;
    assert_eq!(r.headers.get("location").unwrap(), "/");
}

#[tokio::test]
async fn choosing_a_city_at_registration_shows_its_services() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (city_id, _) = app.city_and_org(&admin, "Suzhou 苏州", "Suzhou Water", "city_department").await;
    let first = page(&app, "/register", "", "en").await;
    assert!(first.text.contains("Suzhou 苏州"), "the form offers the cities");
    let csrf = cookie_of(&first, "yz_csrf").unwrap();
    // An unknown city creates no account.
    let r = form(
        &app,
        "/register",
        &format!("yz_csrf={csrf}"),
        &format!("csrf={csrf}&name=Su&login=su%40example.org&password=correct+horse&city_id=nowhere"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = form(
        &app,
        "/register",
        &format!("yz_csrf={csrf}"),
        &format!("csrf={csrf}&name=Su&login=su%40example.org&password=correct+horse&city_id={city_id}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let session = cookie_of(&r, "yz_session").unwrap();
    let home = page(&app, "/home", &format!("yz_csrf={csrf}; yz_session={session}"), "en").await;
    assert!(home.text.contains("Suzhou 苏州"));
    assert!(home.text.contains("data-service=\"wallet\""), "the city offers the wallet");
}

/// Log in on the page; returns the cookie header.
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

#[tokio::test]
async fn the_platform_admin_page_creates_cities_orgs_and_staff() {
    let app = spawn_app().await;
    app.admin().await;
    let (staff_id, _) = app.user("clerk@example.org", "Clerk").await;
    let cookies = page_login(&app, "root@example.org").await;
    let csrf = session_csrf(&app, &cookies).await;

    let r = page(&app, "/admin", &cookies, "en").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("No city yet"));
    let r =
        form(&app, "/admin/cities", &cookies, &format!("csrf={csrf}&name=Ningbo&svc_wallet=on&svc_health=on")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let cities = app.state.identity.list_cities().await.unwrap();
    assert_eq!(cities.len(), 1);
    assert_eq!(cities[0].services, vec!["wallet".to_string(), "health".to_string()]);
    let city_id = &cities[0].id;
    let r =
        form(&app, "/admin/orgs", &cookies, &format!("csrf={csrf}&city_id={city_id}&kind=hospital&name=Ningbo+No.2"))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Ningbo No.2"));
    let org = app.state.identity.list_orgs(Some(city_id)).await.unwrap().remove(0);
    let r = form(
        &app,
        "/admin/staff",
        &cookies,
        &format!("csrf={csrf}&org_id={}&login=clerk%40example.org&role=operator", org.id),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let memberships = app.state.identity.memberships(&staff_id).await.unwrap();
    assert_eq!(memberships.len(), 1);
    // Bad input is shown, and changes nothing.
    let r = form(&app, "/admin/orgs", &cookies, &format!("csrf={csrf}&city_id={city_id}&kind=bank&name=X")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.state.identity.list_orgs(Some(city_id)).await.unwrap().len(), 1);
    // In Chinese too.
    let r = page(&app, "/admin", &cookies, "zh-CN").await;
    assert!(r.text.contains("平台管理") && r.text.contains("医院"));

    // Someone else: no page, no effect, and forms need the CSRF token.
    let clerk = page_login(&app, "clerk@example.org").await;
    assert_eq!(page(&app, "/admin", &clerk, "en").await.status, StatusCode::FORBIDDEN);
    let clerk_csrf = session_csrf(&app, &clerk).await;
    let r = form(&app, "/admin/cities", &clerk, &format!("csrf={clerk_csrf}&name=Rogue")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = form(&app, "/admin/cities", &cookies, "csrf=wrong&name=Rogue").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.state.identity.list_cities().await.unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_an_account_takes_the_confirmation_word_of_either_language() {
    let app = spawn_app().await;
    app.user("del@example.org", "Del").await;
    let cookies = page_login(&app, "del@example.org").await;
    let csrf = session_csrf(&app, &cookies).await;
    let en = page(&app, "/account/delete", &cookies, "en").await;
    assert!(en.text.contains("Type DELETE to confirm"), "{}", en.text);
    let zh_cookies = format!("{cookies}; lang=zh-CN");
    let zh = page(&app, "/account/delete", &zh_cookies, "en").await;
    assert!(zh.text.contains("输入“注销”确认"), "{}", zh.text);
    assert!(!zh.text.contains("DELETE"), "a Chinese reader is not asked for an English word");

    let r = form(&app, "/account/delete", &zh_cookies, &format!("csrf={csrf}&confirm=DELET")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("请准确输入“注销”以确认"), "{}", r.text);
    let r = form(&app, "/account/delete", &cookies, &format!("csrf={csrf}&confirm=delete+me")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("Type DELETE exactly to confirm"), "{}", r.text);
    // The Chinese word, typed on the Chinese page.
    let r = form(&app, "/account/delete", &zh_cookies, &format!("csrf={csrf}&confirm=%E6%B3%A8%E9%94%80")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("你的账号已注销。"), "{}", r.text);
    let r = app
        .post("/api/v1/auth/login", None, serde_json::json!({"login": "del@example.org", "password": "correct horse"}))
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

#[tokio::test]
async fn the_access_log_and_profile_show_what_was_read_and_roles_in_words() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("13700000001", "Zhao").await;
    let r = app
        .post(
            "/api/v1/me/real-name",
            Some(&token),
            serde_json::json!({"name": "Zhao", "id_number": id_number("33010619900307123")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (_, admin) = app.admin().await;
    let (_, org) = app.city_and_org(&admin, "Hangzhou", "First Hospital", "hospital").await;
    let (staff_id, staff) = app.user("doc@example.org", "Dr Chen").await;
    app.add_staff(&admin, &org, &staff_id, "operator").await;
    let path = format!("/api/v1/orgs/{org}/residents/{user_id}?reason=registration&include_id_number=true");
    assert_eq!(app.get(&path, Some(&staff)).await.status, StatusCode::OK);

    let cookies = page_login(&app, "13700000001").await;
    let en = page(&app, "/access-log", &cookies, "en").await;
    assert!(en.text.contains("What: Identity number"), "{}", en.text);
    assert!(!en.text.contains("identity_number"), "{}", en.text);
    let zh = page(&app, "/access-log", &cookies, "zh-CN").await;
    assert!(zh.text.contains("内容: 身份证号"), "{}", zh.text);

    let doc = page_login(&app, "doc@example.org").await;
    let en = page(&app, "/profile", &doc, "en").await;
    assert!(en.text.contains("First Hospital (Operator)"), "{}", en.text);
    let zh = page(&app, "/profile", &doc, "zh-CN").await;
    assert!(zh.text.contains("First Hospital (操作员)"), "{}", zh.text);
}

#[tokio::test]
async fn every_page_shows_the_sandbox_band_in_both_languages() {
    let app = spawn_app().await;
    assert!(app.state.pay.gateway_is_sandbox());
    let (_, token) = app.user("band@example.org", "Band").await;
    let w = app.get("/api/v1/wallet", Some(&token)).await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.text);
    assert_eq!(w.body["sandbox"], true);
    let cookies = page_login(&app, "band@example.org").await;
    for (lang, text) in [("en", "Sandbox: no real money moves"), ("zh-CN", "沙箱环境：不会发生真实资金往来")]
    {
        for (path, cookies) in
            [("/login", ""), ("/wallet", cookies.as_str()), ("/home", cookies.as_str()), ("/nowhere", "")]
        {
            let r = page(&app, path, cookies, lang).await;
            let band = format!("<div class=\"band\" role=\"note\" id=\"notice-band\">{text}</div>");
            assert!(r.text.contains(&band), "{path} in {lang}: {}", r.text);
            // At the top: before the header.
            assert!(r.text.find(&band) < r.text.find("<header"), "{path} in {lang}");
        }
    }
    let css = app.get("/static/app.css", None).await;
    assert!(css.text.contains(".band {"), "the band is styled");
}

/// Pages link their stylesheet and script under names with the content's
/// hash, served for a year as immutable; the plain names stay, for an hour.
#[tokio::test]
async fn static_files_have_versioned_names_and_long_lifetimes() {
    let app = spawn_app().await;
    let login = page(&app, "/login", "", "en").await;
    let href = |attr: &str, ext: &str| {
        let at = login.text.find(&format!("{attr}=\"/static/app.")).expect("a versioned link") + attr.len() + 2;
        let end = login.text[at..].find('"').unwrap();
        let h = login.text[at..at + end].to_string();
        assert!(h.ends_with(ext) && h.len() == "/static/app.".len() + 12 + ext.len(), "{h}");
        h
    };
    for (h, plain) in [(href("href", ".css"), "/static/app.css"), (href("src", ".js"), "/static/app.js")] {
        let r = app.get(&h, None).await;
        assert_eq!(r.status, StatusCode::OK, "{h}");
        assert_eq!(r.headers.get("cache-control").unwrap(), "public, max-age=31536000, immutable");
        let p = app.get(plain, None).await;
        assert_eq!(p.text, r.text);
        assert_eq!(p.headers.get("cache-control").unwrap(), "public, max-age=3600");
    }
    // The tab's icon.
    assert!(login.text.contains("<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"));
    let icon = app.get("/static/favicon.svg", None).await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.headers.get("content-type").unwrap(), "image/svg+xml");
    assert!(icon.text.starts_with("<svg ") && icon.text.contains("站"));
}

#[tokio::test]
async fn the_operator_reads_the_sandbox_outbox_in_both_languages_and_nobody_else_does() {
    let app = spawn_app().await;
    app.admin().await;
    app.user("resident@example.org", "Resident").await;
    app.state
        .notify
        .send_sms("+86 138 0013 8000", "zh-CN", &yizhan_core::Msg::new("notify.outbox.kind.sms"))
        .await
        .unwrap();
    let admin = page_login(&app, "root@example.org").await;

    let r = page(&app, "/admin/outbox", &admin, "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Sandbox: nothing was delivered"), "{}", r.text);
    assert!(r.text.contains("+8613800138000") && r.text.contains("短信"), "{}", r.text);
    assert!(r.text.contains("Text message"), "{}", r.text);
    let r = page(&app, "/admin/outbox", &admin, "zh-CN").await;
    assert!(r.text.contains("沙盒：以下消息均未实际发送"), "{}", r.text);

    let resident = page_login(&app, "resident@example.org").await;
    let r = page(&app, "/admin/outbox", &resident, "en").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!r.text.contains("+8613800138000"));
    assert_eq!(page(&app, "/admin/outbox", "", "en").await.status, StatusCode::SEE_OTHER);
}
