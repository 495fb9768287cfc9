#![allow(clippy::unwrap_used)]
//! Quotas counted with the transfers: a cap no two transfers pass together,
//! nothing counted for a replay or a refusal, linked groups counted all or
//! nothing, and counts made outside the batcher (`quotas::take_within`)
//! racing the batcher's, also with a second batcher ("another process").

mod common;

use common::{code, env};
use std::sync::Arc;
use yizhan_ledger::quotas::{self, Take};
use yizhan_ledger::{codes, TransferSpec};

const Q: &str = "payment:20000:a";

fn pay(amount: i64, key: &str, cap: i64) -> TransferSpec {
    TransferSpec::new("wallet:a", "wallet:b", amount, "p2p").with_idempotency_key(key).with_quota(Q, cap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refuses_past_its_cap_and_counts_no_replay_or_refusal() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let pool = &e.ledger.ctx().db.pool;
    e.ledger.transfer(pay(300, "k1", 500)).await.unwrap();
    // The same payment again answers the first and counts nothing, even past the cap now.
    let again = e.ledger.transfer(pay(300, "k1", 100)).await.unwrap();
    assert_eq!(again.amount_fen, 300);
    assert_eq!(quotas::used(pool, Q).await.unwrap(), 300);
    // 201 more would pass 500: refused, counted nothing, moved nothing.
    let err = e.ledger.transfer(pay(201, "k2", 500)).await.unwrap_err();
    assert_eq!(err.code, codes::QUOTA_EXCEEDED);
    assert_eq!(err.msg.key, "ledger.quota_exceeded");
    assert_eq!(quotas::used(pool, Q).await.unwrap(), 300);
    assert_eq!(e.posted("wallet:b").await, 300);
    // Refused for want of money: nothing counted either.
    assert_eq!(code(e.ledger.transfer(pay(800, "k3", 5_000)).await), codes::INSUFFICIENT_FUNDS);
    assert_eq!(quotas::used(pool, Q).await.unwrap(), 300);
    // Exactly up to the cap passes.
    e.ledger.transfer(pay(200, "k4", 500)).await.unwrap();
    assert_eq!(quotas::used(pool, Q).await.unwrap(), 500);
    // A linked group counts all or nothing.
    let linked = vec![
        TransferSpec::new("wallet:b", "wallet:a", 100, "p2p").with_quota("payment:20000:b", 150),
        TransferSpec::new("wallet:b", "wallet:a", 100, "p2p").with_quota("payment:20000:b", 150),
    ];
    let err = e.ledger.submit_linked(linked).await.unwrap_err();
    assert_eq!(err.code, codes::QUOTA_EXCEEDED);
    assert_eq!(quotas::used(pool, "payment:20000:b").await.unwrap(), 0);
    // A bad quota is refused before anything is read.
    assert_eq!(code(e.ledger.transfer(pay(1, "k5", -1)).await), yizhan_core::Code::ValidationFailed);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_and_outside_counts_racing_never_pass_the_cap_together() {
    let e = env().await;
    e.wallet("wallet:a", 1_000_000).await;
    e.wallet("wallet:b", 0).await;
    let other = e.other_process(9).await;
    let ledgers = [e.ledger.clone(), other.clone()];
    const CAP: i64 = 10_000;
    let paid = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let counted_outside = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let ledger = ledgers[(t % 2) as usize].clone();
        let (paid, counted_outside) = (paid.clone(), counted_outside.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let amount = 50 + i64::try_from((t * 7 + i) % 90).unwrap();
                if t % 4 == 3 {
                    // Counted outside the batcher, in a transaction of its own.
                    let mut tx = ledger.ctx().db.begin().await.unwrap();
                    let take = Take { key: Q.to_string(), amount_fen: amount, cap_fen: CAP };
                    let passed = quotas::take_within(tx.conn(), &[take]).await.unwrap();
                    tx.commit().await.unwrap();
                    if passed[0] {
                        counted_outside.fetch_add(amount, std::sync::atomic::Ordering::Relaxed);
                    }
                    continue;
                }
                match ledger.transfer(pay(amount, &format!("q:{t}:{i}"), CAP)).await {
                    Ok(_) => {
                        paid.fetch_add(amount, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(err) => assert_eq!(err.code, codes::QUOTA_EXCEEDED, "{err}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let paid = paid.load(std::sync::atomic::Ordering::Relaxed);
    let outside = counted_outside.load(std::sync::atomic::Ordering::Relaxed);
    let used = quotas::used(&e.ledger.ctx().db.pool, Q).await.unwrap();
    // Every count made is there once, and together they stay within the cap
    // (the demand, about 4 times the cap, filled it up).
    assert_eq!(used, paid + outside);
    assert!(used <= CAP, "{used} > {CAP}");
    assert!(used > CAP - 200, "{used}");
    assert_eq!(e.posted("wallet:b").await, paid);
    // Giving back never goes below zero.
    let mut tx = e.ledger.ctx().db.begin().await.unwrap();
    quotas::give_back(tx.conn(), Q, used + 1).await.unwrap();
    quotas::give_back(tx.conn(), Q, 100).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(quotas::used(&e.ledger.ctx().db.pool, Q).await.unwrap(), used - 100);
    e.assert_clean().await;
}
