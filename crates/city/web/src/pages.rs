//! The resident's booking pages (a slot → a hold → the service's form →
//! "check your answers" → booked → my appointments) and the department's
//! console (today's appointments with check-in, the applications queue).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};
use yizhan_booking::{day_start_ms, local_day, Appointment, Hold, DAY_MS};
use yizhan_city::form::{Field, Form, Kind};
use yizhan_city::{CityService, QueueItem};
use yizhan_core::{Error, Result};
use yizhan_identity::{Principal, Role};
use yizhan_identity_web::{person_layout, PageUser};
use yizhan_kit::extract::{Csrf, CsrfForm};
use yizhan_kit::multipart::CsrfMultipart;
use yizhan_kit::page::{filters, render_status, Layout};
use yizhan_kit::Lang;

use crate::CityRoom;

/// One question on a page: the field, what was answered, what is wrong with it.
pub(crate) struct Question {
    pub f: Field,
    pub value: String,
    pub error: Option<String>,
    /// For an upload question answered: the file's name.
    pub file_name: String,
}

impl Question {
    pub fn title(&self, lang: &str) -> String {
        self.f.title.get(lang).to_string()
    }
    pub fn help(&self, lang: &str) -> String {
        self.f.help.as_ref().map(|h| h.get(lang).to_string()).unwrap_or_default()
    }
    pub fn is_bool(&self) -> bool {
        self.f.kind == Kind::Boolean
    }
    pub fn is_int(&self) -> bool {
        self.f.kind == Kind::Integer
    }
    pub fn is_upload(&self) -> bool {
        self.f.kind == Kind::Upload
    }
    /// What an upload question accepts, for the file chooser.
    pub fn accept(&self) -> String {
        self.f.accept.join(",")
    }
    /// The answer as a person reads it (a choice's title, yes/no).
    pub fn shown_value(&self, lang: &Lang) -> String {
        if let Some((_, t)) = self.f.choices.iter().find(|(c, _)| *c == self.value) {
            return t.get(lang.code()).to_string();
        }
        if self.is_bool() {
            return lang.t(if self.value == "true" { "city.page.yes" } else { "city.page.no" }).to_string();
        }
        if self.is_upload() && !self.file_name.is_empty() {
            return self.file_name.clone();
        }
        self.value.clone()
    }
}

/// The answers of a posted form as the JSON the schema checks (empty answers left out).
fn answers_of(form: &Form, posted: &CsrfForm) -> Value {
    answers_from(form, &posted.0)
}

fn answers_from(form: &Form, posted: &std::collections::HashMap<String, String>) -> Value {
    let mut m = Map::new();
    for f in &form.fields {
        let raw = posted.get(&format!("f_{}", f.name)).map(String::as_str).unwrap_or("").trim();
        match f.kind {
            Kind::Boolean => {
                if raw == "true" {
                    m.insert(f.name.clone(), Value::Bool(true));
                } else if f.required {
                    // A required box not ticked is a missing answer.
                } else {
                    m.insert(f.name.clone(), Value::Bool(false));
                }
            }
            _ if raw.is_empty() => {}
            Kind::Integer => {
                let v = raw.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(raw.to_string()));
                m.insert(f.name.clone(), v);
            }
            Kind::String | Kind::Upload => {
                m.insert(f.name.clone(), Value::String(raw.to_string()));
            }
        }
    }
    Value::Object(m)
}

fn questions(lang: Lang, form: &Form, answers: &Value, e: Option<&Error>) -> Vec<Question> {
    form.fields
        .iter()
        .map(|f| {
            let value = match answers.get(&f.name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(v @ Value::Number(_)) => v.to_string(),
                _ => String::new(),
            };
            let path = format!("form.{}", f.name);
            let error = e
                .and_then(|e| e.fields.iter().find(|fe| fe.field == path))
                .map(|fe| yizhan_kit::i18n::render(lang, &fe.msg));
            Question { f: f.clone(), value, error, file_name: String::new() }
        })
        .collect()
}

/// The names of the files answering upload questions (the person's own only).
async fn name_files(s: &CityRoom, p: &Principal, mut qs: Vec<Question>) -> Vec<Question> {
    for q in qs.iter_mut().filter(|q| q.is_upload() && !q.value.is_empty()) {
        if let Ok(u) = s.hall.my_upload(&p.user_id, &q.value).await {
            q.file_name = u.file_name;
        }
    }
    qs
}

