use crate::common::*;
use yizhan_core::time::DAY_MS;
use yizhan_core::Code;
use yizhan_identity::OrgKind;
use yizhan_pay::{BillKind, BillSpec, BillStatus, BillTo};

struct Setup {
    e: Env,
    dept: String,
    officer: yizhan_identity::Principal,
    citizen: String,
    id_no: String,
}

async fn setup() -> Setup {
    let e = env().await;
    let dept = e.org(OrgKind::CityDepartment, "Traffic Police").await;
    let officer = e.staff(&dept, "13600000001", "Officer Wu").await;
    let citizen = e.user("13600000002", "Driver Tang").await;
    let id_no = id_number(7);
    e.identity.verify_real_name(&citizen, "唐明", &id_no).await.unwrap();
    e.pay.topup(&citizen, 50_000, None, "seed-citizen").await.unwrap();
    Setup { e, dept, officer, citizen, id_no }
}

/// Bills by number or plate reach nobody who merely claimed them: a number the
/// verifier did not match is stored nowhere, a plate without a matching
/// registration is bound to nobody, and the issuer sees "no person" / "no vehicle".
#[tokio::test]
async fn bills_never_reach_an_unverified_claimant() {
    let Setup { e, dept, officer, .. } = setup().await;
    let due = e.ctx.now_ms() + 15 * DAY_MS;
    let claimant = e.user("13600000009", "Claimant").await;
    let number = id_number(42);
    let no_match = yizhan_identity::verifier::sandbox::NO_MATCH_NAMES[0];
    assert!(e.identity.verify_real_name(&claimant, no_match, &number).await.is_err());
    let err = e.pay.issue_bill(&officer, &dept, fine(BillTo::IdNumber(number), 100, due), &key()).await.unwrap_err();
    assert_eq!((err.code, err.msg.key.as_str()), (Code::NotFound, "pay.bill.no_person"));
    let wrong = yizhan_identity::verifier::sandbox::WRONG_CERTIFICATE;
    assert!(e.identity.bind_vehicle(&claimant, "浙B54321", wrong).await.is_err());
    let err = e.pay.issue_bill(&officer, &dept, fine(BillTo::Plate("浙B54321".into()), 100, due), &key()).await;
    let err = err.unwrap_err();
    assert_eq!((err.code, err.msg.key.as_str()), (Code::NotFound, "pay.bill.no_vehicle"));
    assert!(e.pay.bills(&claimant).await.unwrap().is_empty());
    assert!(e.notify.inbox(&claimant, 10).await.unwrap().iter().all(|n| n.kind != "pay.bill"));
}

fn fine(to: BillTo, amount_fen: i64, due_at_ms: i64) -> BillSpec {
    BillSpec { to, kind: BillKind::Fine, amount_fen, due_at_ms, description: "Speeding on Wensan Road".into() }
}

#[tokio::test]
async fn bills_by_identity_number_and_plate_are_paid_once() {
    let Setup { e, dept, officer, citizen, id_no } = setup().await;
    let due = e.ctx.now_ms() + 15 * DAY_MS;
    let b1 =
        e.pay.issue_bill(&officer, &dept, fine(BillTo::IdNumber(id_no.clone()), 20_000, due), &key()).await.unwrap();
    assert_eq!((b1.user_id.as_str(), b1.status, b1.late), (citizen.as_str(), BillStatus::Unpaid, false));
    assert_eq!(b1.org_name, "Traffic Police");
    let inbox = e.notify.inbox(&citizen, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "pay.bill"
        && n.title.key == "pay.notice.bill.title"
        && n.title.args.contains(&("kind".into(), yizhan_core::Arg::Key("pay.bill_kind.fine".into())))
        && n.title.args.contains(&("amount".into(), yizhan_core::Arg::Fen(20_000)))));

    // The plate is bound in the identity room, with a registration the verifier matched.
    let cert = yizhan_identity::verifier::sandbox::VALID_CERTIFICATE;
    assert_eq!(e.identity.bind_vehicle(&citizen, "浙a·12345", cert).await.unwrap().plate, "浙A12345");
    let other = e.user("13600000003", "Other").await;
    let b2 =
        e.pay.issue_bill(&officer, &dept, fine(BillTo::Plate("浙A 12345".into()), 5_000, due), &key()).await.unwrap();
    assert_eq!(b2.plate.as_deref(), Some("浙A12345"));
    assert_eq!(b2.user_id, citizen);
    assert_eq!(e.pay.bills(&citizen).await.unwrap().len(), 2);

    let r = e.pay.pay_bill(&citizen, &b1.id, "b1").await.unwrap();
    assert_eq!(
        (r.amount_fen, r.payee_org_id.as_str(), r.payee_org_name.as_str()),
        (20_000, dept.as_str(), "Traffic Police")
    );
    assert_eq!(r.paid_at_ms, e.ctx.now_ms());
    assert!(!r.late);
    assert_eq!(e.balance(&citizen).await, 30_000);
    assert_eq!(e.org_balance(&dept).await, 20_000);
    // The same request again gets the receipt; another is refused.
    assert_eq!(e.pay.pay_bill(&citizen, &b1.id, "b1").await.unwrap().transfer_id, r.transfer_id);
    assert_eq!(code_of(e.pay.pay_bill(&citizen, &b1.id, "b1-again").await), yizhan_pay::codes::ALREADY_PAID);
    assert_eq!(e.balance(&citizen).await, 30_000);
    let paid = e.pay.bill(&citizen, &b1.id).await.unwrap();
    assert_eq!(
        (paid.status, paid.paid_at_ms, paid.transfer_id.as_deref()),
        (BillStatus::Paid, Some(r.paid_at_ms), Some(r.transfer_id.as_str()))
    );

    // Someone else's bill is not found for them, and they cannot pay it.
    assert_eq!(code_of(e.pay.pay_bill(&other, &b2.id, "x").await), Code::NotFound);
    assert_eq!(code_of(e.pay.bill(&other, &b2.id).await), Code::NotFound);
    assert_eq!(e.balance(&citizen).await, 30_000);

    // Late: unpaid past due shows late; paid after due stays late.
    e.clock.advance_ms(16 * DAY_MS);
    let late = e.pay.bill(&citizen, &b2.id).await.unwrap();
    assert!(late.late && late.status == BillStatus::Unpaid);
    assert!(!e.pay.bill(&citizen, &b1.id).await.unwrap().late);
    let r2 = e.pay.pay_bill(&citizen, &b2.id, "b2").await.unwrap();
    assert!(r2.late);
    let b2_after = e.pay.bill(&citizen, &b2.id).await.unwrap();
    assert!(b2_after.late && b2_after.status == BillStatus::Paid && b2_after.paid_at_ms.unwrap() > b2_after.due_at_ms);
    e.assert_clean().await;
}

