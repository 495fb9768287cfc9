//! Shared ground for every yizhan domain crate: the database handle over both
//! engines, the injected clock and random source, the public error codes, the
//! key vault for data encrypted at rest, money as integer fen, and the test
//! database helper. Nothing here knows HTTP or any domain's tables.

pub mod cache;
pub mod clock;
pub mod db;
pub mod error;
pub mod group;
pub mod ids;
pub mod money;
pub mod msg;
pub mod testing;
pub mod time;
pub mod vault;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use db::{Db, Engine, Flushing, MigrationSet, Params, Tx};
pub use error::{Class, Code, Error, FieldError, Result};
pub use ids::{OsRandom, Random, SeededRandom, SharedRandom};
pub use money::Fen;
pub use msg::{Arg, Msg};
pub use vault::Vault;

use std::sync::Arc;

/// What every domain service is built from: storage, time, randomness and
/// the key vault. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub db: Db,
    pub clock: SharedClock,
    pub rng: SharedRandom,
    pub vault: Arc<Vault>,
}

impl Ctx {
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A new time-ordered identifier: 12 hex digits of milliseconds, then 16 random.
    pub fn new_id(&self) -> String {
        ids::new_id(self.clock.now_ms(), &*self.rng)
    }
}
