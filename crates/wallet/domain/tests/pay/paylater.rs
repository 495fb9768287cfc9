use crate::common::*;
use yizhan_pay::{RedPacketSpec, SplitMode};

/// Withdrawals, transfers to people and red packets use the person's own
/// balance only: many at once, by one person with a pay-later line, never
/// together spend beyond it (the line stays untouched for merchants).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_own_funds_spending_never_reaches_the_pay_later_line() {
    let e = env().await;
    let a = e.verified_user("13900000001", "Wu Fang", 5_000).await;
    e.user("13900000002", "Zheng Hao").await;
    let line = e.pay.pay_later_set(&a, Some(50_000)).await.unwrap();
    assert!(line.on);
    assert_eq!(e.available(&a).await, 5_000);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let pay = e.pay.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("own-{i}");
            match i % 3 {
                0 => pay.withdraw(&a, 1_000, None, &key).await.map(|_| ()),
                1 => pay.transfer_to_user(&a, "13900000002", 1_000, "", &key).await.map(|_| ()),
                _ => {
                    let spec = RedPacketSpec {
                        to_user: None,
                        count: 2,
                        total_fen: 1_000,
                        mode: SplitMode::Fixed,
                        greeting: "恭喜发财".into(),
                    };
                    pay.create_red_packet(&a, spec, &key).await.map(|_| ())
                }
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(err) => assert_eq!(err.code, yizhan_ledger::codes::INSUFFICIENT_FUNDS, "{err:?}"),
        }
    }
    assert_eq!(ok, 5, "exactly the own balance is spent");
    assert_eq!(e.available(&a).await, 0);
    let line = e.pay.pay_later(&a).await.unwrap();
    assert_eq!(line.owed_fen, 0);
    assert_eq!(line.available_credit_fen, 50_000);
    e.assert_clean().await;
}

/// A bill paid on the line is owed; closing the line now makes one statement
/// of it (again: nothing more), and money coming in settles it at the sweep.
#[tokio::test]
async fn a_statement_now_closes_what_is_owed_once() {
    let e = env().await;
    let dept = e.org(yizhan_identity::OrgKind::CityDepartment, "Water").await;
    let clerk = e.staff(&dept, "13900000011", "Clerk He").await;
    let a = e.user("13900000012", "Xu Ran").await;
    let number = id_number(77);
    e.identity.verify_real_name(&a, "徐然", &number).await.unwrap();
    e.pay.pay_later_set(&a, Some(20_000)).await.unwrap();
    assert_eq!(e.pay.pay_later_statement_now(&a).await.unwrap(), None, "nothing owed, no statement");
    let spec = yizhan_pay::BillSpec {
        to: yizhan_pay::BillTo::IdNumber(number),
        kind: yizhan_pay::BillKind::Water,
        amount_fen: 3_000,
        due_at_ms: e.ctx.now_ms() + 10 * yizhan_core::time::DAY_MS,
        description: "water".into(),
    };
    let bill = e.pay.issue_bill(&clerk, &dept, spec, &key()).await.unwrap();
    e.pay.pay_bill(&a, &bill.id, &key()).await.unwrap();
    let st = e.pay.pay_later_statement_now(&a).await.unwrap().expect("a statement");
    assert_eq!((st.amount_fen, st.status.as_str()), (3_000, "open"));
    assert_eq!(e.pay.pay_later_statement_now(&a).await.unwrap(), None, "already on a statement");
    e.pay.topup(&a, 3_000, None, &key()).await.unwrap();
    assert_eq!(e.pay.pay_later_sweep(100).await.unwrap().statements_settled, 1);
    assert_eq!(e.pay.pay_later(&a).await.unwrap().statements[0].status, "paid");
    e.assert_clean().await;
}
