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

/// What a form is filled in for: a place this person holds (an
/// appointment), or an online application to a service.
pub(crate) struct Place {
    pub svc: CityService,
    /// The held place and when it starts (appointments only).
    pub hold: Option<Hold>,
    pub start_ms: i64,
    /// Where the form's buttons post ("…/check", "…/draft", "…/upload").
    pub base: String,
}

/// A hold of this person, with its city service.
async fn my_hold(s: &CityRoom, p: &Principal, id: &str) -> Result<Place> {
    let hold = s.hall.booking().get_hold(id).await?;
    if hold.person_id != p.user_id {
        return Err(Error::not_found("booking_hold"));
    }
    let svc = s.hall.service_by_booking(&hold.service_id).await?;
    let start_ms = s.hall.booking().slot(&hold.slot_id).await?.start_ms;
    Ok(Place { svc, base: format!("/city/holds/{}", hold.id), hold: Some(hold), start_ms })
}

/// The place a form is for: a hold (`APPLY` false, `id` the hold's) or an
/// online application service (`APPLY` true, `id` the service's).
async fn place<const APPLY: bool>(s: &CityRoom, p: &Principal, id: &str) -> Result<Place> {
    if !APPLY {
        return my_hold(s, p, id).await;
    }
    let svc = s.hall.service(id).await?;
    if svc.delivery != yizhan_city::Delivery::Application {
        return Err(Error::not_found("service"));
    }
    Ok(Place { base: format!("/city/services/{}/apply", svc.id), svc, hold: None, start_ms: 0 })
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
    hold: Option<Hold>,
    start_ms: i64,
    base: String,
    questions: Vec<Question>,
    /// For a two-person service: the partner's login, and what is wrong with it.
    partner: String,
    partner_error: Option<String>,
    /// When the draft these answers come from was saved, if they do.
    draft_at: Option<i64>,
}

impl FormPage {
    /// Each upload question has its own "attach" button (posting the form as multipart to `{base}/upload`).
    fn attach_each(&self) -> bool {
        true
    }
}

#[derive(Template)]
#[template(path = "city_check.html")]
struct CheckPage {
    l: Layout,
    svc: CityService,
    hold: Option<Hold>,
    start_ms: i64,
    base: String,
    questions: Vec<Question>,
    partner: String,
    /// An online application's id, chosen here so that submitting twice makes one.
    application_id: String,
    /// The fee (if the service has one) is taken from the wallet, else paid at the counter.
    fees_from_wallet: bool,
}

/// Whether a fee would be taken from the wallet: by the booking engine for a
/// held place, by the city room for an online application.
fn fees_from_wallet(s: &CityRoom, hold: &Option<Hold>) -> bool {
    if hold.is_some() {
        s.hall.booking().takes_fees()
    } else {
        s.hall.takes_fees()
    }
}

/// The message of a field's error, in the page's language.
fn field_error(lang: Lang, e: Option<&Error>, field: &str) -> Option<String> {
    e.and_then(|e| e.fields.iter().find(|fe| fe.field == field)).map(|fe| yizhan_kit::i18n::render(lang, &fe.msg))
}