#[tokio::test]
async fn only_staff_bill_and_bad_bills_are_refused() {
    let Setup { e, dept, officer, citizen, id_no } = setup().await;
    let due = e.ctx.now_ms() + DAY_MS;
    let outsider = e.principal(&citizen, "Driver Tang");
    assert_eq!(
        code_of(e.pay.issue_bill(&outsider, &dept, fine(BillTo::IdNumber(id_no.clone()), 100, due), &key()).await),
        Code::Forbidden
    );
    let shop = e.org(OrgKind::Merchant, "Shop").await;
    let clerk = e.staff(&shop, "13600000011", "Clerk").await;
    assert_eq!(
        code_of(e.pay.issue_bill(&clerk, &shop, fine(BillTo::IdNumber(id_no.clone()), 100, due), &key()).await),
        Code::Forbidden
    );
    assert_eq!(
        code_of(e.pay.issue_bill(&clerk, &dept, fine(BillTo::IdNumber(id_no.clone()), 100, due), &key()).await),
        Code::Forbidden
    );
    for amount in [0, -1, i64::MAX] {
        assert_eq!(
            code_of(
                e.pay.issue_bill(&officer, &dept, fine(BillTo::IdNumber(id_no.clone()), amount, due), &key()).await
            ),
            Code::ValidationFailed
        );
    }
    assert_eq!(
        code_of(
            e.pay.issue_bill(&officer, &dept, fine(BillTo::IdNumber(id_no.clone()), 100, e.ctx.now_ms()), &key()).await
        ),
        Code::ValidationFailed
    );
    assert_eq!(
        code_of(e.pay.issue_bill(&officer, &dept, fine(BillTo::IdNumber("123".into()), 100, due), &key()).await),
        Code::ValidationFailed
    );
    assert_eq!(
        code_of(e.pay.issue_bill(&officer, &dept, fine(BillTo::IdNumber(id_number(8)), 100, due), &key()).await),
        Code::NotFound
    );
    assert_eq!(
        code_of(e.pay.issue_bill(&officer, &dept, fine(BillTo::Plate("浙B99999".into()), 100, due), &key()).await),
        Code::NotFound
    );
    assert_eq!(
        code_of(e.pay.issue_bill(&officer, &dept, fine(BillTo::Plate("nonsense".into()), 100, due), &key()).await),
        Code::ValidationFailed
    );
    let empty = BillSpec { description: "  ".into(), ..fine(BillTo::IdNumber(id_no.clone()), 100, due) };
    assert_eq!(code_of(e.pay.issue_bill(&officer, &dept, empty, &key()).await), Code::ValidationFailed);
    assert!(e.pay.bills(&citizen).await.unwrap().is_empty());
    // A water bill from a merchant-kind org is fine; a fine is not.
    let water = BillSpec { kind: BillKind::Water, ..fine(BillTo::IdNumber(id_no), 3_000, due) };
    e.pay.issue_bill(&clerk, &shop, water, &key()).await.unwrap();

    // Not enough money: nothing moves, the bill stays unpaid.
    let big = BillSpec { amount_fen: 60_000, kind: BillKind::Fee, ..fine(BillTo::IdNumber(id_number(7)), 1, due) };
    let b = e.pay.issue_bill(&officer, &dept, big, &key()).await.unwrap();
    assert_eq!(code_of(e.pay.pay_bill(&citizen, &b.id, "k").await), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    assert_eq!(e.pay.bill(&citizen, &b.id).await.unwrap().status, BillStatus::Unpaid);
    assert_eq!(e.balance(&citizen).await, 50_000);
    assert_eq!(code_of(e.pay.pay_bill(&citizen, &b.id, "").await), Code::IdempotencyKeyRequired);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bill_paid_twice_at_once_is_paid_once() {
    let Setup { e, dept, officer, citizen, id_no } = setup().await;
    let b = e
        .pay
        .issue_bill(&officer, &dept, fine(BillTo::IdNumber(id_no), 10_000, e.ctx.now_ms() + DAY_MS), &key())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let pay = e.pay.clone();
        let (c, id) = (citizen.clone(), b.id.clone());
        tasks.push(tokio::spawn(async move { pay.pay_bill(&c, &id, &format!("race{i}")).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => assert_eq!(err.code, yizhan_pay::codes::ALREADY_PAID, "{err}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(e.balance(&citizen).await, 40_000);
    assert_eq!(e.org_balance(&dept).await, 10_000);
    e.assert_clean().await;
}

#[tokio::test]
async fn staff_reading_bills_is_in_the_persons_access_log() {
    let Setup { e, dept, officer, citizen, id_no } = setup().await;
    e.pay
        .issue_bill(&officer, &dept, fine(BillTo::IdNumber(id_no.clone()), 100, e.ctx.now_ms() + DAY_MS), &key())
        .await
        .unwrap();
    // Another organisation's bill is not shown to this one's staff.
    let water_co = e.org(OrgKind::CityDepartment, "Water Company").await;
    let meter = e.staff(&water_co, "13600000021", "Meter Reader").await;
    let water = BillSpec { kind: BillKind::Water, ..fine(BillTo::IdNumber(id_no), 2_000, e.ctx.now_ms() + DAY_MS) };
    e.pay.issue_bill(&meter, &water_co, water, &key()).await.unwrap();

    assert_eq!(code_of(e.pay.staff_list_bills(&officer, &dept, &citizen, "  ").await), Code::ValidationFailed);
    assert_eq!(e.audit.count(&citizen).await.unwrap(), 0);
    let list = e.pay.staff_list_bills(&officer, &dept, &citizen, "Citizen called about a fine").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].org_id, dept);
    let log = e.audit.list(&citizen, 10, None).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].what.as_str(), log[0].why.as_str()), ("bills", "Citizen called about a fine"));
    assert_eq!(log[0].actor_user_id, officer.user_id);
    assert_eq!(log[0].org_label.as_deref(), Some("Traffic Police"));
    // Not staff: refused, and nothing is logged.
    let stranger = e.principal(&citizen, "Driver Tang");
    assert_eq!(code_of(e.pay.staff_list_bills(&stranger, &dept, &citizen, "curious").await), Code::Forbidden);
    assert_eq!(e.audit.count(&citizen).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_issue_finds_the_first_bill_and_tells_the_person_once() {
    let Setup { e, dept, officer, citizen, id_no } = setup().await;
    let due = e.ctx.now_ms() + 15 * DAY_MS;
    let spec = || fine(BillTo::IdNumber(id_no.clone()), 20_000, due);
    let first = e.pay.issue_bill(&officer, &dept, spec(), "counter-7").await.unwrap();
    // The answer was lost; the counter sends the same request again.
    let again = e.pay.issue_bill(&officer, &dept, spec(), "counter-7").await.unwrap();
    assert_eq!(again.id, first.id);
    // Several at once with a new key: one bill.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (pay, officer, dept, spec) = (e.pay.clone(), officer.clone(), dept.clone(), spec());
            tokio::spawn(async move { pay.issue_bill(&officer, &dept, spec, "counter-8").await })
        })
        .collect();
    let mut ids: Vec<String> = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one bill for one key");
    assert_eq!(e.pay.bills(&citizen).await.unwrap().len(), 2);
    let notices = e.notify.inbox(&citizen, 50).await.unwrap().into_iter().filter(|n| n.kind == "pay.bill").count();
    assert_eq!(notices, 2, "told once per bill");
    // The same key for another bill is refused, and issues nothing.
    let other = fine(BillTo::IdNumber(id_no.clone()), 9_900, due);
    assert_eq!(code_of(e.pay.issue_bill(&officer, &dept, other, "counter-7").await), Code::IdempotencyKeyReused);
    assert_eq!(code_of(e.pay.issue_bill(&officer, &dept, spec(), " ").await), Code::IdempotencyKeyRequired);
    assert_eq!(e.pay.bills(&citizen).await.unwrap().len(), 2);
}
