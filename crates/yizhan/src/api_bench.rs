//! `yizhan bench api-pay`: what a person paying through the product gets.
//! A real server (this binary, `serve`, in its own process) on a fresh
//! database; funded people who log in over HTTP; then load clients in
//! separate processes (each under the per-process open-file cap) that drive
//! `POST /api/v1/transfers` with a bearer token and a unique Idempotency-Key
//! per payment over keep-alive HTTP/1.1 connections for a fixed time. Each run
//! prints paid requests/s, p50/p99/p999 and every non-2xx by status; at the
//! end every acknowledged payment is looked up in the ledger (there, once),
//! the ledger's transfer count is compared with what was acknowledged, and
//! `ledger check` must be clean. The server's resident memory is printed.

// Statistics (rates, percentiles) are floating point over counts and microseconds.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use crate::app::{build, explain};
use crate::DataOpts;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// The options of one benchmark.
#[derive(Debug, Clone)]
pub struct ApiPayArgs {
    pub users: usize,
    pub seconds: u64,
    pub clients: usize,
    pub connections: usize,
    pub runs: usize,
    pub hot_share_pct: u32,
    pub retry_share_pct: u32,
    /// A PostgreSQL server URL: the benchmark makes (and drops) its own database there.
    pub postgres: Option<String>,
    /// The crash test: kill the server with SIGKILL this many seconds into
    /// the (one) run, under the load, then check that every payment it
    /// acknowledged is in the ledger once.
    pub kill_after: Option<u64>,
}

/// What a load client is told (written as JSON for its process).
#[derive(Serialize, Deserialize)]
struct Plan {
    addr: String,
    /// (login, bearer token) of every funded person; the first is the hot payee.
    people: Vec<(String, String)>,
    seconds: u64,
    connections: usize,
    hot_share_pct: u32,
    retry_share_pct: u32,
    /// Distinguishes the keys of one client and run from every other.
    tag: String,
}

/// What a load client reports.
#[derive(Serialize, Deserialize, Default)]
struct ClientReport {
    paid: u64,
    retries: u64,
    retries_same_answer: u64,
    retries_other_answer: u64,
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
    elapsed_s: f64,
    histogram: Vec<u64>,
}

/// Latencies in buckets 1% apart: bucket ⌊100·ln(µs)⌋, up to about a minute.
pub(crate) const BUCKETS: usize = 1800;

pub(crate) fn bucket_of(us: u64) -> usize {
    ((us.max(1) as f64).ln() * 100.0) as usize
}

pub(crate) fn us_of(bucket: usize) -> f64 {
    (bucket as f64 / 100.0).exp()
}

pub(crate) fn percentile_ms(hist: &[u64], q: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let want = ((total as f64) * q).ceil() as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= want {
            return us_of(i + 1) / 1000.0;
        }
    }
    us_of(hist.len()) / 1000.0
}

/// One run's figures.
struct RunFigures {
    per_second: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

pub async fn run(args: ApiPayArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let dir = crate::ledger_cmd::scratch_dir()?;
    let (database_url, pg_name) = scratch_database(args.postgres.as_deref()).await?;
    let result = run_in(&args, &exe, dir.path(), database_url.clone()).await;
    drop_scratch_database(pg_name).await;
    result
}

/// A benchmark's own database: on PostgreSQL a fresh one made on the server
/// given (its URL, and what [`drop_scratch_database`] needs); none for SQLite
/// (the data directory's file).
pub(crate) async fn scratch_database(
    postgres: Option<&str>,
) -> anyhow::Result<(Option<String>, Option<(String, String)>)> {
    Ok(match postgres {
        Some(url) => {
            let name = format!("yizhan_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
            let admin = yizhan_core::Db::connect(url).await.map_err(explain)?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin.pool).await?;
            admin.close().await;
            (Some(yizhan_core::testing::replace_db_name(url, &name)), Some((url.to_string(), name)))
        }
        None => (None, None),
    })
}

pub(crate) async fn drop_scratch_database(pg_name: Option<(String, String)>) {
    if let Some((url, name)) = pg_name {
        if let Ok(admin) = yizhan_core::Db::connect(&url).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin.pool).await;
            admin.close().await;
        }
    }
}

/// The server, as `serve` runs it, in a process of its own.
pub(crate) struct Server {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub addr: String,
}