/// The service's form for a held place.
pub(crate) async fn form_page<const APPLY: bool>(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let place = match place::<APPLY>(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match place.svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let Place { svc, hold, start_ms, base } = place;
    // A draft saved before (on this hold or an earlier one) is resumed.
    let draft = match s.hall.draft(&p.user_id, &svc.id).await {
        Ok(d) => d,
        Err(e) => return l.failure(&e),
    };
    let answers = draft.as_ref().map(|d| Value::Object(d.answers.clone())).unwrap_or(Value::Null);
    let questions = name_files(&s, &p, questions(lang, &form, &answers, None)).await;
    let draft_at = draft.map(|d| d.updated_at_ms);
    render_status(
        StatusCode::OK,
        &FormPage { l, svc, hold, start_ms, base, questions, partner: String::new(), partner_error: None, draft_at },
    )
}

/// "Save as draft": the answers so far kept for later, back to the form.
pub(crate) async fn save_draft<const APPLY: bool>(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    posted: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let place = match place::<APPLY>(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match place.svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let Place { svc, hold, start_ms, base } = place;
    let answers = answers_of(&form, &posted);
    let r = s.hall.save_draft(&p.user_id, &svc.id, &answers).await.map(|_| ());
    after_draft(&s, &p, l, lang, Place { svc, hold, start_ms, base }, &form, &answers, r).await
}

/// After saving a draft (with or without files): back to the form, or the
/// form again with what was wrong with an answer or a file.
#[allow(clippy::too_many_arguments)]
async fn after_draft(
    s: &CityRoom,
    p: &Principal,
    l: Layout,
    lang: Lang,
    Place { svc, hold, start_ms, base }: Place,
    form: &Form,
    answers: &Value,
    r: yizhan_core::Result<()>,
) -> Response {
    match r {
        Ok(()) => Redirect::to(&base).into_response(),
        Err(e) if !e.fields.is_empty() => {
            let questions = name_files(s, p, questions(lang, form, answers, Some(&e))).await;
            let (l, status) = l.failed(&e);
            let page = FormPage {
                l,
                svc,
                hold,
                start_ms,
                base,
                questions,
                partner: String::new(),
                partner_error: None,
                draft_at: None,
            };
            render_status(status, &page)
        }
        Err(e) => l.failure(&e),
    }
}

/// "Attach": the form posted as multipart with its files; each file chosen
/// is kept and answers its question, the answers are saved as the draft,
/// back to the form (or the form again with what was wrong with a file).
pub(crate) async fn upload_file<const APPLY: bool>(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    CsrfMultipart(m): CsrfMultipart,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let place = match place::<APPLY>(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match place.svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let Place { svc, hold, start_ms, base } = place;
    let mut answers = answers_from(&form, &m.texts());
    let r = async {
        attach_files(&s, &p, &svc.id, &form, &m, &mut answers).await?;
        s.hall.save_draft(&p.user_id, &svc.id, &answers).await
    }
    .await;
    after_draft(&s, &p, l, lang, Place { svc, hold, start_ms, base }, &form, &answers, r.map(|_| ())).await
}

/// The files chosen in a form posted as multipart (`file_<question>` parts):
/// each kept as the person's upload for the service, and answering its question.
async fn attach_files(
    s: &CityRoom,
    p: &Principal,
    service_id: &str,
    form: &Form,
    m: &yizhan_kit::multipart::Multipart,
    answers: &mut Value,
) -> Result<()> {
    for f in form.fields.iter().filter(|f| f.kind == Kind::Upload) {
        let Some(part) = m.part(&format!("file_{}", f.name)) else { continue };
        if part.data.is_empty() {
            continue;
        }
        let u = s
            .hall
            .upload(
                &p.user_id,
                service_id,
                &f.name,
                part.file_name.as_deref().unwrap_or(""),
                part.content_type.as_deref(),
                &part.data,
            )
            .await?;
        if let Value::Object(a) = answers {
            a.insert(f.name.clone(), Value::String(u.id));
        }
    }
    Ok(())
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
pub(crate) async fn check_answers<const APPLY: bool>(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    posted: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let place = match place::<APPLY>(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match place.svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let Place { svc, hold, start_ms, base } = place;
    let answers = answers_of(&form, &posted);
    let partner = posted.get("partner_login").trim().to_string();
    let checked = form.validate(&answers).and_then(|kept| {
        if svc.two_people && partner.is_empty() {
            return Err(Error::field("partner_login", "city.partner.required"));
        }
        Ok(kept)
    });
    match checked {
        Ok(kept) => {
            let kept = Value::Object(kept);
            let questions =
                questions(lang, &form, &kept, None).into_iter().filter(|q| kept.get(&q.f.name).is_some()).collect();
            let questions = name_files(&s, &p, questions).await;
            let application_id = if hold.is_none() { s.ctx.new_id() } else { String::new() };
            let fees_from_wallet = fees_from_wallet(&s, &hold);
            let page = CheckPage { l, svc, hold, start_ms, base, questions, partner, application_id, fees_from_wallet };
            render_status(StatusCode::OK, &page)
        }
        Err(e) => {
            let questions = name_files(&s, &p, questions(lang, &form, &answers, Some(&e))).await;
            let partner_error = field_error(lang, Some(&e), "partner_login");
            let (l, status) = l.failed(&e);
            let page = FormPage { l, svc, hold, start_ms, base, questions, partner, partner_error, draft_at: None };
            render_status(status, &page)
        }
    }
}

/// Confirmed: the place is booked with the answers, then my appointments.
pub(crate) async fn confirm<const APPLY: bool>(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    posted: CsrfForm,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let place = match place::<APPLY>(&s, &p, &id).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let form = match place.svc.parsed_form() {
        Ok(f) => f,
        Err(e) => return l.failure(&e),
    };
    let Place { svc, hold, start_ms, base } = place;
    let answers = answers_of(&form, &posted);
    let partner = posted.get("partner_login").trim().to_string();
    let done = match &hold {
        Some(hold) if svc.two_people => {
            s.hall.invite(&p.user_id, &hold.id, &answers, &partner).await.map(|i| format!("/city/invitations/{}", i.id))
        }
        Some(hold) => {
            s.hall.apply(&p.user_id, &svc.id, &answers, Some(&hold.id)).await.map(|_| "/city/appointments".to_string())
        }
        None => s
            .hall
            .apply_once(&p.user_id, &svc.id, &answers, posted.get("application_id"))
            .await
            .map(|a| format!("/city/applications/{}", a.id)),
    };
    match done {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) if !e.fields.is_empty() => {
            let questions = name_files(&s, &p, questions(lang, &form, &answers, Some(&e))).await;
            let partner_error = field_error(lang, Some(&e), "partner_login");
            let (l, status) = l.failed(&e);
            let page = FormPage { l, svc, hold, start_ms, base, questions, partner, partner_error, draft_at: None };
            render_status(status, &page)
        }
        // The wallet could not pay (or hold the deposit): the answers are
        // checked again with the message; nothing was kept, so a new id.
        Err(e) if hold.is_none() && matches!(e.code.class(), yizhan_core::Class::Invalid) => {
            let kept = Value::Object(form.validate(&answers).unwrap_or_default());
            let questions =
                questions(lang, &form, &kept, None).into_iter().filter(|q| kept.get(&q.f.name).is_some()).collect();
            let questions = name_files(&s, &p, questions).await;
            let (l, status) = l.failed(&e);
            let application_id = s.ctx.new_id();
            let fees_from_wallet = fees_from_wallet(&s, &hold);
            let page = CheckPage { l, svc, hold, start_ms, base, questions, partner, application_id, fees_from_wallet };
            render_status(status, &page)
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

async fn titled(s: &CityRoom, lang: Lang, me: &str, list: Vec<Appointment>) -> Vec<ApptRow> {
    let now = s.ctx.now_ms();
    let mut rows = Vec::with_capacity(list.len());
    for a in list {
        let can_cancel = a.status == yizhan_booking::AppointmentStatus::Booked
            && a.person_id == me
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
    let rows = titled(&s, lang, &p.user_id, list).await;
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
    let rows = titled(&s, lang, &p.user_id, list).await;
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
        Ok(a) if s.hall.booking().is_party(&a, &p.user_id).await.unwrap_or(false) => a,
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

pub(crate) struct InvitationRow {
    pub i: yizhan_city::Invitation,
    pub title: String,
    /// I sent it (else I am the partner asked).
    pub mine: bool,
}

#[derive(Template)]
#[template(path = "city_invitations.html")]
struct InvitationsPage {
    l: Layout,
    rows: Vec<InvitationRow>,
}

async fn invitation_rows(s: &CityRoom, lang: Lang, p: &Principal, only: Option<&str>) -> Result<Vec<InvitationRow>> {
    let list = match only {
        Some(id) => vec![s.hall.invitation(&p.user_id, id).await?],
        None => s.hall.invitations(&p.user_id, 50).await?,
    };
    let mut rows = Vec::with_capacity(list.len());
    for i in list {
        let title = match s.hall.service(&i.service_id).await {
            Ok(svc) => svc.title.get(lang.code()).to_string(),
            Err(_) => lang.t("city.page.appointment").to_string(),
        };
        rows.push(InvitationRow { mine: i.inviter_id == p.user_id, i, title });
    }
    Ok(rows)
}

/// Invitations to book together: those I sent (waiting for my partner) and those sent to me.
pub(crate) async fn invitations_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    match invitation_rows(&s, lang, &p, None).await {
        Ok(rows) => render_status(StatusCode::OK, &InvitationsPage { l, rows }),
        Err(e) => l.failure(&e),
    }
}

/// One invitation (where a notice links).
pub(crate) async fn invitation_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    match invitation_rows(&s, lang, &p, Some(&id)).await {
        Ok(rows) => render_status(StatusCode::OK, &InvitationsPage { l, rows }),
        Err(e) => l.failure(&e),
    }
}

/// The partner confirms on their own device: booked for both, then my appointments.
pub(crate) async fn confirm_invitation(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    match s.hall.confirm_invitation(&p.user_id, &id).await {
        Ok(_) => Redirect::to("/city/appointments").into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

/// The partner says no: the place is freed.
pub(crate) async fn decline_invitation(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    match s.hall.decline_invitation(&p.user_id, &id).await {
        Ok(_) => Redirect::to(&format!("/city/invitations/{id}")).into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

#[derive(Template)]
#[template(path = "city_slot.html")]
struct SlotPage {
    l: Layout,
    svc: CityService,
    slot: yizhan_booking::Slot,
    /// For a slot drawn by lottery: what is published, and my part in it.
    lottery: Option<yizhan_booking::lottery::LotteryView>,
    /// The lottery's request window is open now.
    open: bool,
    /// The draw's log as published, for anyone to re-run.
    log_json: String,
    /// My place on the waiting list, if I joined it.
    wait: Option<yizhan_booking::WaitEntry>,
    /// Places go first come (with a waiting list when full): always, or for
    /// a lottery once drawn, to those without a place (what the draw left
    /// or freed later).
    first_come: bool,
}

/// One slot: for a full one, the waiting list (join, my position, an offer
/// to accept before its deadline); for a lottery, its seed, window, my
/// request and, once drawn, my result and the allocation log.
pub(crate) async fn slot_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let r = async {
        let slot = s.hall.booking().slot(&id).await?;
        let svc = s.hall.service_by_booking(&slot.service_id).await?;
        let rules = s.hall.booking().service(&slot.service_id).await?.rules;
        let now = s.ctx.now_ms();
        let lottery = if rules.allocation == yizhan_booking::Allocation::Lottery {
            Some(s.hall.booking().lottery_view(&id, Some(&p.user_id)).await?)
        } else {
            None
        };
        let first_come = match &lottery {
            None => true,
            Some(v) => v.log.is_some() && v.won != Some(true),
        };
        let (slot, wait) = if first_come {
            // Read again: a look after the window draws the lottery.
            (s.hall.booking().slot(&id).await?, s.hall.booking().waitlist_entry(&p.user_id, &id).await?)
        } else {
            (slot, None)
        };
        let open = lottery.as_ref().is_some_and(|v| now >= v.opens_at_ms && now < v.closes_at_ms);
        let log_json = lottery
            .as_ref()
            .and_then(|v| v.log.as_ref())
            .map(|log| serde_json::to_string_pretty(log).unwrap_or_default())
            .unwrap_or_default();
        Ok::<_, Error>((svc, slot, lottery, open, log_json, wait, first_come))
    }
    .await;
    match r {
        Ok((svc, slot, lottery, open, log_json, wait, first_come)) => {
            render_status(StatusCode::OK, &SlotPage { l, svc, slot, lottery, open, log_json, wait, first_come })
        }
        Err(e) => l.failure(&e),
    }
}

/// Join a full slot's waiting list, then back to the slot.
pub(crate) async fn join_waitlist(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    match s.hall.booking().join_waitlist(&p.user_id, &id).await {
        Ok(_) => Redirect::to(&format!("/city/slots/{id}")).into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

/// Ask for a place in a lottery slot during its window, then back to the slot.
pub(crate) async fn enter_lottery(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    match s.hall.booking().request_lottery(&p.user_id, &id).await {
        Ok(()) => Redirect::to(&format!("/city/slots/{id}")).into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city", &p).await.failure(&e),
    }
}

/// The card was handed back at the desk: the deposit held goes back to the resident's wallet.
pub(crate) async fn staff_return_deposit(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    _form: CsrfForm,
) -> Response {
    match s.hall.return_deposit(&p, &id).await {
        Ok(_) => Redirect::to("/city/staff").into_response(),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city/staff", &p).await.failure(&e),
    }
}

#[derive(Template)]
#[template(path = "city_staff_application.html")]
struct StaffApplicationPage {
    l: Layout,
    id: String,
    /// Opened (after a reason was given): the application, else the form asking why.
    a: Option<yizhan_city::Application>,
    title: String,
    why: String,
    questions: Vec<Question>,
    files: Vec<yizhan_city::uploads::Upload>,
}

/// Staff open an application of their department: first why (written to
/// the resident's access log), then its answers and its files (type and size).
pub(crate) async fn staff_application(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<crate::ReadQuery>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city/staff", &p).await;
    let why = q.why.unwrap_or_default().trim().to_string();
    if why.is_empty() {
        // Only staff of the owning department get as far as the question.
        let allowed = async {
            let a = s.hall.application_org(&id).await?;
            s.identity.require_staff(&p, &a, Role::Operator).await.map(|_| ())
        }
        .await;
        if let Err(e) = allowed {
            return l.failure(&e);
        }
        let page = StaffApplicationPage { l, id, a: None, title: String::new(), why, questions: vec![], files: vec![] };
        return render_status(StatusCode::OK, &page);
    }
    let opened = async {
        let a = s.hall.staff_read(&p, &id, &why).await?;
        let svc = s.hall.service(&a.service_id).await?;
        let form = svc.parsed_form()?;
        let answers = Value::Object(a.answers.clone());
        let questions: Vec<Question> = questions(lang, &form, &answers, None)
            .into_iter()
            .filter(|q| !q.is_upload() && answers.get(&q.f.name).is_some())
            .collect();
        let files = s.hall.application_uploads(&a).await?;
        Ok::<_, Error>((a, svc.title.get(lang.code()).to_string(), questions, files))
    }
    .await;
    match opened {
        Ok((a, title, questions, files)) => {
            let page = StaffApplicationPage { l, id, a: Some(a), title, why, questions, files };
            render_status(StatusCode::OK, &page)
        }
        Err(e) => l.failure(&e),
    }
}

/// Staff open one file of an application (written to the resident's access log first).
pub(crate) async fn staff_application_upload(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path((id, upload_id)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<crate::ReadQuery>,
) -> Response {
    let why = q.why.unwrap_or_default();
    match s.hall.staff_read_application_upload(&p, &id, &upload_id, &why).await {
        Ok((u, data)) => crate::file_response(&u, data),
        Err(e) => person_layout(&s.notify, lang, &csrf, "/city/staff", &p).await.failure(&e),
    }
}

#[derive(Template)]
#[template(path = "city_uploads.html")]
struct UploadsPage {
    l: Layout,
    files: Vec<yizhan_city::uploads::Upload>,
}

/// The files I attached to forms (type and size), each opened by its link.
pub(crate) async fn my_uploads(State(s): State<CityRoom>, lang: Lang, csrf: Csrf, PageUser(p): PageUser) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    match s.hall.uploads_of(&p.user_id).await {
        Ok(files) => render_status(StatusCode::OK, &UploadsPage { l, files }),
        Err(e) => l.failure(&e),
    }
}

pub(crate) struct ApplicationRow {
    pub a: yizhan_city::Application,
    pub title: String,
}

#[derive(Template)]
#[template(path = "city_applications.html")]
struct ApplicationsPage {
    l: Layout,
    rows: Vec<ApplicationRow>,
}

async fn service_title(s: &CityRoom, lang: Lang, service_id: &str) -> String {
    match s.hall.service(service_id).await {
        Ok(svc) => svc.title.get(lang.code()).to_string(),
        Err(_) => lang.t("city.page.application").to_string(),
    }
}

/// My applications, newest first, with their status.
pub(crate) async fn applications_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let list = match s.hall.my_applications(&p.user_id, 50).await {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let mut rows = Vec::with_capacity(list.len());
    for a in list {
        rows.push(ApplicationRow { title: service_title(&s, lang, &a.service_id).await, a });
    }
    render_status(StatusCode::OK, &ApplicationsPage { l, rows })
}

#[derive(Template)]
#[template(path = "city_application.html")]
struct ApplicationPage {
    l: Layout,
    a: yizhan_city::Application,
    title: String,
    /// The answers given, as sent.
    shown: Vec<Question>,
    history: Vec<yizhan_city::Event>,
    /// More information is asked for: the form's questions to answer again
    /// (empty otherwise), posted as multipart with any files to `{base}/answers`.
    questions: Vec<Question>,
    base: String,
}

impl ApplicationPage {
    /// Files chosen are sent with the answers (no separate "attach" step).
    fn attach_each(&self) -> bool {
        false
    }
}

/// One of my applications: its answers, fee and deposit, its status history
/// and, when the department asked for more information, the form to answer
/// it (`edited`: the answers sent again and what was wrong with them).
async fn application_view(
    s: &CityRoom,
    lang: Lang,
    p: &Principal,
    l: Layout,
    id: &str,
    edited: Option<(&Value, &Error)>,
) -> Response {
    let r = async {
        let a = s.hall.my_application(&p.user_id, id).await?;
        let history = s.hall.my_application_history(&p.user_id, id).await?;
        let form = s.hall.service(&a.service_id).await?.parsed_form()?;
        let answers = Value::Object(a.answers.clone());
        let shown: Vec<Question> =
            questions(lang, &form, &answers, None).into_iter().filter(|q| answers.get(&q.f.name).is_some()).collect();
        let editable = if a.status == yizhan_city::Status::MoreInfoNeeded {
            match edited {
                Some((sent, e)) => questions(lang, &form, sent, Some(e)),
                None => questions(lang, &form, &answers, None),
            }
        } else {
            Vec::new()
        };
        Ok::<_, Error>((a, history, shown, editable))
    }
    .await;
    match r {
        Ok((a, history, shown, questions)) => {
            let shown = name_files(s, p, shown).await;
            let questions = name_files(s, p, questions).await;
            let title = service_title(s, lang, &a.service_id).await;
            let (l, status) = match edited {
                Some((_, e)) => l.failed(e),
                None => (l, StatusCode::OK),
            };
            let base = format!("/city/applications/{}", a.id);
            render_status(status, &ApplicationPage { l, a, title, shown, history, questions, base })
        }
        Err(e) => l.failure(&e),
    }
}

/// One of my applications (where its notices link).
pub(crate) async fn application_page(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    application_view(&s, lang, &p, l, &id, None).await
}

/// My answer to the department's request for more information: the form
/// again, as multipart with any files chosen (each kept and answering its
/// question), sent back for review; then the application (or the form
/// again with what is wrong with an answer or a file).
pub(crate) async fn answer_application(
    State(s): State<CityRoom>,
    lang: Lang,
    csrf: Csrf,
    PageUser(p): PageUser,
    Path(id): Path<String>,
    CsrfMultipart(m): CsrfMultipart,
) -> Response {
    let l = person_layout(&s.notify, lang, &csrf, "/city", &p).await;
    let opened = async {
        let a = s.hall.my_application(&p.user_id, &id).await?;
        if a.status != yizhan_city::Status::MoreInfoNeeded {
            // Nothing is kept of files sent when nothing is asked.
            return Err(Error::new(yizhan_city::codes::WRONG_STATUS, "city.status.not_waiting_for_you"));
        }
        let form = s.hall.service(&a.service_id).await?.parsed_form()?;
        Ok((a, form))
    }
    .await;
    let (a, form) = match opened {
        Ok(v) => v,
        Err(e) => return l.failure(&e),
    };
    let mut answers = answers_from(&form, &m.texts());
    let r = async {
        attach_files(&s, &p, &a.service_id, &form, &m, &mut answers).await?;
        s.hall.resubmit(&p.user_id, &id, &answers).await
    }
    .await;
    match r {
        Ok(a) => Redirect::to(&format!("/city/applications/{}", a.id)).into_response(),
        Err(e) if !e.fields.is_empty() => application_view(&s, lang, &p, l, &id, Some((&answers, &e))).await,
        Err(e) => l.failure(&e),
    }
}
