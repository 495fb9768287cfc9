//! Limits per person by verification level: per transaction and per China
//! day, counted once per movement, given back when a movement is refused,
//! and exact under races.

use crate::common::*;
use std::sync::atomic::{AtomicU32, Ordering};
use yizhan_core::{Arg, Code};
use yizhan_identity::OrgKind;
use yizhan_pay::limits::next_china_midnight;
use yizhan_pay::{gateway_account, BillKind, BillSpec, BillTo, Operation, RedPacketSpec, SplitMode};

const YUAN: i64 = 100;
static NUMBERS: AtomicU32 = AtomicU32::new(500);

/// Put money in a wallet without a top-up (receiving is not limited).
async fn credit(e: &Env, user_id: &str, fen: i64) {
    let wallet = e.pay.wallet(user_id).await.unwrap().account_id;
    e.ledger
        .transfer(yizhan_ledger::TransferSpec::new(gateway_account(e.pay.gateway_name()), wallet, fen, "topup"))
        .await
        .unwrap();
}

/// Raise a person to verification level 1; returns their identity number.
async fn verify(e: &Env, user_id: &str) -> String {
    let number = id_number(NUMBERS.fetch_add(1, Ordering::SeqCst));
    e.identity.verify_real_name(user_id, "居民", &number).await.unwrap();
    number
}

fn arg<'a>(err: &'a yizhan_core::Error, name: &str) -> &'a Arg {
    &err.msg.args.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no {name} in {}", err.msg)).1
}

fn limit_err<T: std::fmt::Debug>(r: yizhan_core::Result<T>) -> yizhan_core::Error {
    let e = r.expect_err("expected the limit to refuse");
    assert_eq!(e.code, yizhan_pay::codes::LIMIT_EXCEEDED, "{e}");
    e
}

async fn used(e: &Env, user_id: &str, op: Operation) -> i64 {
    let l = e.pay.my_limits(user_id).await.unwrap();
    l.limits.iter().find(|l| l.operation == op).unwrap().used_today_fen
}

#[tokio::test]
async fn an_unverified_payment_over_the_per_transaction_limit_is_refused_saying_which_limit() {
    let e = env().await;
    let a = e.user("13100000001", "Payer").await;
    let b = e.user("13100000002", "Payee").await;
    credit(&e, &a, 1_000 * YUAN).await;
    let err = limit_err(e.pay.transfer_to_user(&a, "13100000002", 200 * YUAN + 1, "", &key()).await);
    assert_eq!(err.msg.key, "pay.limit.exceeded");
    assert_eq!(arg(&err, "operation"), &Arg::Key("pay.limit.op.payment".into()));
    assert_eq!(arg(&err, "period"), &Arg::Key("pay.limit.period.per_tx".into()));
    assert_eq!(arg(&err, "limit"), &Arg::Fen(200 * YUAN));
    assert_eq!(arg(&err, "remaining"), &Arg::Fen(500 * YUAN));
    let now = yizhan_core::Clock::now_ms(&*e.clock);
    assert_eq!(arg(&err, "resets"), &Arg::Time(next_china_midnight(now)));
    assert_eq!(arg(&err, "raise"), &Arg::Key("pay.limit.raise.verify".into()));
    // Nothing moved, nothing counted; exactly the limit passes.
    assert_eq!(e.balance(&b).await, 0);
    assert_eq!(used(&e, &a, Operation::Payment).await, 0);
    e.pay.transfer_to_user(&a, "13100000002", 200 * YUAN, "", &key()).await.unwrap();
    assert_eq!(used(&e, &a, Operation::Payment).await, 200 * YUAN);
    // Top-ups have their own limit.
    let err = limit_err(e.pay.topup(&a, 200 * YUAN + 1, None, &key()).await);
    assert_eq!(arg(&err, "operation"), &Arg::Key("pay.limit.op.topup".into()));
    e.assert_clean().await;
}

