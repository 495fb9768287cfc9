use crate::error::{Error, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which storage engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// One handle over either engine. SQL is written once with `$1` placeholders,
/// integers, text and epoch milliseconds, so it runs on both.
///
/// On SQLite every write transaction first takes the process's single write
/// permit, so writers queue in the process instead of failing with "database
/// is locked", and then begins IMMEDIATE, so writers in other processes on the
/// same file (the demo beside `serve`) wait for each other; readers never wait
/// (WAL).
#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    engine: Engine,
    write_permit: Option<Arc<Semaphore>>,
    url: Arc<str>,
    /// SQLite: connections whose commits are not flushed on their own
    /// (`synchronous=NORMAL`), for [`Db::begin_relaxed`] and the durable
    /// [`Db::begin`] (which flushes through [`GroupFlush`]); made at first use.
    relaxed: Option<Arc<tokio::sync::OnceCell<Relaxed>>>,
}

/// SQLite's write connections and the group flush of their commits.
type Relaxed = (AnyPool, Arc<GroupFlush>);

/// SQLite's group commit: a durable transaction commits without waiting for
/// the disk, gives the write permit back, and then waits for a flush of the
/// write-ahead log that covers its commit. One flush covers every commit
/// made before it started, so while one is under way the next writers
/// commit and share the next one: a rush of durable writes costs a flush per
/// group, not per write, and each still returns only once it is on disk.
///
/// The log is one file written in commit order, so flushing it makes every
/// commit in it durable (a checkpoint flushes the log before the database
/// file, and the database file after). It is opened by path for each flush:
/// when the last connection closes SQLite checkpoints and deletes it, and a
/// log that is gone has nothing left to flush.
pub struct GroupFlush {
    wal: std::path::PathBuf,
    /// Commits counted so far (each after its commit returned).
    committed: std::sync::atomic::AtomicU64,
    /// Commits known to be on disk.
    flushed: std::sync::atomic::AtomicU64,
    /// Flushes made.
    flushes: std::sync::atomic::AtomicU64,
    flushing: tokio::sync::Mutex<()>,
}

impl GroupFlush {
    /// Count the commit that just returned: the ticket to wait for with [`GroupFlush::flushed`].
    fn ticket(&self) -> u64 {
        self.committed.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1
    }

    /// Wait until the commit that took ticket `mine` is on disk.
    async fn flushed(&self, mine: u64) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let _one = self.flushing.lock().await;
        if self.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        // Every commit counted by now is in the log: this flush covers them.
        let upto = self.committed.load(Ordering::Acquire);
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
        self.flushed.fetch_max(upto, Ordering::AcqRel);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A write transaction. Use [`Tx::conn`] as the executor; dropping it without
/// [`Tx::commit`] rolls back.
pub struct Tx {
    inner: sqlx::Transaction<'static, Any>,
    permit: Option<OwnedSemaphorePermit>,
    /// SQLite's durable transactions: the flush that makes the commit durable.
    flush: Option<Arc<GroupFlush>>,
}

impl Tx {
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }

    /// Commit; a durable transaction returns once the commit is on disk.
    pub async fn commit(self) -> Result<()> {
        self.commit_then_flush().await?.durable().await
    }

    /// Commit, and return as soon as the commit is made (on SQLite, before it
    /// is flushed to disk): what it wrote is visible and the next writer may
    /// begin. [`Flushing::durable`] then waits until it is on disk; nobody may
    /// be told it is done before that. (On PostgreSQL the commit is durable
    /// when it returns.)
    pub async fn commit_then_flush(self) -> Result<Flushing> {
        let Tx { inner, permit, flush } = self;
        inner.commit().await?;
        // The next writer may begin while this one waits for the disk.
        drop(permit);
        Ok(Flushing {
            wait: flush.map(|f| {
                let mine = f.ticket();
                (f, mine)
            }),
        })
    }
}

/// A commit made, on its way to disk: see [`Tx::commit_then_flush`].
#[must_use = "a commit is durable only once `durable` returns"]
pub struct Flushing {
    wait: Option<(Arc<GroupFlush>, u64)>,
}

impl Flushing {
    /// Wait until the commit is on disk (shared with every commit made meanwhile).
    pub async fn durable(self) -> Result<()> {
        match self.wait {
            Some((f, mine)) => f.flushed(mine).await,
            None => Ok(()),
        }
    }
}

/// Every SQLite connection's settings but `synchronous` (FULL for the pool,
/// whose statements outside [`Db::begin`] return only after fsync; NORMAL
/// for the write transactions, which [`Db::begin`] flushes as a group and
/// [`Db::begin_relaxed`] leaves to the next flush). A 32 MiB page
/// cache per connection keeps the hot parts of the indexes (idempotency keys
/// land at random places) in memory.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; \
     PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;";

