//! The identity room's pages: the landing page, log in, register, log out,
//! the person's profile with real-name verification and the home city.

use crate::{person_layout, IdentityRoom, PageUser};
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use yizhan_kit::extract::{cookie, session_cookie_name, ClientAddr, Csrf, CsrfForm};
use yizhan_kit::page::{cookie_header, failure_page, filters, render, render_status, Layout, WebConfig};
use yizhan_kit::Lang;

/// The cookie holding a page session's token (over plain HTTP; over HTTPS
/// it is `__Host-yz_session`, see `yizhan_kit::extract::session_cookie_name`).
pub const SESSION_COOKIE: &str = yizhan_kit::extract::SESSION_COOKIE;

pub fn router() -> Router<IdentityRoom> {
    Router::new()
        .route("/", get(landing))
        .route("/login", get(login_form).post(login_submit))
        .route("/register", get(register_form).post(register_submit))
        .route("/logout", post(logout))
        .route("/profile", get(profile))
        .route("/profile/real-name", post(real_name))
        .route("/profile/city", post(set_city))
        .route("/profile/vehicles", post(add_vehicle))
        .route("/profile/vehicles/remove", post(remove_vehicle))
        .route("/profile/disputes", post(open_dispute))
}

/// The session cookie with this token (an empty token and age 0 end it).
pub fn session_cookie(config: &WebConfig, token: &str, max_age_s: i64) -> HeaderValue {
    cookie_header(session_cookie_name(config.secure_cookies), token, max_age_s, config.secure_cookies)
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    l: Layout,
}

async fn landing(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, headers: HeaderMap) -> Response {
    if let Some(t) = cookie(&headers, session_cookie_name(s.config.secure_cookies)) {
        if s.identity.authenticate(&t).await.is_ok() {
            return Redirect::to("/home").into_response();
        }
    }
    render(&Landing { l: Layout::anon(lang, &csrf, "/") })
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    login: String,
}

async fn login_form(lang: Lang, csrf: Csrf) -> Response {
    render(&LoginPage { l: Layout::anon(lang, &csrf, "/login"), login: String::new() })
}

/// The log-in page with this frame (a notice after proving a login or setting a password).
pub(crate) fn login_page(l: Layout, login: &str, status: StatusCode) -> Response {
    render_status(status, &LoginPage { l, login: login.to_string() })
}

async fn login_submit(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let attempt = yizhan_identity::LoginAttempt {
        login: form.get("login"),
        password: form.get("password"),
        client_addr: &addr,
        user_agent: crate::user_agent(&headers),
        totp: Some(form.get("totp")).filter(|t| !t.is_empty()),
    };
    match s.identity.sign_in(attempt).await {
        Ok(sess) => {
            let max_age = (sess.expires_at_ms - s.ctx.now_ms()) / 1000;
            let mut r = Redirect::to("/home").into_response();
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&s.config, &sess.token, max_age));
            r
        }
        Err(e) => {
            let (l, status) = Layout::anon(lang, &csrf, "/login").failed(&e);
            render_status(status, &LoginPage { l, login: form.get("login").to_string() })
        }
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    l: Layout,
    login: String,
    name: String,
    cities: Vec<yizhan_identity::City>,
    city_id: String,
    login_error: String,
    password_error: String,
    name_error: String,
}

async fn register_form(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf) -> Response {
    let cities = s.identity.list_cities().await.unwrap_or_default();
    let l = Layout::anon(lang, &csrf, "/register");
    let page = RegisterPage {
        l,
        login: String::new(),
        name: String::new(),
        cities,
        city_id: String::new(),
        login_error: String::new(),
        password_error: String::new(),
        name_error: String::new(),
    };
    render(&page)
}

async fn register_submit(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: CsrfForm,
) -> Response {
    let result = async {
        let city_id = form.get("city_id");
        if !city_id.is_empty() {
            // Checked before the account exists, so a bad choice leaves nothing half done.
            s.identity.city(city_id).await?;
        }
        s.identity.count_registration(&addr).await?;
        let sign_up = yizhan_identity::SignUp {
            login: form.get("login"),
            password: form.get("password"),
            name: form.get("name"),
            client_addr: &addr,
            lang: lang.code(),
        };
        let r = s.identity.sign_up(sign_up).await?;
        if !city_id.is_empty() {
            // Not for an id that names no account (a login another account holds).
            if s.identity.profile(&r.user_id).await.is_ok() {
                s.identity.set_home_city(&r.user_id, city_id).await?;
            }
        }
        // The new account may look around until its login is proved.
        let attempt = yizhan_identity::LoginAttempt {
            login: form.get("login"),
            password: form.get("password"),
            client_addr: &addr,
            user_agent: crate::user_agent(&headers),
            totp: None,
        };
        Ok::<_, yizhan_core::Error>(s.identity.sign_in(attempt).await.ok())
    }
    .await;
    match result {
        Ok(session) => {
            let login =
                yizhan_identity::Login::parse(form.get("login")).map(|l| l.as_str().to_string()).unwrap_or_default();
            let mut r = Redirect::to(&format!("/register/verify?login={}", query_escape(&login))).into_response();
            if let Some(sess) = session {
                let max_age = (sess.expires_at_ms - s.ctx.now_ms()) / 1000;
                r.headers_mut().append(header::SET_COOKIE, session_cookie(&s.config, &sess.token, max_age));
            }
            r
        }
        Err(e) => {
            let (l, status) = Layout::anon(lang, &csrf, "/register").failed(&e);
            let cities = s.identity.list_cities().await.unwrap_or_default();
            let page = RegisterPage {
                l,
                login: form.get("login").to_string(),
                name: form.get("name").to_string(),
                cities,
                city_id: form.get("city_id").to_string(),
                login_error: crate::codes::field_error(lang, Some(&e), "login"),
                password_error: crate::codes::field_error(lang, Some(&e), "password"),
                name_error: crate::codes::field_error(lang, Some(&e), "name"),
            };
            render_status(status, &page)
        }
    }
}