#[tokio::test]
async fn the_daily_limit_counts_every_kind_of_payment_and_resets_at_china_midnight() {
    let e = env().await;
    let a = e.user("13100000011", "Payer").await;
    e.user("13100000012", "Friend").await;
    credit(&e, &a, 2_000 * YUAN).await;
    let shop = e.org(OrgKind::Merchant, "Shop").await;
    let clerk = e.staff(&shop, "13100000013", "Clerk").await;
    let water = e.org(OrgKind::CityDepartment, "Water").await;
    let officer = e.staff(&water, "13100000014", "Officer").await;

    // 150 to a friend, 150 by QR to the shop, 100 by pay code, 50 in a red packet: 450 of 500.
    e.pay.transfer_to_user(&a, "13100000012", 150 * YUAN, "", &key()).await.unwrap();
    let qr = e.pay.org_qr(&shop, None).await.unwrap();
    e.pay.qr_pay(&a, &qr, 150 * YUAN, &key()).await.unwrap();
    let code = e.pay.create_paycode(&a).await.unwrap().code;
    e.pay.merchant_charge(&clerk, &shop, &code, 100 * YUAN, &key()).await.unwrap();
    e.pay.create_red_packet(&a, two_shares(50 * YUAN), &key()).await.unwrap();
    assert_eq!(used(&e, &a, Operation::Payment).await, 450 * YUAN);

    // A bill of 60 would make 510.
    let number = verify(&e, &a).await;
    // (Verified now: level 1 allows far more, so put the person back to level 0's limits.)
    let admin = e.admin.clone();
    e.pay.set_limit(&admin, 1, Operation::Payment, 200 * YUAN, 500 * YUAN).await.unwrap();
    let due = yizhan_core::Clock::now_ms(&*e.clock) + 7 * 86_400_000;
    let bill = e
        .pay
        .issue_bill(
            &officer,
            &water,
            BillSpec {
                to: BillTo::IdNumber(number),
                kind: BillKind::Water,
                amount_fen: 60 * YUAN,
                description: "Water".into(),
                due_at_ms: due,
            },
            &key(),
        )
        .await
        .unwrap();
    let err = limit_err(e.pay.pay_bill(&a, &bill.id, &key()).await);
    assert_eq!(arg(&err, "period"), &Arg::Key("pay.limit.period.per_day".into()));
    assert_eq!(arg(&err, "limit"), &Arg::Fen(500 * YUAN));
    assert_eq!(arg(&err, "remaining"), &Arg::Fen(50 * YUAN));
    assert_eq!(arg(&err, "raise"), &Arg::Key("pay.limit.raise.counter".into()));
    // Receiving is not limited; top-ups count apart.
    e.pay.topup(&a, 100 * YUAN, None, &key()).await.unwrap();
    assert_eq!(used(&e, &a, Operation::Payment).await, 450 * YUAN);

    // One fen before midnight in China it is still today; at midnight it resets.
    let now = yizhan_core::Clock::now_ms(&*e.clock);
    let midnight = next_china_midnight(now);
    e.clock.set_ms(midnight - 1);
    limit_err(e.pay.pay_bill(&a, &bill.id, &key()).await);
    e.clock.set_ms(midnight);
    assert_eq!(used(&e, &a, Operation::Payment).await, 0);
    let limits = e.pay.my_limits(&a).await.unwrap();
    assert_eq!(limits.resets_at_ms, midnight + 86_400_000);
    e.pay.pay_bill(&a, &bill.id, &key()).await.unwrap();
    assert_eq!(used(&e, &a, Operation::Payment).await, 60 * YUAN);
    e.assert_clean().await;
}

#[tokio::test]
async fn verified_people_have_higher_limits_and_only_they_may_withdraw() {
    let e = env().await;
    let a = e.user("13100000021", "Saver").await;
    credit(&e, &a, 10_000 * YUAN).await;
    let l0 = e.pay.my_limits(&a).await.unwrap();
    assert_eq!(l0.level, 0);
    let err = limit_err(e.pay.withdraw(&a, YUAN, None, &key()).await);
    assert_eq!(err.msg.key, "pay.limit.not_allowed");
    assert_eq!(arg(&err, "operation"), &Arg::Key("pay.limit.op.withdrawal".into()));
    assert_eq!(arg(&err, "raise"), &Arg::Key("pay.limit.raise.verify".into()));
    assert_eq!(e.available(&a).await, 10_000 * YUAN, "no hold left behind");
    limit_err(e.pay.topup(&a, 300 * YUAN, None, &key()).await);

    verify(&e, &a).await;
    let l1 = e.pay.my_limits(&a).await.unwrap();
    assert_eq!(l1.level, 1);
    for (lo, hi) in l0.limits.iter().zip(&l1.limits) {
        assert_eq!(lo.operation, hi.operation);
        assert!(hi.per_tx_fen > lo.per_tx_fen && hi.per_day_fen > lo.per_day_fen, "{lo:?} {hi:?}");
    }
    e.pay.topup(&a, 300 * YUAN, None, &key()).await.unwrap();
    e.pay.withdraw(&a, 1_000 * YUAN, None, &key()).await.unwrap();
    assert_eq!(used(&e, &a, Operation::Withdrawal).await, 1_000 * YUAN);
    let err = limit_err(e.pay.withdraw(&a, 5_000 * YUAN + 1, None, &key()).await);
    assert_eq!(arg(&err, "limit"), &Arg::Fen(5_000 * YUAN));
    assert_eq!(arg(&err, "remaining"), &Arg::Fen(19_000 * YUAN));
    // A declined payout gives its share of the limit back.
    let before = used(&e, &a, Operation::Withdrawal).await;
    let r = e.pay.withdraw(&a, 100 * YUAN, Some(yizhan_pay::gateway::sandbox_cards::DECLINED), &key()).await;
    assert_eq!(code_of(r), yizhan_pay::codes::PAYMENT_DECLINED);
    assert_eq!(used(&e, &a, Operation::Withdrawal).await, before);
    e.assert_clean().await;
}

