#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;
use yizhan_core::testing::TestDb;
use yizhan_core::{Code, ManualClock};
use yizhan_ledger::{Ledger, TransferSpec, MIGRATIONS};

pub const GW: &str = "gateway:sandbox";

pub struct Env {
    pub ledger: Ledger,
    pub clock: Arc<ManualClock>,
    pub t: TestDb,
}

/// A fresh database with a ledger and a funding gateway that may go negative.
///
/// Tests using it run on a multi-thread runtime: on PostgreSQL, `TestDb`'s
/// drop blocks its thread until the pool closes, and sqlx returns released
/// connections to the pool on a spawned task, which a single-thread runtime
/// could then never run.
pub async fn env() -> Env {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    let ledger = Ledger::start(ctx);
    ledger.open_account(GW, "gateway", true).await.unwrap();
    Env { ledger, clock, t }
}

impl Env {
    pub async fn wallet(&self, id: &str, fund_fen: i64) {
        self.ledger.open_account(id, "wallet", false).await.unwrap();
        if fund_fen > 0 {
            self.ledger.transfer(TransferSpec::new(GW, id, fund_fen, "topup")).await.unwrap();
        }
    }

    pub async fn posted(&self, id: &str) -> i64 {
        self.ledger.balance(id).await.unwrap().posted_fen
    }

    pub async fn available(&self, id: &str) -> i64 {
        self.ledger.balance(id).await.unwrap().available_fen
    }

    pub async fn assert_clean(&self) {
        let r = self.ledger.check().await.unwrap();
        assert!(r.is_clean(), "check found: {:#?}", r.mismatches);
        assert_eq!(r.sum_posted_fen, 0);
    }

    /// A second "process": its own connections on PostgreSQL (on SQLite one
    /// process shares the write permit, so a second Ledger on the same Db),
    /// the same clock, its own random source (`seed`), one batch at a time
    /// (on SQLite the first one pipelines).
    pub async fn other_process(&self, seed: u64) -> Ledger {
        let (mut ctx2, _) = self.t.ctx();
        if ctx2.db.engine() == yizhan_core::Engine::Postgres {
            ctx2.db = yizhan_core::Db::connect(self.t.db.url()).await.unwrap();
        }
        ctx2.clock = self.ledger.ctx().clock.clone();
        ctx2.rng = yizhan_core::SeededRandom::new(seed);
        Ledger::start_with(ctx2, yizhan_ledger::LedgerConfig { pipeline: false, ..Default::default() })
    }

    pub async fn transfer_count(&self) -> u64 {
        self.ledger.check().await.unwrap().transfers
    }
}

pub fn code<T: std::fmt::Debug>(r: yizhan_core::Result<T>) -> Code {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}
