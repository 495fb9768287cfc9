//! The access log: every read of a person's data by someone else (staff of a
//! city department, a hospital, a platform admin) is written here, in the
//! subject's own log, before the data is returned. The subject sees the log.
//!
//! Entries are append-only (database triggers refuse UPDATE and DELETE) and
//! hash-chained per subject, so an entry altered or removed behind the
//! triggers' back shows in [`Audit::verify`]. Nothing deletes entries, not even
//! account deletion: the law requires keeping them.
//!
//! The chain is keyed: each entry's hash is an HMAC-SHA256 with a key derived
//! from the vault (which the database never holds) over the previous hash and
//! the entry's fields, and each subject's head carries a MAC too. Someone who
//! can write the database can therefore not recompute a consistent chain, nor
//! pass off a rewritten chain as one of the older, plain SHA-256 entries
//! (chain version 1, still verified as such). The person's export holds the
//! head, so a chain rewritten later shows against an earlier export.

use serde::Serialize;
use sha2::{Digest, Sha256};
use yizhan_core::error::{is_retryable, is_unique_violation};
use yizhan_core::{Ctx, Error, FieldError, MigrationSet, Result, Vault};

/// The organisation label of a read by the platform's own support staff
/// (shown in the reader's language as `access.org.platform_support`).
pub const PLATFORM_SUPPORT: &str = "platform_support";

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "audit",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_access_log.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_keyed_chain.sql")),
        ("0003", include_str!("../migrations/sqlite/0003_checkpoints.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_access_log.sql")),
        ("0002", include_str!("../migrations/postgres/0002_keyed_chain.sql")),
        ("0003", include_str!("../migrations/postgres/0003_checkpoints.sql")),
    ],
};

/// The `prev_hash` of a subject's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Entries written before the chain was keyed: plain SHA-256.
pub const CHAIN_PLAIN: i64 = 1;
/// HMAC-SHA256 with the vault's key: what [`Audit::record`] writes.
pub const CHAIN_KEYED: i64 = 2;

/// How often [`Audit::record`] starts over when a concurrent writer took the
/// same seq (PostgreSQL; SQLite writers queue on the write permit).
const MAX_RECORD_ATTEMPTS: u32 = 32;

const MAX_LABEL_CHARS: usize = 200;
const MAX_WHAT_CHARS: usize = 64;
const MAX_WHY_CHARS: usize = 1000;
pub const MAX_LIST_LIMIT: i64 = 1000;

#[derive(Clone)]
pub struct Audit {
    ctx: Ctx,
}

/// One read to record.
#[derive(Debug, Clone)]
pub struct NewAccess {
    pub subject_user_id: String,
    pub actor_user_id: String,
    /// Display name of who read, as the subject should see it.
    pub actor_label: String,
    pub org_id: Option<String>,
    pub org_label: Option<String>,
    /// What was read: "profile", "identity_number", "bills", …
    pub what: String,
    /// The reason the reader stated.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AccessEntry {
    pub id: String,
    pub subject_user_id: String,
    pub seq: i64,
    pub actor_user_id: String,
    pub actor_label: String,
    pub org_id: Option<String>,
    pub org_label: Option<String>,
    pub what: String,
    pub why: String,
    pub at_ms: i64,
    pub prev_hash: String,
    pub hash: String,
    /// How `hash` is computed: [`CHAIN_PLAIN`] or [`CHAIN_KEYED`].
    pub chain_version: i64,
}

/// The result of checking one subject's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainCheck {
    pub entries: i64,
    pub ok: bool,
    /// The first seq whose entry is missing, altered or out of chain.
    pub first_bad_seq: Option<i64>,
}

const ENTRY_COLUMNS: &str =
    "id, subject_user_id, seq, actor_user_id, actor_label, org_id, org_label, what, why, at_ms, prev_hash, hash, \
     chain_version";

