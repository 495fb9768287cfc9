#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{world, World};
use yizhan_core::{Code, Msg};
use yizhan_identity::{City, Org, OrgKind, Principal, Relation, Relations, Role};

struct Town {
    admin: Principal,
    city: City,
    bureau: Org,
    hospital: Org,
    /// Admin of the bureau.
    chief: Principal,
    /// Operator of the bureau.
    clerk: Principal,
    /// Operator of the hospital.
    nurse: Principal,
    resident: Principal,
}

async fn town(w: &World) -> Town {
    let admin = w.admin().await;
    let city = w.id.create_city(&admin, "Hangzhou", vec!["permits".into(), "medical".into()]).await.unwrap();
    let bureau = w.id.create_org(&admin, &city.id, OrgKind::CityDepartment, "Exit-Entry Bureau").await.unwrap();
    let hospital = w.id.create_org(&admin, &city.id, OrgKind::Hospital, "First People's Hospital").await.unwrap();
    let chief = w.person("chief@bureau.example", "Chief Wang").await;
    let clerk = w.person("clerk@bureau.example", "Clerk Zhao").await;
    let nurse = w.person("nurse@hospital.example", "Nurse Li").await;
    let resident = w.person("13812345678", "Resident Chen").await;
    w.id.add_member(&admin, &bureau.id, &chief.user_id, Role::Admin).await.unwrap();
    // The bureau's own admin adds its clerk.
    w.id.add_member(&chief, &bureau.id, &clerk.user_id, Role::Operator).await.unwrap();
    w.id.add_member(&admin, &hospital.id, &nurse.user_id, Role::Operator).await.unwrap();
    w.id.verify_real_name(&resident.user_id, "陈小红", "11010519491231002X").await.unwrap();
    Town { admin, city, bureau, hospital, chief, clerk, nurse, resident }
}

#[tokio::test]
async fn only_platform_admins_create_cities_and_orgs() {
    let w = world().await;
    let t = town(&w).await;
    let e = w.id.create_city(&t.resident, "Suzhou", vec![]).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
    assert_eq!(e.msg.key, "identity.city.admin_only");
    let e = w.id.create_city(&t.chief, "Suzhou", vec![]).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden, "org admins are not platform admins");
    let e = w.id.create_org(&t.resident, &t.city.id, OrgKind::Merchant, "Tea Shop").await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
    let e = w.id.create_org(&t.chief, &t.city.id, OrgKind::Merchant, "Tea Shop").await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
    assert_eq!(e.msg.key, "identity.org.admin_only");

    assert_eq!(w.id.create_city(&t.admin, "Hangzhou", vec![]).await.unwrap_err().code, Code::AlreadyExists);
    assert_eq!(
        w.id.create_city(&t.admin, "Suzhou", vec!["Bad Key!".into()]).await.unwrap_err().fields[0].field,
        "services"
    );
    assert_eq!(w.id.create_city(&t.admin, " ", vec![]).await.unwrap_err().fields[0].field, "name");
    let suzhou =
        w.id.create_city(&t.admin, "Suzhou", vec!["bills".into(), "bills".into(), "library".into()]).await.unwrap();
    assert_eq!(suzhou.services, vec!["bills", "library"]);
    assert_eq!(w.id.city(&suzhou.id).await.unwrap(), suzhou);
    assert_eq!(w.id.city("nope").await.unwrap_err().code, Code::NotFound);
    let names: Vec<String> = w.id.list_cities().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["Hangzhou", "Suzhou"]);

    let e = w.id.create_org(&t.admin, "no-such-city", OrgKind::Court, "Court").await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    let e = w.id.create_org(&t.admin, &t.city.id, OrgKind::Hospital, "First People's Hospital").await.unwrap_err();
    assert_eq!(e.code, Code::AlreadyExists);
    // The same name in another city is another organisation.
    let sz_hospital =
        w.id.create_org(&t.admin, &suzhou.id, OrgKind::Hospital, "First People's Hospital").await.unwrap();
    assert_eq!(w.id.org(&sz_hospital.id).await.unwrap(), sz_hospital);
    assert_eq!(w.id.org("nope").await.unwrap_err().code, Code::NotFound);
    assert_eq!(w.id.list_orgs(Some(&suzhou.id)).await.unwrap(), vec![sz_hospital]);
    let hz: Vec<String> = w.id.list_orgs(Some(&t.city.id)).await.unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(hz, vec!["Exit-Entry Bureau", "First People's Hospital"]);
    assert_eq!(w.id.list_orgs(None).await.unwrap().len(), 3);
    assert_eq!(t.hospital.kind, OrgKind::Hospital);
}

