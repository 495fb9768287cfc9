#![allow(clippy::unwrap_used)]
//! Many callers at once: no lost update, no overdraft, every acknowledged
//! payment lands, also with two batchers ("two processes") on one database.

mod common;

use common::{env, Env, GW};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use yizhan_ledger::{Ledger, TransferSpec};

type Moves = Vec<(String, String, i64)>;

/// Final balances from the initial ones and the acknowledged moves.
fn model(initial: &[(&str, i64)], moves: &[(String, String, i64)]) -> HashMap<String, i64> {
    let mut m: HashMap<String, i64> = initial.iter().map(|(a, b)| (a.to_string(), *b)).collect();
    for (from, to, amount) in moves {
        *m.entry(from.clone()).or_default() -= amount;
        *m.entry(to.clone()).or_default() += amount;
    }
    m
}

async fn assert_model(e: &Env, initial: &[(&str, i64)], moves: &[(String, String, i64)]) {
    for (account, want) in model(initial, moves) {
        let b = e.ledger.balance(&account).await.unwrap();
        assert_eq!(b.posted_fen, want, "{account}");
        assert_eq!(b.pending_debit_fen, 0, "{account}");
        assert!(b.available_fen >= 0, "{account} overdrawn");
    }
    e.assert_clean().await;
}

