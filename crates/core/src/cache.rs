//! What a request would otherwise read from the database on every call,
//! remembered in a bounded map that every server process forgets at once
//! when it changes.
//!
//! The rules are the session cache's (the identity room's), for any value:
//! - **Forgotten at a change.** Whoever changes what an entry says calls
//!   [`Remembered::forget`] inside the changing transaction: it forgets the
//!   key here and, on PostgreSQL, sends a `NOTIFY` on the cache's channel that
//!   every other process's listener ([`listen`]) turns into the same
//!   forgetting when (and only if) the transaction commits. After the commit
//!   it calls [`Remembered::forgotten`], since a read that began before the
//!   commit may have put the old value back.
//! - **A read racing a change cannot put back what was forgotten.** Each
//!   forgetting moves a generation on; a value read from the database is kept
//!   only if the generation did not move since the read began
//!   ([`Remembered::generation`], then [`Remembered::put`]).
//! - **Untrusted while deaf.** While a process's listener is not connected it
//!   answers nothing from the map (every request reads the database), and it
//!   empties the map when the listener connects again, since it may have
//!   missed a change. On SQLite one process owns the database file, so the map
//!   is trusted from the start.
//! - **Bounded.** At most `max_entries` keys (past that the map is emptied and
//!   fills again), and no entry is trusted longer than `max_age_ms`.

use crate::{Db, Engine, Result, Tx};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

struct Entry<V> {
    value: V,
    at_ms: i64,
}

/// A bounded map of values read from the database, forgotten in every
/// process when they change. See the module documentation.
pub struct Remembered<V> {
    map: Mutex<HashMap<String, Entry<V>>>,
    generation: AtomicU64,
    trusted: AtomicBool,
    engine: Engine,
    channel: &'static str,
    max_entries: usize,
    max_age_ms: i64,
}

