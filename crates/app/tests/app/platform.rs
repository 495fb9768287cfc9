use crate::common::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_metrics_and_openapi() {
    let app = spawn_app().await;
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, serde_json::json!({"status": "ok", "sandbox": true}), "the sandbox gateway is on");
    let r = crate::hardening::metrics_from(&app, "127.0.0.1", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("# TYPE yizhan_http_requests_total counter"), "{}", r.text);
    assert!(r.text.contains("route=\"/healthz\""), "{}", r.text);
    assert!(r.text.contains("# TYPE yizhan_ledger_batches_total counter"), "{}", r.text);
    let r = app.get("/api/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["paths"]["/api/v1/auth/register"]["post"].is_object());
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());

    // The document says what is sent: problems as problem+json, the errors
    // every kind of route may answer, the key a payment needs.
    let ops = yizhan_app::document::operations(&r.body);
    assert!(ops.len() >= 40, "{ops:?}");
    for (method, path) in &ops {
        let op = &r.body["paths"][path.as_str()][method.to_lowercase().as_str()];
        let problem = &op["responses"]["500"]["content"]["application/problem+json"];
        assert!(problem.is_object(), "{method} {path} documents its 500 as a problem");
        for (code, resp) in op["responses"].as_object().unwrap() {
            if code.starts_with('4') || code.starts_with('5') {
                assert!(resp["content"]["application/json"].is_null(), "{method} {path} {code} is problem+json");
            }
        }
    }
    let wallet = &r.body["components"]["schemas"]["WalletResp"];
    assert_eq!(wallet["properties"]["sandbox"]["type"], "boolean", "{wallet}");
    assert!(wallet["required"].as_array().unwrap().iter().any(|f| f == "sandbox"), "{wallet}");
    let topup = &r.body["paths"]["/api/v1/wallet/topup"]["post"];
    let key = topup["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "Idempotency-Key").unwrap();
    assert_eq!((key["in"].as_str(), key["required"].as_bool()), (Some("header"), Some(true)));
    for code in ["400", "401", "409", "413", "415", "422"] {
        assert!(topup["responses"][code].is_object(), "topup documents {code}");
    }
    let me = &r.body["paths"]["/api/v1/me"]["get"];
    assert!(me["parameters"].is_null() || !me["parameters"].to_string().contains("Idempotency-Key"));
    assert!(r.body["paths"]["/api/v1/orgs/{id}/members"]["get"]["responses"]["403"].is_object());
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for path in ["/", "/login", "/api/v1/me", "/healthz"] {
        let r = app.get(path, None).await;
        let h = &r.headers;
        assert!(h.get("content-security-policy").unwrap().to_str().unwrap().contains("default-src 'self'"), "{path}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
        assert!(h.get("referrer-policy").is_some());
        assert!(h.get("x-request-id").is_some(), "{path}");
    }
}

#[tokio::test]
async fn unknown_api_routes_are_problems_in_the_callers_language() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/nothing-here", None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let req = Request::get("/api/v1/me").header("accept-language", "zh-CN,zh;q=0.9").body(Body::empty()).unwrap();
    let r = app.request(req).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(r.body["title"], "请先登录");
}

#[tokio::test]
async fn a_nul_character_is_refused_naming_where_it_is() {
    let app = spawn_app().await;
    let (_, token) = app.user("nul@example.org", "Nul").await;
    // In a JSON body: PostgreSQL cannot store it, so it is refused before any handler.
    let r = app
        .call_with(
            Method::POST,
            "/api/v1/merchant/charge",
            Some(&token),
            Some(json!({"org_id": "a\u{0}b", "code": "123", "amount": 100})),
            &[("idempotency-key", "nul-1")],
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "org_id");
    let r = app.post("/api/v1/auth/login", None, json!({"login": "x", "pass\u{0}word": "y"})).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // In a path or a query.
    let r = app.get("/api/v1/red-packets/ab%00cd", Some(&token)).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["fields"][0]["field"], "path");
    let r = app.get("/api/v1/wallet/transactions?cursor=%00", Some(&token)).await;
    assert_eq!(r.body["fields"][0]["field"], "query");
}

/// Every home-screen tile names an icon the kit draws (inline SVG, never an
/// emoji that some phones show as an empty box), and the home page draws it.
#[tokio::test]
async fn every_tile_has_a_drawn_icon() {
    let app = spawn_app().await;
    for t in yizhan_kit::room::tiles() {
        assert!(yizhan_kit::icons::NAMES.contains(&t.icon), "tile {} has icon {:?}", t.key, t.icon);
    }
    let (_, token) = app.user("icons@example.org", "Icons").await;
    let home = page(&app, "/home", &format!("yz_session={token}"), "en").await;
    assert!(home.text.contains("<span class=\"icon\" aria-hidden=\"true\"><svg "), "{}", home.text);
}
