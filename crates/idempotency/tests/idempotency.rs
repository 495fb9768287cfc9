#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The idempotency store on a real database (SQLite by default, PostgreSQL
//! with YIZHAN_TEST_DATABASE_URL).

use yizhan_core::testing::TestDb;
use yizhan_core::{Code, Msg};
use yizhan_idempotency::{request_hash, Begin, DomainAnswer, Idempotency, Lease, MIGRATIONS, MIN_RETENTION_MS};

/// The lease of a fresh begin.
fn fresh(b: Begin) -> Lease {
    match b {
        Begin::Fresh(lease) => lease,
        other => panic!("not fresh: {other:?}"),
    }
}

async fn store() -> (Idempotency, std::sync::Arc<yizhan_core::ManualClock>, TestDb) {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    (Idempotency::new(ctx), clock, t)
}

#[tokio::test]
async fn first_answer_is_replayed_and_another_request_is_a_mismatch() {
    let (s, _clock, _t) = store().await;
    let h = request_hash("POST", "/api/v1/wallet/topup", br#"{"amount":100}"#);
    let lease = fresh(s.begin("u1", "k1", &h).await.unwrap());
    // Still running.
    assert_eq!(s.begin("u1", "k1", &h).await.unwrap(), Begin::InProgress);
    assert!(s.complete("u1", "k1", &lease, 201, r#"{"ok":true}"#).await.unwrap());
    for _ in 0..2 {
        assert_eq!(
            s.begin("u1", "k1", &h).await.unwrap(),
            Begin::Replay { status: 201, body: r#"{"ok":true}"#.into() }
        );
    }
    let other = request_hash("POST", "/api/v1/wallet/topup", br#"{"amount":200}"#);
    assert_eq!(s.begin("u1", "k1", &other).await.unwrap(), Begin::Mismatch);
    let other_path = request_hash("POST", "/api/v1/wallet/withdraw", br#"{"amount":100}"#);
    assert_eq!(s.begin("u1", "k1", &other_path).await.unwrap(), Begin::Mismatch);
    // The same key of someone else is theirs.
    fresh(s.begin("u2", "k1", &other).await.unwrap());
}

#[tokio::test]
async fn a_released_key_runs_again() {
    let (s, _clock, _t) = store().await;
    let h = request_hash("POST", "/p", b"{}");
    let lease = fresh(s.begin("u", "k", &h).await.unwrap());
    assert!(s.release("u", "k", &lease).await.unwrap());
    let lease = fresh(s.begin("u", "k", &h).await.unwrap());
    assert!(s.complete("u", "k", &lease, 200, "done").await.unwrap());
    // A done answer is never released.
    assert!(!s.release("u", "k", &lease).await.unwrap());
    assert_eq!(s.begin("u", "k", &h).await.unwrap(), Begin::Replay { status: 200, body: "done".into() });
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let (s, _clock, _t) = store().await;
    for key in ["", "has space", &"x".repeat(201), "naïve"] {
        let e = s.begin("u", key, "h").await.unwrap_err();
        assert_eq!(e.code, Code::ValidationFailed, "{key:?}");
        assert_eq!(e.fields[0].field, "idempotency_key");
        assert_eq!(e.fields[0].msg, Msg::new("idempotency.key.invalid").int("max", 200));
    }
    let e = s.begin("", "k", "h").await.unwrap_err();
    assert_eq!(e.code, Code::ValidationFailed);
    assert_eq!(e.msg, Msg::new("idempotency.scope.invalid").int("max", 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_at_once_exactly_one_is_fresh() {
    let (s, _clock, _t) = store().await;
    for round in 0..5 {
        let key = format!("race-{round}");
        let h = request_hash("POST", "/pay", b"{}");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (s, key, h) = (s.clone(), key.clone(), h.clone());
                tokio::spawn(async move { s.begin("racer", &key, &h).await.unwrap() })
            })
            .collect();
        let results: Vec<Begin> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
        let fresh = results.iter().filter(|r| matches!(r, Begin::Fresh(_))).count();
        assert_eq!(fresh, 1, "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Begin::Fresh(_) | Begin::InProgress)), "{results:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_a_release_never_gives_two_runners() {
    let (s, _clock, _t) = store().await;
    let h = request_hash("POST", "/pay", b"{}");
    let lease = fresh(s.begin("u", "k", &h).await.unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, h) = (s.clone(), h.clone());
            tokio::spawn(async move { s.begin("u", "k", &h).await.unwrap() })
        })
        .collect();
    s.release("u", "k", &lease).await.unwrap();
    let results: Vec<Begin> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap()).collect();
    // After the release at most one new runner.
    assert!(results.iter().filter(|r| matches!(r, Begin::Fresh(_))).count() <= 1, "{results:?}");
}

#[tokio::test]
async fn a_request_that_died_leaves_its_key_free_at_once() {
    let (s, _clock, _t) = store().await;
    let h = request_hash("POST", "/p", b"{}");
    let lease = fresh(s.begin("u", "k", &h).await.unwrap());
    assert_eq!(s.begin("u", "k", &h).await.unwrap(), Begin::InProgress);
    // Another request with the key while it runs is a mismatch, as it would be after.
    assert_eq!(s.begin("u", "k", "other").await.unwrap(), Begin::Mismatch);
    // The request dies without an answer (its task is gone): nothing was written,
    // so a retry runs (the domain below is idempotent on the key).
    drop(lease);
    let lease = fresh(s.begin("u", "k", &h).await.unwrap());
    assert!(s.complete("u", "k", &lease, 201, "answer").await.unwrap());
    assert!(!s.release("u", "k", &lease).await.unwrap(), "a stored answer is not released");
    assert_eq!(s.begin("u", "k", &h).await.unwrap(), Begin::Replay { status: 201, body: "answer".into() });
}

/// A domain answer is written in the domain's transaction: it commits with
/// the work or not at all, and a retry runs again (the domain answers from
/// its own key), also after a restart; another request is a mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_answer_commits_with_the_work_and_sends_retries_round_again() {
    let (s, clock, t) = store().await;
    let h = request_hash("POST", "/pay", br#"{"amount":1}"#);
    let lease = fresh(s.begin("u", "paid", &h).await.unwrap());
    let answer = s.domain_answer(&lease);
    // Rolled back: as if nothing happened.
    let mut tx = t.db.begin().await.unwrap();
    DomainAnswer::insert_all(tx.conn(), &[&answer]).await.unwrap();
    drop(tx);
    drop(lease);
    let lease = fresh(s.begin("u", "paid", &h).await.unwrap());
    let answer = s.domain_answer(&lease);
    assert!(!answer.was_written());
    let mut tx = t.db.begin().await.unwrap();
    DomainAnswer::insert_all(tx.conn(), &[&answer]).await.unwrap();
    tx.commit().await.unwrap();
    assert!(answer.was_written());
    // While the first still runs, a retry waits its turn.
    assert_eq!(s.begin("u", "paid", &h).await.unwrap(), Begin::InProgress);
    drop(lease);
    let rerun = s.begin("u", "paid", &h).await.unwrap();
    assert!(matches!(rerun, Begin::Rerun(_)), "{rerun:?}");
    drop(rerun);
    // A fresh store (a restart) reads the same.
    let again = Idempotency::new(t.ctx().0);
    assert!(matches!(again.begin("u", "paid", &h).await.unwrap(), Begin::Rerun(_)));
    let other = request_hash("POST", "/pay", br#"{"amount":2}"#);
    assert_eq!(again.begin("u", "paid", &other).await.unwrap(), Begin::Mismatch);
    // Purged like any answer, after the retention.
    clock.advance_ms(MIN_RETENTION_MS + 1);
    assert_eq!(s.purge_older_than(0).await.unwrap(), 1);
    fresh(s.begin("u", "paid", &h).await.unwrap());
}

#[tokio::test]
async fn keys_live_at_least_a_day() {
    let (s, clock, _t) = store().await;
    let h = request_hash("POST", "/p", b"{}");
    let l = fresh(s.begin("u", "old", &h).await.unwrap());
    s.complete("u", "old", &l, 200, "a").await.unwrap();
    clock.advance_ms(MIN_RETENTION_MS - 1000);
    let l = fresh(s.begin("u", "young", &h).await.unwrap());
    s.complete("u", "young", &l, 200, "b").await.unwrap();
    // Asking for less than a day still keeps a day.
    assert_eq!(s.purge_older_than(0).await.unwrap(), 0);
    assert_eq!(s.begin("u", "old", &h).await.unwrap(), Begin::Replay { status: 200, body: "a".into() });
    clock.advance_ms(2000);
    assert_eq!(s.purge_older_than(60_000).await.unwrap(), 1);
    assert_eq!(s.begin("u", "young", &h).await.unwrap(), Begin::Replay { status: 200, body: "b".into() });
    // The purged key is free again.
    fresh(s.begin("u", "old", &h).await.unwrap());
    // A longer age keeps more.
    clock.advance_ms(MIN_RETENTION_MS);
    assert_eq!(s.purge_older_than(10 * MIN_RETENTION_MS).await.unwrap(), 0);
}

#[tokio::test]
async fn a_settled_lease_stores_nothing_more() {
    let (s, _clock, _t) = store().await;
    let h = request_hash("POST", "/p", b"{}");
    let lease = fresh(s.begin("u", "k", &h).await.unwrap());
    assert!(s.release("u", "k", &lease).await.unwrap());
    // Woken up late: the released lease can no longer store its answer.
    assert!(!s.complete("u", "k", &lease, 500, "late").await.unwrap());
    let new = fresh(s.begin("u", "k", &h).await.unwrap());
    assert_ne!(lease, new);
    // A lease speaks only for its own key.
    assert!(!s.complete("u", "other", &new, 201, "wrong key").await.unwrap());
    assert!(s.complete("u", "k", &new, 201, "first answer").await.unwrap());
    assert_eq!(s.begin("u", "k", &h).await.unwrap(), Begin::Replay { status: 201, body: "first answer".into() });
}

/// Many requests at once share group commits: each distinct key is claimed
/// by its own request, each answer is stored for its own key only (a batch
/// mixes many keys and scopes), and each key replays its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_keys_at_once_are_claimed_and_answered_each_for_itself() {
    let (s, _clock, _t) = store().await;
    let tasks: Vec<_> = (0..600)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let scope = format!("user-{}", i % 7);
                let key = format!("k-{i}");
                let h = request_hash("POST", "/pay", format!("{{\"n\":{i}}}").as_bytes());
                let Begin::Fresh(lease) = s.begin(&scope, &key, &h).await.unwrap() else { panic!("not fresh: {i}") };
                assert!(s.complete(&scope, &key, &lease, 201, &format!("answer {i}")).await.unwrap());
                // Completing twice stores nothing more.
                assert!(!s.complete(&scope, &key, &lease, 500, "other").await.unwrap());
                (scope, key, h, i)
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        let (scope, key, h, i) = t.unwrap();
        assert_eq!(
            s.begin(&scope, &key, &h).await.unwrap(),
            Begin::Replay { status: 201, body: format!("answer {i}") }
        );
    }
}
