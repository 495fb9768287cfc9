//! Real names and plates bound only with proof, disputes, counter verification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{id_number, world, World};
use yizhan_core::{Code, Error};
use yizhan_identity::verifier::sandbox;
use yizhan_identity::{codes, Claim, DisputeStatus, OrgKind, Principal, Role};

struct Town {
    /// A city department (its operator works the counter).
    bureau: String,
    clerk: Principal,
    /// A shop: its staff do no counter work.
    shop: String,
    cashier: Principal,
}

async fn town(w: &World) -> Town {
    let admin = w.admin().await;
    let city = w.id.create_city(&admin, "Hangzhou", vec![]).await.unwrap();
    let bureau = w.id.create_org(&admin, &city.id, OrgKind::CityDepartment, "Public Security Bureau").await.unwrap();
    let shop = w.id.create_org(&admin, &city.id, OrgKind::Merchant, "Tea Shop").await.unwrap();
    let clerk = w.person("clerk@bureau.example", "Clerk Zhao").await;
    let cashier = w.person("cashier@shop.example", "Cashier Qian").await;
    w.id.add_member(&admin, &bureau.id, &clerk.user_id, Role::Operator).await.unwrap();
    w.id.add_member(&admin, &shop.id, &cashier.user_id, Role::Admin).await.unwrap();
    Town { bureau: bureau.id, clerk, shop: shop.id, cashier }
}

fn number() -> String {
    id_number("330106", "19900307", "123")
}

/// Everything an answer shows a caller: code, message, fields, status-bearing parts.
fn shown(e: &Error) -> String {
    format!("{} {:?} {:?} {:?}", e.code, e.msg, e.fields, e.retry_after_s)
}

async fn kinds_of(w: &World, user_id: &str) -> Vec<String> {
    w.notify.inbox(user_id, 50).await.unwrap().into_iter().map(|n| n.title.key).collect()
}

#[tokio::test]
async fn a_wrong_name_is_refused_and_nothing_is_stored() {
    let w = world().await;
    let me = w.person("me@example.com", "Me").await;
    let e = w.id.verify_real_name(&me.user_id, sandbox::NO_MATCH_NAMES[0], &number()).await.unwrap_err();
    assert_eq!(e.code, Code::ValidationFailed);
    assert_eq!(e.fields[0].field, "id_number");
    assert_eq!(e.fields[0].msg.key, "identity.verify.no_match");
    let p = w.id.profile(&me.user_id).await.unwrap();
    assert_eq!((p.verification_level, p.real_name, p.id_number_masked), (0, None, None));
    assert_eq!(w.id.find_by_id_number(&number()).await.unwrap(), None);
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE id_index IS NOT NULL").fetch_one(&w.t.db.pool).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_mismatch_says_the_same_whether_or_not_the_number_is_on_the_platform() {
    let w = world().await;
    let holder = w.person("holder@example.com", "Holder").await;
    let prober = w.person("prober@example.com", "Prober").await;
    let on_platform = number();
    let elsewhere = id_number("330106", "19900307", "456");
    w.id.verify_real_name(&holder.user_id, "王小明", &on_platform).await.unwrap();
    let bad_name = sandbox::NO_MATCH_NAMES[0];
    let bound = w.id.verify_real_name(&prober.user_id, bad_name, &on_platform).await.unwrap_err();
    let unbound = w.id.verify_real_name(&prober.user_id, bad_name, &elsewhere).await.unwrap_err();
    assert_eq!(shown(&bound), shown(&unbound));
    // And so for a dispute: no dispute about someone else's number without the verifier's match.
    let on = Claim::IdNumber { name: bad_name, id_number: &on_platform };
    let off = Claim::IdNumber { name: bad_name, id_number: &elsewhere };
    let bound = w.id.open_dispute(&prober.user_id, on).await.unwrap_err();
    let unbound = w.id.open_dispute(&prober.user_id, off).await.unwrap_err();
    assert_eq!(shown(&bound), shown(&unbound));
    assert!(kinds_of(&w, &holder.user_id).await.is_empty(), "the holder was not bothered");
}

#[tokio::test]
async fn the_verifier_not_answering_is_retryable() {
    let w = world().await;
    let me = w.person("me@example.com", "Me").await;
    let e = w.id.verify_real_name(&me.user_id, sandbox::UNAVAILABLE_NAMES[0], &number()).await.unwrap_err();
    assert_eq!(e.code, codes::VERIFIER_UNAVAILABLE);
    assert_eq!(e.code.class(), yizhan_core::Class::Unavailable);
    assert!(e.retry_after_s.is_some());
    assert_eq!(w.id.profile(&me.user_id).await.unwrap().verification_level, 0);
}

