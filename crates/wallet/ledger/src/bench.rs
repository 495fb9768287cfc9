//! The ledger's throughput benchmark: many concurrent payers, a share of the
//! payments into one hot merchant account, every call timed from submit to
//! durable acknowledgement, and a full [`crate::check`] at the end.

use crate::{Ledger, LedgerConfig, TransferSpec, MIGRATIONS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yizhan_core::{Ctx, Error, Result};

#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// Wallets paying each other.
    pub accounts: usize,
    /// Payments to make (after funding).
    pub transfers: usize,
    /// Tasks submitting payments at once (each waits for its answer).
    pub concurrency: usize,
    /// Percent of payments that go into the one hot merchant account.
    pub hot_share_pct: u32,
    /// Give every payment an idempotency key, as real payments have.
    pub idempotency_keys: bool,
    /// The batcher's tuning.
    pub config: LedgerConfig,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            accounts: 10_000,
            transfers: 200_000,
            concurrency: 16_384,
            hot_share_pct: 20,
            idempotency_keys: false,
            config: LedgerConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Payments acknowledged (made or refused) during the timed part.
    pub transfers: u64,
    pub seconds: f64,
    pub per_second: f64,
    /// Latency of one call, submit to durable answer.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Payments refused (insufficient funds).
    pub rejected: u64,
    /// Database transactions the timed part took.
    pub batches: u64,
    /// Mean commands per batch.
    pub mean_batch: f64,
    pub engine: &'static str,
}

const FUND_FEN: i64 = 10_000_000;

