#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Crash test: a process making payments is killed with SIGKILL in the middle
//! of the load; every transfer it acknowledged must be there afterwards and
//! every invariant of the ledger must hold. Runs on SQLite, or PostgreSQL when
//! YIZHAN_TEST_DATABASE_URL is set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yizhan_core::testing::TestDb;
use yizhan_core::{Ctx, OsRandom, SystemClock, Vault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_transfer() {
    let t = TestDb::new(&[&yizhan_ledger::MIGRATIONS]).await;
    let url = t.db.url().to_string();

    for round in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_yizhan"))
            .args(["ledger", "load", "--database-url", &url, "--accounts", "40", "--concurrency", "64"])
            .env("YIZHAN_DATA_DIR", std::env::temp_dir().join(format!("yizhan-crash-{}", std::process::id())))
            .env("YIZHAN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start yizhan ledger load");
        let stdout = child.stdout.take().unwrap();
        // Read acknowledgements on a thread until enough arrived, then kill mid-load.
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let started = Instant::now();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ACK ") {
                    acked.push(id.to_string());
                }
                if acked.len() >= 3_000 || started.elapsed() > Duration::from_secs(60) {
                    break;
                }
            }
            acked
        });
        let acked = tokio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
        child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        child.wait().unwrap();
        assert!(acked.len() >= 500, "round {round}: the load acknowledged only {} transfers", acked.len());

        let ctx = Ctx {
            db: t.db.clone(),
            clock: Arc::new(SystemClock),
            rng: Arc::new(OsRandom),
            vault: Arc::new(Vault::random()),
        };
        let ledger = yizhan_ledger::Ledger::start(ctx.clone());
        for id in &acked {
            ledger.get_transfer(id).await.unwrap_or_else(|e| panic!("acknowledged transfer {id} lost: {e}"));
        }
        let report = yizhan_ledger::check(&ctx).await.unwrap();
        assert!(report.is_clean(), "after SIGKILL: {:?}", report.mismatches);
        assert_eq!(report.sum_posted_fen, 0);
        eprintln!("round {round}: {} acknowledged transfers all present after SIGKILL; check clean", acked.len());
    }
}

/// The same under HTTP: the server (`serve`) is killed with SIGKILL while
/// load clients in their own processes pay through `POST /api/v1/transfers`;
/// every payment it answered 201 must be in the ledger once, the ledger
/// check clean (what `yizhan bench api-pay --kill-after` checks).
#[test]
fn sigkill_under_http_load_loses_no_acknowledged_payment() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_yizhan"));
    cmd.args(["bench", "api-pay", "--users", "20", "--connections", "32", "--seconds", "5", "--kill-after", "3"])
        .env("YIZHAN_LOG", "warn")
        .env_remove("YIZHAN_DATABASE_URL")
        .env_remove("YIZHAN_DATA_DIR");
    if let Some(url) = yizhan_core::testing::postgres_url() {
        cmd.args(["--postgres", &url]);
    }
    let out = cmd.output().expect("run yizhan bench api-pay");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("killed with SIGKILL"), "{text}");
    assert!(text.contains(" 0 missing, 0 keys answered with two transfers"), "{text}");
    assert!(text.contains("ledger check clean"), "{text}");
    assert!(text.contains("every acknowledged payment is there"), "{text}");
}