#[tokio::test]
async fn the_true_holder_disputes_an_attackers_binding_and_staff_uphold_it() {
    let w = world().await;
    let t = town(&w).await;
    let attacker = w.person("attacker@example.com", "Attacker").await;
    let owner = w.person("owner@example.com", "Owner").await;
    // The attacker got the number bound first (a verifier that was fooled).
    w.id.verify_real_name(&attacker.user_id, "王小明", &number()).await.unwrap();
    let e = w.id.verify_real_name(&owner.user_id, "王小明", &number()).await.unwrap_err();
    assert_eq!(e.code, codes::BOUND_ELSEWHERE);
    let claim = Claim::IdNumber { name: "王小明", id_number: &number() };
    let d = w.id.open_dispute(&owner.user_id, claim).await.unwrap();
    assert_eq!(d.status, DisputeStatus::Open);
    assert_eq!(d.subject, format!("3301**********{}", &number()[14..]));
    // Asked again: the same dispute; the holder is told once.
    let again = w.id.open_dispute(&owner.user_id, Claim::IdNumber { name: "王小明", id_number: &number() }).await;
    assert_eq!(again.unwrap().id, d.id);
    assert_eq!(kinds_of(&w, &attacker.user_id).await, vec!["identity.notice.claimed.title"]);

    // The shop's staff cannot see or decide disputes; the bureau's can.
    let e = w.id.list_disputes(&t.cashier, &t.shop, None, None).await.unwrap_err();
    assert_eq!(e.msg.key, "identity.counter.city_department_only");
    assert_eq!(w.id.list_disputes(&attacker, &t.bureau, None, None).await.unwrap_err().code, Code::Forbidden);
    assert!(w.id.resolve_dispute(&t.cashier, &t.shop, &d.id, true).await.is_err());
    let page = w.id.list_disputes(&t.clerk, &t.bureau, None, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].claimant.user_id, owner.user_id);
    assert_eq!(page.items[0].holder.user_id, attacker.user_id);
    // Staff see only the end of the number (to match the card at a counter).
    assert_eq!(page.items[0].subject, format!("**************{}", &number()[14..]));

    let resolved = w.id.resolve_dispute(&t.clerk, &t.bureau, &d.id, true).await.unwrap();
    assert_eq!(resolved.status, DisputeStatus::Upheld);
    let owner_p = w.id.profile(&owner.user_id).await.unwrap();
    assert_eq!(owner_p.verification_level, 1);
    assert_eq!(owner_p.real_name.as_deref(), Some("王小明"));
    assert_eq!(w.id.reveal_own_id_number(&owner.user_id).await.unwrap(), number());
    let attacker_p = w.id.profile(&attacker.user_id).await.unwrap();
    assert_eq!((attacker_p.verification_level, attacker_p.real_name, attacker_p.id_number_masked), (0, None, None));
    assert_eq!(w.id.find_by_id_number(&number()).await.unwrap().unwrap().user_id, owner.user_id);
    assert!(kinds_of(&w, &owner.user_id).await.contains(&"identity.notice.upheld.title".to_string()));
    assert!(kinds_of(&w, &attacker.user_id).await.contains(&"identity.notice.moved_away.title".to_string()));
    for who in [&owner.user_id, &attacker.user_id] {
        let log = w.audit.list(who, 10, None).await.unwrap();
        assert_eq!(log.len(), 1, "{who}");
        assert_eq!((log[0].what.as_str(), log[0].why.as_str()), ("identity_verification", "dispute_upheld"));
        assert_eq!(log[0].org_id.as_deref(), Some(t.bureau.as_str()));
        assert_eq!(log[0].actor_user_id, t.clerk.user_id);
    }
    // Decided once.
    let e = w.id.resolve_dispute(&t.clerk, &t.bureau, &d.id, false).await.unwrap_err();
    assert_eq!(e.msg.key, "identity.dispute.resolved");
    assert!(w.id.list_disputes(&t.clerk, &t.bureau, None, None).await.unwrap().items.is_empty());
    // The sealed evidence is gone from the dispute once decided.
    let (cipher,): (Option<String>,) = sqlx::query_as("SELECT id_cipher FROM identity_disputes WHERE id = $1")
        .bind(&d.id)
        .fetch_one(&w.t.db.pool)
        .await
        .unwrap();
    assert_eq!(cipher, None);
}

