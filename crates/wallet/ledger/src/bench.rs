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
