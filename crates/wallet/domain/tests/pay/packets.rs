use crate::common::*;
use yizhan_core::time::HOUR_MS;
use yizhan_core::Code;
use yizhan_pay::{RedPacketSpec, SplitMode};

fn group(count: i64, total_fen: i64, mode: SplitMode) -> RedPacketSpec {
    RedPacketSpec { to_user: None, count, total_fen, mode, greeting: "恭喜发财".into() }
}

#[tokio::test]
async fn a_group_packet_is_escrowed_claimed_once_each_and_emptied() {
    let e = env().await;
    let sender = e.funded_user("13700000001", "Boss", 10_000).await;
    let p = e.pay.create_red_packet(&sender, group(3, 900, SplitMode::Fixed), "rp1").await.unwrap();
    assert_eq!(p.status, "open");
    assert_eq!(e.balance(&sender).await, 9_100);
    // A retry makes no second packet and moves no more money.
    let again = e.pay.create_red_packet(&sender, group(3, 900, SplitMode::Fixed), "rp1").await.unwrap();
    assert_eq!(again.id, p.id);
    assert_eq!(e.balance(&sender).await, 9_100);
    assert_eq!(
        code_of(e.pay.create_red_packet(&sender, group(3, 600, SplitMode::Fixed), "rp1").await),
        Code::IdempotencyKeyReused
    );

    let a = e.user("13700000002", "A").await;
    let b = e.user("13700000003", "B").await;
    let c = e.user("13700000004", "C").await;
    let ra = e.pay.claim(&p.id, &a).await.unwrap();
    assert_eq!(ra.amount_fen, 300);
    assert_eq!(code_of(e.pay.claim(&p.id, &a).await), yizhan_pay::codes::ALREADY_CLAIMED);
    // In a group the sender may take a share too, as in the big apps.
    e.pay.claim(&p.id, &sender).await.unwrap();
    e.pay.claim(&p.id, &b).await.unwrap();
    assert_eq!(code_of(e.pay.claim(&p.id, &c).await), yizhan_pay::codes::PACKET_EMPTY);
    assert_eq!(code_of(e.pay.claim(&p.id, &b).await), yizhan_pay::codes::ALREADY_CLAIMED);
    assert_eq!(e.balance(&a).await, 300);
    assert_eq!(e.balance(&sender).await, 9_400);
    let view = e.pay.red_packet(&p.id).await.unwrap();
    assert_eq!((view.claimed_count, view.claimed_fen), (3, 900));
    assert_eq!(code_of(e.pay.claim("nope", &c).await), Code::NotFound);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_packet_for_one_person() {
    let e = env().await;
    let sender = e.funded_user("13700000011", "Mum", 10_000).await;
    let kid = e.user("13700000012", "Kid").await;
    let other = e.user("13700000013", "Other").await;
    let spec = RedPacketSpec {
        to_user: Some("13700000012".into()),
        count: 1,
        total_fen: 8_888,
        mode: SplitMode::Fixed,
        greeting: "Happy new year".into(),
    };
    let p = e.pay.create_red_packet(&sender, spec.clone(), "one").await.unwrap();
    assert_eq!(p.to_user_id.as_deref(), Some(kid.as_str()));
    let inbox = e.notify.inbox(&kid, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "pay.red_packet"
        && n.title.key == "pay.notice.packet.title"
        && n.title.to_string().contains("Mum")));
    assert_eq!(code_of(e.pay.claim(&p.id, &sender).await), Code::Forbidden);
    assert_eq!(code_of(e.pay.claim(&p.id, &other).await), Code::Forbidden);
    assert_eq!(e.pay.claim(&p.id, &kid).await.unwrap().amount_fen, 8_888);
    assert_eq!(e.balance(&kid).await, 8_888);

    let before = e.transfers().await;
    let to_self = RedPacketSpec { to_user: Some("13700000011".into()), ..spec.clone() };
    assert_eq!(code_of(e.pay.create_red_packet(&sender, to_self, "self").await), yizhan_ledger::codes::SELF_PAYMENT);
    let two = RedPacketSpec { count: 2, ..spec.clone() };
    assert_eq!(code_of(e.pay.create_red_packet(&sender, two, "two").await), Code::ValidationFailed);
    let nobody = RedPacketSpec { to_user: Some("13799999999".into()), ..spec };
    assert_eq!(code_of(e.pay.create_red_packet(&sender, nobody, "nobody").await), Code::NotFound);
    assert_eq!(e.transfers().await, before);
    e.assert_clean().await;
}