#[tokio::test]
async fn a_rejected_dispute_moves_nothing_and_tells_both() {
    let w = world().await;
    let t = town(&w).await;
    let holder = w.person("holder@example.com", "Holder").await;
    let claimant = w.person("claimant@example.com", "Claimant").await;
    w.id.verify_real_name(&holder.user_id, "王小明", &number()).await.unwrap();
    let d = w.id.open_dispute(&claimant.user_id, Claim::IdNumber { name: "王小明", id_number: &number() }).await;
    let d = d.unwrap();
    w.id.resolve_dispute(&t.clerk, &t.bureau, &d.id, false).await.unwrap();
    assert_eq!(w.id.profile(&holder.user_id).await.unwrap().verification_level, 1);
    assert_eq!(w.id.profile(&claimant.user_id).await.unwrap().verification_level, 0);
    assert!(kinds_of(&w, &claimant.user_id).await.contains(&"identity.notice.rejected.title".to_string()));
    assert!(kinds_of(&w, &holder.user_id).await.contains(&"identity.notice.kept.title".to_string()));
    assert_eq!(w.audit.list(&claimant.user_id, 10, None).await.unwrap()[0].why, "dispute_rejected");
    assert_eq!(w.audit.list(&holder.user_id, 10, None).await.unwrap()[0].why, "dispute_rejected");
    assert_eq!(w.id.my_disputes(&claimant.user_id).await.unwrap()[0].status, DisputeStatus::Rejected);
}

#[tokio::test]
async fn a_counter_verifies_in_person_and_moves_a_binding_when_told() {
    let w = world().await;
    let t = town(&w).await;
    let person = w.person("person@example.com", "Person").await;
    let p = w.id.counter_verify(&t.clerk, &t.bureau, &person.user_id, "王小明", &number(), false).await.unwrap();
    assert_eq!(p.verification_level, yizhan_identity::VERIFICATION_IN_PERSON);
    assert_eq!(p.verification_level, 2);
    let log = w.audit.list(&person.user_id, 10, None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].what.as_str(), log[0].why.as_str()), ("identity_verification", "counter_verification"));
    assert_eq!(log[0].org_id.as_deref(), Some(t.bureau.as_str()));
    assert!(kinds_of(&w, &person.user_id).await.contains(&"identity.notice.counter_verified.title".to_string()));

    // Someone else at the counter with the same number: staff see it is bound elsewhere...
    let other = w.person("13900001111", "Other").await;
    let e = w.id.counter_verify(&t.clerk, &t.bureau, &other.user_id, "王小明", &number(), false).await.unwrap_err();
    assert_eq!(e.code, codes::BOUND_ELSEWHERE);
    assert_eq!(e.msg.key, "identity.counter.bound_elsewhere");
    assert_eq!(e.msg.args[0].1, yizhan_core::Arg::Text("p***@example.com".into()));
    assert_eq!(w.id.profile(&person.user_id).await.unwrap().verification_level, 2, "nothing moved");
    // ...and, having checked the card, move it: both told, both logs.
    let p = w.id.counter_verify(&t.clerk, &t.bureau, &other.user_id, "王小明", &number(), true).await.unwrap();
    assert_eq!(p.verification_level, 2);
    assert_eq!(w.id.profile(&person.user_id).await.unwrap().verification_level, 0);
    assert!(kinds_of(&w, &person.user_id).await.contains(&"identity.notice.moved_away.title".to_string()));
    assert_eq!(w.audit.list(&person.user_id, 10, None).await.unwrap()[0].why, "binding_moved");
    assert_eq!(w.audit.list(&other.user_id, 10, None).await.unwrap()[0].why, "counter_verification");
}