pub(crate) async fn spawn_server(exe: &Path, dir: &Path, database_url: Option<&str>) -> anyhow::Result<Server> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .env("YIZHAN_DATA_DIR", dir)
        // YIZHAN_BENCH_SERVER_LOG: the server's log filter (e.g.
        // `warn,sqlx::query=debug` to see every statement a request makes).
        .env("YIZHAN_LOG", std::env::var("YIZHAN_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .env_remove("YIZHAN_ENV")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    match database_url {
        Some(u) => cmd.env("YIZHAN_DATABASE_URL", u),
        None => cmd.env_remove("YIZHAN_DATABASE_URL"),
    };
    let mut child = cmd.spawn().context("starting the server")?;
    let pid = child.id().unwrap_or(0);
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("the server did not start within a minute")??
            .context("the server ended before it listened")?;
        if let Some(rest) = line.strip_prefix("yizhan listening on http://") {
            break rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server { child, pid, addr })
}

impl Server {
    /// Stops the server as an operator would (SIGTERM), waiting up to 30 s.
    pub async fn stop(mut self) {
        #[cfg(unix)]
        if self.pid != 0 {
            let _ = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

/// Every person logs in over HTTP, as an app would, on `parallel`
/// connections: (login, bearer token) in the order given.
pub(crate) async fn log_in_all(
    addr: &str,
    people: &[(String, String)],
    parallel: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let chunk = people.len().div_ceil(parallel.max(1)).max(1);
    let mut tasks = Vec::new();
    for part in people.chunks(chunk) {
        let part = part.to_vec();
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            let mut out = Vec::with_capacity(part.len());
            for (login, password) in &part {
                let body = serde_json::json!({ "login": login, "password": password }).to_string();
                let (status, answer) = conn.send("POST", "/api/v1/auth/login", None, None, body).await?;
                anyhow::ensure!(
                    status == 200,
                    "log-in of {login} answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
                let v: serde_json::Value = serde_json::from_slice(&answer)?;
                out.push((login.clone(), v["token"].as_str().unwrap_or_default().to_string()));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::with_capacity(people.len());
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

async fn run_in(args: &ApiPayArgs, exe: &Path, dir: &Path, database_url: Option<String>) -> anyhow::Result<()> {
    let data = DataOpts { data_dir: dir.to_path_buf(), database_url: database_url.clone() };
    let engine = if database_url.is_some() { "postgres" } else { "sqlite" };
    println!(
        "yizhan bench api-pay: {engine}, {} people, {} load processes x {} connections, {} s per run, {} runs, \
         {}% into one hot payee, {}% of requests retried with the same key",
        args.users,
        args.clients,
        args.connections / args.clients.max(1),
        args.seconds,
        args.runs,
        args.hot_share_pct,
        args.retry_share_pct
    );
    let people = seed(&data, args.users).await?;

    let server = spawn_server(exe, dir, database_url.as_deref()).await?;
    let (pid, addr) = (server.pid, server.addr.clone());
    let logged_in = log_in_all(&addr, &people, 1).await?;

    let mut figures = Vec::new();
    let mut acked: HashMap<String, String> = HashMap::new();
    let mut conflicts = 0u64;
    for run in 1..=args.runs {
        let per_client = (args.connections / args.clients.max(1)).max(1);
        let mut children = Vec::new();
        for c in 0..args.clients.max(1) {
            let plan = Plan {
                addr: addr.clone(),
                people: logged_in.clone(),
                seconds: args.seconds,
                connections: per_client,
                hot_share_pct: args.hot_share_pct,
                retry_share_pct: args.retry_share_pct,
                tag: format!("r{run}c{c}"),
            };
            let plan_path = dir.join(format!("plan-{run}-{c}.json"));
            std::fs::write(&plan_path, serde_json::to_vec(&plan)?)?;
            let out = dir.join(format!("report-{run}-{c}.json"));
            let acks = dir.join(format!("acks-{run}-{c}.tsv"));
            let child = tokio::process::Command::new(exe)
                .args(["bench", "api-pay-client", "--plan"])
                .arg(&plan_path)
                .arg("--out")
                .arg(&out)
                .arg("--acks")
                .arg(&acks)
                // YIZHAN_BENCH_SERVER_LOG: the server's log filter (e.g.
                // `warn,sqlx::query=debug` to see every statement a request makes).
                .env("YIZHAN_LOG", std::env::var("YIZHAN_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
                .kill_on_drop(true)
                .spawn()
                .context("starting a load client")?;
            children.push((child, out, acks));
        }
        let bar = ProgressBar::new(args.seconds);
        bar.set_style(
            ProgressStyle::with_template("run {msg} {bar:30} {pos}/{len} s")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(format!("{run}/{}", args.runs));
        for second in 1..=args.seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bar.inc(1);
            if args.kill_after == Some(second) {
                #[cfg(unix)]
                let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                println!("the server was killed with SIGKILL {second} s into the load");
            }
        }
        let mut total = ClientReport { histogram: vec![0; BUCKETS], ..Default::default() };
        for (mut child, out, acks) in children {
            let status = child.wait().await?;
            anyhow::ensure!(status.success(), "a load client failed ({status})");
            let r: ClientReport = serde_json::from_slice(&std::fs::read(&out)?)?;
            total.paid += r.paid;
            total.retries += r.retries;
            total.retries_same_answer += r.retries_same_answer;
            total.retries_other_answer += r.retries_other_answer;
            total.transport_errors += r.transport_errors;
            total.elapsed_s = total.elapsed_s.max(r.elapsed_s);
            for (s, n) in r.by_status {
                *total.by_status.entry(s).or_default() += n;
            }
            for (i, n) in r.histogram.iter().enumerate().take(BUCKETS) {
                total.histogram[i] += n;
            }
            for line in std::io::BufReader::new(std::fs::File::open(&acks)?).lines() {
                let line = line?;
                let Some((key, id)) = line.split_once('\t') else { continue };
                if let Some(before) = acked.insert(key.to_string(), id.to_string()) {
                    if before != id {
                        conflicts += 1;
                    }
                }
            }
        }
        bar.finish_and_clear();
        let f = RunFigures {
            per_second: total.paid as f64 / total.elapsed_s.max(0.001),
            p50: percentile_ms(&total.histogram, 0.50),
            p99: percentile_ms(&total.histogram, 0.99),
            p999: percentile_ms(&total.histogram, 0.999),
        };
        let not_2xx: Vec<String> = total
            .by_status
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        println!(
            "run {run}: {:>8.0} paid requests/s  p50 {:>6.1} ms  p99 {:>6.1} ms  p999 {:>6.1} ms  ({} paid in {:.1} s; \
             retries {} answered alike {}, otherwise {}; non-2xx: {}; transport errors: {}; server resident {} MiB)",
            f.per_second,
            f.p50,
            f.p99,
            f.p999,
            total.paid,
            total.elapsed_s,
            total.retries,
            total.retries_same_answer,
            total.retries_other_answer,
            if not_2xx.is_empty() { "none".to_string() } else { not_2xx.join(", ") },
            total.transport_errors,
            resident_mib(pid).map(|m| m.to_string()).unwrap_or_else(|| "?".into())
        );
        figures.push(f);
    }

    // Stop the server as an operator would (unless it was killed), then check
    // the books, opening the database as a restarted server would.
    let killed = args.kill_after.is_some_and(|k| k <= args.seconds);
    if killed {
        let mut server = server;
        let _ = tokio::time::timeout(Duration::from_secs(30), server.child.wait()).await;
    } else {
        server.stop().await;
    }
    let built = build(&data, false).await?;
    let ledger = built.state.ledger.clone();
    let ids: HashSet<&String> = acked.values().collect();
    let bar = ProgressBar::new(ids.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("checking {bar:30} {pos}/{len} acknowledged payments")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut missing = 0u64;
    let ids_list: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    for chunk in ids_list.chunks(64) {
        let found = futures::future::join_all(chunk.iter().map(|id| ledger.get_transfer(id))).await;
        missing += found.iter().filter(|r| r.is_err()).count() as u64;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let report = ledger.check().await.map_err(explain)?;
    // The seeding's top-ups, then one transfer per acknowledged payment: a
    // payment recorded twice, or one recorded and not acknowledged, shows here.
    let expected = people.len() as u64 + ids.len() as u64;
    println!(
        "ledger: {} acknowledged payments, {} missing, {} keys answered with two transfers; {} transfers in the \
         ledger for {} expected; ledger check {}",
        ids.len(),
        missing,
        conflicts,
        report.transfers,
        expected,
        if report.is_clean() { "clean" } else { "FAILED" }
    );
    built.state.ctx.db.close().await;
    let mut tps: Vec<f64> = figures.iter().map(|f| f.per_second).collect();
    tps.sort_by(f64::total_cmp);
    let mut p99: Vec<f64> = figures.iter().map(|f| f.p99).collect();
    p99.sort_by(f64::total_cmp);
    let mut p50: Vec<f64> = figures.iter().map(|f| f.p50).collect();
    p50.sort_by(f64::total_cmp);
    let mut p999: Vec<f64> = figures.iter().map(|f| f.p999).collect();
    p999.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];
    println!(
        "median: {:.0} paid requests/s (min {:.0}, max {:.0}); p50 {:.1} ms; p99 {:.1} ms (min {:.1}, max {:.1}); p999 {:.1} ms",
        median(&tps),
        tps[0],
        tps[tps.len() - 1],
        median(&p50),
        median(&p99),
        p99[0],
        p99[p99.len() - 1],
        median(&p999)
    );
    // Killed, a payment may have committed without its answer reaching the
    // client: more transfers than acknowledged, never fewer.
    let counted = if killed { report.transfers as u64 >= expected } else { report.transfers as u64 == expected };
    if killed {
        println!(
            "after SIGKILL: every acknowledged payment {}",
            if missing == 0 { "is there" } else { "is NOT there" }
        );
    }
    let clean = missing == 0 && conflicts == 0 && report.is_clean() && counted;
    anyhow::ensure!(clean, "the books do not match what was acknowledged");
    Ok(())
}

/// Register and fund the people (in this process, before the server starts).
async fn seed(data: &DataOpts, users: usize) -> anyhow::Result<Vec<(String, String)>> {
    let built = build(data, false).await?;
    let people = seed_people(&built, users, true).await?;
    built.state.ctx.db.close().await;
    Ok(people)
}

/// Registers `users` people (funded with 100 yuan each when `fund`), as many
/// at once as there are hashing slots: their (login, password).
pub(crate) async fn seed_people(
    built: &crate::app::Built,
    users: usize,
    fund: bool,
) -> anyhow::Result<Vec<(String, String)>> {
    let s = &built.state;
    let bar = ProgressBar::new(users as u64);
    bar.set_style(
        ProgressStyle::with_template("funding {bar:30} {pos}/{len} people")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut people = Vec::with_capacity(users);
    let mut pending = Vec::new();
    for i in 0..users.max(2) {
        let login = format!("bench{i:05}@bench.example");
        let password = format!("bench password {i:05}");
        let (identity, pay) = (s.identity.clone(), s.pay.clone());
        let (l, p) = (login.clone(), password.clone());
        pending.push(tokio::spawn(async move {
            // As many at once as there are hashing slots; a busy answer waits and tries again.
            let id = loop {
                match identity.register(&l, &p, &format!("Bench {i}")).await {
                    Err(e) if e.code == yizhan_core::Code::Busy => tokio::time::sleep(Duration::from_millis(50)).await,
                    other => break other?,
                }
            };
            if fund {
                pay.topup(&id, 10_000, None, &format!("bench-seed-{i}")).await?;
            }
            Ok::<_, yizhan_core::Error>(())
        }));
        people.push((login, password));
        if pending.len() >= s.identity.free_hashing_slots().max(1) {
            for t in pending.drain(..) {
                t.await?.map_err(explain)?;
                bar.inc(1);
            }
        }
    }
    for t in pending {
        t.await?.map_err(explain)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(people)
}

/// Signs the seeded people in through the identity room's own `login`
/// (their hashes are cheap, see `build_for_bench_seeding`), `parallel` at a
/// time, before the server starts: their (login, bearer token). The tokens
/// are real sessions, checked by the server as any other; only the set-up
/// skips the HTTP round trips (and the limiter's single address row, which
/// serialises thousands of sign-ins from one address on PostgreSQL): each
/// person signs in from an address of their own.
pub(crate) async fn sign_in_at_seeding(
    built: &crate::app::Built,
    people: &[(String, String)],
    parallel: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let chunk = people.len().div_ceil(parallel.max(1)).max(1);
    let mut tasks = Vec::new();
    for (c, part) in people.chunks(chunk).enumerate() {
        let part = part.to_vec();
        let identity = built.state.identity.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(part.len());
            for (i, (login, password)) in part.iter().enumerate() {
                let addr = format!("bench-seed-{c}-{i}");
                let session = identity.login(login, password, &addr).await.map_err(explain)?;
                out.push((login.clone(), session.token));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::with_capacity(people.len());
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

pub(crate) fn resident_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    pub(crate) async fn open(addr: &str) -> anyhow::Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, host: addr.to_string() })
    }

    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        idempotency_key: Option<&str>,
        body: String,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// A load client's process: `connections` connections, each paying in a
/// loop until the time is up; acknowledged payments go to `acks` as
/// "key<TAB>transfer id" lines, the figures to `out`.
pub async fn client(plan: &Path, out: &Path, acks: &Path) -> anyhow::Result<()> {
    let plan: Plan = serde_json::from_slice(&std::fs::read(plan)?)?;
    let plan = std::sync::Arc::new(plan);
    let deadline = Instant::now() + Duration::from_secs(plan.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..plan.connections {
        let plan = plan.clone();
        tasks.push(tokio::spawn(async move { connection(&plan, c, deadline).await }));
    }
    let mut report = ClientReport { histogram: vec![0; BUCKETS], ..Default::default() };
    let mut w = std::io::BufWriter::new(std::fs::File::create(acks)?);
    for t in tasks {
        let (r, acked) = t.await??;
        report.paid += r.paid;
        report.retries += r.retries;
        report.retries_same_answer += r.retries_same_answer;
        report.retries_other_answer += r.retries_other_answer;
        report.transport_errors += r.transport_errors;
        for (s, n) in r.by_status {
            *report.by_status.entry(s).or_default() += n;
        }
        for (i, n) in r.histogram.iter().enumerate() {
            report.histogram[i] += n;
        }
        for (k, id) in acked {
            writeln!(w, "{k}\t{id}")?;
        }
    }
    w.flush()?;
    report.elapsed_s = started.elapsed().as_secs_f64();
    std::fs::write(out, serde_json::to_vec(&report)?)?;
    Ok(())
}

type Acked = Vec<(String, String)>;

async fn connection(plan: &Plan, c: usize, deadline: Instant) -> anyhow::Result<(ClientReport, Acked)> {
    let mut r = ClientReport { histogram: vec![0; BUCKETS], ..Default::default() };
    let mut acked = Vec::new();
    let mut conn = Conn::open(&plan.addr).await?;
    let n = plan.people.len();
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut last: Option<(usize, String, String, String)> = None;
    let mut seq = 0u64;
    use rand::{Rng, SeedableRng};
    while Instant::now() < deadline {
        let retry = plan.retry_share_pct > 0 && last.is_some() && rng.gen_range(0..100) < plan.retry_share_pct;
        let (payer, key, body) = if retry {
            let (p, k, b, _) = last.clone().unwrap_or_default();
            (p, k, b)
        } else {
            let payer = rng.gen_range(0..n);
            let payee = if rng.gen_range(0..100) < plan.hot_share_pct && payer != 0 {
                0
            } else {
                let mut p = rng.gen_range(0..n - 1);
                if p >= payer {
                    p += 1;
                }
                p
            };
            seq += 1;
            let key = format!("{}-{c}-{seq}", plan.tag);
            let body = serde_json::json!({ "to": plan.people[payee].0, "amount": 1 }).to_string();
            (payer, key, body)
        };
        let t0 = Instant::now();
        let answer =
            conn.send("POST", "/api/v1/transfers", Some(&plan.people[payer].1), Some(&key), body.clone()).await;
        let us = t0.elapsed().as_micros() as u64;
        match answer {
            Ok((status, bytes)) => {
                *r.by_status.entry(status).or_default() += 1;
                r.histogram[bucket_of(us).min(BUCKETS - 1)] += 1;
                if (200..300).contains(&status) {
                    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                    let id = v["transfer_id"].as_str().unwrap_or_default().to_string();
                    if retry {
                        r.retries += 1;
                        match &last {
                            Some((_, _, _, first)) if *first == id => r.retries_same_answer += 1,
                            _ => r.retries_other_answer += 1,
                        }
                    } else {
                        r.paid += 1;
                        acked.push((key.clone(), id.clone()));
                        last = Some((payer, key, body, id));
                    }
                }
            }
            Err(_) => {
                r.transport_errors += 1;
                // The server may be gone (the crash test): try again until the deadline.
                conn = loop {
                    match Conn::open(&plan.addr).await {
                        Ok(c) => break c,
                        Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                        Err(_) => return Ok((r, acked)),
                    }
                };
            }
        }
    }
    Ok((r, acked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_buckets_within_a_percent() {
        let mut h = vec![0; BUCKETS];
        for us in 1..=1000u64 {
            h[bucket_of(us * 100)] += 1;
        }
        let p50 = percentile_ms(&h, 0.5);
        let p99 = percentile_ms(&h, 0.99);
        assert!((p50 - 50.0).abs() / 50.0 < 0.03, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.03, "{p99}");
    }
}