/// A hold of this person, with its city service.
async fn my_hold(s: &CityRoom, p: &Principal, id: &str) -> Result<(Hold, CityService, i64)> {
    let hold = s.hall.booking().get_hold(id).await?;
    if hold.person_id != p.user_id {
        return Err(Error::not_found("booking_hold"));
    }
    let svc = s.hall.service_by_booking(&hold.service_id).await?;
    let start_ms = s.hall.booking().slot(&hold.slot_id).await?.start_ms;
    Ok((hold, svc, start_ms))
}

/// A slot's button: hold the place, then fill in the form.
pub(crate) async fn hold_slot(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    form: CsrfForm,
) -> Response {
    let r = async {
        let svc = s.hall.service(&id).await?;
        let hold = s.hall.booking().hold(&p.user_id, form.get("slot_id")).await?;
        if svc.booking_service_id.as_deref() != Some(hold.service_id.as_str()) {
            return Err(Error::not_found("slot"));
        }
        Ok(hold)
    }
    .await;
    match r {
        Ok(h) => Redirect::to(&format!("/city/holds/{}", h.id)).into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

#[derive(Template)]
#[template(path = "city_form.html")]
struct FormPage {
    l: Layout,
    svc: CityService,
    hold: Hold,
    start_ms: i64,
    questions: Vec<Question>,
    /// When the draft these answers come from was saved, if they do.
    draft_at: Option<i64>,
}

#[derive(Template)]
#[template(path = "city_check.html")]
struct CheckPage {
    l: Layout,
    svc: CityService,
    hold: Hold,
    start_ms: i64,
    questions: Vec<Question>,
}

/// The service's form for a held place.
pub(crate) async fn form_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let (hold, svc, start_ms) = match my_hold(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    // A draft saved before (on this hold or an earlier one) is resumed.
    let draft = match s.hall.draft(&p.user_id, &svc.id).await {
        Ok(d) => d,
        Err(e) => return l.failure(&e),
    };
    let answers = draft.as_ref().map(|d| Value::Object(d.answers.clone())).unwrap_or(Value::Null);
    let questions = name_files(&s, &p, questions(lang, &form, &answers, None)).await;
    let draft_at = draft.map(|d| d.updated_at_ms);
    render_status(StatusCode::OK, &FormPage { l, svc, hold, start_ms, questions, draft_at })
}

/// "Save as draft": the answers so far kept for later, back to the form.
pub(crate) async fn save_draft(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    posted: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let (hold, svc, start_ms) = match my_hold(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let answers = answers_of(&form, &posted);
    match s.hall.save_draft(&p.user_id, &svc.id, &answers).await {
        Ok(_) => Redirect::to(&format!("/city/holds/{}", hold.id)).into_response(),
        Err(e) if !e.fields.is_empty() => {
            let questions = name_files(&s, &p, questions(lang, &form, &answers, Some(&e))).await;
            let (l, status) = l.failed(&e);
            render_status(status, &FormPage { l, svc, hold, start_ms, questions, draft_at: None })
        }
        Err(e) => l.failure(&e),
    }
}

/// "Attach": the form posted as multipart with its files; each file chosen
/// is kept and answers its question, the answers are saved as the draft,
/// back to the form (or the form again with what was wrong with a file).
pub(crate) async fn upload_file(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    CsrfMultipart(m): CsrfMultipart,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let (hold, svc, start_ms) = match my_hold(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let mut answers = answers_from(&form, &m.texts());
    let r = async {
        for f in form.fields.iter().filter(|f| f.kind == Kind::Upload) {
            let Some(part) = m.part(&format!("file_{}", f.name)) else { continue };
            if part.data.is_empty() {
                continue;
            }
            let u = s
                .hall
                .upload(
                    &p.user_id,
                    &svc.id,
                    &f.name,
                    part.file_name.as_deref().unwrap_or(""),
                    part.content_type.as_deref(),
                    &part.data,
                )
                .await?;
            if let Value::Object(a) = &mut answers {
                a.insert(f.name.clone(), Value::String(u.id));
            }
        }
        s.hall.save_draft(&p.user_id, &svc.id, &answers).await
    }
    .await;
    match r {
        Ok(_) => Redirect::to(&format!("/city/holds/{}", hold.id)).into_response(),
        Err(e) if !e.fields.is_empty() => {
            let questions = name_files(&s, &p, questions(lang, &form, &answers, Some(&e))).await;
            let (l, status) = l.failed(&e);
            render_status(status, &FormPage { l, svc, hold, start_ms, questions, draft_at: None })
        }
        Err(e) => l.failure(&e),
    }
}

/// A file I uploaded, for the browser.
pub(crate) async fn my_upload(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    match s.hall.read_my_upload(&p.user_id, &id).await {
        Ok((u, data)) => crate::file_response(&u, data),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

/// The answers checked: back to the form with a message per field, or "check your answers".
pub(crate) async fn check_answers(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    posted: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let (hold, svc, start_ms) = match my_hold(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let answers = answers_of(&form, &posted);
    match form.validate(&answers) {
        Ok(kept) => {
            let kept = Value::Object(kept);
            let questions =
                questions(lang, &form, &kept, None).into_iter().filter(|q| kept.get(&q.f.name).is_some()).collect();
            let questions = name_files(&s, &p, questions).await;
            render_status(StatusCode::OK, &CheckPage { l, svc, hold, start_ms, questions })
        }
        Err(e) => {
            let questions = name_files(&s, &p, questions(lang, &form, &answers, Some(&e))).await;
            let (l, status) = l.failed(&e);
            render_status(status, &FormPage { l, svc, hold, start_ms, questions, draft_at: None })
        }
    }
}

/// Confirmed: the place is booked with the answers, then my appointments.
pub(crate) async fn confirm(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    posted: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let (hold, svc, start_ms) = match my_hold(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let answers = answers_of(&form, &posted);
    match s.hall.apply(&p.user_id, &svc.id, &answers, Some(&hold.id)).await {
        Ok(_) => Redirect::to("/city/appointments").into_response(),
        Err(e) if !e.fields.is_empty() => {
            let questions = name_files(&s, &p, questions(lang, &form, &answers, Some(&e))).await;
            let (l, status) = l.failed(&e);
            render_status(status, &FormPage { l, svc, hold, start_ms, questions, draft_at: None })
        }
        Err(e) => l.failure(&e),
    }
}

pub(crate) struct ApptRow {
    pub a: Appointment,
    pub title: String,
    /// Booked and before the service's cancellation deadline.
    pub can_cancel: bool,
}

#[derive(Template)]
#[template(path = "city_appointments.html")]
struct AppointmentsPage {
    l: Layout,
    rows: Vec<ApptRow>,
    /// When my live calendar feed URL was made, if there is one.
    feed_at: Option<i64>,
    /// The feed's secret path, shown once right after it is made.
    new_feed: Option<String>,
}

async fn titled(s: &CityRoom, lang: Lang, list: Vec<Appointment>) -> Vec<ApptRow> {
    let now = s.ctx.now_ms();
    let mut rows = Vec::with_capacity(list.len());
    for a in list {
        let can_cancel = a.status == yizhan_booking::AppointmentStatus::Booked
            && match s.hall.booking().service(&a.service_id).await {
                Ok(bs) => now < a.start_ms - bs.rules.cancel_before_ms,
                Err(_) => false,
            };
        let title = match s.hall.service_by_booking(&a.service_id).await {
            Ok(svc) => svc.title.get(lang.code()).to_string(),
            Err(_) => lang.t("city.page.appointment").to_string(),
        };
        rows.push(ApptRow { a, title, can_cancel });
    }
    rows
}

/// My appointments: status, queue number once checked in, cancel, calendar file.
pub(crate) async fn appointments_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let list = match s.hall.booking().person_appointments(&p.user_id, 50).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let rows = titled(&s, lang, list).await;
    let feed_at = match s.hall.booking().feed_created_at(&p.user_id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    render_status(StatusCode::OK, &AppointmentsPage { l, rows, feed_at, new_feed: None })
}

/// A new secret calendar feed URL (the one before stops working), shown on
/// this answer only: only its keyed hash is kept, so it cannot be shown again.
pub(crate) async fn renew_feed(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    _form: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let token = match s.hall.booking().renew_feed(&p.user_id).await {
        Ok(t) => t,
        Err(e) => return l.failure(&e),
    };
    let list = match s.hall.booking().person_appointments(&p.user_id, 50).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let rows = titled(&s, lang, list).await;
    let feed_at = s.hall.booking().feed_created_at(&p.user_id).await.ok().flatten();
    let page = AppointmentsPage { l, rows, feed_at, new_feed: Some(feed_path(&token)) };
    let mut resp = render_status(StatusCode::OK, &page);
    resp.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    resp
}

/// The feed's path for a token (the booking room serves it).
fn feed_path(token: &str) -> String {
    format!("/cal/{token}.ics")
}

/// Revoke my calendar feed URL, back to my appointments.
pub(crate) async fn revoke_feed(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    _form: CsrfForm,
) -> Response {
    match s.hall.booking().revoke_feed(&p.user_id).await {
        Ok(_) => Redirect::to("/city/appointments").into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

pub(crate) async fn cancel(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    match s.hall.booking().cancel(&p.user_id, &id).await {
        Ok(_) => Redirect::to("/city/appointments").into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

/// My appointment's calendar file, for the browser (the API's twin).
pub(crate) async fn ics(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let a = match s.hall.booking().appointment(&id).await {
        Ok(a) if a.person_id == p.user_id => a,
        Ok(_) => {
            let e = Error::not_found("appointment");
            return person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e);
        }
        Err(e) => return person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    };
    let body = yizhan_booking::ics::appointment(
        &a,
        lang.t("booking.ics.summary"),
        lang.t("booking.ics.location"),
        "yizhan",
        s.ctx.now_ms(),
    );
    (
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"appointment-{}.ics\"", a.id)),
        ],
        body,
    )
        .into_response()
}

pub(crate) struct OrgDesk {
    pub org_id: String,
    pub org_name: String,
    pub today: Vec<ApptRow>,
    pub queue: Vec<QueueItem>,
}

#[derive(Template)]
#[template(path = "city_staff.html")]
struct StaffPage {
    l: Layout,
    desks: Vec<OrgDesk>,
}

/// The department console: today's appointments of each of my departments' services, and their queue.
pub(crate) async fn staff_page(State(s): State<CityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city/staff", &p).await;
    match desks(&s, lang, &p).await {
        Ok(desks) => render_status(StatusCode::OK, &StaffPage { l, desks }),
        Err(e) => l.failure(&e),
    }
}

async fn desks(s: &CityRoom, lang: Lang, p: &Principal) -> Result<Vec<OrgDesk>> {
    let day = local_day(s.ctx.now_ms());
    let (from, to) = (day_start_ms(day), day_start_ms(day) + DAY_MS);
    let mut out = Vec::new();
    for m in s.identity.memberships(&p.user_id).await?.into_iter().take(20) {
        if !m.role.at_least(Role::Operator) {
            continue;
        }
        let services = s.hall.org_services(&m.org_id).await?;
        if services.is_empty() {
            continue;
        }
        let mut today = Vec::new();
        for svc in &services {
            if let Some(bs) = &svc.booking_service_id {
                for a in s.hall.booking().service_appointments(bs, from, to).await?.into_iter().take(200) {
                    today.push(ApptRow { a, title: svc.title.get(lang.code()).to_string(), can_cancel: false });
                }
            }
        }
        today.sort_by_key(|r| r.a.start_ms);
        let queue = s.hall.queue(p, &m.org_id, 50).await?;
        out.push(OrgDesk { org_id: m.org_id, org_name: m.org_name, today, queue });
    }
    Ok(out)
}

/// Check a person in at the counter: their queue number, back to the console.
pub(crate) async fn staff_check_in(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    let r = async {
        let a = s.hall.booking().appointment(&id).await?;
        let service = s.hall.booking().service(&a.service_id).await?;
        s.identity.require_staff(&p, &service.owner_id, Role::Operator).await?;
        s.hall.booking().check_in(&id).await
    }
    .await;
    match r {
        Ok(_) => Redirect::to("/city/staff").into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city/staff", &p).await.failure(&e),
    }
}