#[tokio::test]
async fn members_are_managed_by_admins_of_the_org() {
    let w = world().await;
    let t = town(&w).await;
    let newcomer = w.person("new@bureau.example", "Newcomer").await;

    // An operator cannot add staff; staff of another org cannot; residents cannot.
    for outsider in [&t.clerk, &t.nurse, &t.resident] {
        let e = w.id.add_member(outsider, &t.bureau.id, &newcomer.user_id, Role::Operator).await.unwrap_err();
        assert_eq!(e.code, Code::Forbidden, "{}", outsider.name);
    }
    // The bureau's admin cannot add staff to the hospital.
    let e = w.id.add_member(&t.chief, &t.hospital.id, &newcomer.user_id, Role::Operator).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
    let e = w.id.add_member(&t.chief, &t.bureau.id, "no-such-user", Role::Operator).await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert_eq!(e.msg.key, "error.not_found.user");
    let e = w.id.add_member(&t.admin, "no-such-org", &newcomer.user_id, Role::Operator).await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert_eq!(e.msg.key, "error.not_found.organisation");
    let e = w.id.add_member(&t.resident, "no-such-org", &newcomer.user_id, Role::Operator).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden, "outsiders do not learn which orgs exist");

    let m = w.id.add_member(&t.chief, &t.bureau.id, &newcomer.user_id, Role::Operator).await.unwrap();
    assert_eq!((m.role, m.user_name.as_str()), (Role::Operator, "Newcomer"));
    // Adding again changes the role.
    let m2 = w.id.add_member(&t.chief, &t.bureau.id, &newcomer.user_id, Role::Admin).await.unwrap();
    assert_eq!((m2.role, m2.created_at_ms), (Role::Admin, m.created_at_ms));

    let members = w.id.list_members(&t.clerk, &t.bureau.id).await.unwrap();
    let names: Vec<(&str, Role)> = members.iter().map(|m| (m.user_name.as_str(), m.role)).collect();
    assert_eq!(names, vec![("Chief Wang", Role::Admin), ("Newcomer", Role::Admin), ("Clerk Zhao", Role::Operator)]);
    assert_eq!(w.id.list_members(&t.admin, &t.bureau.id).await.unwrap().len(), 3);
    // Staff of the hospital cannot list the bureau's staff, nor residents.
    assert_eq!(w.id.list_members(&t.nurse, &t.bureau.id).await.unwrap_err().code, Code::Forbidden);
    assert_eq!(w.id.list_members(&t.resident, &t.bureau.id).await.unwrap_err().code, Code::Forbidden);

    // Roles as seen by require_staff.
    assert_eq!(w.id.require_staff(&t.clerk, &t.bureau.id, Role::Operator).await.unwrap().role, Role::Operator);
    let e = w.id.require_staff(&t.clerk, &t.bureau.id, Role::Admin).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
    assert_eq!(e.msg, Msg::new("identity.staff.role_needed").key_arg("role", "role.admin"));
    assert_eq!(w.id.require_staff(&t.admin, &t.hospital.id, Role::Admin).await.unwrap().role, Role::Admin);
    assert_eq!(w.id.require_staff(&t.nurse, &t.bureau.id, Role::Operator).await.unwrap_err().code, Code::Forbidden);

    // Memberships show in the profile.
    let ms = w.id.memberships(&t.chief.user_id).await.unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(
        (ms[0].org_id.as_str(), ms[0].org_kind, ms[0].role),
        (t.bureau.id.as_str(), OrgKind::CityDepartment, Role::Admin)
    );
    assert_eq!(ms[0].city_id, t.city.id);
    assert_eq!(w.id.profile(&t.nurse.user_id).await.unwrap().memberships[0].org_name, "First People's Hospital");

    // Removing staff.
    assert_eq!(w.id.remove_member(&t.clerk, &t.bureau.id, &newcomer.user_id).await.unwrap_err().code, Code::Forbidden);
    w.id.remove_member(&t.chief, &t.bureau.id, &newcomer.user_id).await.unwrap();
    assert_eq!(w.id.remove_member(&t.chief, &t.bureau.id, &newcomer.user_id).await.unwrap_err().code, Code::NotFound);
    assert_eq!(w.id.require_staff(&newcomer, &t.bureau.id, Role::Operator).await.unwrap_err().code, Code::Forbidden);
}

#[tokio::test]
async fn every_staff_read_is_in_the_residents_access_log_first() {
    let w = world().await;
    let t = town(&w).await;
    let subject = &t.resident.user_id;

    let view =
        w.id.staff_read_profile(&t.clerk, &t.bureau.id, subject, "passport application P-17", false).await.unwrap();
    assert_eq!(view.real_name.as_deref(), Some("陈小红"));
    assert_eq!(view.id_number_masked.as_deref(), Some("1101**********002X"));
    assert_eq!(view.id_number, None);
    assert_eq!(view.name, "Resident Chen");

    let view = w.id.staff_read_profile(&t.chief, &t.bureau.id, subject, "identity_check", true).await.unwrap();
    assert_eq!(view.id_number.as_deref(), Some("11010519491231002X"));

    // The platform admin may read through any org, also logged.
    w.id.staff_read_profile(&t.admin, &t.hospital.id, subject, "support ticket 9", false).await.unwrap();

    let log = w.audit.list(subject, 10, None).await.unwrap();
    assert_eq!(log.len(), 3);
    let (admin_read, chief_read, clerk_read) = (&log[0], &log[1], &log[2]);
    assert_eq!(clerk_read.what, "profile");
    assert_eq!(clerk_read.why, "passport application P-17");
    assert_eq!(clerk_read.actor_user_id, t.clerk.user_id);
    assert_eq!(clerk_read.actor_label, "Clerk Zhao");
    assert_eq!(clerk_read.org_id.as_deref(), Some(t.bureau.id.as_str()));
    assert_eq!(clerk_read.org_label.as_deref(), Some("Exit-Entry Bureau"));
    assert_eq!(chief_read.what, "identity_number");
    assert_eq!(chief_read.actor_label, "Chief Wang");
    // ...as the platform's support, not as the org in the path.
    assert_eq!(admin_read.org_label.as_deref(), Some(yizhan_audit::PLATFORM_SUPPORT));
    assert_eq!(admin_read.org_id, None);
    assert!(w.audit.verify(subject).await.unwrap().ok);
    // The log never holds the number itself.
    for e in &log {
        assert!(!serde_json::to_string(e).unwrap().contains("11010519491231002X"));
    }
}

