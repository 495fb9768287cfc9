//! The real application on a fresh test database (SQLite, or PostgreSQL
//! when YIZHAN_TEST_DATABASE_URL is set), driven in-process: what every
//! room's HTTP tests and the app's journeys start from, with the helpers
//! they share.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use crate::state::Wiring;
use crate::{Services, WebConfig};
use axum::http::header;

use crate::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tower::ServiceExt;
use yizhan_core::testing::TestDb;
use yizhan_core::ManualClock;

pub struct Spawned {
    pub router: axum::Router,
    pub state: AppState,
    /// The funding gateway behind Pay (signs notifications in tests).
    pub gateway: Arc<yizhan_pay::SandboxGateway>,
    pub clock: Arc<ManualClock>,
    pub db: TestDb,
    /// The sandbox outbox (codes, text messages, mail).
    pub outbox: std::path::PathBuf,
}

/// Build every service on a fresh database, with fast password hashing and a
/// manual clock, and the router over them.
pub async fn spawn() -> Spawned {
    spawn_with(WebConfig::default()).await
}

/// `spawn` with these web settings.
pub async fn spawn_with(config: WebConfig) -> Spawned {
    spawn_with_identity(config, |_| {}).await
}

/// `spawn_with`, the identity settings changed by `f` (e.g. a second factor required of staff).
pub async fn spawn_with_identity(config: WebConfig, f: impl FnOnce(&mut yizhan_identity::IdentityConfig)) -> Spawned {
    let mut identity = yizhan_identity::IdentityConfig {
        fast_hashing_for_tests: true,
        registrations_per_address_hour: 100_000,
        codes_per_address_hour: 100_000,
        code_checks_per_address: 100_000,
        ..Default::default()
    };
    f(&mut identity);
    let t = TestDb::new(&crate::all_migrations()).await;
    let (ctx, clock) = t.ctx();
    let gateway = Arc::new(yizhan_pay::SandboxGateway::new(b"web-test-gateway-secret".to_vec()));
    // A sandbox outbox of this test's own: the codes that prove logins land there.
    // (The context's ids repeat from test to test: a seeded source on a manual clock.)
    static OUTBOXES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let outbox = std::env::temp_dir().join(format!(
        "yizhan-test-outbox-{}-{started}-{}",
        std::process::id(),
        OUTBOXES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let wiring = Wiring {
        mailer: Some(Arc::new(yizhan_notify::SandboxMailer::new(&outbox))),
        sms: Some(Arc::new(yizhan_notify::SandboxSmsSender::new(&outbox))),
        outbox_dir: Some(outbox.clone()),
        gateway: gateway.clone(),
        verifier: Arc::new(yizhan_identity::SandboxIdentityVerifier),
        // Every test registers its people from one in-process "address".
        identity,
        pay: Default::default(),
        config,
    };
    let state = AppState::new(Services::build(ctx, wiring).await.expect("services"));
    let router = crate::app(state.clone(), Arc::new(AtomicBool::new(true)));
    Spawned { router, state, gateway, clock, db: t, outbox }
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    /// The funding gateway behind Pay (signs notifications in tests).
    pub gateway: Arc<yizhan_pay::SandboxGateway>,
    pub clock: Arc<ManualClock>,
    pub _db: TestDb,
    /// The sandbox outbox (codes, text messages, mail).
    pub outbox: std::path::PathBuf,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(WebConfig::default()).await
}

/// `spawn_app` with a second factor required of staff and administrators.
pub async fn spawn_app_requiring_totp_for_staff() -> TestApp {
    let s = spawn_with_identity(WebConfig::default(), |c| c.require_totp_for_staff = true).await;
    TestApp { router: s.router, state: s.state, gateway: s.gateway, clock: s.clock, _db: s.db, outbox: s.outbox }
}

/// `spawn_app` with the identity settings changed by `f` (e.g. low code limits).
pub async fn spawn_app_with_identity(f: impl FnOnce(&mut yizhan_identity::IdentityConfig)) -> TestApp {
    let s = spawn_with_identity(WebConfig::default(), f).await;
    TestApp { router: s.router, state: s.state, gateway: s.gateway, clock: s.clock, _db: s.db, outbox: s.outbox }
}

/// `spawn_app` with these web settings.
pub async fn spawn_app_with(config: WebConfig) -> TestApp {
    let s = spawn_with(config).await;
    TestApp { router: s.router, state: s.state, gateway: s.gateway, clock: s.clock, _db: s.db, outbox: s.outbox }
}

impl TestApp {
    pub async fn request(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.expect("router");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        self.call_with(method, path, token, body, &[]).await
    }

    /// `call` with extra request headers.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b.header("content-type", "application/json").body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.request(req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// A POST that moves money, with this Idempotency-Key.
    pub async fn pay(&self, path: &str, token: &str, key: &str, body: Value) -> Resp {
        self.call_with(Method::POST, path, Some(token), Some(body), &[("idempotency-key", key)]).await
    }

    /// Register, prove the login with the code from the sandbox outbox (through
    /// `POST /api/v1/auth/verify`) and log in; returns (user_id, token).
    pub async fn user(&self, login: &str, name: &str) -> (String, String) {
        let r = self
            .post("/api/v1/auth/register", None, json!({"login": login, "password": "correct horse", "name": name}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let user_id = r.body["user_id"].as_str().expect("user_id").to_string();
        let code = self.last_code(login).await.expect("a code was sent to the login");
        let r = self.post("/api/v1/auth/verify", None, json!({"login": login, "code": code})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let token = self.login(login).await;
        (user_id, token)
    }

    /// Register without proving the login; returns (user_id, token).
    pub async fn unproved_user(&self, login: &str, name: &str) -> (String, String) {
        let r = self
            .post("/api/v1/auth/register", None, json!({"login": login, "password": "correct horse", "name": name}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let user_id = r.body["user_id"].as_str().expect("user_id").to_string();
        (user_id, self.login(login).await)
    }

    /// The texts of the sandbox outbox's messages to `login` (a mobile number
    /// or an address), newest first (every file, not only the newest hundred).
    pub async fn outbox_to(&self, login: &str) -> Vec<String> {
        self.outbox_texts(login).collect()
    }

    fn outbox_texts(&self, login: &str) -> impl Iterator<Item = String> + '_ {
        let to = yizhan_identity::Login::parse(login).map(|l| l.as_str().to_string()).unwrap_or(login.to_string());
        let mut names: Vec<String> = match std::fs::read_dir(&self.outbox) {
            Ok(rd) => rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect(),
            Err(_) => Vec::new(),
        };
        names.retain(|n| n.ends_with("-sms.txt") || n.ends_with("-mail.txt"));
        names.sort_unstable_by(|a, b| b.cmp(a));
        let want = format!("\nTo: {to}\n");
        names
            .into_iter()
            .filter_map(|n| std::fs::read_to_string(self.outbox.join(n)).ok())
            .filter(move |c| format!("\n{c}").contains(&want))
            .map(|c| c.split_once("\n\n").map(|(_, t)| t.to_string()).unwrap_or_default())
    }

    /// The newest one-time code sent to `login` (the first 6-digit number of
    /// the newest message to it that holds one).
    pub async fn last_code(&self, login: &str) -> Option<String> {
        self.outbox_texts(login).find_map(|t| code_in(&t))
    }

    pub async fn login(&self, login: &str) -> String {
        let r = self.post("/api/v1/auth/login", None, json!({"login": login, "password": "correct horse"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["token"].as_str().expect("token").to_string()
    }

    /// A platform administrator's token.
    pub async fn admin(&self) -> (String, String) {
        let id = self.state.identity.ensure_admin("root@example.org", "correct horse", "Root").await.expect("admin");
        (id, self.login("root@example.org").await)
    }

    /// A city with one organisation of `kind`; returns (city_id, org_id).
    pub async fn city_and_org(&self, admin: &str, city: &str, org: &str, kind: &str) -> (String, String) {
        let r = self.post("/api/v1/cities", Some(admin), json!({"name": city, "services": ["wallet"]})).await;
        let city_id = if r.status == StatusCode::CREATED {
            r.body["id"].as_str().expect("city id").to_string()
        } else {
            let all = self.get("/api/v1/cities", Some(admin)).await;
            all.body.as_array().expect("cities").iter().find(|c| c["name"] == city).expect("city")["id"]
                .as_str()
                .expect("id")
                .to_string()
        };
        let r = self.post("/api/v1/orgs", Some(admin), json!({"city_id": city_id, "kind": kind, "name": org})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        (city_id, r.body["id"].as_str().expect("org id").to_string())
    }

    pub async fn add_staff(&self, admin: &str, org_id: &str, user_id: &str, role: &str) {
        let r = self
            .post(&format!("/api/v1/orgs/{org_id}/members"), Some(admin), json!({"user_id": user_id, "role": role}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

/// The first run of exactly six digits in a text (a one-time code).
pub fn code_in(text: &str) -> Option<String> {
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            if run.len() == 6 {
                return Some(run);
            }
            run.clear();
        }
    }
    None
}

/// Assert a problem+json response with this status and code.
pub fn assert_problem(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert_eq!(r.body["status"], status.as_u16());
    assert!(r.body["title"].as_str().is_some_and(|t| !t.is_empty()));
}

/// A valid GB 11643 identity number from 17 digits.
pub fn id_number(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.chars().zip(W).map(|(c, w)| c.to_digit(10).expect("digit") * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

pub fn cookie_of(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().split_once('=').unwrap().1.to_string())
}

pub fn set_cookie_line(r: &Resp, name: &str) -> String {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_default()
        .to_string()
}

pub async fn form(app: &TestApp, path: &str, cookies: &str, body: &str) -> Resp {
    let req = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookies)
        .body(Body::from(body.to_string()))
        .unwrap();
    app.request(req).await
}

pub async fn page(app: &TestApp, path: &str, cookies: &str, lang: &str) -> Resp {
    let req = Request::get(path).header("cookie", cookies).header("accept-language", lang).body(Body::empty()).unwrap();
    app.request(req).await
}

/// The CSRF token a page's forms carry (the hidden `csrf` field).
/// The token a masked CSRF field carries (pages mask it with a fresh pad each time).
pub fn unmasked(field: &str) -> String {
    String::from_utf8(yizhan_kit::extract::unmask_csrf(field).unwrap_or_default()).unwrap_or_default()
}

pub fn csrf_of(r: &Resp) -> Option<String> {
    let at = r.text.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    r.text[at..].split('"').next().map(str::to_string)
}

/// The CSRF token of a logged-in browser (bound to its session), read from a page.
pub async fn session_csrf(app: &TestApp, cookies: &str) -> String {
    let home = page(app, "/home", cookies, "en").await;
    csrf_of(&home).expect("the page carries a CSRF token")
}