/// Run the benchmark on `ctx`'s database (migrating it if needed). Its
/// accounts are named `bench:<run>:…`, so runs do not meet. `progress` is
/// called a few times a second with the payments answered so far.
pub async fn run(ctx: Ctx, opts: BenchOpts, progress: impl Fn(u64) + Send + Sync) -> Result<BenchReport> {
    if opts.accounts < 2 || opts.concurrency == 0 || opts.hot_share_pct > 100 {
        return Err(Error::field("opts", "ledger.bench_opts"));
    }
    ctx.db.migrate(&[&MIGRATIONS]).await?;
    let ledger = Ledger::start_with(ctx.clone(), opts.config.clone());
    let run_id = ctx.rng.hex(4);
    let gateway = format!("bench:{run_id}:gateway");
    let hot = format!("bench:{run_id}:hot");
    let wallets: Arc<Vec<String>> = Arc::new((0..opts.accounts).map(|i| format!("bench:{run_id}:w{i}")).collect());
    let mut open: Vec<(&str, &str, bool)> = vec![(&gateway, "gateway", true), (&hot, "merchant", false)];
    open.extend(wallets.iter().map(|w| (w.as_str(), "wallet", false)));
    ledger.open_accounts(&open).await?;

    let fund = futures::future::join_all(
        wallets.iter().map(|w| ledger.transfer(TransferSpec::new(gateway.as_str(), w.as_str(), FUND_FEN, "topup"))),
    )
    .await;
    for r in fund {
        r?;
    }

    let done = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let hot = Arc::new(hot);
    let before = ledger.stats();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(opts.concurrency);
    for t in 0..opts.concurrency {
        let n = opts.transfers / opts.concurrency + usize::from(t < opts.transfers % opts.concurrency);
        let (ledger, wallets, hot, done, rejected) =
            (ledger.clone(), wallets.clone(), hot.clone(), done.clone(), rejected.clone());
        let seed = ctx.rng.next_u64();
        let keys = opts.idempotency_keys;
        let hot_pct = opts.hot_share_pct;
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut latencies_us: Vec<u32> = Vec::with_capacity(n);
            for i in 0..n {
                let from = rng.gen_range(0..wallets.len());
                let to = if rng.gen_range(0..100) < hot_pct {
                    hot.as_str()
                } else {
                    let mut to = rng.gen_range(0..wallets.len() - 1);
                    if to >= from {
                        to += 1;
                    }
                    wallets[to].as_str()
                };
                let mut spec = TransferSpec::new(wallets[from].as_str(), to, rng.gen_range(1..=1_000), "qr");
                if keys {
                    spec.idempotency_key = Some(format!("bench:{seed:x}:{i}"));
                }
                let t0 = Instant::now();
                let r = ledger.transfer(spec).await;
                latencies_us.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                match r {
                    Ok(_) => {}
                    Err(e) if e.code == crate::codes::INSUFFICIENT_FUNDS => {
                        rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(latencies_us)
        }));
    }
    let mut all = futures::future::join_all(tasks);
    let results = loop {
        tokio::select! {
            r = &mut all => break r,
            _ = tokio::time::sleep(Duration::from_millis(250)) => progress(done.load(Ordering::Relaxed)),
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let after = ledger.stats();
    let mut latencies: Vec<u32> = Vec::with_capacity(opts.transfers);
    for r in results {
        latencies.extend(r.map_err(Error::internal)??);
    }
    progress(done.load(Ordering::Relaxed));
    latencies.sort_unstable();
    // Nearest rank: the value below which `per_mille`/1000 of the calls fall.
    let pct = |per_mille: usize| -> f64 {
        match latencies.len() {
            0 => 0.0,
            n => f64::from(latencies[((n - 1) * per_mille / 1000).min(n - 1)]) / 1000.0,
        }
    };

    let report = crate::check(&ctx).await?;
    if !report.is_clean() {
        return Err(Error::internal(anyhow::anyhow!(
            "ledger check after the benchmark failed: {}",
            report.mismatches.join("; ")
        )));
    }
    let transfers = done.load(Ordering::Relaxed);
    let batches = after.batches - before.batches;
    Ok(BenchReport {
        transfers,
        seconds,
        per_second: transfers as f64 / seconds.max(1e-9),
        p50_ms: pct(500),
        p99_ms: pct(990),
        rejected: rejected.load(Ordering::Relaxed),
        batches,
        mean_batch: (after.commands - before.commands) as f64 / batches.max(1) as f64,
        engine: ctx.db.engine().name(),
    })
}

/// The comparison the ledger is measured against: what a plain program
/// does, one database transaction per payment (lock both balances in id
/// order, check and move, insert the transfer with its idempotency key,
/// commit), `opts.concurrency` payers at once over the pool's connections.
/// Its own tables (`bench_plain_*`) are made for the run and dropped after.
pub async fn run_plain(ctx: Ctx, opts: BenchOpts, progress: impl Fn(u64) + Send + Sync) -> Result<BenchReport> {
    if opts.accounts < 2 || opts.concurrency == 0 || opts.hot_share_pct > 100 {
        return Err(Error::field("opts", "ledger.bench_opts"));
    }
    let db = &ctx.db;
    for sql in [
        "DROP TABLE IF EXISTS bench_plain_transfers",
        "DROP TABLE IF EXISTS bench_plain_accounts",
        "CREATE TABLE bench_plain_accounts (id TEXT PRIMARY KEY, balance_fen BIGINT NOT NULL CHECK (balance_fen >= 0))",
        "CREATE TABLE bench_plain_transfers (id TEXT PRIMARY KEY, debit TEXT NOT NULL, credit TEXT NOT NULL,
             amount_fen BIGINT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL)",
    ] {
        sqlx::query(sql).execute(&db.pool).await?;
    }
    let hot = "hot".to_string();
    let wallets: Arc<Vec<String>> = Arc::new((0..opts.accounts).map(|i| format!("w{i:07}")).collect());
    {
        let mut tx = db.begin().await?;
        for chunk in wallets.iter().chain(std::iter::once(&hot)).collect::<Vec<_>>().chunks(500) {
            let values: Vec<String> = (1..=chunk.len()).map(|i| format!("(${i}, {FUND_FEN})")).collect();
            let sql = format!("INSERT INTO bench_plain_accounts (id, balance_fen) VALUES {}", values.join(", "));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            q.execute(tx.conn()).await?;
        }
        tx.commit().await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let rejected = Arc::new(AtomicU64::new(0));
    let hot = Arc::new(hot);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(opts.concurrency);
    for t in 0..opts.concurrency {
        let n = opts.transfers / opts.concurrency + usize::from(t < opts.transfers % opts.concurrency);
        let (ctx, wallets, hot, done, rejected) =
            (ctx.clone(), wallets.clone(), hot.clone(), done.clone(), rejected.clone());
        let seed = ctx.rng.next_u64();
        let hot_pct = opts.hot_share_pct;
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut latencies_us: Vec<u32> = Vec::with_capacity(n);
            for i in 0..n {
                let from = wallets[rng.gen_range(0..wallets.len())].as_str();
                let to = if rng.gen_range(0..100) < hot_pct {
                    hot.as_str()
                } else {
                    wallets[rng.gen_range(0..wallets.len())].as_str()
                };
                if from == to {
                    continue;
                }
                let amount: i64 = rng.gen_range(1..=1_000);
                let t0 = Instant::now();
                let made = plain_transfer(&ctx, from, to, amount, &format!("plain:{seed:x}:{i}")).await?;
                latencies_us.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                if !made {
                    rejected.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Error>(latencies_us)
        }));
    }
    let mut all = futures::future::join_all(tasks);
    let results = loop {
        tokio::select! {
            r = &mut all => break r,
            _ = tokio::time::sleep(Duration::from_millis(250)) => progress(done.load(Ordering::Relaxed)),
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u32> = Vec::new();
    for r in results {
        latencies.extend(r.map_err(Error::internal)??);
    }
    latencies.sort_unstable();
    let pct = |per_mille: usize| -> f64 {
        match latencies.len() {
            0 => 0.0,
            n => f64::from(latencies[((n - 1) * per_mille / 1000).min(n - 1)]) / 1000.0,
        }
    };
    let (sum,): (i64,) =
        sqlx::query_as("SELECT CAST(COALESCE(SUM(balance_fen), 0) AS BIGINT) FROM bench_plain_accounts")
            .fetch_one(&db.pool)
            .await?;
    let expected = FUND_FEN * i64::try_from(opts.accounts + 1).map_err(Error::internal)?;
    for sql in ["DROP TABLE bench_plain_transfers", "DROP TABLE bench_plain_accounts"] {
        sqlx::query(sql).execute(&db.pool).await?;
    }
    if sum != expected {
        return Err(Error::internal(anyhow::anyhow!("plain script: balances sum to {sum}, not {expected}")));
    }
    let transfers = done.load(Ordering::Relaxed);
    Ok(BenchReport {
        transfers,
        seconds,
        per_second: transfers as f64 / seconds.max(1e-9),
        p50_ms: pct(500),
        p99_ms: pct(990),
        rejected: rejected.load(Ordering::Relaxed),
        batches: transfers,
        mean_batch: 1.0,
        engine: ctx.db.engine().name(),
    })
}

/// One payment the plain way; false when the payer's balance is too low.
async fn plain_transfer(ctx: &Ctx, from: &str, to: &str, amount: i64, key: &str) -> Result<bool> {
    for attempt in 0..10 {
        match plain_transfer_once(ctx, from, to, amount, key).await {
            Err(e) if attempt < 9 && is_retryable_error(&e) => continue,
            r => return r,
        }
    }
    Ok(false)
}

fn is_retryable_error(e: &Error) -> bool {
    e.source.as_ref().and_then(|s| s.downcast_ref::<sqlx::Error>()).is_some_and(yizhan_core::error::is_retryable)
}

async fn plain_transfer_once(ctx: &Ctx, from: &str, to: &str, amount: i64, key: &str) -> Result<bool> {
    let mut tx = ctx.db.begin().await?;
    // Both rows in id order, so two payments never wait on each other in a circle.
    let (first, second) = if from < to { (from, to) } else { (to, from) };
    let lock = match ctx.db.engine() {
        yizhan_core::Engine::Postgres => "SELECT balance_fen FROM bench_plain_accounts WHERE id = $1 FOR UPDATE",
        yizhan_core::Engine::Sqlite => "SELECT balance_fen FROM bench_plain_accounts WHERE id = $1",
    };
    let mut balance_from = 0;
    for id in [first, second] {
        let (b,): (i64,) = sqlx::query_as(lock).bind(id).fetch_one(tx.conn()).await?;
        if id == from {
            balance_from = b;
        }
    }
    if balance_from < amount {
        return Ok(false);
    }
    sqlx::query("UPDATE bench_plain_accounts SET balance_fen = balance_fen - $1 WHERE id = $2")
        .bind(amount)
        .bind(from)
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE bench_plain_accounts SET balance_fen = balance_fen + $1 WHERE id = $2")
        .bind(amount)
        .bind(to)
        .execute(tx.conn())
        .await?;
    sqlx::query(
        "INSERT INTO bench_plain_transfers (id, debit, credit, amount_fen, idempotency_key, created_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(ctx.new_id())
    .bind(from)
    .bind(to)
    .bind(amount)
    .bind(key)
    .bind(ctx.now_ms())
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(true)
}
