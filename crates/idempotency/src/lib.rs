//! yizhan-idempotency: the answers to requests that carried an idempotency
//! key, so that a client retrying a request (a lost answer, a double tap)
//! gets the first answer back instead of running the request again.
//!
//! Per (scope, key) — the scope is the caller, e.g. a user id — one row holds
//! a hash of the request and its answer: either the answer itself (a status
//! code and a body, state `done`), or, for work whose domain keeps the answer
//! under the same key (a payment in the ledger), a row written in the
//! domain's own transaction (state `domain`, see [`DomainAnswer`]) that says
//! "run it again and the domain answers". While a request runs its key is
//! claimed in this process only ([`Lease`]): of two requests with the same
//! key at once in one process exactly one is [`Begin::Fresh`] and the other
//! sees [`Begin::InProgress`]; in two processes both may run, and the
//! domain's key makes the work happen once. So a paid request costs no write
//! of its own: its answer commits with its money.
//!
//! This store knows nothing of HTTP: the status code is just a number it
//! keeps. It is a convenience in front of the domain's own guarantees (the
//! ledger's idempotency keys), not a replacement for them: if an answer is
//! lost or released, the domain still moves money once.

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use yizhan_core::group::{Batch, GroupCommit, GroupLimits, GroupRead, ReadBatch, ReadLimits};
use yizhan_core::{Ctx, Error, MigrationSet, Msg, Params, Result, Tx};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "idempotency",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_idempotency.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_holder.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_idempotency.sql")),
        ("0002", include_str!("../migrations/postgres/0002_holder.sql")),
    ],
};

/// Keys are kept at least this long; [`Idempotency::purge_older_than`] never removes younger ones.
pub const MIN_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 200;

/// What [`Idempotency::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First time for this key: run the request, then `complete` or
    /// `release` with this lease (or let the domain store a
    /// [`DomainAnswer`] with the work it describes).
    Fresh(Lease),
    /// Done before with the same request: here is the stored answer.
    Replay { status: u16, body: String },
    /// Done before with the same request, and the domain keeps the answer
    /// (the money moved under the same key): run the request again, and the
    /// domain answers it from its own key without doing anything twice.
    /// Nothing is stored afterwards; the lease only keeps a second copy of
    /// the request in this process from running at the same time.
    Rerun(Lease),
    /// The same key is being run right now by another request.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// Proof of holding a key while its request runs: only the holder completes
/// or releases it. Claims live in this process (a request that dies with its
/// process holds nothing afterwards), so claiming costs no write: what is
/// durable is the answer, stored with [`Idempotency::complete`] or in the
/// domain's own transaction ([`DomainAnswer`]). Dropping every copy of a lease
/// releases the key.
#[derive(Clone)]
pub struct Lease(Arc<Guard>);

impl PartialEq for Lease {
    fn eq(&self, other: &Lease) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for Lease {}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lease({})", self.0.id)
    }
}

/// The keys whose requests run in this process: (scope, key) → the lease's
/// guard (which holds the request hash), not kept alive by the map.
#[derive(Default)]
struct Running(Mutex<HashMap<(String, String), Weak<Guard>>>);

struct Guard {
    running: Arc<Running>,
    scope: String,
    key: String,
    id: String,
    request_hash: String,
    /// Completed or released: the key is no longer this lease's.
    settled: AtomicBool,
}

impl Guard {
    /// Gives the key up; true if this lease still held it.
    fn settle(&self) -> bool {
        if self.settled.swap(true, Ordering::SeqCst) {
            return false;
        }
        let mut map = self.running.0.lock().unwrap_or_else(|e| e.into_inner());
        let k = (self.scope.clone(), self.key.clone());
        if map.get(&k).is_some_and(|held| std::ptr::eq(held.as_ptr(), self)) {
            map.remove(&k);
        }
        true
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.settle();
    }
}