/// A value fit for a URL's query string.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn logout(State(s): State<IdentityRoom>, headers: HeaderMap, _form: CsrfForm) -> Response {
    if let Some(t) = cookie(&headers, session_cookie_name(s.config.secure_cookies)) {
        let _ = s.identity.logout(&t).await;
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(&s.config, "", 0));
    r
}

/// What the person typed that may be offered back as a dispute (after a
/// refusal that said the number or plate is bound to another account).
#[derive(Default)]
pub struct Offer {
    pub kind: &'static str,
    pub name: String,
    pub id_number: String,
    pub plate: String,
    pub certificate: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    l: Layout,
    p: yizhan_identity::Profile,
    cities: Vec<yizhan_identity::City>,
    vehicles: Vec<yizhan_identity::Vehicle>,
    disputes: Vec<yizhan_identity::Dispute>,
    /// The verifier asks nobody: the forms say so.
    sandbox: bool,
    offer: Option<Offer>,
}

impl ProfilePage {
    fn counter_staff(&self) -> bool {
        self.p.memberships.iter().any(|m| m.org_kind == yizhan_identity::OrgKind::CityDepartment)
    }

    fn verified_by(&self, v: &yizhan_identity::Vehicle) -> &'static str {
        if v.verified_by.starts_with("counter:") {
            self.l.lang.t("vehicles.by_counter")
        } else {
            self.l.lang.t("vehicles.by_verifier")
        }
    }
}

async fn profile_page(s: &IdentityRoom, l: Layout, user_id: &str, status: StatusCode) -> Response {
    profile_offer(s, l, user_id, status, None).await
}

async fn profile_offer(
    s: &IdentityRoom,
    l: Layout,
    user_id: &str,
    status: StatusCode,
    offer: Option<Offer>,
) -> Response {
    let loaded = async {
        Ok::<_, yizhan_core::Error>((
            s.identity.profile(user_id).await?,
            s.identity.list_cities().await?,
            s.identity.vehicles(user_id).await?,
            s.identity.my_disputes(user_id).await?,
        ))
    }
    .await;
    match loaded {
        Ok((p, cities, vehicles, disputes)) => {
            let sandbox = s.identity.verifier_is_sandbox();
            render_status(status, &ProfilePage { l, p, cities, vehicles, disputes, sandbox, offer })
        }
        Err(e) => failure_page(l.lang, &e),
    }
}

async fn profile(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/profile", &p).await;
    profile_page(&s, l, &p.user_id, StatusCode::OK).await
}

/// Show the outcome of a form on the profile; a refusal saying the number
/// or plate is another account's offers a dispute with what was typed.
async fn after_form(
    s: &IdentityRoom,
    l: Layout,
    user_id: &str,
    r: yizhan_core::Result<()>,
    done: &str,
    offer: Offer,
) -> Response {
    match r {
        Ok(()) => profile_page(s, l.ok(done), user_id, StatusCode::OK).await,
        Err(e) => {
            let offer = (e.code == yizhan_identity::codes::BOUND_ELSEWHERE).then_some(offer);
            let (l, status) = l.failed(&e);
            profile_offer(s, l, user_id, status, offer).await
        }
    }
}

async fn real_name(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/profile", &p).await;
    let r = s.identity.verify_real_name(&p.user_id, form.get("name"), form.get("id_number")).await.map(|_| ());
    let offer = Offer {
        kind: "id_number",
        name: form.get("name").to_string(),
        id_number: form.get("id_number").to_string(),
        ..Default::default()
    };
    after_form(&s, l, &p.user_id, r, lang.t("realname.done"), offer).await
}

async fn add_vehicle(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/profile", &p).await;
    let r = s.identity.bind_vehicle(&p.user_id, form.get("plate"), form.get("certificate")).await.map(|_| ());
    let offer = Offer {
        kind: "plate",
        plate: form.get("plate").to_string(),
        certificate: form.get("certificate").to_string(),
        ..Default::default()
    };
    after_form(&s, l, &p.user_id, r, lang.t("vehicles.done"), offer).await
}

async fn remove_vehicle(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/profile", &p).await;
    let r = s.identity.remove_vehicle(&p.user_id, form.get("plate")).await;
    after_form(&s, l, &p.user_id, r, lang.t("vehicles.removed"), Offer::default()).await
}

async fn open_dispute(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/profile", &p).await;
    let claim = match form.get("kind") {
        "plate" => yizhan_identity::Claim::Plate { plate: form.get("plate"), certificate: form.get("certificate") },
        _ => yizhan_identity::Claim::IdNumber { name: form.get("name"), id_number: form.get("id_number") },
    };
    let r = s.identity.open_dispute(&p.user_id, claim).await.map(|_| ());
    after_form(&s, l, &p.user_id, r, lang.t("dispute.opened"), Offer::default()).await
}

async fn set_city(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    match s.identity.set_home_city(&p.user_id, form.get("city_id")).await {
        Ok(()) => Redirect::to("/home").into_response(),
        Err(e) => {
            let (l, status) = person_layout(&s.notify, lang, &csrf, "/profile", &p).await.failed(&e);
            profile_page(&s, l, &p.user_id, status).await
        }
    }
}
