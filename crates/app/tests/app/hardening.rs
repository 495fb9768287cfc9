//! The server's guards: a time limit on every request, metrics for the
//! operator only with bounded labels, no caching of an export, and CSRF
//! tokens bound to the session with `__Host-` cookies over HTTPS.

use crate::common::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use yizhan_app::WebConfig;

/// `/metrics` asked from this address, with this bearer token.
pub async fn metrics_from(app: &TestApp, ip: &str, token: Option<&str>) -> Resp {
    let addr = SocketAddr::new(ip.parse().unwrap(), 40000);
    let mut b = Request::get("/metrics").extension(ConnectInfo(addr));
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    app.request(b.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn metrics_are_for_loopback_listed_addresses_or_the_token() {
    let app = spawn_app_with(WebConfig {
        metrics_allow: vec!["10.0.0.7".parse().unwrap()],
        metrics_token: Some("scrape-secret".into()),
        ..Default::default()
    })
    .await;
    for (ip, token, ok) in [
        ("127.0.0.1", None, true),
        ("::1", None, true),
        ("::ffff:127.0.0.1", None, true),
        ("10.0.0.7", None, true),
        ("10.0.0.8", None, false),
        ("203.0.113.9", None, false),
        ("203.0.113.9", Some("scrape-secret"), true),
        ("203.0.113.9", Some("scrape-secreT"), false),
        ("203.0.113.9", Some(""), false),
    ] {
        let r = metrics_from(&app, ip, token).await;
        let want = if ok { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(r.status, want, "{ip} {token:?}");
        if ok {
            assert!(r.text.contains("yizhan_http_requests_total"), "{ip}");
        } else {
            assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
        }
    }
    // An in-process caller with no socket address is nobody in particular.
    assert_eq!(app.get("/metrics", None).await.status, StatusCode::FORBIDDEN);
    // Without a token configured, an outsider's bearer token opens nothing.
    let plain = spawn_app().await;
    assert_eq!(metrics_from(&plain, "203.0.113.9", Some("")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(metrics_from(&plain, "203.0.113.9", Some("x")).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_thousand_random_paths_and_methods_make_a_handful_of_label_sets() {
    let app = spawn_app().await;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..1_000 {
        let n = next();
        let method = match i % 4 {
            0 => Method::GET,
            1 => Method::POST,
            2 => Method::from_bytes(format!("X{n:X}").as_bytes()).unwrap(),
            _ => Method::DELETE,
        };
        let path = match i % 3 {
            0 => format!("/nowhere/{n:x}"),
            1 => format!("/api/v1/{n:x}/{i}"),
            _ => format!("/static/{n:x}.css"),
        };
        let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        app.request(req).await;
    }
    let r = metrics_from(&app, "127.0.0.1", None).await;
    let sets: BTreeSet<&str> = r
        .text
        .lines()
        .filter(|l| l.starts_with("yizhan_http_requests_total{"))
        .map(|l| l.split('}').next().unwrap())
        .collect();
    assert!(sets.len() <= 8, "label sets: {sets:#?}");
    assert!(sets.iter().all(|s| !s.contains("nowhere") && !s.contains("/api/v1/")), "{sets:#?}");
    assert!(sets.iter().any(|s| s.contains("method=\"other\"")), "{sets:#?}");
}

#[tokio::test]
async fn a_slow_request_is_answered_503_as_a_problem() {
    let slow = Router::new()
        .route("/api/v1/slow", get(|| async { tokio::time::sleep(Duration::from_secs(30)).await }))
        .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(30)).await }))
        .route("/fast", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(Duration::from_millis(50), yizhan_kit::security::timeout));
    let r = slow.clone().oneshot(Request::get("/api/v1/slow").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get("content-type").unwrap(), "application/problem+json");
    let body = http_body_util::BodyExt::collect(r.into_body()).await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "request_timeout");
    let r = slow.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = slow.oneshot(Request::get("/fast").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The whole app has the layer, at its configured limit.
    assert_eq!(WebConfig::default().request_timeout_ms, 30_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_never_abandons_money_work_half_done() {
    let s = spawn().await;
    let done = Arc::new(AtomicUsize::new(0));
    let idem = s.state.idempotency.clone();
    let d = done.clone();
    let app = Router::new()
        .route(
            "/api/v1/pay",
            axum::routing::post(move || {
                let (idem, d) = (idem.clone(), d.clone());
                async move {
                    yizhan_kit::idem::run(&idem, "user-1", "key-1", "hash-1", async move {
                        // Work that outlives the request's time limit.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        d.fetch_add(1, Ordering::SeqCst);
                        StatusCode::CREATED
                    })
                    .await
                }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(Duration::from_millis(50), yizhan_kit::security::timeout));
    let r = app.clone().oneshot(Request::post("/api/v1/pay").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The work runs on in its own task to the end, once, and its answer is stored.
    for _ in 0..200 {
        if done.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(done.load(Ordering::SeqCst), 1);
    let mut replay = None;
    for _ in 0..200 {
        let r = yizhan_kit::idem::run(&s.state.idempotency, "user-1", "key-1", "hash-1", async {
            StatusCode::INTERNAL_SERVER_ERROR
        })
        .await;
        if r.status() != StatusCode::CONFLICT {
            replay = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replay = replay.expect("the answer is stored");
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(done.load(Ordering::SeqCst), 1, "the work ran once");
}

#[tokio::test]
async fn the_export_is_never_cached() {
    let app = spawn_app().await;
    let (_, t) = app.user("exp@example.org", "Exp").await;
    let r = app.get("/api/v1/me/export", Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let r = page(&app, "/export", &format!("yz_session={t}"), "en").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
}

/// Log in on the page over plain HTTP: (cookie header, the anonymous CSRF cookie).
async fn login_page(app: &TestApp, login: &str) -> (String, String) {
    let first = page(app, "/login", "", "en").await;
    let anon = cookie_of(&first, "yz_csrf").unwrap();
    assert_eq!(unmasked(&csrf_of(&first).unwrap()), anon, "an anonymous browser's token is its cookie");
    // Masked: a compressed page never carries the secret's own bytes (BREACH).
    assert!(!first.text.contains(&anon));
    let r = form(
        app,
        "/login",
        &format!("yz_csrf={anon}"),
        &format!("csrf={anon}&login={}&password=correct+horse", login.replace('@', "%40")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    (format!("yz_csrf={anon}; yz_session={}", cookie_of(&r, "yz_session").unwrap()), anon)
}

#[tokio::test]
async fn a_logged_in_browsers_csrf_token_is_bound_to_its_session() {
    let app = spawn_app().await;
    app.user("a@example.org", "A").await;
    app.user("b@example.org", "B").await;
    let (cookies_a, anon_a) = login_page(&app, "a@example.org").await;
    let (cookies_b, _) = login_page(&app, "b@example.org").await;
    let token_a = session_csrf(&app, &cookies_a).await;
    let token_b = session_csrf(&app, &cookies_b).await;
    assert_ne!(unmasked(&token_a), anon_a, "logged in, the token is not the cookie's");
    assert_ne!(unmasked(&token_a), unmasked(&token_b));
    // Masked with a fresh pad on every page, the same token underneath for the session.
    let again = session_csrf(&app, &cookies_a).await;
    assert_ne!(again, token_a);
    assert_eq!(unmasked(&again), unmasked(&token_a), "stable for the session");

    let city = |csrf: &str| format!("csrf={csrf}&city_id=");
    // The double-submit cookie alone no longer passes, nor another session's token.
    for bad in [anon_a.as_str(), token_b.as_str(), "", "x"] {
        let r = form(&app, "/profile/city", &cookies_a, &city(bad)).await;
        assert_problem(&r, StatusCode::FORBIDDEN, "csrf_failed");
    }
    // A cookie the attacker chose (their own csrf cookie) changes nothing for a session.
    let session_a = cookies_a.split("; ").find(|c| c.starts_with("yz_session=")).unwrap();
    let planted = format!("yz_csrf={}; {session_a}", "a".repeat(48));
    let r = form(&app, "/profile/city", &planted, &city(&"a".repeat(48))).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "csrf_failed");
    // The page's own token is accepted.
    let r = form(&app, "/profile/city", &cookies_a, &city(&token_a)).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // Logging out needs the session's token too.
    let r = form(&app, "/logout", &cookies_a, &format!("csrf={anon_a}")).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "csrf_failed");
    let r = form(&app, "/logout", &cookies_a, &format!("csrf={token_a}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
}

#[tokio::test]
async fn a_cookie_sent_twice_counts_as_absent() {
    let app = spawn_app().await;
    app.user("twice@example.org", "Twice").await;
    let (cookies, anon) = login_page(&app, "twice@example.org").await;
    let session = cookies.split("; ").find(|c| c.starts_with("yz_session=")).unwrap();
    // A second session cookie planted beside the real one: no session at all.
    let r = page(&app, "/home", &format!("{session}; yz_session=planted"), "en").await;
    assert_eq!((r.status, r.headers.get("location").unwrap().to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));
    // Two CSRF cookies: neither is the token.
    let other = "b".repeat(48);
    for c in [format!("yz_csrf={anon}; yz_csrf={other}"), format!("yz_csrf={other}; yz_csrf={anon}")] {
        let r =
            form(&app, "/login", &c, &format!("csrf={anon}&login=twice%40example.org&password=correct+horse")).await;
        assert_problem(&r, StatusCode::FORBIDDEN, "csrf_failed");
        let r =
            form(&app, "/login", &c, &format!("csrf={other}&login=twice%40example.org&password=correct+horse")).await;
        assert_problem(&r, StatusCode::FORBIDDEN, "csrf_failed");
    }
    let mut h = axum::http::HeaderMap::new();
    h.append("cookie", "a=1; b=2".parse().unwrap());
    h.append("cookie", "a=3".parse().unwrap());
    assert_eq!(yizhan_kit::extract::cookie(&h, "a"), None);
    assert_eq!(yizhan_kit::extract::cookie(&h, "b").as_deref(), Some("2"));
}

#[tokio::test]
async fn over_https_cookies_are_host_prefixed_and_transport_is_strict() {
    let app = spawn_app_with(WebConfig { secure_cookies: true, ..Default::default() }).await;
    app.user("tls@example.org", "Tls").await;
    let first = page(&app, "/login", "", "en").await;
    assert_eq!(first.headers.get("strict-transport-security").unwrap(), "max-age=31536000");
    assert!(cookie_of(&first, "yz_csrf").is_none(), "no plain name over HTTPS");
    let anon = cookie_of(&first, "__Host-yz_csrf").expect("a __Host- csrf cookie");
    let line = set_cookie_line(&first, "__Host-yz_csrf");
    assert!(line.contains("; Secure") && line.contains("Path=/") && !line.contains("Domain"), "{line}");

    // A plain-named cookie (which a subdomain or an HTTP page could set) is not read.
    let r = form(
        &app,
        "/login",
        &format!("yz_csrf={anon}"),
        &format!("csrf={anon}&login=tls%40example.org&password=correct+horse"),
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "csrf_failed");
    let r = form(
        &app,
        "/login",
        &format!("__Host-yz_csrf={anon}"),
        &format!("csrf={anon}&login=tls%40example.org&password=correct+horse"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(cookie_of(&r, "yz_session").is_none());
    let session = cookie_of(&r, "__Host-yz_session").expect("a __Host- session cookie");
    let line = set_cookie_line(&r, "__Host-yz_session");
    assert!(line.contains("; Secure") && line.contains("Path=/") && !line.contains("Domain"), "{line}");

    let cookies = format!("__Host-yz_csrf={anon}; __Host-yz_session={session}");
    let home = page(&app, "/home", &cookies, "en").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.text);
    assert_eq!(home.headers.get("strict-transport-security").unwrap(), "max-age=31536000");
    assert_eq!(page(&app, "/home", &format!("yz_session={session}"), "en").await.status, StatusCode::SEE_OTHER);
    let token = csrf_of(&home).unwrap();
    assert_ne!(token, anon);
    let r = form(&app, "/logout", &cookies, &format!("csrf={token}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);

    let r = page(&app, "/lang?to=zh&back=/login", "", "en").await;
    let line = set_cookie_line(&r, "__Host-lang");
    assert!(line.contains("; Secure") && line.contains("Path=/"), "{line}");
    let r = page(&app, "/login", "__Host-lang=zh", "en").await;
    assert!(r.text.contains("登录"));
    // The API answers carry the header too.
    let r = app.get("/api/v1/me", None).await;
    assert_eq!(r.headers.get("strict-transport-security").unwrap(), "max-age=31536000");
}

/// Pages and JSON are compressed for a client that asks (and only then);
/// problems are still rendered in the request's language underneath.
#[tokio::test]
async fn answers_are_compressed_for_a_client_that_asks() {
    let app = spawn_app().await;
    let ask = |path: &str, enc: Option<&str>| {
        let mut b = axum::http::Request::builder().uri(path).header("accept-language", "zh-CN");
        if let Some(e) = enc {
            b = b.header("accept-encoding", e);
        }
        b.body(axum::body::Body::empty()).unwrap()
    };
    let r = app.request(ask("/login", Some("br, gzip"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("content-encoding").unwrap(), "br");
    let r = app.request(ask("/login", Some("gzip"))).await;
    assert_eq!(r.headers.get("content-encoding").unwrap(), "gzip");
    let r = app.request(ask("/login", None)).await;
    assert!(r.headers.get("content-encoding").is_none());
    assert!(r.text.contains("<html"));
    // A problem, compressed: the localised body underneath.
    let r = app.request(ask("/api/v1/wallet", Some("gzip"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers.get("content-encoding").unwrap(), "gzip");
    let r = app.request(ask("/api/v1/wallet", None)).await;
    assert_eq!(r.headers.get("content-type").unwrap(), "application/problem+json");
}