/// Canonical encoding: a version tag, then each field tagged and
/// length-prefixed, so no two different entries encode alike (no ambiguity
/// between "ab"+"c" and "a"+"bc", nor between None and "").
fn canonical_bytes(e: &AccessEntry, tag: &[u8]) -> Vec<u8> {
    fn text(out: &mut Vec<u8>, s: &str) {
        out.push(b's');
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn opt(out: &mut Vec<u8>, s: &Option<String>) {
        match s {
            Some(s) => text(out, s),
            None => out.push(b'n'),
        }
    }
    fn int(out: &mut Vec<u8>, v: i64) {
        out.push(b'i');
        out.extend_from_slice(&v.to_be_bytes());
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(tag);
    text(&mut out, &e.prev_hash);
    text(&mut out, &e.id);
    text(&mut out, &e.subject_user_id);
    int(&mut out, e.seq);
    text(&mut out, &e.actor_user_id);
    text(&mut out, &e.actor_label);
    opt(&mut out, &e.org_id);
    opt(&mut out, &e.org_label);
    text(&mut out, &e.what);
    text(&mut out, &e.why);
    int(&mut out, e.at_ms);
    out
}

/// Hex SHA-256 over the entry's `prev_hash` and every other field (not
/// `hash`): how entries of [`CHAIN_PLAIN`] were hashed.
pub fn entry_hash(e: &AccessEntry) -> String {
    hex::encode(Sha256::digest(canonical_bytes(e, b"yizhan-access-log-v1")))
}

/// Hex HMAC-SHA256 with the vault's key over the same fields: [`CHAIN_KEYED`].
fn keyed_entry_hash(vault: &Vault, e: &AccessEntry) -> String {
    hex::encode(vault.mac("access_log.entry", &canonical_bytes(e, b"yizhan-access-log-v2")))
}

/// The MAC of a subject's head, so the head cannot be moved to a forged chain.
fn head_mac(vault: &Vault, subject: &str, seq: i64, hash: &str) -> String {
    let mut bytes = Vec::with_capacity(128);
    for part in [subject.as_bytes(), &seq.to_be_bytes(), hash.as_bytes()] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    hex::encode(vault.mac("access_log.head", &bytes))
}

/// A subject's head as stored: the newest seq and hash the log remembers
/// writing, and its MAC (none on heads written before the chain was keyed
/// and not yet sealed by [`Audit::seal_legacy_heads`]).
#[derive(Debug, Clone, sqlx::FromRow)]
struct HeadRow {
    last_seq: i64,
    last_hash: String,
    head_mac: Option<String>,
}

/// A key rotation's word for a subject's chain up to `seq` (see the migration).
#[derive(Debug, Clone, sqlx::FromRow)]
struct CheckpointRow {
    seq: i64,
    digest: String,
    mac: String,
}

/// SHA-256 over every entry up to a checkpoint, each with the hash it carries.
#[derive(Default)]
struct Digest2(Sha256);

impl Digest2 {
    fn add(&mut self, e: &AccessEntry) {
        let bytes = canonical_bytes(e, b"yizhan-access-log-checkpoint");
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(&bytes);
        self.0.update((e.hash.len() as u64).to_be_bytes());
        self.0.update(e.hash.as_bytes());
        self.0.update(e.chain_version.to_be_bytes());
    }
    fn hex(self) -> String {
        hex::encode(self.0.finalize())
    }
}

fn checkpoint_mac(vault: &Vault, subject: &str, seq: i64, digest: &str) -> String {
    let mut bytes = Vec::with_capacity(128);
    for part in [subject.as_bytes(), &seq.to_be_bytes(), digest.as_bytes()] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    hex::encode(vault.mac("access_log.checkpoint", &bytes))
}

fn check_len(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize, required: bool) {
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(field, yizhan_core::Msg::new("error.field.empty")));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(field, yizhan_core::Msg::new("error.field.too_long").int("max", max as i64)));
    }
}

