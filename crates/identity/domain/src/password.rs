//! Argon2id password hashes, computed off the async threads, a bounded
//! number at once: each takes about 19 MiB, so a flood of logins must not
//! take the process's memory.

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use yizhan_core::{Code, Error, Result};

/// What a caller refused for want of a hashing slot is told to wait.
const BUSY_RETRY_AFTER_S: u64 = 1;

thread_local! {
    /// The Argon2 working memory of a hashing thread, kept and reused: freeing
    /// and allocating 19 MiB per hash left the allocator holding far more.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` with at least `count` blocks of this thread's reused memory.
fn with_blocks<T>(count: usize, f: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        if blocks.len() < count {
            blocks.resize(count, argon2::Block::default());
        }
        f(&mut blocks[..count])
    })
}

/// The PHC string of `password` hashed with `argon2`'s parameters, on reused memory.
fn hash_reusing_memory(argon2: &Argon2<'_>, password: &[u8], salt: &SaltString) -> password_hash::Result<String> {
    let params = argon2.params().clone();
    let salt = salt.as_salt();
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        with_blocks(params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password, salt_bytes, out, blocks)
        })
        .map_err(password_hash::Error::from)
    })?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt),
        hash: Some(output),
    }
    .to_string())
}

/// Whether `password` gives the stored hash, with the stored cost, on reused memory.
fn verify_reusing_memory(password: &[u8], stored: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    let ok = with_blocks(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt_bytes, &mut out, blocks)
    });
    // Output compares in constant time.
    ok.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
}

/// A hashing job for the pool.
type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug, Clone)]
pub struct Hasher {
    params: (u32, u32, u32),
    slots: Arc<Semaphore>,
    wait: Duration,
    /// The pool's queue. Hashes run on a few threads of their own, one per
    /// slot, never on tokio's blocking pool: each hash takes ~19 MiB, and the
    /// allocator keeps freed memory with the thread (its arena), so hundreds
    /// of blocking threads each kept their own 19 MiB. A fixed pool bounds it.
    jobs: std::sync::mpsc::Sender<Job>,
}

/// Start `n` hashing threads; they end when every sender is dropped.
fn start_pool(n: usize) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || loop {
            let job = match rx.lock() {
                Ok(guard) => guard.recv(),
                Err(_) => return,
            };
            match job {
                Ok(job) => job(),
                Err(_) => return,
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password hashing thread");
        }
    }
    tx
}

impl Hasher {
    /// Argon2id with the crate's default (OWASP) cost, or a tiny cost for
    /// tests; at most `max_at_once` hashes run at once (at least one), and a
    /// caller waits up to `wait_ms` for a turn.
    pub fn new(fast_for_tests: bool, max_at_once: usize, wait_ms: u64) -> Hasher {
        let params = if fast_for_tests {
            (8, 1, 1)
        } else {
            (Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, Params::DEFAULT_P_COST)
        };
        let n = max_at_once.max(1);
        Hasher { params, slots: Arc::new(Semaphore::new(n)), wait: Duration::from_millis(wait_ms), jobs: start_pool(n) }
    }

    /// Run `f` on the hashing pool.
    async fn on_pool<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| Error::internal(anyhow::anyhow!("the password hashing pool is gone")))?;
        rx.await.map_err(|_| Error::internal(anyhow::anyhow!("a password hashing job was lost")))
    }

    /// How many more hashes could start now.
    pub fn free_slots(&self) -> usize {
        self.slots.available_permits()
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(Error::internal(closed)),
            Err(_) => Err(Error::new(Code::Busy, "error.busy").with_retry_after(BUSY_RETRY_AFTER_S)),
        }
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let (m, t, p) = self.params;
        let params = Params::new(m, t, p, None).map_err(|e| Error::internal(anyhow::anyhow!("argon2 params: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// A PHC string ("$argon2id$v=19$m=…"); `salt` is 16 random bytes.
    pub async fn hash(&self, password: String, salt: [u8; 16]) -> Result<String> {
        let argon2 = self.argon2()?;
        let permit = self.slot().await?;
        self.on_pool(move || {
            let _permit = permit;
            let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(anyhow::anyhow!("salt: {e}")))?;
            hash_reusing_memory(&argon2, password.as_bytes(), &salt)
                .map_err(|e| Error::internal(anyhow::anyhow!("argon2 hash: {e}")))
        })
        .await?
    }

    /// Whether `password` matches `phc`. The cost is read from the stored
    /// hash, so raising the default cost later keeps old hashes working.
    /// A malformed or erased hash matches nothing.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool> {
        let argon2 = self.argon2()?;
        let permit = self.slot().await?;
        self.on_pool(move || {
            let _permit = permit;
            let _ = &argon2;
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return false;
            };
            verify_reusing_memory(password.as_bytes(), &parsed)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_carry_their_cost() {
        let fast = Hasher::new(true, 2, 5_000);
        let h = fast.hash("correct horse".into(), [7; 16]).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(fast.verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!fast.verify("wrong horse".into(), h.clone()).await.unwrap());
        // A hasher at another cost still checks it: the cost is read from the hash.
        let default = Hasher::new(false, 2, 5_000);
        assert!(default.verify("correct horse".into(), h).await.unwrap());
        // Erased or garbage hashes match nothing.
        assert!(!fast.verify("".into(), "".into()).await.unwrap());
        assert!(!fast.verify("x".into(), "$argon2id$garbage".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_on_reused_memory_match_the_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(&[9; 16]).unwrap();
        for (m, t, p) in [(8, 1, 1), (64, 2, 1), (Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, 1)] {
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(m, t, p, None).unwrap());
            let theirs = argon2.hash_password(b"correct horse", &salt).unwrap().to_string();
            let ours = hash_reusing_memory(&argon2, b"correct horse", &salt).unwrap();
            assert_eq!(ours, theirs, "m={m}");
            // Each verifies the other's.
            assert!(verify_reusing_memory(b"correct horse", &PasswordHash::new(&theirs).unwrap()));
            assert!(argon2.verify_password(b"correct horse", &PasswordHash::new(&ours).unwrap()).is_ok());
            assert!(!verify_reusing_memory(b"correct horsE", &PasswordHash::new(&theirs).unwrap()));
        }
        // Hashes made earlier with the crate's own (argon2id v19) still verify.
        let earlier = Argon2::default().hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_reusing_memory(b"pw", &PasswordHash::new(&earlier).unwrap()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hash_waits_for_a_slot_then_the_server_is_busy() {
        let hasher = Hasher::new(false, 1, 20);
        let first = {
            let h = hasher.clone();
            tokio::spawn(async move { h.hash("correct horse".into(), [1; 16]).await })
        };
        while hasher.free_slots() > 0 {
            tokio::task::yield_now().await;
        }
        let e = hasher.verify("x".into(), "$argon2id$garbage".into()).await.unwrap_err();
        assert_eq!(e.code, Code::Busy);
        assert_eq!(e.msg.key, "error.busy");
        assert_eq!(e.retry_after_s, Some(BUSY_RETRY_AFTER_S));
        // The slot comes back when the hash is done.
        assert!(first.await.unwrap().is_ok());
        assert_eq!(hasher.free_slots(), 1);
        assert!(!hasher.verify("x".into(), "$argon2id$garbage".into()).await.unwrap());
    }

    #[tokio::test]
    async fn the_default_cost_is_argon2id_at_owasp_parameters() {
        let started = std::time::Instant::now();
        let h = Hasher::new(false, 2, 5_000).hash("correct horse".into(), [1; 16]).await.unwrap();
        eprintln!("default-cost hash took {:?}", started.elapsed());
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }
}
