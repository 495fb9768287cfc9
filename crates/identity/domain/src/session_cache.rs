//! Who holds a bearer token, remembered so a request need not read the
//! database: a bounded map from the token's hash to its principal.
//!
//! Revocation takes effect at once: ending a session (or every session of a
//! person, a deletion, a change of role) evicts it here, and on PostgreSQL the
//! same transaction sends a `NOTIFY` that every other server process's
//! listener turns into the same eviction. While a process's listener is not
//! connected it does not use the map at all (every request reads the
//! database), and it clears the map when the listener connects again, since
//! it may have missed an eviction. As a last bound, an entry is trusted for
//! [`MAX_AGE_MS`] at most.
//!
//! A read racing an eviction cannot put back what was evicted: each eviction
//! moves a generation on, and a principal read from the database is kept only
//! if no eviction happened since the read began.

use crate::Principal;
use yizhan_core::cache::{Listener, Remembered};
use yizhan_core::{Db, Engine};

/// Entries kept at most; past this the map is emptied and fills again.
pub const MAX_ENTRIES: usize = 100_000;
/// The longest an entry is trusted without reading the database again.
pub const MAX_AGE_MS: i64 = 60_000;
/// The PostgreSQL channel evictions travel on.
pub const CHANNEL: &str = "yizhan_sessions";

#[derive(Clone)]
struct Entry {
    principal: Principal,
    session_expires_at_ms: i64,
}

/// Token hash → principal, on the shared mechanism of remembered values
/// ([`Remembered`]), with evictions of its own (a token, or every token of a
/// person).
pub struct SessionCache(Remembered<Entry>);

/// What to evict: one session (by token hash) or every session of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    Token(String),
    User(String),
}

impl Eviction {
    pub fn payload(&self) -> String {
        match self {
            Eviction::Token(h) => format!("t:{h}"),
            Eviction::User(u) => format!("u:{u}"),
        }
    }

    fn parse(payload: &str) -> Option<Eviction> {
        if let Some(h) = payload.strip_prefix("t:") {
            return Some(Eviction::Token(h.to_string()));
        }
        payload.strip_prefix("u:").map(|u| Eviction::User(u.to_string()))
    }
}

impl SessionCache {
    /// Trusted from the start on SQLite (one process per database file);
    /// on PostgreSQL only once the listener is connected.
    pub fn new(engine: Engine) -> SessionCache {
        SessionCache(Remembered::new(engine, CHANNEL, MAX_ENTRIES, MAX_AGE_MS))
    }

    /// The principal of a token hash, if remembered and still good at `now_ms`.
    pub fn get(&self, token_hash: &str, now_ms: i64) -> Option<Principal> {
        self.0.get(token_hash, now_ms).filter(|e| e.session_expires_at_ms > now_ms).map(|e| e.principal)
    }

    /// The generation to pass to [`SessionCache::put`] after reading the database.
    pub fn generation(&self) -> u64 {
        self.0.generation()
    }

    /// Remember a principal read from the database, unless an eviction came
    /// in since `generation` was taken.
    pub fn put(
        &self,
        token_hash: &str,
        principal: Principal,
        session_expires_at_ms: i64,
        now_ms: i64,
        generation: u64,
    ) {
        self.0.put(token_hash, Entry { principal, session_expires_at_ms }, now_ms, generation);
    }

    pub fn evict(&self, e: &Eviction) {
        match e {
            Eviction::Token(h) => self.0.evict(h),
            Eviction::User(u) => self.0.evict_where(|v| v.principal.user_id == *u),
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Tell every process of an eviction, in the revoking transaction (PostgreSQL
/// delivers a NOTIFY when, and only if, its transaction commits).
pub async fn announce(tx: &mut yizhan_core::Tx, engine: Engine, e: &Eviction) -> yizhan_core::Result<()> {
    yizhan_core::cache::announce(tx, engine, CHANNEL, &e.payload()).await
}

/// On PostgreSQL: listen for other processes' evictions for as long as the
/// cache lives, reconnecting after a failure (untrusted meanwhile).
pub fn listen(db: &Db, cache: std::sync::Arc<SessionCache>) {
    yizhan_core::cache::listen(db, cache);
}

impl Listener for SessionCache {
    fn channel(&self) -> &'static str {
        CHANNEL
    }
    fn heard(&self, payload: &str) {
        if let Some(e) = Eviction::parse(payload) {
            self.evict(&e);
        }
    }
    fn connected(&self) {
        self.0.trust();
    }
    fn disconnected(&self) {
        self.0.distrust();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str) -> Principal {
        Principal { user_id: id.into(), name: "n".into(), is_admin: false }
    }

    #[test]
    fn an_eviction_during_a_read_keeps_the_stale_principal_out() {
        let c = SessionCache::new(Engine::Sqlite);
        let g = c.generation();
        c.evict(&Eviction::Token("h".into()));
        c.put("h", p("u"), 10_000, 0, g);
        assert!(c.get("h", 1).is_none());
        let g = c.generation();
        c.put("h", p("u"), 10_000, 0, g);
        assert_eq!(c.get("h", 1).unwrap().user_id, "u");
        // Expired sessions and old entries are not answered.
        assert!(c.get("h", 10_000).is_none());
        c.put("h2", p("u"), i64::MAX, 0, c.generation());
        assert!(c.get("h2", MAX_AGE_MS).is_none());
        c.evict(&Eviction::User("u".into()));
        assert!(c.is_empty());
    }

    #[test]
    fn an_untrusted_cache_answers_nothing() {
        let c = SessionCache::new(Engine::Postgres);
        c.put("h", p("u"), 10_000, 0, c.generation());
        assert!(c.get("h", 1).is_none());
        c.connected();
        c.put("h", p("u"), 10_000, 0, c.generation());
        assert!(c.get("h", 1).is_some());
        c.disconnected();
        assert!(c.get("h", 1).is_none());
    }
}