fn validate(e: &NewAccess) -> Result<()> {
    let mut errors = Vec::new();
    check_len(&mut errors, "subject_user_id", &e.subject_user_id, MAX_LABEL_CHARS, true);
    check_len(&mut errors, "actor_user_id", &e.actor_user_id, MAX_LABEL_CHARS, true);
    check_len(&mut errors, "actor_label", &e.actor_label, MAX_LABEL_CHARS, false);
    if let Some(o) = &e.org_id {
        check_len(&mut errors, "org_id", o, MAX_LABEL_CHARS, true);
    }
    if let Some(o) = &e.org_label {
        check_len(&mut errors, "org_label", o, MAX_LABEL_CHARS, false);
    }
    check_len(&mut errors, "what", &e.what, MAX_WHAT_CHARS, true);
    check_len(&mut errors, "reason", &e.why, MAX_WHY_CHARS, true);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::fields(errors))
    }
}

enum Attempt {
    Done(Box<AccessEntry>),
    /// A concurrent writer took the seq, or the engine asks to try again.
    Retry(String),
}

impl Audit {
    pub fn new(ctx: Ctx) -> Audit {
        Audit { ctx }
    }

    /// Append one entry to the subject's log, in its own write transaction.
    pub async fn record(&self, e: NewAccess) -> Result<AccessEntry> {
        validate(&e)?;
        let mut last_err = None;
        for _ in 0..MAX_RECORD_ATTEMPTS {
            match self.try_record(&e).await? {
                Attempt::Done(entry) => return Ok(*entry),
                Attempt::Retry(err) => {
                    last_err = Some(err);
                    tokio::task::yield_now().await;
                }
            }
        }
        let cause = last_err.unwrap_or_default();
        Err(Error::internal(anyhow::anyhow!("access log append kept conflicting: {cause}")))
    }

    async fn try_record(&self, e: &NewAccess) -> Result<Attempt> {
        let mut tx = self.ctx.db.begin().await?;
        let last: Option<(i64, String)> = match sqlx::query_as(
            "SELECT seq, hash FROM access_log WHERE subject_user_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(&e.subject_user_id)
        .fetch_optional(tx.conn())
        .await
        {
            Ok(v) => v,
            Err(err) if is_retryable(&err) => return Ok(Attempt::Retry(err.to_string())),
            Err(err) => return Err(err.into()),
        };
        let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS_HASH.to_string()));
        let mut entry = AccessEntry {
            id: self.ctx.new_id(),
            subject_user_id: e.subject_user_id.clone(),
            seq: prev_seq + 1,
            actor_user_id: e.actor_user_id.clone(),
            actor_label: e.actor_label.clone(),
            org_id: e.org_id.clone(),
            org_label: e.org_label.clone(),
            what: e.what.clone(),
            why: e.why.trim().to_string(),
            at_ms: self.ctx.now_ms(),
            prev_hash,
            hash: String::new(),
            chain_version: CHAIN_KEYED,
        };
        entry.hash = keyed_entry_hash(&self.ctx.vault, &entry);
        let insert = sqlx::query(&format!(
            "INSERT INTO access_log ({ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&entry.id)
        .bind(&entry.subject_user_id)
        .bind(entry.seq)
        .bind(&entry.actor_user_id)
        .bind(&entry.actor_label)
        .bind(&entry.org_id)
        .bind(&entry.org_label)
        .bind(&entry.what)
        .bind(&entry.why)
        .bind(entry.at_ms)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .bind(entry.chain_version)
        .execute(tx.conn())
        .await;
        match insert {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) || is_retryable(&err) => return Ok(Attempt::Retry(err.to_string())),
            Err(err) => return Err(err.into()),
        }
        let head = sqlx::query(
            "INSERT INTO access_log_heads (subject_user_id, last_seq, last_hash, head_mac) VALUES ($1, $2, $3, $4)
             ON CONFLICT (subject_user_id) DO UPDATE
             SET last_seq = excluded.last_seq, last_hash = excluded.last_hash, head_mac = excluded.head_mac",
        )
        .bind(&entry.subject_user_id)
        .bind(entry.seq)
        .bind(&entry.hash)
        .bind(head_mac(&self.ctx.vault, &entry.subject_user_id, entry.seq, &entry.hash))
        .execute(tx.conn())
        .await;
        match head {
            Ok(_) => {}
            Err(err) if is_retryable(&err) => return Ok(Attempt::Retry(err.to_string())),
            Err(err) => return Err(err.into()),
        }
        match tx.commit().await {
            Ok(()) => Ok(Attempt::Done(Box::new(entry))),
            Err(Error { source: Some(src), .. })
                if src.downcast_ref::<sqlx::Error>().is_some_and(|s| is_unique_violation(s) || is_retryable(s)) =>
            {
                Ok(Attempt::Retry(format!("commit: {src}")))
            }
            Err(err) => Err(err),
        }
    }

