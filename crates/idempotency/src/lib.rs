//! yizhan-idempotency: the answers to requests that carried an idempotency
//! key, so that a client retrying a request (a lost answer, a double tap)
//! gets the first answer back instead of running the request again.
//!
//! Per (scope, key) — the scope is the caller, e.g. a user id — one row holds
//! a hash of the request, its state (`in_progress` or `done`) and, once done,
//! the stored answer (a status code and a body). The row is claimed with one
//! `INSERT … ON CONFLICT DO NOTHING` on the primary key, so of two requests
//! with the same key at once exactly one is [`Begin::Fresh`] and the other
//! sees [`Begin::InProgress`].
//!
//! This store knows nothing of HTTP: the status code is just a number it
//! keeps. It is a convenience in front of the domain's own guarantees (the
//! ledger's idempotency keys), not a replacement for them: if an answer is
//! lost or released, the domain still moves money once.

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use yizhan_core::group::{Batch, GroupCommit, GroupLimits};
use yizhan_core::{Ctx, Error, MigrationSet, Msg, Result, Tx};

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
/// An `in_progress` row this old belongs to a request that died with its process;
/// a retry may take it over (the domain below is idempotent on the same key).
pub const STALE_IN_PROGRESS_MS: i64 = 5 * 60 * 1000;
/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 200;

/// What [`Idempotency::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First time for this key (or a takeover of a dead request's): run the
    /// request, then `complete` or `release` with this lease.
    Fresh(Lease),
    /// Done before with the same request: here is the stored answer.
    Replay { status: u16, body: String },
    /// The same key is being run right now by another request.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// Proof of holding an in-progress key: only its holder may complete or
/// release it (a request taken over after it went stale has lost its lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease(String);

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
    claims: GroupCommit<Claims>,
    answers: GroupCommit<Answers>,
}

/// Rows in one multi-row statement (each binds at most 9 values).
const ROWS_PER_STATEMENT: usize = 256;

/// A claim of a key for a fresh request.
struct Claim {
    scope: String,
    key: String,
    request_hash: String,
    now_ms: i64,
    holder: String,
}

/// Claims in one `INSERT … ON CONFLICT DO NOTHING RETURNING holder`: a claim
/// is won when its (unique) holder comes back.
struct Claims;

impl Batch for Claims {
    type Op = Claim;
    type Out = bool;
    fn apply<'a>(&'a self, tx: &'a mut Tx, ops: &'a [Claim]) -> BoxFuture<'a, Result<Vec<Result<bool>>>> {
        Box::pin(async move {
            let mut won = std::collections::HashSet::new();
            for chunk in ops.chunks(ROWS_PER_STATEMENT) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let b = i * 5;
                        format!(
                            "(${}, ${}, ${}, 'in_progress', NULL, NULL, ${}, ${}, ${})",
                            b + 1,
                            b + 2,
                            b + 3,
                            b + 4,
                            b + 4,
                            b + 5
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO idempotency_keys
                         (scope, idem_key, request_hash, state, status_code, body, created_at_ms, locked_at_ms, holder)
                     VALUES {} ON CONFLICT (scope, idem_key) DO NOTHING RETURNING holder",
                    values.join(", ")
                );
                let mut q = sqlx::query_as::<_, (String,)>(&sql);
                for c in chunk {
                    q = q.bind(&c.scope).bind(&c.key).bind(&c.request_hash).bind(c.now_ms).bind(&c.holder);
                }
                for (holder,) in q.fetch_all(tx.conn()).await? {
                    won.insert(holder);
                }
            }
            Ok(ops.iter().map(|c| Ok(won.contains(&c.holder))).collect())
        })
    }
}

/// A request's answer, stored if its holder still holds the key.
struct Answer {
    scope: String,
    key: String,
    holder: String,
    status: i64,
    body: String,
}

/// Answers in one `UPDATE … FROM (VALUES …) RETURNING holder`.
struct Answers;

