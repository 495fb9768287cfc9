//! A withdrawal whose payout has no answer (a timeout) keeps its hold until
//! the gateway's answer is known: the reconciliation sweep asks it, a
//! notification tells it, and after 24 hours of not knowing the money goes back.

use crate::common::*;
use yizhan_core::time::HOUR_MS;
use yizhan_core::Code;
use yizhan_pay::gateway::sandbox_cards;
use yizhan_pay::withdrawals::{GIVE_UP_AFTER_MS, RECONCILE_AFTER_MS};
use yizhan_pay::{gateway_account, Notification, WithdrawalReport};

fn reference(user_id: &str, key: &str) -> String {
    format!("user:{user_id}:withdraw:{key}")
}

/// (balance, available, on hold) of a wallet.
async fn wallet(e: &Env, user_id: &str) -> (i64, i64, i64) {
    let w = e.pay.wallet(user_id).await.unwrap();
    (w.balance_fen, w.available_fen, w.pending_fen)
}

async fn gateway_balance(e: &Env) -> i64 {
    e.ledger.balance(&gateway_account("sandbox")).await.unwrap().posted_fen
}

/// A person with 10 000 fen who asked to withdraw 3 000 with the card that times out.
async fn timed_out(e: &Env, login: &str, key: &str) -> String {
    let u = e.verified_user(login, "Withdrawer", 10_000).await;
    let err = e.pay.withdraw(&u, 3_000, Some(sandbox_cards::TIMES_OUT), key).await.unwrap_err();
    assert_eq!(err.code, Code::GatewayTimeout);
    assert_eq!(err.msg.key, "pay.withdrawal_pending");
    assert_eq!(wallet(e, &u).await, (10_000, 7_000, 3_000));
    u
}

#[tokio::test]
async fn the_sweep_waits_then_posts_a_payout_the_gateway_made() {
    let e = env().await;
    let u = timed_out(&e, "13900000001", "t1").await;
    let gw_before = gateway_balance(&e).await;
    // Before the threshold the sweep leaves it alone, even if the bank already paid.
    e.gateway.answer_late(&reference(&u, "t1"), true).unwrap();
    e.clock.advance_ms(RECONCILE_AFTER_MS - 1);
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap(), WithdrawalReport::default());
    assert_eq!(wallet(&e, &u).await, (10_000, 7_000, 3_000));
    // After it, the hold is posted: the money is gone, once.
    e.clock.advance_ms(1);
    let r = e.pay.reconcile_withdrawals().await.unwrap();
    assert_eq!((r.paid, r.failed, r.given_up, r.unknown, r.failures), (1, 0, 0, 0, 0));
    assert_eq!(wallet(&e, &u).await, (7_000, 7_000, 0));
    assert_eq!(gateway_balance(&e).await, gw_before + 3_000);
    // The person, who left with "waiting for the bank", is told how it ended (once).
    let told = |inbox: Vec<yizhan_notify::Notification>| {
        inbox.into_iter().filter(|n| n.kind == "pay.withdrawal_settled").map(|n| n.title).collect::<Vec<_>>()
    };
    assert_eq!(
        told(e.notify.inbox(&u, 50).await.unwrap()),
        vec![yizhan_core::Msg::new("pay.notice.withdrawal_paid.title").fen("amount", 3_000)]
    );
    let transfers = e.transfers().await;
    // Again: nothing more, not even much later; a retry of the request answers with the payout.
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap(), WithdrawalReport::default());
    e.clock.advance_ms(GIVE_UP_AFTER_MS);
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap(), WithdrawalReport::default());
    let retry = e.pay.withdraw(&u, 3_000, Some(sandbox_cards::TIMES_OUT), "t1").await.unwrap();
    assert_eq!(retry.amount_fen, 3_000);
    assert_eq!(told(e.notify.inbox(&u, 50).await.unwrap()).len(), 1, "told once");
    assert_eq!(wallet(&e, &u).await, (7_000, 7_000, 0));
    assert_eq!(e.transfers().await, transfers);
    e.assert_clean().await;
}