#[tokio::test]
async fn bad_packets_move_nothing() {
    let e = env().await;
    let sender = e.funded_user("13700000021", "Sender", 1_000).await;
    let before = e.transfers().await;
    for (spec, code) in [
        (group(3, 1_000, SplitMode::Fixed), Code::ValidationFailed), // does not divide
        (group(0, 100, SplitMode::Lucky), Code::ValidationFailed),
        (group(-1, 100, SplitMode::Lucky), Code::ValidationFailed),
        (group(5, 4, SplitMode::Lucky), Code::ValidationFailed), // under 1 fen each
        (group(1, 0, SplitMode::Lucky), Code::ValidationFailed),
        (group(1, -100, SplitMode::Lucky), Code::ValidationFailed),
        (group(1, i64::MAX, SplitMode::Lucky), Code::ValidationFailed),
        (group(1_000, 100_000, SplitMode::Lucky), Code::ValidationFailed),
    ] {
        assert_eq!(code_of(e.pay.create_red_packet(&sender, spec.clone(), "bad").await), code, "{spec:?}");
    }
    let long = RedPacketSpec { greeting: "x".repeat(101), ..group(1, 100, SplitMode::Lucky) };
    assert_eq!(code_of(e.pay.create_red_packet(&sender, long, "bad").await), Code::ValidationFailed);
    assert_eq!(
        code_of(e.pay.create_red_packet(&sender, group(1, 100, SplitMode::Lucky), "").await),
        Code::IdempotencyKeyRequired
    );
    assert_eq!(e.transfers().await, before);
    // More than the wallet holds: refused, the packet never opens.
    assert_eq!(
        code_of(e.pay.create_red_packet(&sender, group(2, 2_000, SplitMode::Lucky), "big").await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    assert_eq!(e.transfers().await, before);
    assert_eq!(e.balance(&sender).await, 1_000);
    e.assert_clean().await;
}

#[tokio::test]
async fn unclaimed_money_returns_to_the_sender_after_a_day() {
    let e = env().await;
    let sender = e.funded_user("13700000031", "Uncle", 10_000).await;
    let p = e.pay.create_red_packet(&sender, group(4, 1_000, SplitMode::Lucky), "lucky").await.unwrap();
    let a = e.user("13700000032", "A").await;
    let got = e.pay.claim(&p.id, &a).await.unwrap().amount_fen;
    assert!(got >= 1);
    // Not yet due.
    e.clock.advance_ms(23 * HOUR_MS);
    assert_eq!(e.pay.refund_expired().await.unwrap().packets, 0);
    e.clock.advance_ms(HOUR_MS);
    let b = e.user("13700000033", "B").await;
    assert_eq!(code_of(e.pay.claim(&p.id, &b).await), yizhan_pay::codes::PACKET_EMPTY);
    let r = e.pay.refund_expired().await.unwrap();
    assert_eq!((r.packets, r.refunded_fen), (1, 1_000 - got));
    assert_eq!(e.balance(&sender).await, 10_000 - got);
    assert_eq!(e.pay.red_packet(&p.id).await.unwrap().status, "refunded");
    assert_eq!(code_of(e.pay.claim(&p.id, &b).await), yizhan_pay::codes::PACKET_EMPTY);
    // A second sweep does nothing.
    assert_eq!(e.pay.refund_expired().await.unwrap(), yizhan_pay::RefundReport::default());
    assert_eq!(e.balance(&sender).await, 10_000 - got);
    let inbox = e.notify.inbox(&sender, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "pay.red_packet_refund"));
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_people_race_for_ten_shares() {
    let e = env().await;
    let sender = e.verified_user("13700000041", "Host", 100_000).await;
    let total = 5_000;
    let p = e.pay.create_red_packet(&sender, group(10, total, SplitMode::Lucky), "race").await.unwrap();
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(e.user(&format!("1370000{:04}", 100 + i), &format!("Guest {i}")).await);
    }
    let mut tasks = Vec::new();
    for u in users.clone() {
        let pay = e.pay.clone();
        let id = p.id.clone();
        tasks.push(tokio::spawn(async move { pay.claim(&id, &u).await }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => won.push(c.amount_fen),
            Err(err) => assert_eq!(err.code, yizhan_pay::codes::PACKET_EMPTY, "{err}"),
        }
    }
    assert_eq!(won.len(), 10);
    assert_eq!(won.iter().sum::<i64>(), total);
    assert!(won.iter().all(|a| *a >= 1));
    let mut received = 0;
    for u in &users {
        received += e.balance(u).await;
    }
    assert_eq!(received, total);
    let view = e.pay.red_packet(&p.id).await.unwrap();
    assert_eq!((view.claimed_count, view.claimed_fen), (10, total));
    let mut claimers: Vec<_> = view.claims.iter().map(|c| c.user_id.clone()).collect();
    claimers.sort();
    claimers.dedup();
    assert_eq!(claimers.len(), 10);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_person_claiming_many_times_at_once_gets_one_share() {
    let e = env().await;
    let sender = e.funded_user("13700000051", "Host", 10_000).await;
    let p = e.pay.create_red_packet(&sender, group(5, 500, SplitMode::Fixed), "dup").await.unwrap();
    let greedy = e.user("13700000052", "Greedy").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let pay = e.pay.clone();
        let id = p.id.clone();
        let u = greedy.clone();
        tasks.push(tokio::spawn(async move { pay.claim(&id, &u).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(err) => assert_eq!(err.code, yizhan_pay::codes::ALREADY_CLAIMED, "{err}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(e.balance(&greedy).await, 100);
    e.assert_clean().await;
}

#[tokio::test]
async fn one_poisoned_packet_does_not_block_the_other_refunds() {
    let e = env().await;
    let sender = e.funded_user("13700000061", "Aunt", 10_000).await;
    let p = e.pay.create_red_packet(&sender, group(2, 800, SplitMode::Fixed), "fixed").await.unwrap();
    // A packet row whose refund cannot be paid (escrow never held its money),
    // first in the sweep's order.
    let now = e.ctx.now_ms();
    sqlx::query(
        "INSERT INTO red_packets (id, sender_user_id, to_user_id, mode, share_count, total_fen, greeting, status,
             idempotency_key, funding_transfer_id, refund_transfer_id, refunded_fen, created_at_ms, expires_at_ms)
         VALUES ('000000000000poisoned', $1, NULL, 'fixed', 1, 99999999, '', 'refunded', 'poison', NULL, NULL,
             99999999, $2, $2)",
    )
    .bind(&sender)
    .bind(now)
    .execute(&e.ctx.db.pool)
    .await
    .unwrap();
    e.clock.advance_ms(25 * HOUR_MS);
    let r = e.pay.refund_expired().await.unwrap();
    assert_eq!((r.packets, r.refunded_fen, r.failures), (1, 800, 1), "{r:?}");
    assert_eq!(e.balance(&sender).await, 10_000, "the good packet's money came back");
    assert_eq!(e.pay.red_packet(&p.id).await.unwrap().status, "refunded");
    // The poisoned one is tried again, and still fails alone.
    assert_eq!(e.pay.refund_expired().await.unwrap().failures, 1);
}