/// The URL connected to: a SQLite file is created if missing.
fn full_url(engine: Engine, url: &str) -> String {
    match engine {
        Engine::Sqlite if !url.contains("mode=") => {
            format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
        }
        _ => url.to_string(),
    }
}

/// The migrations one domain crate owns, for both engines, in order.
pub struct MigrationSet {
    pub domain: &'static str,
    pub sqlite: &'static [(&'static str, &'static str)],
    pub postgres: &'static [(&'static str, &'static str)],
}

/// Core's own tables (the vault key's fingerprint), applied before every
/// domain's by [`Db::migrate`].
pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "core",
    sqlite: &[("0001", include_str!("../migrations/sqlite/0001_core.sql"))],
    postgres: &[("0001", include_str!("../migrations/postgres/0001_core.sql"))],
};

impl Db {
    /// Connect to `sqlite://path` or `postgres://…`. A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(Error::field("database_url", "error.database.url_scheme"));
        };
        let url_full = full_url(engine, url);
        let opts = AnyConnectOptions::from_str(&url_full).map_err(Error::internal)?;
        let pool = match engine {
            Engine::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(SQLITE_PRAGMAS).await?;
                            conn.execute("PRAGMA synchronous=FULL;").await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Engine::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?
            }
        };
        let write_permit = (engine == Engine::Sqlite).then(|| Arc::new(Semaphore::new(1)));
        // An in-memory database is another database on every connection:
        // there, relaxed transactions use the pool itself.
        let relaxed = (engine == Engine::Sqlite && !url.contains(":memory:") && !url.contains("mode=memory"))
            .then(|| Arc::new(tokio::sync::OnceCell::new()));
        Ok(Db { pool, engine, write_permit, url: url.into(), relaxed })
    }

    /// SQLite file in a data directory.
    pub async fn open_data_dir(dir: &Path) -> Result<Db> {
        std::fs::create_dir_all(dir).map_err(Error::internal)?;
        let path = dir.join("yizhan.db");
        Db::connect(&format!("sqlite://{}", path.display())).await
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Begin a write transaction (see the type's note on SQLite) whose
    /// commit returns once it is on disk: on SQLite through the group
    /// commit ([`GroupFlush`]), on PostgreSQL by its own (which groups
    /// concurrent commits' flushes itself).
    pub async fn begin(&self) -> Result<Tx> {
        if let (Engine::Sqlite, Some(cell)) = (self.engine, &self.relaxed) {
            return self.begin_sqlite_write(cell, true).await;
        }
        let permit = self.write_permit().await?;
        // SQLite: take the file's write lock at BEGIN. A deferred transaction
        // that reads first and writes later is refused at once ("database is
        // locked", no busy wait) when another process wrote in between; an
        // immediate one waits its turn under busy_timeout instead.
        let inner = match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::Postgres => self.pool.begin().await?,
        };
        Ok(Tx { inner, permit, flush: None })
    }

    /// SQLite's group commit so far: (durable commits, of them known on
    /// disk, flushes made); `None` before the first or on PostgreSQL.
    pub fn group_commits(&self) -> Option<(u64, u64, u64)> {
        use std::sync::atomic::Ordering;
        let (_, f) = self.relaxed.as_ref()?.get()?;
        Some((
            f.committed.load(Ordering::Acquire),
            f.flushed.load(Ordering::Acquire),
            f.flushes.load(Ordering::Acquire),
        ))
    }

    /// SQLite: a write transaction on the `synchronous=NORMAL` connections,
    /// behind the write permit; `durable`: its commit waits for the group flush.
    async fn begin_sqlite_write(&self, cell: &tokio::sync::OnceCell<Relaxed>, durable: bool) -> Result<Tx> {
        let (pool, flush) = cell.get_or_try_init(|| self.relaxed_pool()).await?;
        let permit = self.write_permit().await?;
        let inner = pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Tx { inner, permit, flush: durable.then(|| flush.clone()) })
    }

    async fn write_permit(&self) -> Result<Option<OwnedSemaphorePermit>> {
        Ok(match &self.write_permit {
            Some(s) => Some(s.clone().acquire_owned().await.map_err(Error::internal)?),
            None => None,
        })
    }

    /// Begin a write transaction whose commit returns without waiting for
    /// the disk: on SQLite a connection with `synchronous=NORMAL` (behind the
    /// same write permit), on PostgreSQL `synchronous_commit` off for this
    /// transaction. Both engines write their log in commit order, so the next
    /// durable commit on the database flushes this one with it: use it only
    /// for a write that is harmless to lose in a power failure when nothing
    /// durable followed it (a limit counted before the money that it counts
    /// moves durably). A killed process loses nothing either way: the commit
    /// is in the operating system's hands.
    pub async fn begin_relaxed(&self) -> Result<Tx> {
        match self.engine {
            Engine::Sqlite => {
                let Some(cell) = &self.relaxed else { return self.begin().await };
                self.begin_sqlite_write(cell, false).await
            }
            Engine::Postgres => {
                let mut tx = self.begin().await?;
                sqlx::query("SET LOCAL synchronous_commit TO OFF").execute(tx.conn()).await?;
                Ok(tx)
            }
        }
    }

    async fn relaxed_pool(&self) -> Result<Relaxed> {
        let opts = AnyConnectOptions::from_str(&full_url(self.engine, &self.url)).map_err(Error::internal)?;
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    conn.execute("PRAGMA synchronous=NORMAL;").await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        // The database file as SQLite resolved it; its log beside it.
        let (file,): (String,) =
            sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'").fetch_one(&pool).await?;
        let flush = GroupFlush {
            wal: std::path::PathBuf::from(format!("{file}-wal")),
            committed: Default::default(),
            flushed: Default::default(),
            flushes: Default::default(),
            flushing: Default::default(),
        };
        Ok((pool, Arc::new(flush)))
    }

    /// Apply every migration of core's own set and then of every given set
    /// not applied yet, in order.
    pub async fn migrate(&self, sets: &[&MigrationSet]) -> Result<()> {
        let mut tx = self.begin().await?;
        if self.engine == Engine::Postgres {
            // One migrator at a time across processes.
            sqlx::query("SELECT pg_advisory_xact_lock(7243001)").execute(tx.conn()).await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                domain TEXT NOT NULL, version TEXT NOT NULL, applied_at_ms BIGINT NOT NULL,
                PRIMARY KEY (domain, version))",
        )
        .execute(tx.conn())
        .await?;
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        for set in std::iter::once(&&MIGRATIONS).chain(sets.iter()) {
            let list = match self.engine {
                Engine::Sqlite => set.sqlite,
                Engine::Postgres => set.postgres,
            };
            for (version, sql) in list {
                let done: Option<(String,)> =
                    sqlx::query_as("SELECT version FROM schema_migrations WHERE domain = $1 AND version = $2")
                        .bind(set.domain)
                        .bind(*version)
                        .fetch_optional(tx.conn())
                        .await?;
                if done.is_some() {
                    continue;
                }
                tracing::info!(domain = set.domain, version, "applying migration");
                tx.conn().execute(*sql).await.map_err(|e| {
                    Error::internal(anyhow::anyhow!("migration {}/{} failed: {e}", set.domain, version))
                })?;
                sqlx::query("INSERT INTO schema_migrations (domain, version, applied_at_ms) VALUES ($1, $2, $3)")
                    .bind(set.domain)
                    .bind(*version)
                    .bind(now)
                    .execute(tx.conn())
                    .await?;
            }
        }
        tx.commit().await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Placeholders for a statement built at run time with many values (a
/// multi-row `INSERT`, a long `IN` list), numbered in the order they are
/// bound: `$1, $2, …` on PostgreSQL, anonymous `?` on SQLite. On SQLite a
/// `$n` is a *named* parameter, found by a linear search of the names before
/// it, so binding a statement with n of them costs n² string comparisons
/// (measured: a sixth of the server's time under the payment load). Each
/// placeholder is bound exactly once, in order: a value used twice is bound
/// twice.
pub struct Params {
    engine: Engine,
    n: usize,
}

impl Params {
    pub fn new(engine: Engine) -> Params {
        Params { engine, n: 0 }
    }

    /// For the engine `conn` talks to.
    pub fn of(conn: &AnyConnection) -> Params {
        let engine = if conn.backend_name() == "PostgreSQL" { Engine::Postgres } else { Engine::Sqlite };
        Params::new(engine)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The next placeholder, one value.
    pub fn one(&mut self) -> String {
        self.n += 1;
        match self.engine {
            Engine::Sqlite => "?".to_string(),
            Engine::Postgres => format!("${}", self.n),
        }
    }

    /// `k` placeholders separated by commas.
    pub fn list(&mut self, k: usize) -> String {
        let mut out = String::with_capacity(k * 4);
        for i in 0..k {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&self.one());
        }
        out
    }

    /// A row of `k` placeholders in parentheses.
    pub fn row(&mut self, k: usize) -> String {
        format!("({})", self.list(k))
    }
}
