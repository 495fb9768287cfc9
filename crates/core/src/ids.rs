use rand::{rngs::StdRng, RngCore, SeedableRng};
use std::sync::{Arc, Mutex};

/// The only source of randomness in domain code, injected so tests can be
/// repeated with a seed.
pub trait Random: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);

    fn next_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    fn below(&self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// `len` random bytes as lowercase hex.
    fn hex(&self, len: usize) -> String {
        let mut b = vec![0u8; len];
        self.fill(&mut b);
        hex::encode(b)
    }
}

pub type SharedRandom = Arc<dyn Random>;

/// A CSPRNG seeded by the operating system: the thread's ChaCha generator,
/// reseeded from the OS, so an id costs no system call.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::thread_rng().fill_bytes(buf);
    }
}

/// A repeatable random source for tests.
pub struct SeededRandom(Mutex<StdRng>);

impl SeededRandom {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self(Mutex::new(StdRng::seed_from_u64(seed))))
    }
}

impl Random for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.fill_bytes(buf);
    }
}

/// Time-ordered text id: 12 hex digits of epoch milliseconds, 16 random hex digits.
pub fn new_id(now_ms: i64, rng: &dyn Random) -> String {
    format!("{:012x}{:016x}", now_ms.max(0), rng.next_u64())
}
