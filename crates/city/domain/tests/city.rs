//! City services on both engines (set YIZHAN_TEST_DATABASE_URL for PostgreSQL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::sync::Arc;
use yizhan_audit::Audit;
use yizhan_booking::{local_day, Booking, Hours, Rules, DAY_MS};
use yizhan_city::form::Form;
use yizhan_city::*;
use yizhan_core::testing::TestDb;
use yizhan_core::{Clock, Code, ManualClock};
use yizhan_identity::{Identity, IdentityConfig, OrgKind, Principal, Role, SandboxIdentityVerifier};
use yizhan_notify::Notify;

const PASSWORD: &str = "correct horse battery";

struct W {
    _t: TestDb,
    clock: Arc<ManualClock>,
    id: Identity,
    audit: Audit,
    notify: Notify,
    hall: CityHall,
    admin: Principal,
    city_id: String,
    other_city_id: String,
    bureau: String,
    chief: Principal,
    clerk: Principal,
    resident: Principal,
}

async fn person(id: &Identity, login: &str, name: &str) -> Principal {
    id.register(login, PASSWORD, name).await.unwrap();
    let s = id.login(login, PASSWORD, "10.0.0.1").await.unwrap();
    id.authenticate(&s.token).await.unwrap()
}

async fn world() -> W {
    let t = TestDb::new(&[
        &yizhan_identity::MIGRATIONS,
        &yizhan_audit::MIGRATIONS,
        &yizhan_notify::MIGRATIONS,
        &yizhan_booking::MIGRATIONS,
        &yizhan_city::MIGRATIONS,
    ])
    .await;
    let (ctx, clock) = t.ctx();
    let audit = Audit::new(ctx.clone());
    let notify = Notify::new(ctx.clone(), None);
    let config = IdentityConfig { fast_hashing_for_tests: true, ..Default::default() };
    let id = Identity::new(ctx.clone(), audit.clone(), notify.clone(), Arc::new(SandboxIdentityVerifier), config);
    let hall = CityHall::new(ctx.clone(), id.clone(), Booking::new(ctx.clone()), notify.clone(), audit.clone());
    id.ensure_admin("admin@yizhan.example", PASSWORD, "Admin").await.unwrap();
    let s = id.login("admin@yizhan.example", PASSWORD, "10.0.0.2").await.unwrap();
    let admin = id.authenticate(&s.token).await.unwrap();
    let city = id.create_city(&admin, "Hangzhou", vec!["city".into()]).await.unwrap();
    let other = id.create_city(&admin, "Suzhou", vec!["city".into()]).await.unwrap();
    let bureau = id.create_org(&admin, &city.id, OrgKind::CityDepartment, "Civil Affairs").await.unwrap();
    let chief = person(&id, "chief@civil.example", "Chief Wang").await;
    let clerk = person(&id, "clerk@civil.example", "Clerk Zhao").await;
    let resident = person(&id, "13812345678", "Resident Chen").await;
    id.add_member(&admin, &bureau.id, &chief.user_id, Role::Admin).await.unwrap();
    id.add_member(&admin, &bureau.id, &clerk.user_id, Role::Operator).await.unwrap();
    W {
        _t: t,
        clock,
        id,
        audit,
        notify,
        hall,
        admin,
        city_id: city.id,
        other_city_id: other.id,
        bureau: bureau.id,
        chief,
        clerk,
        resident,
    }
}

fn t(en: &str, zh: &str) -> Value {
    json!({"en": en, "zh": zh})
}

fn card_form() -> Value {
    json!({
        "type": "object",
        "x-order": ["kind", "school", "age", "agree"],
        "required": ["kind", "school", "agree"],
        "properties": {
            "kind": {"type": "string", "enum": ["adult", "student"], "title": t("Card", "读者证"),
                     "x-enum-titles": [t("Adult", "成人"), t("Student", "学生")]},
            "school": {"type": "string", "maxLength": 20, "title": t("School", "学校"),
                       "description": t("As on your student card", "与学生证一致"),
                       "x-show-if": {"field": "kind", "in": ["student"]}},
            "age": {"type": "integer", "minimum": 6, "maximum": 120, "title": t("Age", "年龄")},
            "agree": {"type": "boolean", "title": t("I agree to the rules", "我同意借阅规则")}
        }
    })
}

