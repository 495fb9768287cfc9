//! Keys for data encrypted at rest (identity numbers, later medical results).
//! The key lives outside the database: generated into the data directory at
//! first start, or given by the operator as 128 hex digits.

use crate::error::{Arg, Code, Error, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;

pub struct Vault {
    enc_key: [u8; 32],
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// From 64 bytes of key material: 32 for AES-256-GCM, 32 for the HMAC blind index.
    pub fn from_bytes(bytes: &[u8]) -> Result<Vault> {
        if bytes.len() != 64 {
            return Err(Error::new(Code::ValidationFailed, "error.vault.key_length"));
        }
        let mut enc_key = [0u8; 32];
        let mut mac_key = [0u8; 32];
        enc_key.copy_from_slice(&bytes[..32]);
        mac_key.copy_from_slice(&bytes[32..]);
        Ok(Vault { enc_key, mac_key })
    }

    pub fn from_hex(s: &str) -> Result<Vault> {
        let bytes = hex::decode(s.trim()).map_err(|_| Error::new(Code::ValidationFailed, "error.vault.key_not_hex"))?;
        Vault::from_bytes(&bytes)
    }

    /// The operator's key if given, else `DIR/secret.key`, created (mode 0600) on first start.
    pub fn load_or_create(data_dir: &Path, operator_hex: Option<&str>) -> Result<Vault> {
        if let Some(h) = operator_hex.filter(|h| !h.trim().is_empty()) {
            return Vault::from_hex(h);
        }
        std::fs::create_dir_all(data_dir).map_err(Error::internal)?;
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(s) => Vault::from_hex(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 64];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                write_private(&path, &hex::encode(bytes))?;
                tracing::info!(path = %path.display(), "generated a new secret key; back it up with the database");
                Vault::from_bytes(&bytes)
            }
            Err(e) => Err(Error::internal(e)),
        }
    }

    /// A vault with a random key, for tests.
    pub fn random() -> Vault {
        let mut bytes = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Vault { enc_key: bytes[..32].try_into().unwrap_or([0; 32]), mac_key: bytes[32..].try_into().unwrap_or([1; 32]) }
    }

    /// Encrypt; `context` binds the ciphertext to its place (e.g. "id_number:USER").
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String> {
        let cipher = Aes256Gcm::new_from_slice(&self.enc_key).map_err(|e| Error::internal(anyhow::anyhow!("{e}")))?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| Error::internal(anyhow::anyhow!("encryption failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>> {
        let body =
            sealed.strip_prefix("v1:").ok_or_else(|| Error::internal(anyhow::anyhow!("unknown ciphertext version")))?;
        let raw = base64::engine::general_purpose::STANDARD.decode(body).map_err(Error::internal)?;
        if raw.len() < 12 {
            return Err(Error::internal(anyhow::anyhow!("ciphertext too short")));
        }
        let cipher = Aes256Gcm::new_from_slice(&self.enc_key).map_err(|e| Error::internal(anyhow::anyhow!("{e}")))?;
        cipher
            .decrypt(Nonce::from_slice(&raw[..12]), Payload { msg: &raw[12..], aad: context.as_bytes() })
            .map_err(|_| Error::internal(anyhow::anyhow!("decryption failed: wrong key or altered data")))
    }

    /// Keyed hash to find a secret value without storing it: HMAC-SHA256(domain || 0 || value).
    pub fn blind_index(&self, domain: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).unwrap_or_else(|_| unreachable!());
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A keyed hash that names this key without revealing it, recorded in
    /// the database at first start so a process with another key is refused.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.mac("fingerprint", b"yizhan"))
    }

    /// Record this key's fingerprint in the database if none is there yet,
    /// and refuse a key whose fingerprint differs from the recorded one:
    /// data sealed or hashed under one key cannot be read under another.
    pub async fn check_against(&self, db: &crate::Db, now_ms: i64) -> Result<()> {
        let mine = self.fingerprint();
        let mut tx = db.begin().await?;
        sqlx::query(
            "INSERT INTO vault_fingerprint (id, fingerprint, created_at_ms) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&mine)
        .bind(now_ms)
        .execute(tx.conn())
        .await?;
        let (recorded,): (String,) =
            sqlx::query_as("SELECT fingerprint FROM vault_fingerprint WHERE id = 1").fetch_one(tx.conn()).await?;
        tx.commit().await?;
        if recorded != mine {
            return Err(Error::new(Code::Conflict, "error.vault.key_mismatch")
                .with("variable", Arg::Text("YIZHAN_SECRET_KEY".into()))
                .with("file", Arg::Text("DATA_DIR/secret.key".into())));
        }
        Ok(())
    }

    /// A keyed MAC for tokens the platform issues and later checks (QR payloads, CSRF).
    pub fn mac(&self, domain: &str, value: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).unwrap_or_else(|_| unreachable!());
        mac.update(b"mac:");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(Error::internal)?;
    f.write_all(contents.as_bytes()).map_err(Error::internal)?;
    f.sync_all().map_err(Error::internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_detects_tampering() {
        let v = Vault::random();
        let s = v.seal(b"110101199003077777", "ctx").unwrap();
        assert!(!s.contains("1101011990"));
        assert_eq!(v.open(&s, "ctx").unwrap(), b"110101199003077777");
        assert!(v.open(&s, "other").is_err());
        assert!(Vault::random().open(&s, "ctx").is_err());
        assert_eq!(v.blind_index("id", "x"), v.blind_index("id", "x"));
        assert_ne!(v.blind_index("id", "x"), Vault::random().blind_index("id", "x"));
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Vault::load_or_create(dir.path(), None).unwrap();
        let b = Vault::load_or_create(dir.path(), None).unwrap();
        assert_eq!(a.blind_index("d", "v"), b.blind_index("d", "v"));
    }
}