impl Batch for Answers {
    type Op = Answer;
    type Out = bool;
    fn apply<'a>(&'a self, tx: &'a mut Tx, ops: &'a [Answer]) -> BoxFuture<'a, Result<Vec<Result<bool>>>> {
        Box::pin(async move {
            let mut stored = std::collections::HashSet::new();
            for chunk in ops.chunks(ROWS_PER_STATEMENT) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let b = i * 5;
                        format!("(${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5)
                    })
                    .collect();
                let sql = format!(
                    "WITH v (v_scope, v_key, v_holder, v_status, v_body) AS (VALUES {})
                     UPDATE idempotency_keys SET state = 'done', status_code = v_status, body = v_body
                     FROM v WHERE scope = v_scope AND idem_key = v_key AND state = 'in_progress' AND holder = v_holder
                     RETURNING holder",
                    values.join(", ")
                );
                let mut q = sqlx::query_as::<_, (String,)>(&sql);
                for a in chunk {
                    q = q.bind(&a.scope).bind(&a.key).bind(&a.holder).bind(a.status).bind(&a.body);
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
#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    state: String,
    status_code: Option<i64>,
    body: Option<String>,
    locked_at_ms: i64,
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
    /// The store, with its group commits running on the current tokio runtime.
    pub fn new(ctx: Ctx) -> Idempotency {
        let claims = GroupCommit::start(ctx.db.clone(), Claims, GroupLimits::default());
        let answers = GroupCommit::start(ctx.db.clone(), Answers, GroupLimits::default());
        Idempotency { ctx, claims, answers }
    }

    /// Claim `key` for a request, or learn what became of it.
    pub async fn begin(&self, scope: &str, key: &str, request_hash: &str) -> Result<Begin> {
        check(scope, key)?;
        // A row released between our INSERT and SELECT sends us round again;
        // that needs a release in each round, so a few rounds are plenty.
        for _ in 0..5 {
            let now = self.ctx.now_ms();
            let lease = Lease(self.ctx.new_id());
            let claim = Claim {
                scope: scope.to_string(),
                key: key.to_string(),
                request_hash: request_hash.to_string(),
                now_ms: now,
                holder: lease.0.clone(),
            };
            if self.claims.submit(claim).await? {
                return Ok(Begin::Fresh(lease));
            }
            let row: Option<KeyRow> = sqlx::query_as(
                "SELECT request_hash, state, status_code, body, locked_at_ms FROM idempotency_keys
                 WHERE scope = $1 AND idem_key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
            let Some(row) = row else {
                continue;
            };
            if row.request_hash != request_hash {
                return Ok(Begin::Mismatch);
            }
            if row.state == "done" {
                let status = row.status_code.and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
                return Ok(Begin::Replay { status, body: row.body.unwrap_or_default() });
            }
            let locked_at_ms = row.locked_at_ms;
            if locked_at_ms > now - STALE_IN_PROGRESS_MS {
                return Ok(Begin::InProgress);
            }
            // The request that held it died; take it over (once: the lock time must still be the one we saw).
            let mut tx = self.ctx.db.begin().await?;
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET locked_at_ms = $1, holder = $5
                 WHERE scope = $2 AND idem_key = $3 AND state = 'in_progress' AND locked_at_ms = $4",
            )
            .bind(now)
            .bind(scope)
            .bind(key)
            .bind(locked_at_ms)
            .bind(&lease.0)
            .execute(tx.conn())
            .await?
            .rows_affected();
            tx.commit().await?;
            if taken == 1 {
                tracing::warn!(scope, "took over a stale idempotency key");
                return Ok(Begin::Fresh(lease));
            }
            return Ok(Begin::InProgress);
        }
        Ok(Begin::InProgress)
    }

    /// Store the answer of a request that began [`Begin::Fresh`]. Returns
    /// false, storing nothing, when the lease was lost (the key was taken over).
    pub async fn complete(&self, scope: &str, key: &str, lease: &Lease, status: u16, body: &str) -> Result<bool> {
        check(scope, key)?;
        self.answers
            .submit(Answer {
                scope: scope.to_string(),
                key: key.to_string(),
                holder: lease.0.clone(),
                status: i64::from(status),
                body: body.to_string(),
            })
            .await
    }

    /// Forget a request that began [`Begin::Fresh`] but had no answer worth
    /// keeping (a server error), so a retry runs it again.
    /// Returns false, forgetting nothing, when the lease was lost.
    pub async fn release(&self, scope: &str, key: &str, lease: &Lease) -> Result<bool> {
        check(scope, key)?;
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND state = 'in_progress' AND holder = $3",
        )
        .bind(scope)
        .bind(key)
        .bind(&lease.0)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Remove keys created more than `age_ms` ago — but never younger than
    /// [`MIN_RETENTION_MS`], whatever `age_ms` says — and never a request
    /// still running. Returns how many were removed.
    pub async fn purge_older_than(&self, age_ms: i64) -> Result<u64> {
        let now = self.ctx.now_ms();
        let cutoff = now - age_ms.max(MIN_RETENTION_MS);
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at_ms < $1 AND (state = 'done' OR locked_at_ms < $2)",
        )
        .bind(cutoff)
        .bind(now - STALE_IN_PROGRESS_MS)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
