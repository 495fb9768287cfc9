//! The identity room's pages: the landing page, log in, register, log out,
//! the person's profile with real-name verification and the home city.

use crate::{person_layout, register_with_welcome, IdentityRoom, PageUser};
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use yizhan_kit::extract::{cookie, session_cookie_name, ClientAddr, Csrf, CsrfForm};
use yizhan_kit::page::{cookie_header, failure_page, render, render_status, Layout, WebConfig};
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

async fn login_submit(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    form: CsrfForm,
) -> Response {
    match s.identity.login(form.get("login"), form.get("password"), &addr).await {
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
}

async fn register_form(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf) -> Response {
    let cities = s.identity.list_cities().await.unwrap_or_default();
    let l = Layout::anon(lang, &csrf, "/register");
    render(&RegisterPage { l, login: String::new(), name: String::new(), cities, city_id: String::new() })
}

async fn register_submit(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    ClientAddr(addr): ClientAddr,
    form: CsrfForm,
) -> Response {
    let result = async {
        let city_id = form.get("city_id");
        if !city_id.is_empty() {
            // Checked before the account exists, so a bad choice leaves nothing half done.
            s.identity.city(city_id).await?;
        }
        s.identity.count_registration(&addr).await?;
        let user_id =
            register_with_welcome(&s.identity, &s.notify, form.get("login"), form.get("password"), form.get("name"))
                .await?;
        if !city_id.is_empty() {
            s.identity.set_home_city(&user_id, form.get("city_id")).await?;
        }
        s.identity.login(form.get("login"), form.get("password"), &addr).await
    }
    .await;
    match result {
        Ok(sess) => {
            let max_age = (sess.expires_at_ms - s.ctx.now_ms()) / 1000;
            let mut r = Redirect::to("/home").into_response();
            r.headers_mut().append(header::SET_COOKIE, session_cookie(&s.config, &sess.token, max_age));
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
            };
            render_status(status, &page)
        }
    }
}

async fn logout(State(s): State<IdentityRoom>, headers: HeaderMap, _form: CsrfForm) -> Response {
    if let Some(t) = cookie(&headers, session_cookie_name(s.config.secure_cookies)) {
        let _ = s.identity.logout(&t).await;
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(header::SET_COOKIE, session_cookie(&s.config, "", 0));
    r
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    l: Layout,
    p: yizhan_identity::Profile,
    cities: Vec<yizhan_identity::City>,
}

async fn profile_page(s: &IdentityRoom, l: Layout, user_id: &str, status: StatusCode) -> Response {
    match (s.identity.profile(user_id).await, s.identity.list_cities().await) {
        (Ok(p), Ok(cities)) => render_status(status, &ProfilePage { l, p, cities }),
        (Err(e), _) | (_, Err(e)) => failure_page(l.lang, &e),
    }
}

async fn profile(State(s): State<IdentityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/profile", &p).await;
    profile_page(&s, l, &p.user_id, StatusCode::OK).await
}

async fn real_name(
    State(s): State<IdentityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/profile", &p).await;
    match s.identity.verify_real_name(&p.user_id, form.get("name"), form.get("id_number")).await {
        Ok(_) => profile_page(&s, l.ok(lang.t("realname.done")), &p.user_id, StatusCode::OK).await,
        Err(e) => {
            let (l, status) = l.failed(&e);
            profile_page(&s, l, &p.user_id, status).await
        }
    }
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