#[tokio::test]
async fn an_admin_sets_a_limit_that_applies_at_once_and_nobody_else_may() {
    let e = env().await;
    let a = e.user("13100000031", "Payer").await;
    e.user("13100000032", "Payee").await;
    credit(&e, &a, 1_000 * YUAN).await;
    let someone = e.principal(&a, "Payer");
    let r = e.pay.set_limit(&someone, 0, Operation::Payment, 1, 2).await;
    assert_eq!(code_of(r), Code::Forbidden);
    let admin = e.admin.clone();
    // Checked: not negative, per transaction within per day, within the platform's bounds.
    for (tx, day) in [(-1, 10), (10, -1), (20, 10), (yizhan_core::Fen::MAX_AMOUNT + 1, i64::MAX)] {
        let r = e.pay.set_limit(&admin, 0, Operation::Payment, tx, day).await;
        assert_eq!(code_of(r), Code::ValidationFailed, "{tx} {day}");
    }
    assert_eq!(code_of(e.pay.set_limit(&admin, 3, Operation::Payment, 1, 2).await), Code::ValidationFailed);
    assert_eq!(Operation::parse("gifts").unwrap_err().code, Code::ValidationFailed);

    e.pay.transfer_to_user(&a, "13100000032", 10 * YUAN, "", &key()).await.unwrap();
    e.pay.set_limit(&admin, 0, Operation::Payment, 5 * YUAN, 15 * YUAN).await.unwrap();
    let err = limit_err(e.pay.transfer_to_user(&a, "13100000032", 6 * YUAN, "", &key()).await);
    assert_eq!(arg(&err, "limit"), &Arg::Fen(5 * YUAN));
    assert_eq!(arg(&err, "remaining"), &Arg::Fen(5 * YUAN));
    e.pay.transfer_to_user(&a, "13100000032", 5 * YUAN, "", &key()).await.unwrap();
    let err = limit_err(e.pay.transfer_to_user(&a, "13100000032", YUAN, "", &key()).await);
    assert_eq!(arg(&err, "period"), &Arg::Key("pay.limit.period.per_day".into()));
    let table = e.pay.limit_table().await.unwrap();
    assert_eq!(table.len(), 9);
    let row = table.iter().find(|r| r.level == 0 && r.operation == "payment").unwrap();
    assert_eq!((row.per_tx_fen, row.per_day_fen), (5 * YUAN, 15 * YUAN));
    let changes = e.pay.limit_changes(10).await.unwrap();
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(
        (c.level, c.operation.as_str(), c.old_per_tx_fen, c.old_per_day_fen, c.new_per_tx_fen, c.new_per_day_fen),
        (0, "payment", 200 * YUAN, 500 * YUAN, 5 * YUAN, 15 * YUAN)
    );
    assert_eq!(c.changed_by_user_id, admin.user_id);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_replay_after_the_cap_is_reached_answers_its_receipt_and_a_refused_payment_counts_nothing() {
    let e = env().await;
    let a = e.user("13100000041", "Payer").await;
    let b = e.user("13100000042", "Payee").await;
    credit(&e, &a, 450 * YUAN).await;
    let k = key();
    let first = e.pay.transfer_to_user(&a, "13100000042", 200 * YUAN, "", &k).await.unwrap();
    e.pay.transfer_to_user(&a, "13100000042", 200 * YUAN, "", &key()).await.unwrap();
    // Not enough money: refused, and the limit it would have used is given back.
    let r = e.pay.transfer_to_user(&a, "13100000042", 100 * YUAN, "", &key()).await;
    assert_eq!(code_of(r), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    assert_eq!(used(&e, &a, Operation::Payment).await, 400 * YUAN);
    // A pay code over the balance: refused, the code free again, nothing counted.
    let shop = e.org(OrgKind::Merchant, "Shop").await;
    let clerk = e.staff(&shop, "13100000043", "Clerk").await;
    let code = e.pay.create_paycode(&a).await.unwrap().code;
    let r = e.pay.merchant_charge(&clerk, &shop, &code, 60 * YUAN, &key()).await;
    assert_eq!(code_of(r), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    assert_eq!(used(&e, &a, Operation::Payment).await, 400 * YUAN);
    e.pay.merchant_charge(&clerk, &shop, &code, 50 * YUAN, &key()).await.unwrap();
    assert_eq!(used(&e, &a, Operation::Payment).await, 450 * YUAN);
    credit(&e, &a, 100 * YUAN).await;
    limit_err(e.pay.transfer_to_user(&a, "13100000042", 51 * YUAN, "", &key()).await);
    // The first payment again, with its key: its receipt, not a refusal, and no second count.
    let again = e.pay.transfer_to_user(&a, "13100000042", 200 * YUAN, "", &k).await.unwrap();
    assert_eq!(again.transfer_id, first.transfer_id);
    // Even after the admin lowered the limit below it.
    e.pay.set_limit(&e.admin, 0, Operation::Payment, 10 * YUAN, 20 * YUAN).await.unwrap();
    let again = e.pay.transfer_to_user(&a, "13100000042", 200 * YUAN, "", &k).await.unwrap();
    assert_eq!(again.transfer_id, first.transfer_id);
    assert_eq!(used(&e, &a, Operation::Payment).await, 450 * YUAN);
    assert_eq!(e.balance(&b).await, 400 * YUAN);
    // The payee was told of each of the two payments once, not of the replays.
    let inbox = e.notify.inbox(&b, 50).await.unwrap();
    let kinds: Vec<&str> = inbox.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(inbox.len(), 2, "{kinds:?}");
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payments_never_pass_the_daily_cap_together() {
    let e = env().await;
    let a = e.user("13100000051", "Payer").await;
    let b = e.user("13100000052", "Payee").await;
    credit(&e, &a, 2_000 * YUAN).await;
    // 10 payments of 100 yuan at once against 500 a day.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (pay, a) = (e.pay.clone(), a.clone());
            tokio::spawn(
                async move { pay.transfer_to_user(&a, "13100000052", 100 * YUAN, "", &format!("race-{i}")).await },
            )
        })
        .collect();
    let results: Vec<_> = futures_join(tasks).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code, yizhan_pay::codes::LIMIT_EXCEEDED, "{r}");
    }
    assert_eq!(ok, 5);
    assert_eq!(e.balance(&b).await, 500 * YUAN);
    assert_eq!(e.balance(&a).await, 1_500 * YUAN);
    assert_eq!(used(&e, &a, Operation::Payment).await, 500 * YUAN);
    e.assert_clean().await;
}

