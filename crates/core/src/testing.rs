//! The test database: SQLite in a temporary file by default; PostgreSQL when
//! `YIZHAN_TEST_DATABASE_URL` is set, in a new database with a random name
//! that is dropped when the test ends, so runs sharing a server never meet.

use crate::{Ctx, Db, ManualClock, MigrationSet, SeededRandom, Vault};
use rand::RngCore;
use std::sync::Arc;

pub const TEST_DB_ENV: &str = "YIZHAN_TEST_DATABASE_URL";

/// A fixed start for test clocks: 2026-11-29 00:00 UTC.
pub const T0_MS: i64 = 1_795_910_400_000;

pub struct TestDb {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>, // (admin url, database name)
}

/// The PostgreSQL server URL tests use, if the PostgreSQL side is requested.
pub fn postgres_url() -> Option<String> {
    std::env::var(TEST_DB_ENV).ok().filter(|s| !s.trim().is_empty())
}

impl TestDb {
    pub async fn new(sets: &[&MigrationSet]) -> TestDb {
        let t = match postgres_url() {
            None => {
                let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
                let db = Db::open_data_dir(dir.path()).await.unwrap_or_else(|e| panic!("open sqlite: {e}"));
                TestDb { db, _dir: Some(dir), pg: None }
            }
            Some(admin_url) => {
                let mut b = [0u8; 8];
                rand::rngs::OsRng.fill_bytes(&mut b);
                let name = format!("yz_test_{}", hex::encode(b));
                let admin = Db::connect(&admin_url).await.unwrap_or_else(|e| panic!("connect {admin_url}: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin.pool)
                    .await
                    .unwrap_or_else(|e| panic!("create database: {e}"));
                admin.close().await;
                let url = replace_db_name(&admin_url, &name);
                let db = Db::connect(&url).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
                TestDb { db, _dir: None, pg: Some((admin_url, name)) }
            }
        };
        t.db.migrate(sets).await.unwrap_or_else(|e| panic!("migrate: {e}"));
        t
    }

    /// A context with a manual clock at [`T0_MS`] and a seeded random source.
    pub fn ctx(&self) -> (Ctx, Arc<ManualClock>) {
        let clock = ManualClock::new(T0_MS);
        let ctx = Ctx {
            db: self.db.clone(),
            clock: clock.clone(),
            rng: SeededRandom::new(7),
            vault: Arc::new(Vault::random()),
        };
        (ctx, clock)
    }
}

/// `postgres://u@h:p/db?x` with the database replaced.
pub fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg.take() else { return };
        // Drop runs inside a test's runtime; use a thread with its own. The
        // test's pool is not closed from there: its connections belong to the
        // test's runtime, which is blocked in this drop, so a graceful close
        // can wait forever. WITH (FORCE) ends those connections server-side.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(admin) = Db::connect(&admin_url).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin.pool).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_database_name() {
        assert_eq!(replace_db_name("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(replace_db_name("postgres://u@h/test?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(replace_db_name("postgres://h", "x"), "postgres://h/x");
    }

    /// Says in the test output which engine this run used.
    #[test]
    fn postgres_side_runs_only_when_yizhan_test_database_url_is_set() {
        match postgres_url() {
            Some(_) => eprintln!("storage tests run on PostgreSQL ({TEST_DB_ENV} is set)"),
            None => eprintln!("storage tests run on SQLite; PostgreSQL side NOT run: set {TEST_DB_ENV}=postgres://…"),
        }
    }
}