    /// The subject's entries, newest first; `before_seq` pages further back.
    pub async fn list(&self, subject_user_id: &str, limit: i64, before_seq: Option<i64>) -> Result<Vec<AccessEntry>> {
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        let before = before_seq.unwrap_or(i64::MAX);
        let rows: Vec<AccessEntry> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM access_log WHERE subject_user_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(subject_user_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        Ok(rows)
    }

    /// Every entry of the subject, oldest first.
    async fn all(&self, subject_user_id: &str) -> Result<Vec<AccessEntry>> {
        let rows: Vec<AccessEntry> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM access_log WHERE subject_user_id = $1 ORDER BY seq ASC"
        ))
        .bind(subject_user_id)
        .fetch_all(&self.ctx.db.pool)
        .await?;
        Ok(rows)
    }

    /// Recompute the subject's chain: every hash, every link, no gaps in seq,
    /// and nothing missing after the newest entry the log remembers writing.
    pub async fn verify(&self, subject_user_id: &str) -> Result<ChainCheck> {
        // Read the head first: an entry appended between the two reads then
        // only makes the log longer than the head, which is fine.
        let head = self.head(subject_user_id).await?;
        let checkpoint = self.checkpoint(subject_user_id).await?;
        let entries = self.all(subject_user_id).await?;
        let count = i64::try_from(entries.len()).map_err(Error::internal)?;
        let first_bad_seq =
            first_bad_seq(&self.ctx.vault, subject_user_id, &entries, head.as_ref(), checkpoint.as_ref());
        Ok(ChainCheck { entries: count, ok: first_bad_seq.is_none(), first_bad_seq })
    }

    async fn checkpoint(&self, subject_user_id: &str) -> Result<Option<CheckpointRow>> {
        Ok(sqlx::query_as("SELECT seq, digest, mac FROM access_log_checkpoints WHERE subject_user_id = $1")
            .bind(subject_user_id)
            .fetch_optional(&self.ctx.db.pool)
            .await?)
    }

    async fn head(&self, subject_user_id: &str) -> Result<Option<HeadRow>> {
        Ok(sqlx::query_as("SELECT last_seq, last_hash, head_mac FROM access_log_heads WHERE subject_user_id = $1")
            .bind(subject_user_id)
            .fetch_optional(&self.ctx.db.pool)
            .await?)
    }

    /// Everything in the subject's log, oldest first, for the subject's data
    /// export, with the chain's head (seq and hash): kept by the person, it
    /// shows a chain rewritten or cut short afterwards.
    pub async fn export(&self, subject_user_id: &str) -> Result<serde_json::Value> {
        let head = self.head(subject_user_id).await?;
        let entries = self.all(subject_user_id).await?;
        let check = self.verify(subject_user_id).await?;
        let head = head.map(|h| serde_json::json!({ "seq": h.last_seq, "hash": h.last_hash }));
        Ok(serde_json::json!({
            "subject_user_id": subject_user_id,
            "entries": entries,
            "chain": check,
            "head": head,
        }))
    }

    /// Give every head written before the chain was keyed its MAC, vouching
    /// for the plain chain as it stands now; run at start, before serving.
    /// Returns how many heads were sealed.
    pub async fn seal_legacy_heads(&self) -> Result<u64> {
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT subject_user_id, last_seq, last_hash FROM access_log_heads WHERE head_mac IS NULL")
                .fetch_all(&self.ctx.db.pool)
                .await?;
        let mut sealed = 0;
        for (subject, seq, hash) in rows {
            let mac = head_mac(&self.ctx.vault, &subject, seq, &hash);
            let mut tx = self.ctx.db.begin().await?;
            sealed += sqlx::query(
                "UPDATE access_log_heads SET head_mac = $1
                 WHERE subject_user_id = $2 AND last_seq = $3 AND last_hash = $4 AND head_mac IS NULL",
            )
            .bind(&mac)
            .bind(&subject)
            .bind(seq)
            .bind(&hash)
            .execute(tx.conn())
            .await?
            .rows_affected();
            tx.commit().await?;
        }
        if sealed > 0 {
            tracing::info!(heads = sealed, "sealed the heads of access logs written before the chain was keyed");
        }
        Ok(sealed)
    }

    /// How many entries the subject's log holds.
    pub async fn count(&self, subject_user_id: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM access_log WHERE subject_user_id = $1")
            .bind(subject_user_id)
            .fetch_one(&self.ctx.db.pool)
            .await?;
        Ok(n)
    }
}