/// A lucky red packet of two shares for the group.
fn two_shares(total_fen: i64) -> RedPacketSpec {
    RedPacketSpec { mode: SplitMode::Lucky, total_fen, count: 2, greeting: String::new(), to_user: None }
}

async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_counted_by_the_ledger_and_red_packets_counted_apart_never_pass_the_cap_together() {
    let e = env().await;
    let a = e.user("13100000061", "Payer").await;
    e.user("13100000062", "Payee").await;
    credit(&e, &a, 2_000 * YUAN).await;
    // Transfers count in the ledger's batch, red packets by a reservation of
    // their own, against the same 500 a day: 12 of 50 at once, alternating.
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let (pay, a) = (e.pay.clone(), a.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    pay.transfer_to_user(&a, "13100000062", 50 * YUAN, "", &format!("mix-{i}")).await.map(|_| ())
                } else {
                    pay.create_red_packet(&a, two_shares(50 * YUAN), &format!("mix-{i}")).await.map(|_| ())
                }
            })
        })
        .collect();
    let results: Vec<_> = futures_join(tasks).await;
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(r.code, yizhan_pay::codes::LIMIT_EXCEEDED, "{r}");
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    assert_eq!(used(&e, &a, Operation::Payment).await, 500 * YUAN);
    assert_eq!(e.balance(&a).await, 1_500 * YUAN);
    e.assert_clean().await;
}