/// The answer to a request kept by the domain that did its work: a row
/// saying "done, with this request hash; run it again to hear the answer",
/// written in the domain's transaction (e.g. as a ledger attachment) so that
/// it commits with the work or not at all, and costs no commit of its own.
/// A retry then gets [`Begin::Rerun`] (or [`Begin::Mismatch`] for another
/// request), also after a restart.
#[derive(Clone)]
pub struct DomainAnswer {
    scope: String,
    key: String,
    request_hash: String,
    at_ms: i64,
    written: Arc<AtomicBool>,
}

impl DomainAnswer {
    /// Whether [`DomainAnswer::insert_all`] wrote it (in a transaction that
    /// then committed, if the work reports success).
    pub fn was_written(&self) -> bool {
        self.written.load(Ordering::SeqCst)
    }

    /// Write the rows in the transaction `conn` is in. A key already answered
    /// (by a request in another process) keeps its first answer.
    pub async fn insert_all(conn: &mut sqlx::AnyConnection, all: &[&DomainAnswer]) -> Result<()> {
        for chunk in all.chunks(ROWS_PER_STATEMENT) {
            let mut p = Params::of(conn);
            let values: Vec<String> = (0..chunk.len())
                .map(|_| format!("({}, 'domain', NULL, NULL, {}, NULL)", p.list(3), p.list(2)))
                .collect();
            let sql = format!(
                "INSERT INTO idempotency_keys
                     (scope, idem_key, request_hash, state, status_code, body, created_at_ms, locked_at_ms, holder)
                 VALUES {} ON CONFLICT (scope, idem_key) DO NOTHING",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q.bind(&a.scope).bind(&a.key).bind(&a.request_hash).bind(a.at_ms).bind(a.at_ms);
            }
            q.execute(&mut *conn).await?;
        }
        for a in all {
            a.written.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

tokio::task_local! {
    /// The domain answer the request running in this task may store with its work.
    static DOMAIN_ANSWER: std::cell::RefCell<Option<DomainAnswer>>;
}

/// Run `work` with `answer` on offer to the domain code it calls: the first
/// [`take_domain_answer`] inside it gets it.
pub async fn offering<F: std::future::Future>(answer: DomainAnswer, work: F) -> F::Output {
    DOMAIN_ANSWER.scope(std::cell::RefCell::new(Some(answer)), work).await
}

/// The domain answer of the idempotent request this task runs, if it has one
/// and nobody took it yet: the domain writes it with the work (once).
pub fn take_domain_answer() -> Option<DomainAnswer> {
    DOMAIN_ANSWER.try_with(|c| c.borrow_mut().take()).ok().flatten()
}

/// The hash that tells one request from another: method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// The store. Cheap to clone. Claims and answers are written by group
/// commits: a request waits for the transaction that holds its row to commit,
/// and shares that commit with every request in flight.
#[derive(Clone)]
pub struct Idempotency {
    ctx: Ctx,
    running: Arc<Running>,
    answers: GroupCommit<Answers>,
    lookups: GroupRead<Lookups>,
}

/// The rows of many (scope, key) pairs in one query: a request's `begin`
/// shares its read with every other one waiting.
struct Lookups;

/// Pairs in one lookup query (each binds two values).
const PAIRS_PER_QUERY: usize = 128;

impl ReadBatch for Lookups {
    type Op = (String, String);
    type Out = Option<KeyRow>;
    fn read<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        ops: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<Result<Option<KeyRow>>>>> {
        Box::pin(async move {
            let mut found: HashMap<(String, String), KeyRow> = HashMap::new();
            for chunk in ops.chunks(PAIRS_PER_QUERY) {
                let mut p = Params::of(conn);
                let terms: Vec<String> =
                    (0..chunk.len()).map(|_| format!("(scope = {} AND idem_key = {})", p.one(), p.one())).collect();
                let sql = format!(
                    "SELECT scope, idem_key, request_hash, state, status_code, body FROM idempotency_keys WHERE {}",
                    terms.join(" OR ")
                );
                let mut q = sqlx::query_as::<_, KeyRow>(&sql);
                for (scope, key) in chunk {
                    q = q.bind(scope).bind(key);
                }
                for row in q.fetch_all(&mut *conn).await? {
                    found.insert((row.scope.clone(), row.idem_key.clone()), row);
                }
            }
            Ok(ops.iter().map(|k| Ok(found.get(k).cloned())).collect())
        })
    }
}

/// Rows in one multi-row statement (each binds at most 9 values).
const ROWS_PER_STATEMENT: usize = 256;

/// A request's answer.
struct Answer {
    scope: String,
    key: String,
    request_hash: String,
    status: i64,
    body: String,
    at_ms: i64,
    /// Distinguishes this answer's row from one stored by another process.
    holder: String,
}

/// Answers in one `INSERT … ON CONFLICT DO NOTHING RETURNING holder`: stored
/// unless the key was answered already.
struct Answers;

impl Batch for Answers {
    type Op = Answer;
    type Out = bool;
    fn apply<'a>(&'a self, tx: &'a mut Tx, ops: &'a [Answer]) -> BoxFuture<'a, Result<Vec<Result<bool>>>> {
        Box::pin(async move {
            let mut stored = std::collections::HashSet::new();
            for chunk in ops.chunks(ROWS_PER_STATEMENT) {
                let mut p = Params::of(tx.conn());
                let values: Vec<String> =
                    (0..chunk.len()).map(|_| format!("({}, 'done', {})", p.list(3), p.list(5))).collect();
                let sql = format!(
                    "INSERT INTO idempotency_keys
                         (scope, idem_key, request_hash, state, status_code, body, created_at_ms, locked_at_ms, holder)
                     VALUES {} ON CONFLICT (scope, idem_key) DO NOTHING RETURNING holder",
                    values.join(", ")
                );
                let mut q = sqlx::query_as::<_, (String,)>(&sql);
                for a in chunk {
                    q = q
                        .bind(&a.scope)
                        .bind(&a.key)
                        .bind(&a.request_hash)
                        .bind(a.status)
                        .bind(&a.body)
                        .bind(a.at_ms)
                        .bind(a.at_ms)
                        .bind(&a.holder);
                }
                for (holder,) in q.fetch_all(tx.conn()).await? {
                    stored.insert(holder);
                }
            }
            Ok(ops.iter().map(|a| Ok(stored.contains(&a.holder))).collect())
        })
    }
}

/// What is stored for one (scope, key).
#[derive(sqlx::FromRow, Clone)]
struct KeyRow {
    scope: String,
    idem_key: String,
    request_hash: String,
    state: String,
    status_code: Option<i64>,
    body: Option<String>,
}

fn check(scope: &str, key: &str) -> Result<()> {
    if scope.is_empty() || scope.len() > MAX_KEY_CHARS {
        return Err(Error::field_msg("scope", Msg::new("idempotency.scope.invalid").int("max", MAX_KEY_CHARS as i64)));
    }
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::field_msg(
            "idempotency_key",
            Msg::new("idempotency.key.invalid").int("max", MAX_KEY_CHARS as i64),
        ));
    }
    Ok(())
}