#[tokio::test]
async fn the_sweep_voids_a_payout_the_gateway_refused() {
    let e = env().await;
    let u = timed_out(&e, "13900000002", "t2").await;
    let gw_before = gateway_balance(&e).await;
    assert!(e.gateway.answer_late(&reference(&u, "t2"), false).is_none());
    e.clock.advance_ms(RECONCILE_AFTER_MS);
    let r = e.pay.reconcile_withdrawals().await.unwrap();
    let returned = e.notify.inbox(&u, 50).await.unwrap().into_iter().filter(|n| n.kind == "pay.withdrawal_settled");
    assert_eq!(
        returned.map(|n| n.title.key).collect::<Vec<_>>(),
        vec!["pay.notice.withdrawal_returned.title".to_string()]
    );
    assert_eq!((r.paid, r.failed, r.given_up, r.failures), (0, 1, 0, 0));
    assert_eq!(wallet(&e, &u).await, (10_000, 10_000, 0));
    assert_eq!(gateway_balance(&e).await, gw_before);
    let transfers = e.transfers().await;
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap(), WithdrawalReport::default());
    // The request's retry does not reach the gateway again.
    assert_eq!(
        code_of(e.pay.withdraw(&u, 3_000, Some(sandbox_cards::SUCCEEDS), "t2").await),
        yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED
    );
    assert_eq!(e.transfers().await, transfers);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_payout_unknown_for_a_day_is_voided() {
    let e = env().await;
    let u = timed_out(&e, "13900000003", "t3").await;
    // Unknown: asked, kept, asked again later.
    e.clock.advance_ms(RECONCILE_AFTER_MS);
    let r = e.pay.reconcile_withdrawals().await.unwrap();
    assert_eq!((r.unknown, r.paid, r.failed, r.given_up), (1, 0, 0, 0));
    assert_eq!(wallet(&e, &u).await, (10_000, 7_000, 3_000));
    // Not asked again at once.
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap(), WithdrawalReport::default());
    e.clock.advance_ms(HOUR_MS);
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap().unknown, 1);
    assert_eq!(wallet(&e, &u).await, (10_000, 7_000, 3_000));
    // A day after the request, the money goes back.
    e.clock.advance_ms(GIVE_UP_AFTER_MS - RECONCILE_AFTER_MS - HOUR_MS);
    let r = e.pay.reconcile_withdrawals().await.unwrap();
    assert_eq!((r.given_up, r.unknown, r.failures), (1, 0, 0));
    assert_eq!(wallet(&e, &u).await, (10_000, 10_000, 0));
    let transfers = e.transfers().await;
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap(), WithdrawalReport::default());
    assert_eq!(e.transfers().await, transfers);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_notification_settles_a_timed_out_withdrawal() {
    let e = env().await;
    let paid = timed_out(&e, "13900000004", "n1").await;
    let refused = timed_out(&e, "13900000005", "n2").await;
    let outcome = e.gateway.answer_late(&reference(&paid, "n1"), true).unwrap();
    let notify = |id: &str, kind: &str, reference: String, gateway_ref: String| Notification {
        id: id.into(),
        kind: kind.into(),
        reference,
        amount_fen: 3_000,
        gateway_ref,
    };
    let (body, sig) = e
        .gateway
        .notification(&notify("ev1", "payout.succeeded", reference(&paid, "n1"), outcome.gateway_ref))
        .unwrap();
    let ack = e.pay.gateway_notification(&body, &sig).await.unwrap();
    assert!(!ack.duplicate && ack.outcome.starts_with("withdrawal paid"), "{ack:?}");
    assert_eq!(wallet(&e, &paid).await, (7_000, 7_000, 0));
    // The gateway's resend changes nothing.
    assert!(e.pay.gateway_notification(&body, &sig).await.unwrap().duplicate);
    assert_eq!(wallet(&e, &paid).await, (7_000, 7_000, 0));

    assert!(e.gateway.answer_late(&reference(&refused, "n2"), false).is_none());
    let (body, sig) =
        e.gateway.notification(&notify("ev2", "payout.failed", reference(&refused, "n2"), String::new())).unwrap();
    let ack = e.pay.gateway_notification(&body, &sig).await.unwrap();
    assert!(ack.outcome.starts_with("withdrawal voided"), "{ack:?}");
    assert_eq!(wallet(&e, &refused).await, (10_000, 10_000, 0));
    // Another notification (a new id) about a settled withdrawal does nothing.
    let (body, sig) =
        e.gateway.notification(&notify("ev3", "payout.succeeded", reference(&refused, "n2"), "x".into())).unwrap();
    assert_eq!(e.pay.gateway_notification(&body, &sig).await.unwrap().outcome, "withdrawal already failed");
    assert_eq!(wallet(&e, &refused).await, (10_000, 10_000, 0));

    // The sweep finds nothing left to do.
    let transfers = e.transfers().await;
    e.clock.advance_ms(GIVE_UP_AFTER_MS);
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap(), WithdrawalReport::default());
    assert_eq!(e.transfers().await, transfers);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_crash_before_the_row_learnt_its_hold_is_reconciled_by_the_ledger_key() {
    let e = env().await;
    let u = timed_out(&e, "13900000006", "c1").await;
    // As a crash between the hold and the row's update leaves it.
    let mut tx = e.t.db.begin().await.unwrap();
    sqlx::query("UPDATE withdrawals SET hold_id = NULL").execute(tx.conn()).await.unwrap();
    tx.commit().await.unwrap();
    e.gateway.answer_late(&reference(&u, "c1"), true).unwrap();
    e.clock.advance_ms(RECONCILE_AFTER_MS);
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap().paid, 1);
    assert_eq!(wallet(&e, &u).await, (7_000, 7_000, 0));
    // A withdrawal the ledger refused (no money) never got a hold: closed, nothing moves.
    let poor = e.verified_user("13900000007", "Poor", 0).await;
    assert_eq!(code_of(e.pay.withdraw(&poor, 100, None, "c2").await), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    e.clock.advance_ms(RECONCILE_AFTER_MS);
    let r = e.pay.reconcile_withdrawals().await.unwrap();
    assert_eq!((r.no_hold, r.paid, r.failed, r.failures), (1, 0, 0, 0));
    assert_eq!(wallet(&e, &poor).await, (0, 0, 0));
    e.assert_clean().await;
}