fn library_card() -> NewService {
    NewService {
        category: "culture".into(),
        title: LocalText::new("Library card", "图书馆读者证"),
        description: LocalText::new("Borrow books at every branch.", "在各分馆借书。"),
        documents: vec![LocalText::new("Identity card", "居民身份证")],
        fee_fen: 0,
        delivery: Delivery::Application,
        form: card_form(),
        booking: None,
        deposit_fen: 0,
        deposit_perk: String::new(),
        two_people: false,
    }
}

fn marriage() -> NewService {
    NewService {
        category: "family".into(),
        title: LocalText::new("Marriage registration", "结婚登记"),
        description: LocalText::new("Register your marriage.", "办理结婚登记。"),
        documents: vec![],
        fee_fen: 900,
        delivery: Delivery::Appointment,
        form: json!({}),
        booking: Some(BookingSetup {
            rules: Rules { release_days_ahead: 7, ..Rules::default() },
            counters: vec!["Window 1".into()],
            hours: (0..7)
                .map(|weekday| Hours { weekday, start_minute: 540, end_minute: 600, slot_minutes: 30, capacity: 2 })
                .collect(),
            publish_days: 7,
        }),
        deposit_fen: 0,
        deposit_perk: String::new(),
        two_people: false,
    }
}

#[test]
fn forms_validate_with_a_message_key_per_field_and_conditions() {
    let form = Form::parse(&card_form()).unwrap();
    assert_eq!(form.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["kind", "school", "age", "agree"]);
    // A hidden question is neither required nor kept.
    let ok = form.validate(&json!({"kind": "adult", "agree": true, "school": "ignored"})).unwrap();
    assert_eq!(Value::Object(ok), json!({"kind": "adult", "agree": true}));
    // Shown for students, and then required.
    let e = form.validate(&json!({"kind": "student", "agree": true})).unwrap_err();
    assert_eq!(e.code, Code::ValidationFailed);
    assert_eq!(e.fields.len(), 1);
    assert_eq!((e.fields[0].field.as_str(), e.fields[0].msg.key.as_str()), ("form.school", "city.form.required"));
    let e =
        form.validate(&json!({"kind": "pensioner", "age": 3, "agree": "yes", "extra": 1, "school": "x"})).unwrap_err();
    let got: Vec<(&str, &str)> = e.fields.iter().map(|f| (f.field.as_str(), f.msg.key.as_str())).collect();
    assert_eq!(
        got,
        [
            ("form.extra", "city.form.unknown"),
            ("form.kind", "city.form.choice"),
            ("form.age", "city.form.too_small"),
            ("form.agree", "city.form.type.boolean"),
        ]
    );
    let e = form.validate(&json!({"kind": "student", "school": "x".repeat(21), "agree": true})).unwrap_err();
    assert_eq!(e.fields[0].msg.key, "city.form.too_long");
    assert_eq!(form.validate(&json!([1])).unwrap_err().fields[0].msg.key, "city.form.object");
    // Schemas are checked when published.
    for bad in [
        json!({"type": "object", "properties": {"a": {"type": "number", "title": t("A", "甲")}}}),
        json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        json!({"type": "object", "properties": {"a": {"type": "string", "title": {"en": "A"}}}}),
        json!({"type": "object", "required": ["b"], "properties": {"a": {"type": "string", "title": t("A", "甲")}}}),
        json!({"type": "object", "properties": {"a": {"type": "string", "title": t("A", "甲"),
               "x-show-if": {"field": "nope", "in": ["x"]}}}}),
        json!({"type": "object", "properties": {"a": {"type": "string", "enum": ["x"], "title": t("A", "甲")}}}),
        json!([]),
    ] {
        assert!(Form::parse(&bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn departments_publish_to_their_own_city_and_residents_see_their_city() {
    let w = world().await;
    let card = w.hall.publish(&w.chief, &w.bureau, &library_card()).await.unwrap();
    assert_eq!(card.city_id, w.city_id);
    let m = w.hall.publish(&w.chief, &w.bureau, &marriage()).await.unwrap();
    assert!(m.booking_service_id.is_some());
    // An operator may not publish; nor a resident.
    assert_eq!(w.hall.publish(&w.clerk, &w.bureau, &library_card()).await.unwrap_err().code, Code::Forbidden);
    assert_eq!(w.hall.publish(&w.resident, &w.bureau, &library_card()).await.unwrap_err().code, Code::Forbidden);
    // Only a city department publishes.
    let hospital = w.id.create_org(&w.admin, &w.city_id, OrgKind::Hospital, "Hospital").await.unwrap();
    let e = w.hall.publish(&w.admin, &hospital.id, &library_card()).await.unwrap_err();
    assert_eq!((e.fields[0].field.as_str(), e.msg.key.as_str()), ("org_id", "city.publish.department_only"));
    // Bad input changes nothing.
    let mut bad = library_card();
    bad.category = "nope".into();
    assert_eq!(w.hall.publish(&w.chief, &w.bureau, &bad).await.unwrap_err().fields[0].field, "category");
    let mut bad = library_card();
    bad.title.zh = " ".into();
    assert_eq!(w.hall.publish(&w.chief, &w.bureau, &bad).await.unwrap_err().fields[0].field, "title");
    let mut bad = marriage();
    bad.booking = None;
    assert_eq!(w.hall.publish(&w.chief, &w.bureau, &bad).await.unwrap_err().fields[0].field, "booking");

    let cat = w.hall.catalogue(&w.city_id).await.unwrap();
    assert_eq!(cat.iter().map(|s| s.category.as_str()).collect::<Vec<_>>(), ["culture", "family"]);
    assert!(w.hall.catalogue(&w.other_city_id).await.unwrap().is_empty(), "another city, another catalogue");
    // The slots of a week are released by the engine.
    let now = w.clock.now_ms();
    let slots = w.hall.booking().slots(m.booking_service_id.as_ref().unwrap(), now, now + 7 * DAY_MS).await.unwrap();
    assert!(slots.len() >= 12, "{}", slots.len());
}

#[tokio::test]
async fn an_application_goes_through_its_statuses_telling_the_resident() {
    let w = world().await;
    let card = w.hall.publish(&w.chief, &w.bureau, &library_card()).await.unwrap();
    let e = w.hall.apply(&w.resident.user_id, &card.id, &json!({"kind": "adult"}), None).await.unwrap_err();
    assert_eq!(e.fields[0].field, "form.agree");
    assert!(w.hall.my_applications(&w.resident.user_id, 10).await.unwrap().is_empty(), "nothing kept on error");
    let a = w.hall.apply(&w.resident.user_id, &card.id, &json!({"kind": "adult", "agree": true}), None).await.unwrap();
    assert_eq!(a.status, Status::Submitted);
    assert_eq!(w.notify.inbox(&w.resident.user_id, 10).await.unwrap().len(), 1);

    // The queue shows it without answers; opening it is in the resident's access log first.
    let q = w.hall.queue(&w.clerk, &w.bureau, 50).await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(w.hall.queue(&w.resident, &w.bureau, 50).await.unwrap_err().code, Code::Forbidden);
    assert_eq!(w.hall.staff_read(&w.clerk, &a.id, " ").await.unwrap_err().fields[0].field, "why");
    assert_eq!(w.hall.staff_read(&w.resident, &a.id, "curious").await.unwrap_err().code, Code::Forbidden);
    let read = w.hall.staff_read(&w.clerk, &a.id, "card application").await.unwrap();
    assert_eq!(read.answers["kind"], "adult");
    let log = w.audit.list(&w.resident.user_id, 10, None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].what.as_str(), log[0].actor_user_id.as_str()), ("application", w.clerk.user_id.as_str()));

    // Staff move it on; a skipped step is refused.
    let e = w.hall.set_status(&w.clerk, &a.id, Status::Completed, "").await.unwrap_err();
    assert_eq!(e.code, codes::WRONG_STATUS);
    w.hall.set_status(&w.clerk, &a.id, Status::InReview, "").await.unwrap();
    assert_eq!(
        w.hall.set_status(&w.clerk, &a.id, Status::MoreInfoNeeded, " ").await.unwrap_err().fields[0].field,
        "note"
    );
    let m = w.hall.set_status(&w.clerk, &a.id, Status::MoreInfoNeeded, "Student card please").await.unwrap();
    assert_eq!(m.note, "Student card please");
    // The resident answers again; back to review.
    let back = w
        .hall
        .resubmit(&w.resident.user_id, &a.id, &json!({"kind": "student", "school": "No. 2 Middle", "agree": true}))
        .await
        .unwrap();
    assert_eq!(back.status, Status::InReview);
    assert_eq!(back.answers["school"], "No. 2 Middle");
    w.hall.set_status(&w.clerk, &a.id, Status::Approved, "").await.unwrap();
    let done = w.hall.set_status(&w.clerk, &a.id, Status::Completed, "").await.unwrap();
    assert_eq!(done.status, Status::Completed);
    // Every change was told: submitted, in review, more info, in review, approved, completed.
    let inbox = w.notify.inbox(&w.resident.user_id, 20).await.unwrap();
    assert_eq!(inbox.len(), 6);
    // Nobody else sees it.
    assert_eq!(w.hall.my_application(&w.clerk.user_id, &a.id).await.unwrap_err().code, Code::NotFound);
    // Export and deletion.
    let export = w.hall.export_person(&w.resident.user_id).await.unwrap();
    assert_eq!(export["applications"].as_array().unwrap().len(), 1);
    w.hall.delete_person(&w.resident.user_id).await.unwrap();
    assert!(w.hall.my_applications(&w.resident.user_id, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_appointment_service_books_the_held_slot_with_the_application() {
    let w = world().await;
    let m = w.hall.publish(&w.chief, &w.bureau, &marriage()).await.unwrap();
    let bs = m.booking_service_id.clone().unwrap();
    let now = w.clock.now_ms();
    let tomorrow = yizhan_booking::day_start_ms(local_day(now) + 1);
    let slots = w.hall.booking().slots(&bs, tomorrow, tomorrow + DAY_MS).await.unwrap();
    let e = w.hall.apply(&w.resident.user_id, &m.id, &json!({}), None).await.unwrap_err();
    assert_eq!(e.fields[0].field, "hold_id");
    let hold = w.hall.booking().hold(&w.resident.user_id, &slots[0].slot.id).await.unwrap();
    // Someone else's hold is not usable.
    assert_eq!(
        w.hall.apply(&w.clerk.user_id, &m.id, &json!({}), Some(&hold.id)).await.unwrap_err().code,
        Code::NotFound
    );
    let a = w.hall.apply(&w.resident.user_id, &m.id, &json!({}), Some(&hold.id)).await.unwrap();
    let appt = w.hall.booking().appointment(a.appointment_id.as_ref().unwrap()).await.unwrap();
    assert_eq!(appt.person_id, w.resident.user_id);
    assert_eq!(appt.fee_fen, 900);
    assert_eq!(w.hall.booking().slot(&slots[0].slot.id).await.unwrap().remaining, 1);
}

/// A wallet in memory for deposits and fees, each movement once per
/// reference like the real one; people it refuses, and an answer it loses.
#[derive(Default)]
struct FakeWallet {
    /// Cannot pay a fee (a deposit still holds).
    no_fee: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Cannot hold a deposit.
    no_deposit: std::sync::Mutex<std::collections::HashSet<String>>,
    held: std::sync::Mutex<Vec<(String, i64)>>,
    released: std::sync::Mutex<Vec<String>>,
    charged: std::sync::Mutex<Vec<(String, i64)>>,
    refunded: std::sync::Mutex<Vec<String>>,
}

fn insufficient() -> yizhan_core::Error {
    yizhan_core::Error::new(Code::new("insufficient_funds", yizhan_core::Class::Invalid), "wallet.insufficient")
}

#[async_trait::async_trait]
impl Deposits for FakeWallet {
    async fn waived(&self, _person: &str, _org: &str, _perk: &str) -> yizhan_core::Result<bool> {
        Ok(false)
    }
    async fn hold(&self, person: &str, _org: &str, amount_fen: i64, reference: &str) -> yizhan_core::Result<()> {
        if self.no_deposit.lock().unwrap().contains(person) {
            return Err(insufficient());
        }
        let mut held = self.held.lock().unwrap();
        if !held.iter().any(|(r, _)| r == reference) {
            held.push((reference.to_string(), amount_fen));
        }
        Ok(())
    }
    async fn release(&self, reference: &str) -> yizhan_core::Result<()> {
        let was = self.held.lock().unwrap().iter().any(|(r, _)| r == reference);
        let mut released = self.released.lock().unwrap();
        if was && !released.iter().any(|r| r == reference) {
            released.push(reference.to_string());
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl yizhan_booking::Fees for FakeWallet {
    async fn charge(&self, person: &str, _owner: &str, fee_fen: i64, reference: &str) -> yizhan_core::Result<()> {
        if self.no_fee.lock().unwrap().contains(person) {
            return Err(insufficient());
        }
        let mut charged = self.charged.lock().unwrap();
        if !charged.iter().any(|(r, _)| r == reference) {
            charged.push((reference.to_string(), fee_fen));
        }
        Ok(())
    }
    async fn refund(&self, _person: &str, _owner: &str, reference: &str) -> yizhan_core::Result<()> {
        let was = self.charged.lock().unwrap().iter().any(|(r, _)| r == reference);
        let mut refunded = self.refunded.lock().unwrap();
        if was && !refunded.iter().any(|r| r == reference) {
            refunded.push(reference.to_string());
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_application_fee_and_deposit_are_taken_once_undone_on_a_refusal_and_a_crash_is_recovered() {
    let w = world().await;
    let wallet = Arc::new(FakeWallet::default());
    let hall = w.hall.clone().with_deposits(wallet.clone()).with_fees(wallet.clone());
    let mut svc = library_card();
    svc.fee_fen = 1_200;
    svc.deposit_fen = 5_000;
    let card = hall.publish(&w.chief, &w.bureau, &svc).await.unwrap();
    let answers = json!({"kind": "adult", "agree": true});
    let me = w.resident.user_id.clone();

    // Paid and held when submitted; refunded and returned on a rejection.
    let a = hall.apply(&me, &card.id, &answers, None).await.unwrap();
    assert_eq!(a.status, Status::Submitted);
    assert_eq!((a.fee_fen, a.fee_state.as_str()), (1_200, "paid"));
    assert_eq!((a.deposit_fen, a.deposit_state.as_str()), (5_000, "held"));
    assert_eq!(wallet.charged.lock().unwrap().clone(), vec![(format!("city-application-fee:{}", a.id), 1_200)]);
    assert_eq!(wallet.held.lock().unwrap().clone(), vec![(format!("city-application:{}", a.id), 5_000)]);
    assert_eq!(hall.check_deletable(&me).await.unwrap_err().code, codes::DEPOSIT_HELD, "a deposit is held");
    let r = hall.set_status(&w.clerk, &a.id, Status::Rejected, "").await.unwrap();
    assert_eq!((r.fee_state.as_str(), r.deposit_state.as_str()), ("refunded", "returned"));
    assert_eq!(wallet.refunded.lock().unwrap().len(), 1);
    assert_eq!(wallet.released.lock().unwrap().len(), 1);
    hall.check_deletable(&me).await.unwrap();

    // A wallet that cannot pay the fee: the deposit it held goes back, no application is kept.
    let poor = person(&w.id, "13900000000", "Resident Poor").await;
    wallet.no_fee.lock().unwrap().insert(poor.user_id.clone());
    let e = hall.apply(&poor.user_id, &card.id, &answers, None).await.unwrap_err();
    assert_eq!(e.code.as_str(), "insufficient_funds");
    assert!(hall.my_applications(&poor.user_id, 10).await.unwrap().is_empty(), "nothing half-done");
    assert_eq!(wallet.held.lock().unwrap().len(), 2);
    assert_eq!(wallet.released.lock().unwrap().len(), 2, "the deposit held for it is released");
    assert_eq!(wallet.charged.lock().unwrap().len(), 1);
    wallet.no_deposit.lock().unwrap().insert(poor.user_id.clone());
    let e = hall.apply(&poor.user_id, &card.id, &answers, None).await.unwrap_err();
    assert_eq!(e.code.as_str(), "insufficient_funds");
    assert!(hall.my_applications(&poor.user_id, 10).await.unwrap().is_empty());
    hall.check_deletable(&poor.user_id).await.unwrap();

    // A crash after the wallet held and charged, before the row was written:
    // the application is there (pending, its person sees it), and the sweep finishes it, each movement once.
    hall.fail_writes_after_payment(1);
    let e = hall.apply(&me, &card.id, &answers, None).await.unwrap_err();
    assert_eq!(e.code, Code::Internal);
    let mine = hall.my_applications(&me, 10).await.unwrap();
    let pending = mine.iter().find(|a| a.status == Status::Pending).expect("the pending application is kept");
    assert_eq!((pending.deposit_state.as_str(), pending.fee_state.as_str()), ("holding", "charging"));
    assert!(hall.queue(&w.clerk, &w.bureau, 50).await.unwrap().iter().all(|q| q.id != pending.id));
    assert_eq!(hall.check_deletable(&me).await.unwrap_err().code, codes::DEPOSIT_HELD);
    assert_eq!(hall.sweep().await.unwrap(), 0, "its own request may still be at it");
    w.clock.advance_ms(PENDING_GRACE_MS);
    assert_eq!(hall.sweep().await.unwrap(), 1);
    let done = hall.my_application(&me, &pending.id).await.unwrap();
    assert_eq!(done.status, Status::Submitted);
    assert_eq!((done.deposit_state.as_str(), done.fee_state.as_str()), ("held", "paid"));
    assert!(hall.queue(&w.clerk, &w.bureau, 50).await.unwrap().iter().any(|q| q.id == pending.id));
    assert_eq!(wallet.held.lock().unwrap().iter().filter(|(r, _)| r.ends_with(&pending.id)).count(), 1);
    assert_eq!(wallet.charged.lock().unwrap().iter().filter(|(r, _)| r.ends_with(&pending.id)).count(), 1);
    assert_eq!(hall.sweep().await.unwrap(), 0);

    // Completed with the card lent: the deposit stays held and the resident is told so.
    for to in [Status::InReview, Status::Approved, Status::Completed] {
        hall.set_status(&w.clerk, &done.id, to, "").await.unwrap();
    }
    let inbox = w.notify.inbox(&me, 50).await.unwrap();
    assert!(format!("{inbox:?}").contains("city.notice.deposit_still_held"), "{inbox:?}");
    assert_eq!(hall.check_deletable(&me).await.unwrap_err().code, codes::DEPOSIT_HELD);
    hall.return_deposit(&w.clerk, &done.id).await.unwrap();
    hall.check_deletable(&me).await.unwrap();
}
