//! `yizhan ledger check`, `yizhan bench ledger`, and the load generator the
//! crash test kills.

use crate::app::open_db;
use crate::DataOpts;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::sync::Arc;
use yizhan_core::{Ctx, Db, OsRandom, SystemClock, Vault};
use yizhan_ledger::bench::{BenchOpts, BenchReport};
use yizhan_ledger::{Ledger, TransferSpec};

fn ctx_for(db: Db) -> Ctx {
    Ctx { db, clock: Arc::new(SystemClock), rng: Arc::new(OsRandom), vault: Arc::new(Vault::random()) }
}

fn err(e: yizhan_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Recompute every balance from the transfers; exit non-zero on any mismatch.
pub async fn check(data: &DataOpts) -> anyhow::Result<bool> {
    let db = open_db(data).await?;
    let report = yizhan_ledger::check(&ctx_for(db)).await.map_err(err)?;
    println!(
        "accounts: {}\ntransfers: {}\nopen holds: {}\nsum of posted balances: {} fen",
        report.accounts, report.transfers, report.open_pending, report.sum_posted_fen
    );
    if report.is_clean() {
        println!("ledger check: OK (every balance equals the sum of its transfers; the sum of all balances is zero)");
        Ok(true)
    } else {
        for m in &report.mismatches {
            println!("MISMATCH: {m}");
        }
        println!("ledger check: FAILED ({} mismatches)", report.mismatches.len());
        Ok(false)
    }
}

pub struct BenchArgs {
    pub accounts: usize,
    pub transfers: usize,
    pub concurrency: usize,
    pub hot_share_pct: u32,
    pub runs: usize,
    pub idempotency_keys: bool,
    /// Also measure, in each run, the ledger without and with keys and a
    /// plain one-transaction-per-payment program, side by side.
    pub compare_plain: bool,
}

/// Payments of the plain program per run: it is slow, and its rate settles
/// long before this.
const PLAIN_TRANSFERS_MAX: usize = 20_000;

/// Run the ledger benchmark `runs` times; print each run, then the median and spread.
pub async fn bench(data: &DataOpts, explicit_data_dir: bool, a: BenchArgs) -> anyhow::Result<()> {
    // Without a database given, measure a fresh SQLite file, not the app's data.
    let scratch = tempdir_if(!explicit_data_dir && data.database_url.is_none())?;
    let data = match &scratch {
        Some(dir) => DataOpts { data_dir: dir.path().to_path_buf(), database_url: None },
        None => data.clone(),
    };
    let db = open_db(&data).await?;
    let engine = db.engine().name();
    println!(
        "yizhan bench ledger: {engine}, {} wallets, {} payments per run, {} concurrent payers, {}% into one hot merchant account, {} runs",
        a.accounts, a.transfers, a.concurrency, a.hot_share_pct, a.runs
    );
    if a.compare_plain {
        let r = compare(&db, &a).await;
        db.close().await;
        return r;
    }
    let mut reports: Vec<BenchReport> = Vec::new();
    for run in 1..=a.runs {
        let bar = ProgressBar::new(a.transfers as u64);
        bar.set_style(
            ProgressStyle::with_template("run {msg} {bar:30} {pos}/{len} ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("{run}/{}", a.runs));
        let opts = BenchOpts {
            accounts: a.accounts,
            transfers: a.transfers,
            concurrency: a.concurrency,
            hot_share_pct: a.hot_share_pct,
            idempotency_keys: a.idempotency_keys,
            ..Default::default()
        };
        let b = bar.clone();
        let r = yizhan_ledger::bench::run(ctx_for(db.clone()), opts, move |n| b.set_position(n)).await.map_err(err)?;
        bar.finish_and_clear();
        println!(
            "run {run}: {:>9.0} transfers/s  p50 {:>7.1} ms  p99 {:>7.1} ms  ({} payments in {:.2} s, {} refused, {} batches of {:.0})",
            r.per_second, r.p50_ms, r.p99_ms, r.transfers, r.seconds, r.rejected, r.batches, r.mean_batch
        );
        reports.push(r);
    }
    let mut tps: Vec<f64> = reports.iter().map(|r| r.per_second).collect();
    tps.sort_by(f64::total_cmp);
    let mut p99: Vec<f64> = reports.iter().map(|r| r.p99_ms).collect();
    p99.sort_by(f64::total_cmp);
    let mut p50: Vec<f64> = reports.iter().map(|r| r.p50_ms).collect();
    p50.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];
    println!(
        "median: {:.0} transfers/s (min {:.0}, max {:.0}); p50 {:.1} ms; p99 {:.1} ms (min {:.1}, max {:.1}); ledger check clean after every run",
        median(&tps),
        tps[0],
        tps[tps.len() - 1],
        median(&p50),
        median(&p99),
        p99[0],
        p99[p99.len() - 1]
    );
    db.close().await;
    Ok(())
}

/// One measurement with a progress bar.
async fn measure(db: &Db, a: &BenchArgs, what: &str, keys: bool, plain: bool) -> anyhow::Result<BenchReport> {
    let transfers = if plain { a.transfers.min(PLAIN_TRANSFERS_MAX) } else { a.transfers };
    let bar = ProgressBar::new(transfers as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    let opts = BenchOpts {
        accounts: a.accounts,
        transfers,
        concurrency: if plain { a.concurrency.min(64) } else { a.concurrency },
        hot_share_pct: a.hot_share_pct,
        idempotency_keys: keys,
        ..Default::default()
    };
    let b = bar.clone();
    let r = if plain {
        yizhan_ledger::bench::run_plain(ctx_for(db.clone()), opts, move |n| b.set_position(n)).await
    } else {
        yizhan_ledger::bench::run(ctx_for(db.clone()), opts, move |n| b.set_position(n)).await
    }
    .map_err(err)?;
    bar.finish_and_clear();
    Ok(r)
}

/// `--compare-plain`: per run the ledger without keys, with a key on every
/// payment, and the plain program; then the medians and the ratios.
async fn compare(db: &Db, a: &BenchArgs) -> anyhow::Result<()> {
    let mut rows: [Vec<BenchReport>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let names = ["ledger, no keys", "ledger, a key on every payment", "plain program (1 transaction per payment)"];
    for run in 1..=a.runs {
        for (i, (keys, plain)) in [(false, false), (true, false), (true, true)].into_iter().enumerate() {
            let r = measure(db, a, &format!("run {run}/{}: {}", a.runs, names[i]), keys, plain).await?;
            println!(
                "run {run}: {:<42} {:>9.0} transfers/s  p50 {:>7.1} ms  p99 {:>7.1} ms  ({} payments in {:.2} s)",
                names[i], r.per_second, r.p50_ms, r.p99_ms, r.transfers, r.seconds
            );
            rows[i].push(r);
        }
    }
    let med = |v: &[BenchReport]| -> (f64, f64, f64) {
        let mut t: Vec<f64> = v.iter().map(|r| r.per_second).collect();
        t.sort_by(f64::total_cmp);
        (t[t.len() / 2], t[0], t[t.len() - 1])
    };
    let (unkeyed, keyed, plain) = (med(&rows[0]), med(&rows[1]), med(&rows[2]));
    println!("\nmedian of {} runs (min–max), {}:", a.runs, db.engine().name());
    for (name, (m, lo, hi)) in names.iter().zip([unkeyed, keyed, plain]) {
        println!("  {name:<42} {m:>9.0} transfers/s  ({lo:.0}–{hi:.0})");
    }
    println!(
        "  keyed ledger / unkeyed ledger: {:.0}%   keyed ledger / plain program: {:.1}x",
        100.0 * keyed.0 / unkeyed.0.max(1e-9),
        keyed.0 / plain.0.max(1e-9)
    );
    Ok(())
}

fn tempdir_if(yes: bool) -> anyhow::Result<Option<TempDir>> {
    if !yes {
        return Ok(None);
    }
    let mut b = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    let path = std::env::temp_dir().join(format!("yizhan-bench-{:016x}", u64::from_le_bytes(b)));
    std::fs::create_dir_all(&path)?;
    Ok(Some(TempDir(path)))
}

/// A scratch directory removed when dropped.
pub struct TempDir(std::path::PathBuf);

/// A fresh scratch directory under the system's temporary directory.
pub fn scratch_dir() -> anyhow::Result<TempDir> {
    tempdir_if(true)?.ok_or_else(|| anyhow::anyhow!("no scratch directory"))
}

impl TempDir {
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Payments between a few wallets until killed: prints `ACK <transfer id>`
/// for each payment only after the ledger acknowledged it (it is durable).
/// The crash test kills this process with SIGKILL and then checks that every
/// acknowledged transfer is there.
pub async fn load(data: &DataOpts, accounts: usize, concurrency: usize) -> anyhow::Result<()> {
    let db = open_db(data).await?;
    let ctx = ctx_for(db);
    let ledger = Ledger::start(ctx.clone());
    let run = yizhan_core::Random::hex(&*ctx.rng, 4);
    let gateway = format!("load:{run}:gateway");
    let wallets: Arc<Vec<String>> = Arc::new((0..accounts.max(2)).map(|i| format!("load:{run}:w{i}")).collect());
    let mut open: Vec<(&str, &str, bool)> = vec![(&gateway, "gateway", true)];
    open.extend(wallets.iter().map(|w| (w.as_str(), "wallet", false)));
    ledger.open_accounts(&open).await.map_err(err)?;
    for w in wallets.iter() {
        ledger.transfer(TransferSpec::new(gateway.as_str(), w.as_str(), 1_000_000, "topup")).await.map_err(err)?;
    }
    println!("READY");
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (ledger, wallets, out) = (ledger.clone(), wallets.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            let mut i: usize = t;
            loop {
                let from = i % wallets.len();
                let to = (i / wallets.len() + from + 1) % wallets.len();
                let to = if to == from { (to + 1) % wallets.len() } else { to };
                let amount = i64::try_from(1 + i % 97).unwrap_or(1);
                let spec = TransferSpec::new(wallets[from].as_str(), wallets[to].as_str(), amount, "p2p");
                if let Ok(tr) = ledger.transfer(spec).await {
                    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = writeln!(o, "ACK {}", tr.id);
                    let _ = o.flush();
                }
                i += concurrency;
            }
        }));
    }
    futures::future::join_all(tasks).await;
    Ok(())
}
