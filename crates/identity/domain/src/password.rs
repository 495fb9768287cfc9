//! Argon2id password hashes, computed off the async threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use yizhan_core::{Error, Result};

#[derive(Debug, Clone, Copy)]
pub struct Hasher {
    params: (u32, u32, u32),
}

impl Hasher {
    /// Argon2id with the crate's default (OWASP) cost, or a tiny cost for tests.
    pub fn new(fast_for_tests: bool) -> Hasher {
        let params = if fast_for_tests {
            (8, 1, 1)
        } else {
            (Params::DEFAULT_M_COST, Params::DEFAULT_T_COST, Params::DEFAULT_P_COST)
        };
        Hasher { params }
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let (m, t, p) = self.params;
        let params = Params::new(m, t, p, None).map_err(|e| Error::internal(anyhow::anyhow!("argon2 params: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// A PHC string ("$argon2id$v=19$m=…"); `salt` is 16 random bytes.
    pub async fn hash(&self, password: String, salt: [u8; 16]) -> Result<String> {
        let argon2 = self.argon2()?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(anyhow::anyhow!("salt: {e}")))?;
            argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(anyhow::anyhow!("argon2 hash: {e}")))
        })
        .await
        .map_err(Error::internal)?
    }

    /// Whether `password` matches `phc`. The cost is read from the stored
    /// hash, so raising the default cost later keeps old hashes working.
    /// A malformed or erased hash matches nothing.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool> {
        let argon2 = self.argon2()?;
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return false;
            };
            argon2.verify_password(password.as_bytes(), &parsed).is_ok()
        })
        .await
        .map_err(Error::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_carry_their_cost() {
        let fast = Hasher::new(true);
        let h = fast.hash("correct horse".into(), [7; 16]).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(fast.verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!fast.verify("wrong horse".into(), h.clone()).await.unwrap());
        // A hasher at another cost still checks it: the cost is read from the hash.
        let default = Hasher::new(false);
        assert!(default.verify("correct horse".into(), h).await.unwrap());
        // Erased or garbage hashes match nothing.
        assert!(!fast.verify("".into(), "".into()).await.unwrap());
        assert!(!fast.verify("x".into(), "$argon2id$garbage".into()).await.unwrap());
    }

    #[tokio::test]
    async fn the_default_cost_is_argon2id_at_owasp_parameters() {
        let started = std::time::Instant::now();
        let h = Hasher::new(false).hash("correct horse".into(), [1; 16]).await.unwrap();
        eprintln!("default-cost hash took {:?}", started.elapsed());
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }
}
