#![allow(clippy::unwrap_used)]
//! The benchmark, not a test: run it in release mode
//!   cargo test -p yizhan-ledger --release --test bench -- --ignored --nocapture
//! (with YIZHAN_TEST_DATABASE_URL for PostgreSQL). Sizes from BENCH_TRANSFERS,
//! BENCH_ACCOUNTS, BENCH_CONCURRENCY, BENCH_HOT_PCT, BENCH_KEYS=1, BENCH_BATCH, BENCH_RUNS.

use yizhan_core::testing::TestDb;
use yizhan_ledger::bench::{run, BenchOpts};
use yizhan_ledger::MIGRATIONS;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench() {
    // RUST_LOG=yizhan_ledger=debug shows each batch's timings.
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    let mut opts = BenchOpts {
        accounts: env_num("BENCH_ACCOUNTS", 10_000),
        transfers: env_num("BENCH_TRANSFERS", 200_000),
        concurrency: env_num("BENCH_CONCURRENCY", 16_384),
        hot_share_pct: u32::try_from(env_num("BENCH_HOT_PCT", 20)).unwrap(),
        idempotency_keys: env_num("BENCH_KEYS", 0) == 1,
        ..BenchOpts::default()
    };
    opts.config.max_batch = env_num("BENCH_BATCH", opts.config.max_batch);
    for i in 0..env_num("BENCH_RUNS", 1) {
        let t = TestDb::new(&[&MIGRATIONS]).await;
        let (mut ctx, _) = t.ctx();
        // Real time for created_at_ms; the latencies are measured with Instant anyway.
        ctx.clock = std::sync::Arc::new(yizhan_core::SystemClock);
        ctx.rng = std::sync::Arc::new(yizhan_core::OsRandom);
        let r = run(ctx, opts.clone(), |_| {}).await.unwrap();
        println!(
            "run {i}: {} {:>9.0}/s  {} transfers in {:.2}s  p50 {:.1} ms  p99 {:.1} ms  rejected {}  batches {} (mean {:.0})  {:?}",
            r.engine, r.per_second, r.transfers, r.seconds, r.p50_ms, r.p99_ms, r.rejected, r.batches, r.mean_batch, opts
        );
    }
}
