#![allow(clippy::unwrap_used)]
//! Behaviour of the ledger, one rule at a time, on SQLite or PostgreSQL
//! (YIZHAN_TEST_DATABASE_URL).

mod common;

use common::{code, env, GW};
use futures::future::join_all;
use std::collections::HashSet;
use yizhan_core::{Code, Fen};
use yizhan_ledger::{Direction, HoldState, TransferKind, TransferSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdraft_is_refused_and_changes_nothing() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let before = e.transfer_count().await;
    let r = e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 1_001, "p2p")).await;
    assert_eq!(code(r), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    assert_eq!(e.posted("wallet:a").await, 1_000);
    assert_eq!(e.posted("wallet:b").await, 0);
    assert_eq!(e.transfer_count().await, before);
    // Exactly the balance is fine.
    e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 1_000, "p2p")).await.unwrap();
    assert_eq!(e.posted("wallet:a").await, 0);
    assert_eq!(
        code(e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 1, "p2p")).await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allow_negative_accounts_go_below_zero() {
    let e = env().await;
    e.wallet("wallet:a", 0).await;
    e.ledger.transfer(TransferSpec::new(GW, "wallet:a", 5_000, "topup")).await.unwrap();
    assert_eq!(e.posted(GW).await, -5_000);
    assert_eq!(e.posted("wallet:a").await, 5_000);
    let acc = e.ledger.account(GW).await.unwrap();
    assert!(acc.allow_negative);
    assert_eq!(acc.currency, "CNY");
    e.ledger.open_account("org:shop", "merchant", false).await.unwrap();
    assert_eq!(
        code(e.ledger.transfer(TransferSpec::new("org:shop", "wallet:a", 1, "refund")).await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_limit_lets_available_go_down_to_minus_the_limit() {
    let e = env().await;
    e.wallet("wallet:a", 100).await;
    e.wallet("wallet:b", 0).await;
    e.ledger.set_credit_limit("wallet:a", 500).await.unwrap();
    e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 600, "p2p")).await.unwrap();
    assert_eq!(e.available("wallet:a").await, -500);
    assert_eq!(
        code(e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 1, "p2p")).await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    // Cannot lower the limit under what is used.
    assert_eq!(code(e.ledger.set_credit_limit("wallet:a", 100).await), Code::Conflict);
    assert_eq!(code(e.ledger.set_credit_limit("wallet:nobody", 100).await), Code::NotFound);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_transfer_bad_amounts_currency_and_unknown_accounts_are_refused() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let l = &e.ledger;
    assert_eq!(
        code(l.transfer(TransferSpec::new("wallet:a", "wallet:a", 10, "p2p")).await),
        yizhan_ledger::codes::SELF_PAYMENT
    );
    for bad in [0, -1, -Fen::MAX_AMOUNT, Fen::MAX_AMOUNT + 1, i64::MAX, i64::MIN] {
        let err = l.transfer(TransferSpec::new("wallet:a", "wallet:b", bad, "p2p")).await.unwrap_err();
        assert_eq!(err.code, Code::ValidationFailed, "amount {bad}");
        assert_eq!(err.fields[0].field, "amount_fen");
    }
    // The largest amount is fine where the money is.
    l.transfer(TransferSpec::new(GW, "wallet:b", Fen::MAX_AMOUNT, "topup")).await.unwrap();
    let usd = TransferSpec { currency: "USD".into(), ..TransferSpec::new("wallet:a", "wallet:b", 10, "p2p") };
    let err = l.transfer(usd).await.unwrap_err();
    assert_eq!((err.code, err.fields[0].field.as_str()), (Code::ValidationFailed, "currency"));
    let err = l.open_account_in("wallet:usd", "wallet", false, "USD").await.unwrap_err();
    assert_eq!((err.code, err.fields[0].field.as_str()), (Code::ValidationFailed, "currency"));
    assert_eq!(code(l.transfer(TransferSpec::new("wallet:a", "wallet:nobody", 10, "p2p")).await), Code::NotFound);
    assert_eq!(code(l.transfer(TransferSpec::new("wallet:nobody", "wallet:a", 10, "p2p")).await), Code::NotFound);
    assert_eq!(code(l.transfer(TransferSpec::new("wallet:a", "wallet:b", 10, "")).await), Code::ValidationFailed);
    assert_eq!(code(l.balance("wallet:nobody").await), Code::NotFound);
    assert_eq!(e.posted("wallet:a").await, 1_000);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_account_is_idempotent_and_refuses_a_different_shape() {
    let e = env().await;
    e.ledger.open_account("wallet:a", "wallet", false).await.unwrap();
    e.ledger.open_account("wallet:a", "wallet", false).await.unwrap();
    assert_eq!(code(e.ledger.open_account("wallet:a", "wallet", true).await), Code::Conflict);
    assert_eq!(code(e.ledger.open_account("", "wallet", true).await), Code::ValidationFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_reserves_and_a_full_post_moves_it() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.ledger.open_account("org:shop", "merchant", false).await.unwrap();
    let h = e.ledger.transfer(TransferSpec::new("wallet:a", "org:shop", 700, "hold").pending(None)).await.unwrap();
    assert_eq!(h.kind, TransferKind::Pending);
    let b = e.ledger.balance("wallet:a").await.unwrap();
    assert_eq!((b.posted_fen, b.pending_debit_fen, b.available_fen), (1_000, 700, 300));
    let s = e.ledger.balance("org:shop").await.unwrap();
    assert_eq!((s.posted_fen, s.pending_credit_fen), (0, 700));
    // The hold counts against the available balance.
    assert_eq!(
        code(e.ledger.transfer(TransferSpec::new("wallet:a", "org:shop", 301, "qr")).await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    let p = e.ledger.post_pending(&h.id, None, None).await.unwrap();
    assert_eq!((p.kind, p.amount_fen, p.pending_id.as_deref()), (TransferKind::PostPending, 700, Some(h.id.as_str())));
    assert_eq!(p.category, "hold");
    let b = e.ledger.balance("wallet:a").await.unwrap();
    assert_eq!((b.posted_fen, b.pending_debit_fen, b.available_fen), (300, 0, 300));
    let s = e.ledger.balance("org:shop").await.unwrap();
    assert_eq!((s.posted_fen, s.pending_credit_fen), (700, 0));
    let hold = e.ledger.hold(&h.id).await.unwrap();
    assert_eq!((hold.state, hold.resolved_by.as_deref()), (HoldState::Posted, Some(p.id.as_str())));
    // Each pending transfer resolves once.
    assert_eq!(code(e.ledger.post_pending(&h.id, None, None).await), yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED);
    assert_eq!(code(e.ledger.void_pending(&h.id, None).await), yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED);
    assert_eq!(code(e.ledger.post_pending("nope", None, None).await), Code::NotFound);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_post_releases_the_rest_and_void_releases_all() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.ledger.open_account("org:shop", "merchant", false).await.unwrap();
    let h = e.ledger.transfer(TransferSpec::new("wallet:a", "org:shop", 600, "hold").pending(None)).await.unwrap();
    assert_eq!(code(e.ledger.post_pending(&h.id, Some(601), None).await), Code::ValidationFailed);
    assert_eq!(code(e.ledger.post_pending(&h.id, Some(0), None).await), Code::ValidationFailed);
    e.ledger.post_pending(&h.id, Some(250), None).await.unwrap();
    let b = e.ledger.balance("wallet:a").await.unwrap();
    assert_eq!((b.posted_fen, b.pending_debit_fen, b.available_fen), (750, 0, 750));
    assert_eq!(e.posted("org:shop").await, 250);

    let h2 = e.ledger.transfer(TransferSpec::new("wallet:a", "org:shop", 500, "hold").pending(None)).await.unwrap();
    assert_eq!(e.available("wallet:a").await, 250);
    let v = e.ledger.void_pending(&h2.id, None).await.unwrap();
    assert_eq!((v.kind, v.amount_fen), (TransferKind::VoidPending, 500));
    assert_eq!(e.available("wallet:a").await, 750);
    assert_eq!(e.ledger.hold(&h2.id).await.unwrap().state, HoldState::Voided);
    assert_eq!(code(e.ledger.post_pending(&h2.id, None, None).await), yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_expire_through_the_sweep_and_then_cannot_be_posted() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.ledger.open_account("org:shop", "merchant", false).await.unwrap();
    let spec = |amount| TransferSpec::new("wallet:a", "org:shop", amount, "hold");
    let h1 = e.ledger.transfer(spec(100).pending(Some(60_000))).await.unwrap();
    let h2 = e.ledger.transfer(spec(200).pending(Some(120_000))).await.unwrap();
    let forever = e.ledger.transfer(spec(300).pending(None)).await.unwrap();
    assert_eq!(h1.expires_at_ms, Some(h1.created_at_ms + 60_000));
    assert_eq!(e.available("wallet:a").await, 400);
    assert_eq!(e.ledger.expire_due().await.unwrap(), 0);

    e.clock.advance_ms(60_000);
    // Due but not swept yet: posting is already refused.
    assert_eq!(code(e.ledger.post_pending(&h1.id, None, None).await), yizhan_ledger::codes::HOLD_EXPIRED);
    assert_eq!(e.ledger.expire_due().await.unwrap(), 1);
    assert_eq!(e.ledger.expire_due().await.unwrap(), 0);
    assert_eq!(e.available("wallet:a").await, 500);
    let hold = e.ledger.hold(&h1.id).await.unwrap();
    assert_eq!(hold.state, HoldState::Expired);
    let row = e.ledger.get_transfer(hold.resolved_by.as_deref().unwrap()).await.unwrap();
    assert_eq!((row.kind, row.amount_fen), (TransferKind::ExpirePending, 100));
    assert_eq!(code(e.ledger.post_pending(&h1.id, None, None).await), yizhan_ledger::codes::HOLD_EXPIRED);
    assert_eq!(code(e.ledger.void_pending(&h1.id, None).await), yizhan_ledger::codes::HOLD_EXPIRED);

    // Posted just before its expiry: fine, and the sweep leaves it alone.
    e.clock.advance_ms(59_999);
    e.ledger.post_pending(&h2.id, Some(150), None).await.unwrap();
    e.clock.advance_ms(10_000_000);
    assert_eq!(e.ledger.expire_due().await.unwrap(), 0);
    assert_eq!(e.ledger.hold(&forever.id).await.unwrap().state, HoldState::Pending);
    assert_eq!(e.posted("wallet:a").await, 850);
    assert_eq!(e.available("wallet:a").await, 550);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_transfers_apply_all_or_nothing() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    e.ledger.open_account("fees", "fees", false).await.unwrap();
    let before = e.transfer_count().await;
    let err = e
        .ledger
        .submit_linked(vec![
            TransferSpec::new("wallet:a", "wallet:b", 600, "p2p"),
            TransferSpec::new("wallet:a", "fees", 6, "fee"),
            TransferSpec::new("wallet:a", "wallet:b", 500, "p2p"),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code, yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    assert_eq!(err.msg.key, "ledger.linked_failed", "{}", err.msg);
    assert!(err.msg.to_string().contains("index=3 count=3"), "{}", err.msg);
    // The failed transfer's reason, with its own amounts (in fen, shown as yuan).
    use yizhan_core::Arg;
    assert!(err.msg.args.contains(&("reason".into(), Arg::Key("ledger.insufficient_funds".into()))), "{}", err.msg);
    assert!(err.msg.args.contains(&("available".into(), Arg::Fen(394))), "{}", err.msg);
    assert!(err.msg.args.contains(&("needed".into(), Arg::Fen(500))), "{}", err.msg);
    assert_eq!(e.posted("wallet:a").await, 1_000);
    assert_eq!(e.posted("wallet:b").await, 0);
    assert_eq!(e.posted("fees").await, 0);
    assert_eq!(e.transfer_count().await, before);

    // A failing group inside a busy batch leaves the others alone.
    let l = &e.ledger;
    let (ok1, bad, ok2) = tokio::join!(
        l.transfer(TransferSpec::new("wallet:a", "wallet:b", 100, "p2p")),
        l.submit_linked(vec![
            TransferSpec::new("wallet:a", "fees", 1, "fee"),
            TransferSpec::new("wallet:b", "fees", 1, "fee").pending(None),
            TransferSpec::new("wallet:a", "wallet:nobody", 1, "p2p"),
        ]),
        l.transfer(TransferSpec::new("wallet:a", "wallet:b", 100, "p2p")),
    );
    ok1.unwrap();
    ok2.unwrap();
    assert_eq!(bad.unwrap_err().code, Code::NotFound);
    assert_eq!(e.ledger.balance("wallet:b").await.unwrap().pending_debit_fen, 0);

    let done = e
        .ledger
        .submit_linked(vec![
            TransferSpec::new("wallet:a", "wallet:b", 600, "p2p"),
            TransferSpec::new("wallet:a", "fees", 6, "fee"),
        ])
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    assert!(done[0].linked_group.is_some());
    assert_eq!(done[0].linked_group, done[1].linked_group);
    assert_eq!(e.posted("wallet:a").await, 1_000 - 200 - 606);
    assert_eq!(code(e.ledger.submit_linked(vec![]).await), Code::ValidationFailed);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_the_first_transfer_and_refuse_another() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let spec = || TransferSpec::new("wallet:a", "wallet:b", 100, "p2p").with_idempotency_key("user:a:k1");
    let first = e.ledger.transfer(spec()).await.unwrap();
    let again = e.ledger.transfer(spec().with_memo("memo differs, still the same payment")).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(e.posted("wallet:a").await, 900);
    let other = TransferSpec::new("wallet:a", "wallet:b", 101, "p2p").with_idempotency_key("user:a:k1");
    assert_eq!(code(e.ledger.transfer(other).await), Code::IdempotencyKeyReused);
    let other = TransferSpec::new("wallet:b", "wallet:a", 100, "p2p").with_idempotency_key("user:a:k1");
    assert_eq!(code(e.ledger.transfer(other).await), Code::IdempotencyKeyReused);
    assert_eq!(e.ledger.transfer_by_idempotency_key("user:a:k1").await.unwrap(), Some(first.clone()));
    assert_eq!(e.ledger.transfer_by_idempotency_key("user:a:none").await.unwrap(), None);
    // A refused transfer does not burn its key.
    let big = TransferSpec::new("wallet:a", "wallet:b", 5_000, "p2p").with_idempotency_key("user:a:k2");
    assert_eq!(code(e.ledger.transfer(big).await), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    let fits = TransferSpec::new("wallet:a", "wallet:b", 50, "p2p").with_idempotency_key("user:a:k2");
    e.ledger.transfer(fits).await.unwrap();
    assert_eq!(e.posted("wallet:a").await, 850);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_in_one_batch_makes_one_transfer() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    // One linked group is one batch for sure.
    let v = e
        .ledger
        .submit_linked(vec![
            TransferSpec::new("wallet:a", "wallet:b", 100, "p2p").with_idempotency_key("k"),
            TransferSpec::new("wallet:a", "wallet:b", 100, "p2p").with_idempotency_key("k"),
        ])
        .await
        .unwrap();
    assert_eq!(v[0].id, v[1].id);
    assert_eq!(e.posted("wallet:a").await, 900);
    let err = e
        .ledger
        .submit_linked(vec![
            TransferSpec::new("wallet:a", "wallet:b", 10, "p2p").with_idempotency_key("k2"),
            TransferSpec::new("wallet:a", "wallet:b", 20, "p2p").with_idempotency_key("k2"),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::IdempotencyKeyReused);
    assert_eq!(e.posted("wallet:a").await, 900);

    // Many callers at once with one key (they share batches): one transfer.
    let calls = (0..40)
        .map(|_| e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 7, "p2p").with_idempotency_key("k3")));
    let ids: HashSet<String> = join_all(calls).await.into_iter().map(|r| r.unwrap().id).collect();
    assert_eq!(ids.len(), 1);
    // Mixed: the first in the queue wins, the different ones are refused.
    let calls = (0..20).map(|i| {
        e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 1 + i % 2, "p2p").with_idempotency_key("k4"))
    });
    let res = join_all(calls).await;
    assert_eq!(res[0].as_ref().unwrap().amount_fen, 1);
    for (i, r) in res.iter().enumerate() {
        match r {
            Ok(t) => assert_eq!((i % 2, &t.id), (0, &res[0].as_ref().unwrap().id)),
            Err(err) => assert_eq!((i % 2, err.code), (1, Code::IdempotencyKeyReused)),
        }
    }
    assert_eq!(e.posted("wallet:a").await, 900 - 7 - 1);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolutions_replay_with_their_idempotency_key() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let h = e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 400, "hold").pending(None)).await.unwrap();
    let p1 = e.ledger.post_pending(&h.id, None, Some("post:1".into())).await.unwrap();
    let p2 = e.ledger.post_pending(&h.id, None, Some("post:1".into())).await.unwrap();
    assert_eq!(p1, p2);
    assert_eq!(code(e.ledger.post_pending(&h.id, Some(5), Some("post:1".into())).await), Code::IdempotencyKeyReused);
    assert_eq!(code(e.ledger.void_pending(&h.id, Some("post:1".into())).await), Code::IdempotencyKeyReused);
    let h2 = e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 100, "hold").pending(None)).await.unwrap();
    let v1 = e.ledger.void_pending(&h2.id, Some("void:1".into())).await.unwrap();
    assert_eq!(e.ledger.void_pending(&h2.id, Some("void:1".into())).await.unwrap(), v1);
    assert_eq!(e.posted("wallet:a").await, 600);
    assert_eq!(e.available("wallet:a").await, 600);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_and_voiding_one_hold_at_once_resolves_it_once() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let h = e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 400, "hold").pending(None)).await.unwrap();
    let (a, b, c) = tokio::join!(
        e.ledger.post_pending(&h.id, Some(300), None),
        e.ledger.void_pending(&h.id, None),
        e.ledger.post_pending(&h.id, None, None),
    );
    a.unwrap();
    assert_eq!(b.unwrap_err().code, yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED);
    assert_eq!(c.unwrap_err().code, yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED);
    assert_eq!(e.posted("wallet:b").await, 300);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_made_and_resolved_in_one_batch() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let h = TransferSpec::new("wallet:a", "wallet:b", 400, "hold").with_id("hold-1").pending(Some(1_000));
    let (made, posted, again) = tokio::join!(
        e.ledger.transfer(h),
        e.ledger.post_pending("hold-1", Some(100), None),
        e.ledger.void_pending("hold-1", None),
    );
    assert_eq!(made.unwrap().id, "hold-1");
    assert_eq!(posted.unwrap().amount_fen, 100);
    assert_eq!(again.unwrap_err().code, yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED);
    assert_eq!(e.ledger.hold("hold-1").await.unwrap().state, HoldState::Posted);
    assert_eq!(e.available("wallet:a").await, 900);
    // A caller-chosen id is unique.
    let dup = TransferSpec::new("wallet:a", "wallet:b", 1, "p2p").with_id("hold-1");
    assert_eq!(code(e.ledger.transfer(dup).await), Code::AlreadyExists);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_refers_to_the_original() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.ledger.open_account("org:shop", "merchant", false).await.unwrap();
    let paid = e.ledger.transfer(TransferSpec::new("wallet:a", "org:shop", 300, "qr")).await.unwrap();
    let refund = e
        .ledger
        .transfer(TransferSpec::new("org:shop", "wallet:a", 300, "refund").with_refers_to(&paid.id))
        .await
        .unwrap();
    assert_eq!(e.ledger.get_transfer(&refund.id).await.unwrap().refers_to.as_deref(), Some(paid.id.as_str()));
    let bad = TransferSpec::new("org:shop", "wallet:a", 1, "refund").with_refers_to("no-such-transfer");
    assert_eq!(code(e.ledger.transfer(bad).await), Code::NotFound);
    assert_eq!(code(e.ledger.get_transfer("no-such-transfer").await), Code::NotFound);
    assert_eq!(e.posted("wallet:a").await, 1_000);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_are_stable_and_complete() {
    let e = env().await;
    e.wallet("wallet:a", 100_000).await;
    e.wallet("wallet:b", 100_000).await;
    for i in 0..23 {
        let (from, to) = if i % 3 == 0 { ("wallet:b", "wallet:a") } else { ("wallet:a", "wallet:b") };
        e.ledger.transfer(TransferSpec::new(from, to, 10 + i, "p2p")).await.unwrap();
    }
    let h = e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 5, "hold").pending(None)).await.unwrap();
    e.ledger.void_pending(&h.id, None).await.unwrap();
    // 1 top-up + 23 + hold + void = 26 rows for wallet:a.
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let page = e.ledger.history("wallet:a", cursor, 7).await.unwrap();
        assert!(page.items.len() <= 7);
        // New transfers while paging do not disturb the pages.
        e.ledger.transfer(TransferSpec::new("wallet:b", "wallet:a", 1, "p2p")).await.unwrap();
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    let seqs: Vec<i64> = seen.iter().map(|i| i.transfer.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first, no duplicates: {seqs:?}");
    let top = &seen[seen.len() - 1];
    assert_eq!((top.direction, top.counterparty.as_str(), top.posted_change_fen), (Direction::In, GW, 100_000));
    let void = &seen[0];
    assert_eq!((void.transfer.kind, void.posted_change_fen), (TransferKind::VoidPending, 0));
    let out = seen.iter().find(|i| i.transfer.amount_fen == 11).unwrap();
    assert_eq!((out.direction, out.counterparty.as_str(), out.posted_change_fen), (Direction::Out, "wallet:b", -11));
    let total: i64 = seen.iter().map(|i| i.posted_change_fen).sum();
    assert_eq!(pages, 4);
    assert_eq!(total, e.posted("wallet:a").await - pages); // one 1-fen payment came in per page
    assert_eq!(code(e.ledger.history("wallet:a", None, 0).await), Code::ValidationFailed);
    assert!(e.ledger.history("wallet:nobody", None, 10).await.unwrap().items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sums_by_category_cover_a_period() {
    let e = env().await;
    e.wallet("wallet:a", 10_000).await;
    e.ledger.open_account("org:shop", "merchant", false).await.unwrap();
    let start = e.ledger.ctx().now_ms();
    e.clock.advance_ms(1_000);
    let l = &e.ledger;
    l.transfer(TransferSpec::new("wallet:a", "org:shop", 300, "qr")).await.unwrap();
    l.transfer(TransferSpec::new("wallet:a", "org:shop", 200, "qr")).await.unwrap();
    l.transfer(TransferSpec::new("org:shop", "wallet:a", 100, "refund")).await.unwrap();
    let h = l.transfer(TransferSpec::new("wallet:a", "org:shop", 1_000, "bill").pending(None)).await.unwrap();
    l.post_pending(&h.id, Some(400), None).await.unwrap();
    l.transfer(TransferSpec::new("wallet:a", "org:shop", 999, "bill").pending(None)).await.unwrap();
    let end = e.ledger.ctx().now_ms() + 1;
    e.clock.advance_ms(1_000);
    l.transfer(TransferSpec::new("wallet:a", "org:shop", 5, "qr")).await.unwrap();
    let sums = l.sum_by_category("wallet:a", start + 1, end).await.unwrap();
    let got: Vec<(&str, i64, i64, i64)> =
        sums.iter().map(|s| (s.category.as_str(), s.debit_fen, s.credit_fen, s.transfers)).collect();
    assert_eq!(got, vec![("bill", 400, 0, 1), ("qr", 500, 0, 2), ("refund", 0, 100, 1)]);
    let all = l.sum_by_category("wallet:a", start, end + 10_000).await.unwrap();
    assert!(all.iter().any(|s| s.category == "topup" && s.credit_fen == 10_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_tampered_balance() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.assert_clean().await;
    sqlx::query("UPDATE ledger_accounts SET posted_fen = posted_fen + 1 WHERE id = 'wallet:a'")
        .execute(&e.t.db.pool)
        .await
        .unwrap();
    let r = e.ledger.check().await.unwrap();
    assert!(!r.is_clean());
    assert_eq!(r.sum_posted_fen, 1);
    assert!(r.mismatches.iter().any(|m| m.contains("wallet:a")), "{:?}", r.mismatches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transfers_survive_a_restart() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let ids: Vec<String> =
        join_all((0..50).map(|_| e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 3, "p2p"))))
            .await
            .into_iter()
            .map(|r| r.unwrap().id)
            .collect();
    // A new connection and a new batcher, as after a restart, see everything acknowledged.
    let db = yizhan_core::Db::connect(e.t.db.url()).await.unwrap();
    let (mut ctx, _) = e.t.ctx();
    ctx.db = db;
    let again = yizhan_ledger::Ledger::start(ctx);
    for id in &ids {
        again.get_transfer(id).await.unwrap();
    }
    assert_eq!(again.balance("wallet:b").await.unwrap().posted_fen, 150);
    assert!(again.check().await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_statements_walk_across_history_blocks() {
    let e = env().await;
    e.wallet("wallet:a", 100_000).await;
    e.wallet("wallet:b", 0).await;
    e.ledger.open_account("org:other", "merchant", false).await.unwrap();
    let pool = e.t.db.pool.clone();
    let jump = |blocks: i64| {
        let pool = pool.clone();
        async move {
            // Skip seqs as if other accounts had made that many transfers.
            sqlx::query("UPDATE ledger_meta SET value_int = value_int + $1 WHERE key = 'transfer_seq'")
                .bind(blocks * 16_384 + 17)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let start = e.ledger.ctx().now_ms();
    let mut made = Vec::new();
    for round in 0..4 {
        for i in 0..3 {
            let to = if i == 2 { "org:other" } else { "wallet:b" };
            made.push(e.ledger.transfer(TransferSpec::new("wallet:a", to, 100 + i, "p2p")).await.unwrap().seq);
        }
        e.clock.advance_ms(1_000);
        jump([1, 7, 150, 0][round]).await;
    }
    // Only wallet:b's rows, newest first, in pages of 2.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = e.ledger.history("wallet:b", cursor, 2).await.unwrap();
        seen.extend(page.items.iter().map(|i| i.transfer.seq));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut want: Vec<i64> = made.iter().enumerate().filter(|(i, _)| i % 3 != 2).map(|(_, s)| *s).collect();
    want.reverse();
    assert_eq!(seen, want);
    assert!(want[0] >> 14 > 150, "the rows span many blocks: {want:?}");
    let all = e.ledger.history("wallet:a", None, 200).await.unwrap();
    assert_eq!(all.items.len(), 13);
    assert_eq!(all.next_cursor, None);
    let sums = e.ledger.sum_by_category("wallet:b", start, e.ledger.ctx().now_ms()).await.unwrap();
    assert_eq!((sums[0].category.as_str(), sums[0].credit_fen, sums[0].transfers), ("p2p", 4 * 201, 8));
    // Only the third round (after the clock moved twice).
    let third = e.ledger.sum_by_category("wallet:b", start + 2_000, start + 3_000).await.unwrap();
    assert_eq!((third[0].credit_fen, third[0].transfers), (201, 2));
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_account_takes_no_new_money_until_opened_again() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    // Warm whatever the batcher keeps in memory about b.
    e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 100, "p2p")).await.unwrap();
    e.ledger.set_closed("wallet:b", true).await.unwrap();
    let before = e.transfer_count().await;
    assert_eq!(
        code(e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 100, "p2p")).await),
        yizhan_ledger::codes::ACCOUNT_CLOSED
    );
    assert_eq!(e.posted("wallet:b").await, 100);
    assert_eq!(e.transfer_count().await, before);
    // Money may still leave it (so what it holds can be paid out).
    e.ledger.transfer(TransferSpec::new("wallet:b", "wallet:a", 100, "p2p")).await.unwrap();
    e.ledger.set_closed("wallet:b", false).await.unwrap();
    e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 50, "p2p")).await.unwrap();
    assert_eq!(e.posted("wallet:b").await, 50);
    assert_eq!(code(e.ledger.set_closed("wallet:nobody", true).await), Code::NotFound);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_answers_any_cursor_with_bounded_work() {
    let e = env().await;
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    for _ in 0..3 {
        e.ledger.transfer(TransferSpec::new("wallet:a", "wallet:b", 10, "p2p")).await.unwrap();
    }
    let all = e.ledger.history("wallet:a", None, 50).await.unwrap();
    assert_eq!((all.items.len(), all.next_cursor), (4, None));
    let seqs = |p: &yizhan_ledger::Page<yizhan_ledger::HistoryItem>| {
        p.items.iter().map(|i| i.transfer.seq).collect::<Vec<_>>()
    };
    // A cursor beyond the newest row is the first page; one at or below the
    // oldest row is an empty last page. Neither walks empty windows or overflows.
    for c in [i64::MAX, i64::MAX - 1, 1 << 62] {
        let p = e.ledger.history("wallet:a", Some(c), 50).await.unwrap();
        assert_eq!((seqs(&p), p.next_cursor), (seqs(&all), None), "cursor {c}");
    }
    for c in [i64::MIN, i64::MIN + 1, -1, 0, 1] {
        let p = e.ledger.history("wallet:a", Some(c), 50).await.unwrap();
        assert!(p.items.is_empty() && p.next_cursor.is_none(), "cursor {c}");
    }

    // A long ledger the account has been quiet in: another process moved the
    // counter 2,000 blocks on, and others' rows sit up there.
    let (ctx, _) = e.t.ctx();
    let mut tx = ctx.db.begin().await.unwrap();
    sqlx::query("UPDATE ledger_meta SET value_int = value_int + $1 WHERE key = 'transfer_seq'")
        .bind(2_000_i64 << 14)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    e.wallet("wallet:c", 5).await;
    // The first page stops after a bounded number of windows and hands back
    // a cursor below them; following the cursors finds every row once.
    let first = e.ledger.history("wallet:a", Some(i64::MAX), 50).await.unwrap();
    assert!(first.items.is_empty(), "a bounded page, not a scan of the whole ledger");
    let mut cursor = first.next_cursor;
    assert!(cursor.is_some());
    let mut seen = Vec::new();
    for _ in 0..10 {
        let Some(c) = cursor else { break };
        let p = e.ledger.history("wallet:a", Some(c), 50).await.unwrap();
        seen.extend(seqs(&p));
        cursor = p.next_cursor;
    }
    assert_eq!(cursor, None);
    assert_eq!(seen, seqs(&all));
}
