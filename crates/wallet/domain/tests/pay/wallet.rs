use crate::common::*;
use yizhan_core::time::{year_month_cst, DAY_MS};
use yizhan_core::{Code, Fen, Msg};
use yizhan_pay::gateway::sandbox_cards;
use yizhan_pay::{gateway_account, FundingGateway, Notification};

#[tokio::test]
async fn wallet_opens_on_first_use_and_topup_credits_once() {
    let e = env().await;
    let u = e.user("13800000001", "Li Wei").await;
    let w = e.pay.wallet(&u).await.unwrap();
    assert_eq!((w.balance_fen, w.available_fen, w.pending_fen, w.currency.as_str()), (0, 0, 0, "CNY"));
    assert_eq!(w.account_id, format!("wallet:{u}"));

    let r = e.pay.topup(&u, 10_000, None, "k1").await.unwrap();
    assert_eq!(r.amount_fen, 10_000);
    assert!(r.gateway.contains("sandbox") && r.gateway_ref.starts_with("sandbox_"));
    assert_eq!(e.balance(&u).await, 10_000);
    // A retry is charged once and credited once.
    let again = e.pay.topup(&u, 10_000, None, "k1").await.unwrap();
    assert_eq!(again.transfer_id, r.transfer_id);
    assert_eq!(e.balance(&u).await, 10_000);
    assert_eq!(e.gateway.records().len(), 1);
    // The same key for another amount is refused by the gateway/ledger, nothing moves.
    assert!(e.pay.topup(&u, 5_000, None, "k1").await.is_err());
    assert_eq!(e.balance(&u).await, 10_000);
    e.pay.topup(&u, 500, Some(sandbox_cards::SUCCEEDS), "k2").await.unwrap();
    assert_eq!(e.balance(&u).await, 10_500);
    let gw = e.ledger.balance(&gateway_account("sandbox")).await.unwrap();
    assert_eq!(gw.posted_fen, -10_500);
    e.assert_clean().await;
}

#[tokio::test]
async fn declined_timed_out_and_bad_topups_move_nothing() {
    let e = env().await;
    let u = e.funded_user("13800000002", "Wang Fang", 1_000).await;
    let before = e.transfers().await;
    assert_eq!(
        code_of(e.pay.topup(&u, 500, Some(sandbox_cards::DECLINED), "d1").await),
        yizhan_pay::codes::PAYMENT_DECLINED
    );
    assert_eq!(code_of(e.pay.topup(&u, 500, Some(sandbox_cards::TIMES_OUT), "t1").await), Code::GatewayTimeout);
    assert_eq!(code_of(e.pay.topup(&u, 500, Some("4111111111111112"), "c1").await), Code::ValidationFailed);
    for bad in [0, -1, -10_000, Fen::MAX_AMOUNT + 1, i64::MAX, i64::MIN] {
        assert_eq!(code_of(e.pay.topup(&u, bad, None, "bad").await), Code::ValidationFailed, "{bad}");
    }
    assert_eq!(code_of(e.pay.topup(&u, 500, None, "").await), Code::IdempotencyKeyRequired);
    assert_eq!(code_of(e.pay.topup(&u, 500, None, "   ").await), Code::IdempotencyKeyRequired);
    assert_eq!(code_of(e.pay.topup(&u, 500, None, &"k".repeat(65)).await), Code::ValidationFailed);
    assert_eq!(code_of(e.pay.topup(&u, 500, None, "with space").await), Code::ValidationFailed);
    assert_eq!(e.balance(&u).await, 1_000);
    assert_eq!(e.transfers().await, before);
    // After a timeout the same key may be tried again with a working card.
    e.pay.topup(&u, 500, Some(sandbox_cards::SUCCEEDS), "t1").await.unwrap();
    assert_eq!(e.balance(&u).await, 1_500);
    e.assert_clean().await;
}