/// Watches balances while payments run: a wallet is never seen overdrawn.
fn watch(ledger: Ledger, accounts: Vec<String>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u32> {
    tokio::spawn(async move {
        let mut looks = 0;
        while !stop.load(Ordering::Relaxed) {
            for a in &accounts {
                let b = ledger.balance(a).await.unwrap();
                assert!(b.available_fen >= 0, "{a} seen overdrawn: {b:?}");
                looks += 1;
            }
            tokio::task::yield_now().await;
        }
        looks
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_payers_on_a_few_accounts_lose_nothing_and_never_overdraw() {
    let e = env().await;
    let wallets = ["wallet:a", "wallet:b", "wallet:c", "wallet:d"];
    for w in wallets {
        e.wallet(w, 5_000).await;
    }
    e.ledger.open_account("org:hot", "merchant", false).await.unwrap();
    let mut all: Vec<String> = wallets.iter().map(|s| s.to_string()).collect();
    all.push("org:hot".into());
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(e.ledger.clone(), all.clone(), stop.clone());

    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let ledger = e.ledger.clone();
        let all = all.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(t);
            let mut moves: Moves = Vec::new();
            let mut refused = 0;
            for _ in 0..50 {
                let from = &all[rng.gen_range(0..all.len())];
                let mut to = &all[rng.gen_range(0..all.len())];
                if to == from {
                    to = &all[all.len() - 1 - all.iter().position(|a| a == from).unwrap_or(0)];
                }
                if to == from {
                    continue;
                }
                let amount = rng.gen_range(1..=400);
                match ledger.transfer(TransferSpec::new(from.as_str(), to.as_str(), amount, "p2p")).await {
                    Ok(_) => moves.push((from.clone(), to.clone(), amount)),
                    Err(err) if err.code == yizhan_ledger::codes::INSUFFICIENT_FUNDS => refused += 1,
                    Err(err) => panic!("unexpected {err}"),
                }
            }
            (moves, refused)
        }));
    }
    let mut moves: Moves = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (m, r) = t.await.unwrap();
        moves.extend(m);
        refused += r;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.await.unwrap() > 0);
    assert!(moves.len() > 500, "only {} payments went through", moves.len());
    eprintln!("{} payments, {refused} refused for lack of funds", moves.len());
    let initial: Vec<(&str, i64)> = wallets.iter().map(|w| (*w, 5_000)).chain([("org:hot", 0)]).collect();
    assert_model(&e, &initial, &moves).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_into_one_merchant_all_lands() {
    let e = env().await;
    e.ledger.open_account("org:hot", "merchant", false).await.unwrap();
    let wallets: Vec<String> = (0..200).map(|i| format!("wallet:{i}")).collect();
    for w in &wallets {
        e.ledger.open_account(w, "wallet", false).await.unwrap();
    }
    let funding = wallets.iter().map(|w| e.ledger.transfer(TransferSpec::new(GW, w.as_str(), 100, "topup")));
    for r in futures::future::join_all(funding).await {
        r.unwrap();
    }
    // 2,000 payments of 10 fen: each wallet spends exactly what it has.
    let mut tasks = Vec::new();
    for w in wallets.clone() {
        for _ in 0..10 {
            let ledger = e.ledger.clone();
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                ledger.transfer(TransferSpec::new(w.as_str(), "org:hot", 10, "qr")).await
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(e.posted("org:hot").await, 20_000);
    for w in &wallets {
        assert_eq!(e.posted(w).await, 0);
    }
    assert_eq!(e.ledger.history("org:hot", None, 200).await.unwrap().items.len(), 200);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_batchers_on_one_database_stay_correct() {
    let e = env().await;
    let wallets = ["wallet:a", "wallet:b", "wallet:c"];
    for w in wallets {
        e.wallet(w, 20_000).await;
    }
    e.ledger.open_account("org:hot", "merchant", false).await.unwrap();
    let other = e.other_process(8).await;
    let ledgers = [e.ledger.clone(), other.clone()];

    let mut tasks = Vec::new();
    for t in 0..24u64 {
        let ledger = ledgers[(t % 2) as usize].clone();
        let peer = ledgers[((t + 1) % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(100 + t);
            let mut moves: Moves = Vec::new();
            let mut resolved = 0;
            for i in 0..30 {
                let from = wallets[rng.gen_range(0..wallets.len())];
                let to = if rng.gen_bool(0.5) { "org:hot" } else { wallets[(i + 1) % 3] };
                if from == to {
                    continue;
                }
                let amount = rng.gen_range(1..=500);
                if i % 5 == 0 {
                    // A hold that both batchers try to resolve at the same time.
                    let h = match ledger.transfer(TransferSpec::new(from, to, amount, "hold").pending(None)).await {
                        Ok(h) => h,
                        Err(err) if err.code == yizhan_ledger::codes::INSUFFICIENT_FUNDS => continue,
                        Err(err) => panic!("unexpected {err}"),
                    };
                    let (post, void) =
                        tokio::join!(ledger.post_pending(&h.id, None, None), peer.void_pending(&h.id, None));
                    match (post, void) {
                        (Ok(p), Err(v)) => {
                            assert_eq!(v.code, yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED, "{v}");
                            moves.push((from.to_string(), to.to_string(), p.amount_fen));
                        }
                        (Err(p), Ok(_)) => assert_eq!(p.code, yizhan_ledger::codes::TRANSFER_ALREADY_RESOLVED, "{p}"),
                        (p, v) => panic!("one hold resolved twice or never: {p:?} {v:?}"),
                    }
                    resolved += 1;
                    continue;
                }
                let key = format!("race:{t}:{i}");
                let spec = TransferSpec::new(from, to, amount, "p2p").with_idempotency_key(key);
                // The same payment submitted to both batchers at once lands once.
                let (a, b) = tokio::join!(ledger.transfer(spec.clone()), peer.transfer(spec));
                match (a, b) {
                    (Ok(x), Ok(y)) => {
                        assert_eq!(x.id, y.id);
                        moves.push((from.to_string(), to.to_string(), amount));
                    }
                    (Err(x), Err(y)) => {
                        assert_eq!(
                            (x.code, y.code),
                            (yizhan_ledger::codes::INSUFFICIENT_FUNDS, yizhan_ledger::codes::INSUFFICIENT_FUNDS)
                        );
                    }
                    // Refused by one batcher, then made by the other once funds came in.
                    (Ok(_), Err(z)) | (Err(z), Ok(_)) => {
                        assert_eq!(z.code, yizhan_ledger::codes::INSUFFICIENT_FUNDS);
                        moves.push((from.to_string(), to.to_string(), amount));
                    }
                }
            }
            (moves, resolved)
        }));
    }
    let mut moves: Moves = Vec::new();
    let mut resolved = 0;
    for t in tasks {
        let (m, r) = t.await.unwrap();
        moves.extend(m);
        resolved += r;
    }
    assert!(resolved > 10);
    let initial: Vec<(&str, i64)> = wallets.iter().map(|w| (*w, 20_000)).chain([("org:hot", 0)]).collect();
    assert_model(&e, &initial, &moves).await;
    assert!(other.check().await.unwrap().is_clean());
}
