//! `yizhan credit recompute`, `yizhan credit model stage|compare|activate` and `yizhan bench credit`.

use crate::app;
use crate::DataOpts;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_message(what.to_string());
    b
}

/// Recompute every opted-in person's score now, with a progress bar.
pub async fn recompute(data: &DataOpts) -> anyhow::Result<()> {
    let built = app::build(data, false).await?;
    let credit = &built.state.credit;
    let total = credit.count_people().await.map_err(app::explain)?;
    let b = bar(u64::try_from(total).unwrap_or(0), "recomputing");
    let started = Instant::now();
    let n = credit.recompute_all(|k| b.inc(k)).await.map_err(app::explain)?;
    b.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "recomputed {n} credit scores with model {} ({}) in {secs:.1} s",
        credit.model().version,
        &credit.model().hash[..12]
    );
    Ok(())
}

/// Seed synthetic residents with records (or reuse them), recompute them all
/// `runs` times, print residents per second, the median and the spread.
pub async fn bench(data: &DataOpts, residents: u64, records: u64, runs: u32, keep: bool) -> anyhow::Result<()> {
    let built = app::build(data, false).await?;
    let credit = &built.state.credit;
    let engine = built.state.ctx.db.engine().name();
    println!("yizhan bench credit: {engine}, {residents} synthetic residents with {records} records each, {runs} runs");
    let (have_people, have_records) = yizhan_credit::bench::seeded(credit).await.map_err(app::explain)?;
    if have_people == residents && have_records == residents * records {
        println!("reusing the {have_people} synthetic residents already seeded");
    } else {
        yizhan_credit::bench::clear(credit).await.map_err(app::explain)?;
        let b = bar(residents, "seeding");
        let started = Instant::now();
        let rows = yizhan_credit::bench::seed(credit, residents, records, |k| b.inc(k)).await.map_err(app::explain)?;
        b.finish_and_clear();
        println!("seeded {rows} rows in {:.1} s", started.elapsed().as_secs_f64());
    }
    // PostgreSQL: fresh statistics (and visibility map) for the tables just
    // filled, as autovacuum would give them in time.
    if built.state.ctx.db.engine() == yizhan_core::Engine::Postgres {
        let started = Instant::now();
        sqlx::query("VACUUM ANALYZE credit_people").execute(&built.state.ctx.db.pool).await?;
        sqlx::query("VACUUM ANALYZE credit_scores").execute(&built.state.ctx.db.pool).await?;
        println!("VACUUM ANALYZE in {:.1} s", started.elapsed().as_secs_f64());
    }
    let mut secs = Vec::new();
    for run in 1..=runs {
        yizhan_credit::bench::clear_scores(credit).await.map_err(app::explain)?;
        let b = bar(residents, "recomputing");
        let started = Instant::now();
        let n = credit.recompute_all(|k| b.inc(k)).await.map_err(app::explain)?;
        b.finish_and_clear();
        let s = started.elapsed().as_secs_f64();
        println!("run {run}: recomputed {n} residents in {s:.2} s: {:.0} residents/s", n as f64 / s.max(1e-9));
        secs.push(s);
    }
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let (lo, hi) = (secs[0], secs[secs.len() - 1]);
    println!(
        "median {median:.2} s ({:.0} residents/s), spread {lo:.2}..{hi:.2} s over {runs} runs",
        residents as f64 / median.max(1e-9)
    );
    if keep {
        println!("the synthetic residents are kept (--keep)");
    } else {
        yizhan_credit::bench::clear(credit).await.map_err(app::explain)?;
    }
    Ok(())
}

/// `yizhan credit model stage <file>`.
pub async fn stage(data: &DataOpts, file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)?;
    let built = app::build(data, false).await?;
    let m = built.state.credit.stage_model(&text).await.map_err(app::explain)?;
    let active = built.state.credit.model();
    println!(
        "staged credit model {} ({}); model {} ({}) keeps scoring until `yizhan credit model activate {}`",
        m.version, m.hash, active.version, active.hash, m.hash
    );
    Ok(())
}

/// `yizhan credit model compare`: both scores for a sample, the shift per band.
pub async fn compare(data: &DataOpts, sample: u64) -> anyhow::Result<()> {
    let built = app::build(data, false).await?;
    let credit = &built.state.credit;
    let total = u64::try_from(credit.count_people().await.map_err(app::explain)?).unwrap_or(0);
    let b = bar(total.min(sample), "comparing");
    let c = credit.compare_models(sample, |k| b.inc(k)).await.map_err(app::explain)?;
    b.finish_and_clear();
    println!(
        "{} people: active {} ({}) against staged {} ({})",
        c.people,
        c.from_version,
        &c.from_hash[..12],
        c.to_version,
        &c.to_hash[..12]
    );
    println!("{:<10} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8}", "band", "people", "mean", "min", "max", "up", "down");
    for s in &c.bands {
        println!(
            "{:<10} {:>8} {:>+10.1} {:>+8} {:>+8} {:>8} {:>8}",
            s.band,
            s.people,
            s.mean_shift(),
            s.min_shift,
            s.max_shift,
            s.up_a_band,
            s.down_a_band
        );
    }
    Ok(())
}

/// `yizhan credit model activate <hash>`.
pub async fn activate(data: &DataOpts, hash: &str) -> anyhow::Result<()> {
    let built = app::build(data, false).await?;
    let m = built.state.credit.activate_model(hash).await.map_err(app::explain)?;
    println!(
        "credit model {} ({}) now scores; run `yizhan credit recompute` to store everyone's new score \
         (each is also brought up to date when read); stored scores keep their model",
        m.version, m.hash
    );
    Ok(())
}