#[tokio::test]
async fn only_city_department_staff_verify_at_a_counter() {
    let w = world().await;
    let t = town(&w).await;
    let person = w.person("person@example.com", "Person").await;
    let resident = w.person("resident@example.com", "Resident").await;
    let e = w.id.counter_verify(&resident, &t.bureau, &person.user_id, "王小明", &number(), false).await.unwrap_err();
    assert_eq!(e.code, Code::Forbidden, "not staff");
    let e = w.id.counter_verify(&t.cashier, &t.bureau, &person.user_id, "王小明", &number(), false).await;
    assert_eq!(e.unwrap_err().code, Code::Forbidden, "staff of another organisation");
    let e = w.id.counter_verify(&t.cashier, &t.shop, &person.user_id, "王小明", &number(), false).await.unwrap_err();
    assert_eq!(e.msg.key, "identity.counter.city_department_only", "a shop's own admin");
    let e =
        w.id.counter_bind_vehicle(&t.cashier, &t.shop, &person.user_id, "浙A12345", sandbox::VALID_CERTIFICATE, false);
    assert_eq!(e.await.unwrap_err().msg.key, "identity.counter.city_department_only");
    assert_eq!(w.id.profile(&person.user_id).await.unwrap().verification_level, 0);
    assert!(w.audit.list(&person.user_id, 10, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn plates_are_bound_only_with_a_matching_registration() {
    let w = world().await;
    let t = town(&w).await;
    let me = w.person("me@example.com", "Me").await;
    // Not verified yet: no plate.
    let e = w.id.bind_vehicle(&me.user_id, "浙A12345", sandbox::VALID_CERTIFICATE).await.unwrap_err();
    assert_eq!(e.msg.key, "identity.vehicle.verify_first");
    w.id.verify_real_name(&me.user_id, "王小明", &number()).await.unwrap();
    let e = w.id.bind_vehicle(&me.user_id, "浙A12345", sandbox::WRONG_CERTIFICATE).await.unwrap_err();
    assert_eq!((e.code, e.fields[0].field.as_str()), (Code::ValidationFailed, "certificate"));
    assert_eq!(e.fields[0].msg.key, "identity.vehicle.no_match");
    let e = w.id.bind_vehicle(&me.user_id, "浙A12345", "12345").await.unwrap_err();
    assert_eq!(e.fields[0].msg.key, "identity.vehicle.certificate_format");
    let e = w.id.bind_vehicle(&me.user_id, "浙A12345", sandbox::UNAVAILABLE_CERTIFICATE).await.unwrap_err();
    assert_eq!(e.code, codes::VERIFIER_UNAVAILABLE);
    assert!(w.id.vehicles(&me.user_id).await.unwrap().is_empty());
    assert_eq!(w.id.plate_holder("浙A12345").await.unwrap(), None);

    let v = w.id.bind_vehicle(&me.user_id, "浙a·12345", sandbox::VALID_CERTIFICATE).await.unwrap();
    assert_eq!(
        (v.plate.as_str(), v.certificate_last4.as_str(), v.verified_by.as_str()),
        ("浙A12345", "0007", "verifier:sandbox")
    );
    w.id.bind_vehicle(&me.user_id, "浙A12345", sandbox::VALID_CERTIFICATE).await.unwrap();
    assert_eq!(w.id.vehicles(&me.user_id).await.unwrap().len(), 1);
    assert_eq!(w.id.plate_holder("浙A12345").await.unwrap().as_deref(), Some(me.user_id.as_str()));

    // Another verified person with a matching registration: bound elsewhere, a dispute.
    let other = w.person("other@example.com", "Other").await;
    w.id.verify_real_name(&other.user_id, "李四", &id_number("330106", "19900307", "456")).await.unwrap();
    let cert = sandbox::certificate_for("33010000001");
    let e = w.id.bind_vehicle(&other.user_id, "浙A12345", &cert).await.unwrap_err();
    assert_eq!(e.code, codes::BOUND_ELSEWHERE);
    assert_eq!(e.msg.key, "identity.plate.bound_elsewhere");
    // Without a matching registration the answer is the same as for a plate nobody holds.
    let held = w.id.bind_vehicle(&other.user_id, "浙A12345", sandbox::WRONG_CERTIFICATE).await.unwrap_err();
    let free = w.id.bind_vehicle(&other.user_id, "浙A54321", sandbox::WRONG_CERTIFICATE).await.unwrap_err();
    assert_eq!(shown(&held), shown(&free));
    let d = w.id.open_dispute(&other.user_id, Claim::Plate { plate: "浙A12345", certificate: &cert }).await.unwrap();
    assert_eq!(d.subject, "浙A12345", "the claimant sees what they claimed");
    let listed = w.id.list_disputes(&t.clerk, &t.bureau, None, None).await.unwrap();
    assert_eq!(listed.items[0].subject, "浙A***45");
    assert!(kinds_of(&w, &me.user_id).await.contains(&"identity.notice.claimed.title".to_string()));
    w.id.resolve_dispute(&t.clerk, &t.bureau, &d.id, true).await.unwrap();
    assert_eq!(w.id.plate_holder("浙A12345").await.unwrap().as_deref(), Some(other.user_id.as_str()));
    assert!(w.id.vehicles(&me.user_id).await.unwrap().is_empty());
    assert_eq!(w.audit.list(&me.user_id, 10, None).await.unwrap()[0].what, "vehicle");

    // The traffic police (city-department staff) bind in person, audited.
    let v =
        w.id.counter_bind_vehicle(&t.clerk, &t.bureau, &me.user_id, "浙B11111", sandbox::WRONG_CERTIFICATE, false)
            .await
            .unwrap();
    assert_eq!(v.verified_by, format!("counter:{}", t.bureau));
    assert_eq!(w.audit.list(&me.user_id, 10, None).await.unwrap()[0].why, "counter_vehicle_registration");
    w.id.remove_vehicle(&me.user_id, "浙B11111").await.unwrap();
    assert_eq!(w.id.remove_vehicle(&me.user_id, "浙B11111").await.unwrap_err().code, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_claims_at_once_bind_one_account() {
    let w = world().await;
    let mut people = Vec::new();
    for i in 0..8 {
        let p = w.person(&format!("racer{i}@example.com"), "Racer").await;
        w.id.verify_real_name(&p.user_id, "赛车手", &id_number("330106", "19900307", &format!("{:03}", 500 + i)))
            .await
            .unwrap();
        people.push(p.user_id);
    }
    let mut tasks = Vec::new();
    for u in people.clone() {
        let id = w.id.clone();
        tasks.push(tokio::spawn(async move {
            let n = id_number("330106", "19900307", "123");
            let num = id.verify_real_name(&u, "王小明", &n).await;
            let plate = id.bind_vehicle(&u, "浙A88888", sandbox::VALID_CERTIFICATE).await;
            (num.map(|_| ()).map_err(|e| e.code), plate.map(|_| ()).map_err(|e| e.code))
        }));
    }
    let mut numbers_ok = 0;
    let mut plates_ok = 0;
    for t in tasks {
        let (n, p) = t.await.unwrap();
        match n {
            Ok(()) => numbers_ok += 1,
            Err(c) => assert!(c == codes::BOUND_ELSEWHERE || c == Code::Conflict, "{c}"),
        }
        match p {
            Ok(()) => plates_ok += 1,
            Err(c) => assert_eq!(c, codes::BOUND_ELSEWHERE),
        }
    }
    // Each racer already had a number of their own: the shared one binds to nobody new...
    assert_eq!(numbers_ok, 0);
    assert_eq!(plates_ok, 1);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM identity_vehicles").fetch_one(&w.t.db.pool).await.unwrap();
    assert_eq!(n, 1);

    // ...so race fresh accounts for one number.
    let mut fresh = Vec::new();
    for i in 0..8 {
        fresh.push(w.person(&format!("fresh{i}@example.com"), "Fresh").await.user_id);
    }
    let mut tasks = Vec::new();
    for u in fresh {
        let id = w.id.clone();
        tasks.push(tokio::spawn(async move {
            id.verify_real_name(&u, "王小明", &id_number("330106", "19900307", "123")).await.map_err(|e| e.code)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(c) => assert_eq!(c, codes::BOUND_ELSEWHERE),
        }
    }
    assert_eq!(ok, 1);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE id_index IS NOT NULL AND login LIKE 'fresh%'")
        .fetch_one(&w.t.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn disputes_are_listed_a_bounded_page_at_a_time() {
    let w = world().await;
    let t = town(&w).await;
    let holder = w.person("holder@example.com", "Holder").await;
    w.id.verify_real_name(&holder.user_id, "王小明", &number()).await.unwrap();
    for i in 0..5 {
        let c = w.person(&format!("c{i}@example.com"), "C").await;
        w.id.open_dispute(&c.user_id, Claim::IdNumber { name: "王小明", id_number: &number() }).await.unwrap();
        w.clock.advance_ms(1);
    }
    let first = w.id.list_disputes(&t.clerk, &t.bureau, None, Some(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let cursor = first.next_cursor.clone().unwrap();
    let second = w.id.list_disputes(&t.clerk, &t.bureau, Some(&cursor), Some(2)).await.unwrap();
    assert_eq!(second.items.len(), 2);
    assert!(second.items.iter().all(|d| first.items.iter().all(|f| f.id != d.id)));
    let last = w.id.list_disputes(&t.clerk, &t.bureau, second.next_cursor.as_deref(), Some(2)).await.unwrap();
    assert_eq!((last.items.len(), last.next_cursor), (1, None));
    let big = w.id.list_disputes(&t.clerk, &t.bureau, None, Some(1_000_000)).await.unwrap();
    assert_eq!(big.items.len(), 5);
}