impl Idempotency {
    /// The store, with its group commit running on the current tokio runtime.
    pub fn new(ctx: Ctx) -> Idempotency {
        let answers = GroupCommit::start(ctx.db.clone(), Answers, GroupLimits::default());
        let lookups = GroupRead::start(ctx.db.clone(), Lookups, ReadLimits::default());
        Idempotency { ctx, running: Arc::new(Running::default()), answers, lookups }
    }

    /// Claim `key` for a request, or learn what became of it. A claim is
    /// made in this process and costs one read, shared with every other
    /// claim waiting at the moment; see [`Lease`].
    pub async fn begin(&self, scope: &str, key: &str, request_hash: &str) -> Result<Begin> {
        check(scope, key)?;
        let lease = {
            let mut map = self.running.0.lock().unwrap_or_else(|e| e.into_inner());
            let k = (scope.to_string(), key.to_string());
            // A guard being dropped no longer upgrades: its key is free.
            if let Some(running) = map.get(&k).and_then(Weak::upgrade) {
                return Ok(if running.request_hash == request_hash { Begin::InProgress } else { Begin::Mismatch });
            }
            let guard = Arc::new(Guard {
                running: self.running.clone(),
                scope: scope.to_string(),
                key: key.to_string(),
                id: self.ctx.new_id(),
                request_hash: request_hash.to_string(),
                settled: AtomicBool::new(false),
            });
            map.insert(k, Arc::downgrade(&guard));
            Lease(guard)
        };
        // Claimed here first, so the row read below cannot be stored by
        // another request of this process between the read and the run.
        let row = self.lookups.get((scope.to_string(), key.to_string())).await?;
        let Some(row) = row else {
            return Ok(Begin::Fresh(lease));
        };
        if row.request_hash != request_hash {
            return Ok(Begin::Mismatch);
        }
        match row.state.as_str() {
            "done" => {
                let status = row.status_code.and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
                Ok(Begin::Replay { status, body: row.body.unwrap_or_default() })
            }
            "domain" => Ok(Begin::Rerun(lease)),
            // A claim row of an earlier version of this store, whose request
            // is gone: run it again (the domain below is idempotent on the key).
            _ => Ok(Begin::Fresh(lease)),
        }
    }

