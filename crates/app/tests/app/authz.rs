//! Walks the authorization table: every route, every kind of caller.

use crate::common::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use yizhan_core::Clock;
use yizhan_kit::authz::Access;

struct World {
    app: TestApp,
    admin: String,
    org_a: String,
    org_b: String,
    subject_id: String,
    n: std::sync::atomic::AtomicUsize,
}

impl World {
    async fn fresh(&self, prefix: &str) -> (String, String) {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.app.user(&format!("{prefix}{n}@example.org"), prefix).await
    }

    /// A fresh staff member of `org` with `role`.
    async fn staff(&self, org: &str, role: &str) -> String {
        let (id, token) = self.fresh(role).await;
        self.app.add_staff(&self.admin, org, &id, role).await;
        token
    }

    fn path(&self, p: &str) -> String {
        p.replace("{id}", &self.org_a)
            .replace("{user_id}", &self.subject_id)
            .replace("{dispute_id}", "no-such-dispute")
            .replace("{record_id}", "no-such-record")
            .replace("{plate}", "%E6%B5%99A00000")
    }

    async fn body(&self, method: &str, path: &str) -> Option<Value> {
        if method == "GET" || method == "DELETE" {
            return None;
        }
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(match path {
            "/api/v1/auth/register" => {
                json!({"login": format!("reg{n}@example.org"), "password": "correct horse", "name": "R"})
            }
            "/api/v1/auth/login" => json!({"login": "nobody@example.org", "password": "correct horse"}),
            "/api/v1/me/real-name" => {
                json!({"name": "Q", "id_number": id_number(&format!("1101051990010{:04}", n % 10000))})
            }
            "/api/v1/me/city" => json!({"city_id": "nowhere"}),
            "/api/v1/cities" => json!({"name": format!("City {n}"), "services": []}),
            "/api/v1/orgs" => json!({"city_id": "nowhere", "kind": "merchant", "name": format!("Org {n}")}),
            "/api/v1/orgs/{id}/members" => {
                let (uid, _) = self.fresh("member").await;
                json!({"user_id": uid, "role": "operator"})
            }
            "/api/v1/wallet/topup" | "/api/v1/wallet/withdraw" => json!({"amount": 100}),
            "/api/v1/transfers" => json!({"to": "subject@example.org", "amount": 100, "memo": "authz"}),
            "/api/v1/merchant/charge" => {
                json!({"org_id": self.org_a, "code": "880000000000000000", "amount": 100})
            }
            "/api/v1/qr/preview" => json!({"payload": "000201"}),
            "/api/v1/qr/pay" => json!({"payload": "000201", "amount": 100}),
            "/api/v1/red-packets" => json!({"count": 2, "amount": 200, "mode": "lucky"}),
            "/api/v1/orgs/{id}/bills" => json!({
                "plate": "浙A00000", "kind": "fee", "amount": 100,
                "due_at": self.app.clock.now_ms() + 86_400_000, "description": "authz"
            }),
            "/api/v1/me/vehicles" => json!({
                "plate": format!("浙B{:05}", n % 100_000),
                "certificate": yizhan_identity::verifier::sandbox::VALID_CERTIFICATE
            }),
            "/api/v1/me/disputes" => json!({
                "kind": "id_number", "name": "Q", "id_number": id_number(&format!("1101051990020{:04}", n % 10000))
            }),
            "/api/v1/orgs/{id}/counter/verifications" => json!({
                "user_id": self.subject_id, "name": "Q",
                "id_number": id_number(&format!("1101051990030{:04}", n % 10000))
            }),
            "/api/v1/orgs/{id}/counter/vehicles" => json!({
                "user_id": self.subject_id, "plate": format!("浙C{:05}", n % 100_000), "certificate": "330100000000"
            }),
            "/api/v1/orgs/{id}/disputes/{dispute_id}" => json!({"decision": "reject"}),
            "/api/v1/gateway/sandbox/notify" => json!({
                "id": format!("authz-{n}"), "kind": "charge.failed", "reference": "r", "amount_fen": 1
            }),
            _ => json!({}),
        })
    }