#[tokio::test]
async fn staff_cannot_read_through_another_org_and_refused_reads_leave_nothing() {
    let w = world().await;
    let t = town(&w).await;
    let subject = &t.resident.user_id;

    // The nurse is staff of the hospital, not the bureau.
    let e = w.id.staff_read_profile(&t.nurse, &t.bureau.id, subject, "registration", true).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
    assert_eq!(e.msg.key, "identity.staff.not_member");
    // Residents are nobody's staff.
    let e = w.id.staff_read_profile(&t.resident, &t.bureau.id, &t.nurse.user_id, "curious", false).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
    // A reason is required.
    for reason in ["", "  "] {
        let e = w.id.staff_read_profile(&t.clerk, &t.bureau.id, subject, reason, false).await.unwrap_err();
        assert_eq!(e.code, Code::ValidationFailed);
        assert_eq!(e.fields[0].field, "reason");
        assert_eq!(e.fields[0].msg.key, "identity.staff_read.reason_required");
    }
    // Unknown person.
    let e = w.id.staff_read_profile(&t.clerk, &t.bureau.id, "nobody", "check", false).await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);

    assert_eq!(w.audit.count(subject).await.unwrap(), 0);
    assert_eq!(w.audit.count(&t.nurse.user_id).await.unwrap(), 0);

    // Staff removed from the org lose access at once.
    w.id.remove_member(&t.chief, &t.bureau.id, &t.clerk.user_id).await.unwrap();
    let e = w.id.staff_read_profile(&t.clerk, &t.bureau.id, subject, "check", false).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden);
}

#[tokio::test]
async fn a_home_city_shows_in_the_profile() {
    let w = world().await;
    let t = town(&w).await;
    w.id.set_home_city(&t.resident.user_id, &t.city.id).await.unwrap();
    let p = w.id.profile(&t.resident.user_id).await.unwrap();
    assert_eq!(p.home_city_id.as_deref(), Some(t.city.id.as_str()));
    assert_eq!(p.home_city_name.as_deref(), Some("Hangzhou"));
    assert_eq!(w.id.set_home_city(&t.resident.user_id, "nope").await.unwrap_err().code, Code::NotFound);
    assert_eq!(w.id.set_home_city("nobody", &t.city.id).await.unwrap_err().code, Code::NotFound);
}

struct Knows(Relation);

#[async_trait::async_trait]
impl Relations for Knows {
    async fn relation(&self, _org: &str, _subject: &str, reason: &str) -> yizhan_core::Result<Relation> {
        Ok(if reason == "bill" { self.0 } else { Relation::Unknowable })
    }
}

#[tokio::test]
async fn a_full_identity_number_needs_a_listed_reason_and_a_relation_where_one_is_known() {
    let w = world().await;
    let t = town(&w).await;
    let subject = &t.resident.user_id;
    // A free-text reason is fine for the profile, not for the number.
    let e = w.id.staff_read_profile(&t.chief, &t.bureau.id, subject, "just checking", true).await.unwrap_err();
    assert_eq!(e.code, Code::ValidationFailed);
    assert_eq!(e.fields[0].msg.key, "identity.staff_read.reason_from_list");
    // The rooms that know say this bureau never billed the person.
    w.id.set_relations(std::sync::Arc::new(Knows(Relation::No)));
    let e = w.id.staff_read_profile(&t.chief, &t.bureau.id, subject, "bill", true).await.unwrap_err();
    assert_eq!((e.code, e.msg.key.as_str()), (Code::Forbidden, "identity.staff_read.no_relation"));
    // A reason nothing can check stands on its own.
    let view = w.id.staff_read_profile(&t.chief, &t.bureau.id, subject, "permit", true).await.unwrap();
    assert!(view.id_number.is_some());
    // Refused reads leave nothing in the log; the one that went through does.
    let log = w.audit.list(subject, 10, None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].what.as_str(), log[0].why.as_str()), ("identity_number", "permit"));
}