#[tokio::test]
async fn withdrawal_holds_then_posts_or_releases() {
    let e = env().await;
    let u = e.verified_user("13800000003", "Zhang Min", 10_000).await;
    let r = e.pay.withdraw(&u, 3_000, None, "w1").await.unwrap();
    assert_eq!(r.amount_fen, 3_000);
    let w = e.pay.wallet(&u).await.unwrap();
    assert_eq!((w.balance_fen, w.available_fen, w.pending_fen), (7_000, 7_000, 0));
    // A retry pays out once.
    let again = e.pay.withdraw(&u, 3_000, None, "w1").await.unwrap();
    assert_eq!(again.transfer_id, r.transfer_id);
    assert_eq!(e.balance(&u).await, 7_000);
    let payouts =
        e.gateway.records().iter().filter(|r| r.operation == yizhan_pay::gateway::SandboxOperation::Payout).count();
    assert_eq!(payouts, 1);

    // A declined payout releases the hold: nothing moves.
    assert_eq!(
        code_of(e.pay.withdraw(&u, 1_000, Some(sandbox_cards::DECLINED), "w2").await),
        yizhan_pay::codes::PAYMENT_DECLINED
    );
    let w = e.pay.wallet(&u).await.unwrap();
    assert_eq!((w.balance_fen, w.available_fen, w.pending_fen), (7_000, 7_000, 0));
    // A timed-out one may have been paid: its money stays on hold until reconciled.
    assert_eq!(code_of(e.pay.withdraw(&u, 1_000, Some(sandbox_cards::TIMES_OUT), "w3").await), Code::GatewayTimeout);
    let w = e.pay.wallet(&u).await.unwrap();
    assert_eq!((w.balance_fen, w.available_fen, w.pending_fen), (7_000, 6_000, 1_000));
    assert!(e.gateway.answer_late(&format!("user:{u}:withdraw:w3"), false).is_none());
    e.clock.advance_ms(yizhan_pay::withdrawals::RECONCILE_AFTER_MS);
    assert_eq!(e.pay.reconcile_withdrawals().await.unwrap().failed, 1);
    let w = e.pay.wallet(&u).await.unwrap();
    assert_eq!((w.balance_fen, w.available_fen, w.pending_fen), (7_000, 7_000, 0));
    // The failed key does not reach the gateway again, even with a good card.
    assert_eq!(
        code_of(e.pay.withdraw(&u, 1_000, Some(sandbox_cards::SUCCEEDS), "w2").await),
        yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED
    );
    assert_eq!(e.balance(&u).await, 7_000);

    assert_eq!(code_of(e.pay.withdraw(&u, 7_001, None, "w4").await), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    assert_eq!(code_of(e.pay.withdraw(&u, 0, None, "w5").await), Code::ValidationFailed);
    assert_eq!(code_of(e.pay.withdraw(&u, -5, None, "w6").await), Code::ValidationFailed);
    assert_eq!(e.balance(&u).await, 7_000);
    e.pay.withdraw(&u, 7_000, None, "w7").await.unwrap();
    assert_eq!(e.balance(&u).await, 0);
    e.assert_clean().await;
}

#[tokio::test]
async fn transfers_between_people() {
    let e = env().await;
    let a = e.funded_user("13800000004", "Chen Jie", 5_000).await;
    let b = e.user("lin@example.com", "Lin Na").await;
    let r = e.pay.transfer_to_user(&a, "lin@example.com", 1_234, "dinner 晚饭", "p1").await.unwrap();
    assert_eq!((r.amount_fen, r.payee_name.as_str(), r.category.as_str()), (1_234, "Lin Na", "p2p"));
    assert_eq!(e.balance(&a).await, 5_000 - 1_234);
    assert_eq!(e.balance(&b).await, 1_234);
    // Retry: once.
    let again = e.pay.transfer_to_user(&a, "LIN@example.com", 1_234, "dinner 晚饭", "p1").await.unwrap();
    assert_eq!(again.transfer_id, r.transfer_id);
    assert_eq!(e.balance(&b).await, 1_234);
    // The recipient is told, in both languages.
    let inbox = e.notify.inbox(&b, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].kind, "pay.received");
    assert_eq!(inbox[0].title, Msg::new("pay.notice.received.title").fen("amount", 1_234), "{:?}", inbox[0]);
    assert_eq!(inbox[0].body.key, "pay.notice.received.body_memo");
    let body = inbox[0].body.to_string();
    assert!(body.contains("Chen Jie") && body.contains("晚饭"), "{body}");
    assert_eq!(inbox[0].target, Some(yizhan_notify::Target::new("transfer", &r.transfer_id)));

    let before = e.transfers().await;
    assert_eq!(
        code_of(e.pay.transfer_to_user(&a, "13800000004", 100, "", "p2").await),
        yizhan_ledger::codes::SELF_PAYMENT
    );
    assert_eq!(code_of(e.pay.transfer_to_user(&a, "13899999999", 100, "", "p3").await), Code::NotFound);
    assert_eq!(code_of(e.pay.transfer_to_user(&a, "not a login", 100, "", "p4").await), Code::ValidationFailed);
    assert_eq!(
        code_of(e.pay.transfer_to_user(&a, "lin@example.com", 10_000, "", "p5").await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    assert_eq!(code_of(e.pay.transfer_to_user(&a, "lin@example.com", 0, "", "p6").await), Code::ValidationFailed);
    assert_eq!(code_of(e.pay.transfer_to_user(&a, "lin@example.com", -100, "", "p7").await), Code::ValidationFailed);
    assert_eq!(
        code_of(e.pay.transfer_to_user(&a, "lin@example.com", Fen::MAX_AMOUNT + 1, "", "p8").await),
        Code::ValidationFailed
    );
    assert_eq!(
        code_of(e.pay.transfer_to_user(&a, "lin@example.com", 100, &"m".repeat(201), "p9").await),
        Code::ValidationFailed
    );
    assert_eq!(code_of(e.pay.transfer_to_user(&a, "lin@example.com", 100, "", "").await), Code::IdempotencyKeyRequired);
    // The same key for a different transfer is refused.
    assert_eq!(code_of(e.pay.transfer_to_user(&a, "lin@example.com", 999, "", "p1").await), Code::IdempotencyKeyReused);
    assert_eq!(e.transfers().await, before);
    assert_eq!(e.balance(&a).await, 5_000 - 1_234);
    assert_eq!(e.balance(&b).await, 1_234);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_spending_never_overdraws() {
    let e = env().await;
    let a = e.funded_user("13800000005", "Zhao Lei", 1_000).await;
    e.user("13800000006", "Sun Li").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let pay = e.pay.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(
            async move { pay.transfer_to_user(&a, "13800000006", 100, "", &format!("c{i}")).await },
        ));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => assert_eq!(err.code, yizhan_ledger::codes::INSUFFICIENT_FUNDS),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(e.balance(&a).await, 0);
    e.assert_clean().await;
}

#[tokio::test]
async fn statement_and_history() {
    let e = env().await;
    let a = e.verified_user("13800000007", "Qian Yu", 10_000).await;
    let b = e.user("13800000008", "Zhou Xun").await;
    e.pay.transfer_to_user(&a, "13800000008", 2_500, "rent", "s1").await.unwrap();
    e.pay.transfer_to_user(&b, "13800000007", 500, "", "s2").await.unwrap();
    e.pay.withdraw(&a, 1_000, None, "s3").await.unwrap();

    let (y, m) = year_month_cst(e.ctx.now_ms());
    let s = e.pay.statement(&a, y, m).await.unwrap();
    let line = |c: &str| s.lines.iter().find(|l| l.category == c).cloned();
    assert_eq!(line("topup").map(|l| (l.in_fen, l.out_fen)), Some((10_000, 0)));
    assert_eq!(line("p2p").map(|l| (l.in_fen, l.out_fen)), Some((500, 2_500)));
    assert_eq!(line("withdrawal").map(|l| l.out_fen), Some(1_000));
    assert_eq!(s.total_in_fen, 10_500);
    assert_eq!(s.total_out_fen, 3_500);
    assert_eq!(s.total_in_fen - s.total_out_fen, e.balance(&a).await);
    // Another month is empty.
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    assert!(e.pay.statement(&a, ny, nm).await.unwrap().lines.is_empty());
    assert_eq!(code_of(e.pay.statement(&a, y, 13).await), Code::ValidationFailed);

    let h = e.pay.history(&a, None).await.unwrap();
    assert!(h.items.iter().any(|i| i.counterparty_name == "Zhou Xun" && i.direction == "out" && i.amount_fen == 2_500));
    assert!(h.items.iter().any(|i| i.counterparty_name == "Zhou Xun" && i.direction == "in" && i.amount_fen == 500));
    assert!(h
        .items
        .iter()
        .any(|i| i.category == "topup" && i.counterpart == yizhan_pay::Counterpart::Card("sandbox".into())));
    assert!(h.items.iter().all(|i| i.category == "p2p" || i.memo.is_empty()), "the platform's memos are not shown");
    // Newest first.
    assert!(h.items.windows(2).all(|w| w[0].seq > w[1].seq));
    e.clock.advance_ms(DAY_MS);
    e.assert_clean().await;
}

#[tokio::test]
async fn gateway_notifications_are_checked_and_deduplicated() {
    let e = env().await;
    let u = e.user("13800000009", "He Ping").await;
    // A charge that went through while our answer was lost: only the notification tells.
    let reference = format!("user:{u}:topup:lost1");
    let outcome = e.gateway.charge(sandbox_cards::SUCCEEDS, 800, &reference).await.unwrap();
    let n = Notification {
        id: "evt_1".into(),
        kind: "charge.succeeded".into(),
        reference: reference.clone(),
        amount_fen: 800,
        gateway_ref: outcome.gateway_ref.clone(),
    };
    let (body, sig) = e.gateway.notification(&n).unwrap();
    let ack = e.pay.gateway_notification(&body, &sig).await.unwrap();
    assert!(!ack.duplicate);
    assert!(ack.outcome.starts_with("topup credited"), "{}", ack.outcome);
    assert_eq!(e.balance(&u).await, 800);
    // Replayed: acknowledged, nothing changes.
    let replay = e.pay.gateway_notification(&body, &sig).await.unwrap();
    assert!(replay.duplicate);
    assert_eq!(e.balance(&u).await, 800);
    // Another notification about the same charge, and the client's retry: still once.
    let n2 = Notification { id: "evt_2".into(), ..n.clone() };
    let (body2, sig2) = e.gateway.notification(&n2).unwrap();
    assert!(!e.pay.gateway_notification(&body2, &sig2).await.unwrap().duplicate);
    e.pay.topup(&u, 800, None, "lost1").await.unwrap();
    assert_eq!(e.balance(&u).await, 800);
    // Forged or altered notifications are refused.
    let forged = Notification { id: "evt_3".into(), amount_fen: 80_000, ..n.clone() };
    let body3 = serde_json::to_vec(&forged).unwrap();
    assert_eq!(code_of(e.pay.gateway_notification(&body3, &sig).await), Code::Forbidden);
    assert_eq!(code_of(e.pay.gateway_notification(&body, "deadbeef").await), Code::Forbidden);
    assert_eq!(e.balance(&u).await, 800);
    // Notifications we do not act on are recorded once.
    let other = Notification { id: "evt_4".into(), kind: "charge.failed".into(), ..n };
    let (b4, s4) = e.gateway.notification(&other).unwrap();
    assert_eq!(e.pay.gateway_notification(&b4, &s4).await.unwrap().outcome, "recorded");
    assert!(e.pay.gateway_notification(&b4, &s4).await.unwrap().duplicate);
    e.assert_clean().await;
}