    /// The status, or 401 only when the refusal is about the missing or bad token itself.
    async fn call(&self, method: &str, path: &str, token: Option<&str>) -> StatusCode {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let body = self.body(method, path).await;
        // Every call carries a fresh Idempotency-Key (money routes require one), and the
        // gateway's notification is signed as the gateway would sign it.
        let key = format!("authz-{}", self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        let sig = body.as_ref().map(|b| self.app.gateway.sign(b.to_string().as_bytes())).unwrap_or_default();
        let headers = [("idempotency-key", key.as_str()), ("x-sandbox-signature", sig.as_str())];
        let r = self.app.call_with(m, &self.path(path), token, body, &headers).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(r.body["detail"], "There is no such address in the API", "{method} {path} is not routed");
        if r.status == StatusCode::UNAUTHORIZED && r.body["code"] != "unauthorized" {
            // e.g. wrong password on the login route: answered, not refused.
            return StatusCode::OK;
        }
        r.status
    }
}

fn denied(s: StatusCode) -> bool {
    s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED
}

#[tokio::test]
async fn every_route_enforces_its_access_rule() {
    let app = spawn_app().await;
    let (_, admin) = app.admin().await;
    let (_, org_a) = app.city_and_org(&admin, "Authz City", "Org A", "merchant").await;
    let (_, org_b) = app.city_and_org(&admin, "Authz City", "Org B", "hospital").await;
    let (subject_id, _) = app.user("subject@example.org", "Subject").await;
    let w = World { app, admin, org_a, org_b, subject_id, n: Default::default() };

    for rule in yizhan_app::joined().unwrap().access {
        let (m, p) = (rule.method, rule.path);
        // Nobody: only public routes answer without a token.
        let s = w.call(m, p, None).await;
        if rule.access == Access::Public {
            assert!(!denied(s), "{m} {p} should be public, got {s}");
            continue;
        }
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p} without a token");

        let resident = w.fresh("resident").await.1;
        let s = w.call(m, p, Some(&resident)).await;
        match rule.access {
            Access::Resident => assert!(!denied(s), "{m} {p}: a resident was refused ({s})"),
            _ => assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}: a resident got through"),
        }
        if rule.access == Access::Resident {
            continue;
        }

        // Staff of another organisation never get through.
        let other_admin = w.staff(&w.org_b, "admin").await;
        assert_eq!(w.call(m, p, Some(&other_admin)).await, StatusCode::FORBIDDEN, "{m} {p}: staff of org B");

        let operator = w.staff(&w.org_a, "operator").await;
        let s = w.call(m, p, Some(&operator)).await;
        match rule.access {
            Access::OrgStaff => assert!(!denied(s), "{m} {p}: an operator of org A was refused ({s})"),
            _ => assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}: an operator of org A got through"),
        }
        let org_admin = w.staff(&w.org_a, "admin").await;
        let s = w.call(m, p, Some(&org_admin)).await;
        match rule.access {
            Access::OrgStaff | Access::OrgAdmin => assert!(!denied(s), "{m} {p}: an admin of org A was refused ({s})"),
            _ => assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}: an admin of org A got through"),
        }
        let s = w.call(m, p, Some(&w.admin)).await;
        assert!(!denied(s), "{m} {p}: the platform admin was refused ({s})");
    }
}

#[tokio::test]
async fn the_table_lists_exactly_the_documented_routes() {
    let app = spawn_app().await;
    let doc = app.get("/api/openapi.json", None).await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut table: Vec<String> =
        yizhan_app::joined().unwrap().access.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    table.sort();
    assert_eq!(documented, table);
    assert!(table.iter().all(|r| r.contains("/api/v1/")));
}

#[tokio::test]
async fn exactly_the_routes_marked_as_money_require_an_idempotency_key() {
    let app = spawn_app().await;
    let (_, token) = app.user("keyless@example.org", "Keyless").await;
    let rules = yizhan_app::joined().unwrap().access;
    let mut money = 0;
    // Not logging out: the check needs its session.
    for rule in
        rules.iter().filter(|r| r.method == "POST" && r.access != Access::Public && !r.path.ends_with("/logout"))
    {
        let path = rule
            .path
            .replace("{id}", "01a2b3c4d5e6f7a8b9c0d1e2f3a4")
            .replace("{user_id}", "01a2b3c4d5e6f7a8b9c0d1e2f3a5");
        let r = app.call(Method::POST, &path, Some(&token), Some(json!({}))).await;
        let asked = r.body["code"] == "idempotency_key_required";
        assert_eq!(asked, rule.idempotent, "POST {} (money: {}): {}", rule.path, rule.idempotent, r.text);
        money += usize::from(rule.idempotent);
    }
    assert!(money >= 9, "only {money} money routes");
}
