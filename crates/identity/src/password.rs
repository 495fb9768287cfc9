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