fn first_bad_seq(
    vault: &Vault,
    subject: &str,
    entries: &[AccessEntry],
    head: Option<&HeadRow>,
    checkpoint: Option<&CheckpointRow>,
) -> Option<i64> {
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut expected_seq = 1;
    let mut version = CHAIN_PLAIN;
    // Entries up to a key rotation's checkpoint are vouched for by its digest.
    let covered = checkpoint.map(|c| c.seq).unwrap_or(0);
    let mut digest = Digest2::default();
    for e in entries {
        if e.seq != expected_seq {
            // A removed entry: the first missing seq is the bad one.
            return Some(expected_seq);
        }
        // Plain entries only ever precede keyed ones: a plain entry after a
        // keyed one is a forgery.
        let hash_ok = match e.chain_version {
            _ if e.seq <= covered => matches!(e.chain_version, CHAIN_PLAIN | CHAIN_KEYED),
            CHAIN_PLAIN if version == CHAIN_PLAIN => entry_hash(e) == e.hash,
            CHAIN_KEYED => keyed_entry_hash(vault, e) == e.hash,
            _ => false,
        };
        if e.subject_user_id != subject || e.prev_hash != prev_hash || !hash_ok {
            return Some(e.seq);
        }
        if e.seq <= covered {
            digest.add(e);
            if e.seq == covered {
                let cp = checkpoint?;
                let d = std::mem::take(&mut digest).hex();
                if d != cp.digest || checkpoint_mac(vault, subject, cp.seq, &d) != cp.mac {
                    // Something up to the checkpoint changed; which entry cannot be told.
                    return Some(1);
                }
                // After a rotation only entries keyed with the new key follow.
                version = CHAIN_KEYED;
            }
        } else {
            version = e.chain_version;
        }
        prev_hash = e.hash.clone();
        expected_seq += 1;
    }
    if expected_seq <= covered {
        // Entries the checkpoint vouched for are gone from the end.
        return Some(expected_seq);
    }
    let newest = expected_seq - 1;
    match head {
        // Entries written but gone from the end.
        Some(h) if h.last_seq >= expected_seq => Some(expected_seq),
        Some(h) if h.last_seq == newest && h.last_hash != prev_hash => Some(newest),
        // A head whose MAC is missing or wrong was written without the key:
        // the newest entry can no longer be vouched for.
        Some(h) if h.head_mac.as_deref() != Some(head_mac(vault, subject, h.last_seq, &h.last_hash).as_str()) => {
            Some(newest.max(1))
        }
        // Entries exist but their head is gone, which only tampering does;
        // the newest entry can no longer be vouched for.
        None if !entries.is_empty() => Some(newest),
        _ => None,
    }
}

