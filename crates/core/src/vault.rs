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
    /// The MAC half of the key this one replaced (`secret.key.previous`), if
    /// the operator keeps it: tokens printed before a rotation (static QR
    /// codes) still check. It never seals, opens or indexes anything.
    previous_mac_key: Option<[u8; 32]>,
}

/// The key file in a data directory, and the two a rotation leaves next to it.
pub const KEY_FILE: &str = "secret.key";
/// Written (and synced) before a rotation commits; becomes `secret.key` after.
pub const NEXT_KEY_FILE: &str = "secret.key.next";
/// The key a rotation replaced, kept so printed QR codes still check.
pub const PREVIOUS_KEY_FILE: &str = "secret.key.previous";

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
        Ok(Vault { enc_key, mac_key, previous_mac_key: None })
    }

    /// A new random key.
    pub fn generate() -> Vault {
        let mut bytes = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut enc_key = [0u8; 32];
        let mut mac_key = [0u8; 32];
        enc_key.copy_from_slice(&bytes[..32]);
        mac_key.copy_from_slice(&bytes[32..]);
        Vault { enc_key, mac_key, previous_mac_key: None }
    }

    /// The key as 128 hex digits, for writing it to its file (never to a log).
    pub fn to_hex(&self) -> String {
        let mut bytes = self.enc_key.to_vec();
        bytes.extend_from_slice(&self.mac_key);
        hex::encode(bytes)
    }

    /// Also accept MACs made with `previous` (see [`Vault::mac_matches`]).
    pub fn with_previous(mut self, previous: &Vault) -> Vault {
        self.previous_mac_key = Some(previous.mac_key);
        self
    }

    /// Whether the key a rotation replaced is still kept for checking MACs.
    pub fn has_previous(&self) -> bool {
        self.previous_mac_key.is_some()
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
        Vault::generate()
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
        mac_with(&self.mac_key, domain, value)
    }

    /// Whether `tag` is the first `tag.len()` bytes (at least 8) of this
    /// key's MAC of `value`, or of the previous key's while it is kept.
    /// Compared in constant time.
    pub fn mac_matches(&self, domain: &str, value: &[u8], tag: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        if tag.len() < 8 || tag.len() > 32 {
            return false;
        }
        let now = mac_with(&self.mac_key, domain, value);
        let mut ok = now[..tag.len()].ct_eq(tag);
        if let Some(prev) = &self.previous_mac_key {
            ok |= mac_with(prev, domain, value)[..tag.len()].ct_eq(tag);
        }
        ok.into()
    }

    /// Make `replacement` this database's key: checks the recorded fingerprint
    /// is this key's and records the replacement's, inside the rotation's
    /// transaction (so the data and the fingerprint change together).
    pub async fn hand_over(&self, tx: &mut crate::db::Tx, replacement: &Vault) -> Result<()> {
        let n = sqlx::query("UPDATE vault_fingerprint SET fingerprint = $1 WHERE id = 1 AND fingerprint = $2")
            .bind(replacement.fingerprint())
            .bind(self.fingerprint())
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n != 1 {
            return Err(Error::new(Code::Conflict, "error.vault.key_mismatch")
                .with("variable", Arg::Text("YIZHAN_SECRET_KEY".into()))
                .with("file", Arg::Text("DATA_DIR/secret.key".into())));
        }
        Ok(())
    }

    /// The fingerprint the database has recorded, if any.
    pub async fn recorded_fingerprint(db: &crate::Db) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT fingerprint FROM vault_fingerprint WHERE id = 1").fetch_optional(&db.pool).await?;
        Ok(row.map(|r| r.0))
    }

    /// Load the key of a data directory (or the operator's), finishing or
    /// undoing a rotation a crash interrupted: a `secret.key.next` whose
    /// fingerprint the database records is the key now (the rotation
    /// committed), any other is left over from one that did not. The kept
    /// previous key, if any, joins for checking MACs.
    pub async fn load_for(data_dir: &Path, operator_hex: Option<&str>, db: &crate::Db) -> Result<Vault> {
        let next_path = data_dir.join(NEXT_KEY_FILE);
        if let Ok(hex) = std::fs::read_to_string(&next_path) {
            let next = Vault::from_hex(&hex)?;
            if Vault::recorded_fingerprint(db).await?.as_deref() == Some(next.fingerprint().as_str()) {
                promote_next_key(data_dir)?;
                tracing::warn!("finished a key rotation that was interrupted after it committed");
            } else {
                std::fs::remove_file(&next_path).map_err(Error::internal)?;
                tracing::warn!("removed the new key of a rotation that did not commit; the old key stays");
            }
        }
        let vault = Vault::load_or_create(data_dir, operator_hex)?;
        let previous = match std::env::var("YIZHAN_PREVIOUS_SECRET_KEY").ok().filter(|h| !h.trim().is_empty()) {
            Some(h) => Some(Vault::from_hex(&h)?),
            None => match std::fs::read_to_string(data_dir.join(PREVIOUS_KEY_FILE)) {
                Ok(h) => Some(Vault::from_hex(&h)?),
                Err(_) => None,
            },
        };
        Ok(match previous {
            Some(p) => vault.with_previous(&p),
            None => vault,
        })
    }
}

fn mac_with(key: &[u8; 32], domain: &str, value: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(b"mac:");
    mac.update(domain.as_bytes());
    mac.update(&[0]);
    mac.update(value);
    mac.finalize().into_bytes().to_vec()
}

/// Write a new key next to the current one (`secret.key.next`, mode 0600,
/// synced) before a rotation commits.
pub fn write_next_key(data_dir: &Path, next: &Vault) -> Result<()> {
    let path = data_dir.join(NEXT_KEY_FILE);
    if path.exists() {
        std::fs::remove_file(&path).map_err(Error::internal)?;
    }
    write_private(&path, &next.to_hex())
}

/// After the rotation committed: `secret.key` becomes `secret.key.previous`
/// and `secret.key.next` becomes `secret.key`, each rename synced.
pub fn promote_next_key(data_dir: &Path) -> Result<()> {
    let key = data_dir.join(KEY_FILE);
    if key.exists() {
        std::fs::rename(&key, data_dir.join(PREVIOUS_KEY_FILE)).map_err(Error::internal)?;
    }
    std::fs::rename(data_dir.join(NEXT_KEY_FILE), &key).map_err(Error::internal)?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        dir.sync_all().map_err(Error::internal)?;
    }
    Ok(())
}

/// Write a key file that only its owner can read (mode 0600, synced); refuses to overwrite.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
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