impl<V: Clone + Send + 'static> Remembered<V> {
    /// A cache whose changes travel on the PostgreSQL channel `channel`; on
    /// PostgreSQL its listener starts on the current tokio runtime.
    pub fn start(db: &Db, channel: &'static str, max_entries: usize, max_age_ms: i64) -> Arc<Remembered<V>> {
        let c = Arc::new(Remembered::new(db.engine(), channel, max_entries, max_age_ms));
        listen(db, c.clone());
        c
    }

    /// A cache without its listener (see [`listen`]): trusted from the start
    /// on SQLite, on PostgreSQL only once a listener is connected.
    pub fn new(engine: Engine, channel: &'static str, max_entries: usize, max_age_ms: i64) -> Remembered<V> {
        Remembered {
            map: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            trusted: AtomicBool::new(engine == Engine::Sqlite),
            engine,
            channel,
            max_entries: max_entries.max(1),
            max_age_ms,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry<V>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key`, if remembered, trusted and younger than the age bound at `now_ms`.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<V> {
        if !self.trusted.load(Ordering::Acquire) {
            return None;
        }
        let map = self.lock();
        let e = map.get(key)?;
        (now_ms - e.at_ms < self.max_age_ms && e.at_ms <= now_ms).then(|| e.value.clone())
    }

    /// The generation to pass to [`Remembered::put`]: take it before reading the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remember a value read from the database, unless something was
    /// forgotten since `generation` was taken (the read may be older than it).
    pub fn put(&self, key: &str, value: V, now_ms: i64, generation: u64) {
        if !self.trusted.load(Ordering::Acquire) {
            return;
        }
        let mut map = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if map.len() >= self.max_entries && !map.contains_key(key) {
            map.clear();
        }
        map.insert(key.to_string(), Entry { value, at_ms: now_ms });
    }

    /// Forget `key` in this process only.
    pub fn evict(&self, key: &str) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.remove(key);
    }

    /// Forget `key` here and, when `tx` commits, in every other process.
    pub async fn forget(&self, tx: &mut Tx, key: &str) -> Result<()> {
        self.evict(key);
        announce(tx, self.engine, self.channel, key).await
    }

    /// Forget, in this process only, every entry whose value `f` picks.
    pub fn evict_where(&self, f: impl Fn(&V) -> bool) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.retain(|_, e| !f(&e.value));
    }

    /// After the transaction that forgot `key` committed: forget it once more
    /// (a read that began before the commit may have put it back).
    pub fn forgotten(&self, key: &str) {
        self.evict(key);
    }

    /// The listener lost its connection: answer nothing until [`Remembered::trust`].
    pub fn distrust(&self) {
        self.trusted.store(false, Ordering::Release);
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    /// The listener is connected: start again from an empty map.
    pub fn trust(&self) {
        let mut map = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
        self.trusted.store(true, Ordering::Release);
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the map answers (false on PostgreSQL while the listener is not connected).
    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }
}

/// Tell every process listening on `channel` (PostgreSQL delivers the
/// `NOTIFY` when, and only if, `tx` commits; nothing to do on SQLite).
pub async fn announce(tx: &mut Tx, engine: Engine, channel: &str, payload: &str) -> Result<()> {
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(tx.conn()).await?;
    }
    Ok(())
}

/// What hears a PostgreSQL channel's notices (see [`listen`]).
pub trait Listener: Send + Sync + 'static {
    /// The channel's name.
    fn channel(&self) -> &'static str;
    /// One notice's payload.
    fn heard(&self, payload: &str);
    /// The listener is connected: from now on no notice is missed.
    fn connected(&self);
    /// The listener lost its connection: notices may be missed from now on.
    fn disconnected(&self);
}

impl<V: Clone + Send + 'static> Listener for Remembered<V> {
    fn channel(&self) -> &'static str {
        self.channel
    }
    fn heard(&self, key: &str) {
        self.evict(key);
    }
    fn connected(&self) {
        self.trust();
    }
    fn disconnected(&self) {
        self.distrust();
    }
}

/// On PostgreSQL: hear the notices of `l`'s channel for as long as `l`
/// lives, reconnecting after a failure (distrusted meanwhile). Nothing to do
/// on SQLite.
pub fn listen<L: Listener>(db: &Db, l: Arc<L>) {
    if db.engine() != Engine::Postgres {
        return;
    }
    let url = db.url().to_string();
    let channel = l.channel();
    let weak = Arc::downgrade(&l);
    drop(l);
    tokio::spawn(async move {
        let mut backoff_ms = 100u64;
        loop {
            let Some(l) = weak.upgrade() else { return };
            match sqlx::postgres::PgListener::connect(&url).await {
                Ok(mut listener) => {
                    if listener.listen(channel).await.is_ok() {
                        l.connected();
                        backoff_ms = 100;
                        drop(l);
                        // Ok(None) or an error: the connection was lost, notices may have been missed.
                        while let Ok(Some(n)) = listener.try_recv().await {
                            let Some(l) = weak.upgrade() else { return };
                            l.heard(n.payload());
                        }
                        let Some(l) = weak.upgrade() else { return };
                        l.disconnected();
                        tracing::warn!(channel, "a listener lost its connection; reading the database meanwhile");
                    }
                }
                Err(e) => tracing::warn!(channel, error = %e, "a listener cannot connect"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(backoff_ms)).await;
            backoff_ms = (backoff_ms * 2).min(5_000);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_during_a_read_keeps_the_stale_value_out() {
        let c: Remembered<i64> = Remembered::new(Engine::Sqlite, "t", 10, 1_000);
        let g = c.generation();
        c.evict("k");
        c.put("k", 1, 0, g);
        assert_eq!(c.get("k", 1), None);
        let g = c.generation();
        c.put("k", 2, 0, g);
        assert_eq!(c.get("k", 1), Some(2));
        // Not trusted past its age.
        assert_eq!(c.get("k", 1_000), None);
        c.forgotten("k");
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_and_untrusted_until_heard() {
        let c: Remembered<i64> = Remembered::new(Engine::Sqlite, "t", 3, 1_000);
        for i in 0..10 {
            let g = c.generation();
            c.put(&format!("k{i}"), i, 0, g);
            assert!(c.len() <= 3);
        }
        let pg: Remembered<i64> = Remembered::new(Engine::Postgres, "t", 3, 1_000);
        let g = pg.generation();
        pg.put("k", 1, 0, g);
        assert_eq!(pg.get("k", 0), None);
        pg.trust();
        let g = pg.generation();
        pg.put("k", 1, 0, g);
        assert_eq!(pg.get("k", 0), Some(1));
        pg.distrust();
        assert_eq!(pg.get("k", 0), None);
        assert!(pg.is_empty());
    }
}