/// Subjects whose chains a rotation checks at a time.
const REKEY_PAGE: i64 = 200;

/// What a key rotation did to the access logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RekeyReport {
    pub subjects: u64,
    pub entries: u64,
}

/// Move every subject's chain to a new key (`yizhan key rotate`), inside the
/// rotation's transaction: each chain is first checked under the old key (a
/// rotation refuses to launder a chain that does not verify), then a
/// checkpoint under the new key vouches for it as it stands and its head is
/// sealed with the new key. No entry is rewritten: the log stays append-only
/// and the heads in earlier exports still match.
pub async fn rekey(
    tx: &mut yizhan_core::Tx,
    old: &Vault,
    new: &Vault,
    now_ms: i64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RekeyReport> {
    let mut report = RekeyReport::default();
    let mut broken: Vec<String> = Vec::new();
    let mut after = String::new();
    loop {
        let subjects: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT subject_user_id FROM access_log WHERE subject_user_id > $1 ORDER BY subject_user_id LIMIT $2",
        )
        .bind(&after)
        .bind(REKEY_PAGE)
        .fetch_all(tx.conn())
        .await?;
        let Some(last) = subjects.last() else { break };
        after = last.0.clone();
        for (subject,) in subjects {
            let head: Option<HeadRow> =
                sqlx::query_as("SELECT last_seq, last_hash, head_mac FROM access_log_heads WHERE subject_user_id = $1")
                    .bind(&subject)
                    .fetch_optional(tx.conn())
                    .await?;
            let checkpoint: Option<CheckpointRow> =
                sqlx::query_as("SELECT seq, digest, mac FROM access_log_checkpoints WHERE subject_user_id = $1")
                    .bind(&subject)
                    .fetch_optional(tx.conn())
                    .await?;
            let entries: Vec<AccessEntry> = sqlx::query_as(&format!(
                "SELECT {ENTRY_COLUMNS} FROM access_log WHERE subject_user_id = $1 ORDER BY seq ASC"
            ))
            .bind(&subject)
            .fetch_all(tx.conn())
            .await?;
            if first_bad_seq(old, &subject, &entries, head.as_ref(), checkpoint.as_ref()).is_some() {
                broken.push(subject);
                continue;
            }
            let Some(newest) = entries.last() else { continue };
            let mut digest = Digest2::default();
            for e in &entries {
                digest.add(e);
            }
            let digest = digest.hex();
            let mac = checkpoint_mac(new, &subject, newest.seq, &digest);
            sqlx::query(
                "INSERT INTO access_log_checkpoints (subject_user_id, seq, digest, mac, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (subject_user_id) DO UPDATE SET seq = $2, digest = $3, mac = $4, created_at_ms = $5",
            )
            .bind(&subject)
            .bind(newest.seq)
            .bind(&digest)
            .bind(&mac)
            .bind(now_ms)
            .execute(tx.conn())
            .await?;
            sqlx::query("UPDATE access_log_heads SET head_mac = $1 WHERE subject_user_id = $2")
                .bind(head_mac(new, &subject, newest.seq, &newest.hash))
                .bind(&subject)
                .execute(tx.conn())
                .await?;
            report.subjects += 1;
            report.entries += entries.len() as u64;
            progress(1);
        }
    }
    if !broken.is_empty() {
        return Err(Error::new(yizhan_core::Code::Conflict, "audit.rekey.broken_chains")
            .with("count", yizhan_core::Arg::Int(broken.len() as i64)));
    }
    Ok(report)
}

/// How many subjects [`rekey`] will check, for a progress bar.
pub async fn rekey_size(db: &yizhan_core::Db) -> Result<u64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(DISTINCT subject_user_id) FROM access_log").fetch_one(&db.pool).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