    /// The row that says the domain keeps this request's answer, to be
    /// written in the domain's transaction (see [`DomainAnswer`]).
    pub fn domain_answer(&self, lease: &Lease) -> DomainAnswer {
        DomainAnswer {
            scope: lease.0.scope.clone(),
            key: lease.0.key.clone(),
            request_hash: lease.0.request_hash.clone(),
            at_ms: self.ctx.now_ms(),
            written: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Store the answer of a request that began [`Begin::Fresh`] (durable
    /// when this returns). Returns false, storing nothing, when the lease
    /// was settled already or the key was answered meanwhile (by another
    /// process: the first answer stays).
    pub async fn complete(&self, scope: &str, key: &str, lease: &Lease, status: u16, body: &str) -> Result<bool> {
        check(scope, key)?;
        if lease.0.scope != scope || lease.0.key != key || lease.0.settled.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let stored = self
            .answers
            .submit(Answer {
                scope: scope.to_string(),
                key: key.to_string(),
                request_hash: lease.0.request_hash.clone(),
                status: i64::from(status),
                body: body.to_string(),
                at_ms: self.ctx.now_ms(),
                holder: lease.0.id.clone(),
            })
            .await;
        // Settled after the write, so no second copy runs before the answer is there.
        let held = lease.0.settle();
        Ok(stored? && held)
    }

    /// Forget a request that began [`Begin::Fresh`] but had no answer worth
    /// keeping (a server error), so a retry runs it again. Returns false,
    /// forgetting nothing, when the lease was settled already.
    pub async fn release(&self, scope: &str, key: &str, lease: &Lease) -> Result<bool> {
        check(scope, key)?;
        if lease.0.scope != scope || lease.0.key != key {
            return Ok(false);
        }
        Ok(lease.0.settle())
    }

    /// Remove keys created more than `age_ms` ago — but never younger than
    /// [`MIN_RETENTION_MS`], whatever `age_ms` says — and never a request
    /// still running. Returns how many were removed.
    pub async fn purge_older_than(&self, age_ms: i64) -> Result<u64> {
        let now = self.ctx.now_ms();
        let cutoff = now - age_ms.max(MIN_RETENTION_MS);
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query("DELETE FROM idempotency_keys WHERE created_at_ms < $1")
            .bind(cutoff)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
