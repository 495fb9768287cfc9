//! A second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps,
//! one step either side accepted) with ten one-time recovery codes.
//!
//! The secret (20 random bytes) is stored sealed with the vault key (context
//! `totp:USER`); it stays pending until a first code confirms it. The last
//! step a code was accepted for is kept, so a code cannot be used twice.
//! Recovery codes are stored only as hashes and each works once.

use crate::{codes, Identity};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use yizhan_core::{Code, Error, Result};

pub const STEP_MS: i64 = 30_000;
pub const DIGITS: u32 = 6;
pub const RECOVERY_CODES: usize = 10;
const SECRET_BYTES: usize = 20;

/// The HOTP value (RFC 4226) of `counter` with `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> Result<u32> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).map_err(Error::internal)?;
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([h[offset] & 0x7f, h[offset + 1], h[offset + 2], h[offset + 3]]);
    Ok(bin % 10u32.pow(digits))
}

/// The TOTP code at `now_ms`, zero-padded.
pub fn totp_at(secret: &[u8], now_ms: i64, digits: u32) -> Result<String> {
    let step = u64::try_from(now_ms.div_euclid(STEP_MS)).map_err(Error::internal)?;
    let width = usize::try_from(digits).map_err(Error::internal)?;
    Ok(format!("{:0width$}", hotp(secret, step, digits)?))
}

pub fn base32(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

/// Base32 as authenticator apps show it: any case, spaces and padding ignored.
pub fn from_base32(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace() && *c != '=').collect::<String>().to_uppercase();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

/// What an authenticator app needs to start: the secret and its `otpauth://` URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotpEnrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn recovery_hash(user_id: &str, code: &str) -> String {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    hex::encode(Sha256::digest(format!("totp-recovery:{user_id}:{normal}").as_bytes()))
}

fn totp_invalid() -> Error {
    Error::new(codes::TOTP_INVALID, "identity.totp.invalid")
}

#[derive(sqlx::FromRow)]
struct TotpRow {
    secret_cipher: String,
    enabled_at_ms: Option<i64>,
    last_step: i64,
}

impl Identity {
    async fn totp_row(&self, user_id: &str) -> Result<Option<TotpRow>> {
        Ok(sqlx::query_as("SELECT secret_cipher, enabled_at_ms, last_step FROM identity_totp WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.ctx().db.pool)
            .await?)
    }

    /// Whether the person's second factor is on.
    pub async fn totp_enabled(&self, user_id: &str) -> Result<bool> {
        Ok(self.totp_row(user_id).await?.is_some_and(|r| r.enabled_at_ms.is_some()))
    }

    /// Start (or restart) enrolment: a new pending secret. Refused while one is on.
    pub async fn start_totp(&self, user_id: &str) -> Result<TotpEnrolment> {
        let user = self.live_user(user_id).await?;
        if self.totp_enabled(user_id).await? {
            return Err(Error::new(Code::AlreadyExists, "identity.totp.already_on"));
        }
        let mut secret = [0u8; SECRET_BYTES];
        self.ctx().rng.fill(&mut secret);
        let sealed = self.ctx().vault.seal(&secret, &format!("totp:{user_id}"))?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO identity_totp (user_id, secret_cipher, enabled_at_ms, last_step, created_at_ms)
             VALUES ($1, $2, NULL, -1, $3)
             ON CONFLICT (user_id) DO UPDATE SET secret_cipher = $2, enabled_at_ms = NULL, last_step = -1, created_at_ms = $3",
        )
        .bind(user_id)
        .bind(&sealed)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        let b32 = base32(&secret);
        let otpauth_uri = format!(
            "otpauth://totp/yizhan:{}?secret={b32}&issuer=yizhan&algorithm=SHA1&digits={DIGITS}&period=30",
            percent(&user.login)
        );
        Ok(TotpEnrolment { secret: b32, otpauth_uri })
    }

    /// Accept a code from the pending secret: the second factor is on;
    /// returns the recovery codes (shown once, only their hashes are kept).
    pub async fn confirm_totp(&self, user_id: &str, code: &str) -> Result<Vec<String>> {
        let row = self.totp_row(user_id).await?.ok_or_else(|| Error::not_found("totp"))?;
        if row.enabled_at_ms.is_some() {
            return Err(Error::new(Code::AlreadyExists, "identity.totp.already_on"));
        }
        let secret = self.ctx().vault.open(&row.secret_cipher, &format!("totp:{user_id}"))?;
        let now = self.ctx().now_ms();
        let step = matching_step(&secret, code, now, row.last_step)?.ok_or_else(totp_invalid)?;
        let mut recovery = Vec::with_capacity(RECOVERY_CODES);
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query(
            "UPDATE identity_totp SET enabled_at_ms = $1, last_step = $2
             WHERE user_id = $3 AND enabled_at_ms IS NULL AND secret_cipher = $4",
        )
        .bind(now)
        .bind(step)
        .bind(user_id)
        .bind(&row.secret_cipher)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n != 1 {
            return Err(totp_invalid());
        }
        recovery.extend(self.new_recovery_codes(&mut tx, user_id).await?);
        tx.commit().await?;
        tracing::info!(%user_id, "second factor turned on");
        Ok(recovery)
    }

    /// Replace the person's recovery codes with ten new ones (returned, to show once).
    async fn new_recovery_codes(&self, tx: &mut yizhan_core::Tx, user_id: &str) -> Result<Vec<String>> {
        let mut recovery = Vec::with_capacity(RECOVERY_CODES);
        sqlx::query("DELETE FROM identity_totp_recovery WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        for _ in 0..RECOVERY_CODES {
            let mut raw = [0u8; 5];
            self.ctx().rng.fill(&mut raw);
            let c = base32(&raw).to_lowercase();
            let code = format!("{}-{}", &c[..4], &c[4..]);
            sqlx::query("INSERT INTO identity_totp_recovery (user_id, code_hash, used_at_ms) VALUES ($1, $2, NULL)")
                .bind(user_id)
                .bind(recovery_hash(user_id, &code))
                .execute(tx.conn())
                .await?;
            recovery.push(code);
        }
        Ok(recovery)
    }

    /// Turn the second factor off: the password and a current code (or an
    /// unused recovery code) are needed; the person is told.
    pub async fn disable_totp(&self, user_id: &str, password: &str, code: &str) -> Result<()> {
        if !self.totp_enabled(user_id).await? {
            return Err(Error::not_found("totp"));
        }
        self.check_current_password(user_id, password, "password").await?;
        self.check_second_factor(user_id, Some(code)).await?;
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("DELETE FROM identity_totp WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM identity_totp_recovery WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        tx.commit().await?;
        tracing::info!(%user_id, "second factor turned off");
        let now = self.ctx().now_ms();
        let msg = yizhan_notify::Message {
            kind: "identity.totp_off".into(),
            title: yizhan_core::Msg::new("identity.notice.totp_off.title"),
            body: yizhan_core::Msg::new("identity.notice.totp_off.body").time("at", now),
            target: Some(yizhan_notify::Target::new("profile", user_id)),
        };
        self.tell(user_id, msg).await;
        Ok(())
    }

    /// New recovery codes (the old ones stop working), with a current code.
    pub async fn regenerate_recovery_codes(&self, user_id: &str, code: &str) -> Result<Vec<String>> {
        if !self.totp_enabled(user_id).await? {
            return Err(Error::not_found("totp"));
        }
        self.check_second_factor(user_id, Some(code)).await?;
        let mut tx = self.ctx().db.begin().await?;
        let codes = self.new_recovery_codes(&mut tx, user_id).await?;
        tx.commit().await?;
        tracing::info!(%user_id, "recovery codes replaced");
        Ok(codes)
    }

    /// At log-in, for a person whose second factor is on: a current code
    /// (not used before) or an unused recovery code.
    pub(crate) async fn check_second_factor(&self, user_id: &str, given: Option<&str>) -> Result<()> {
        let Some(row) = self.totp_row(user_id).await? else { return Ok(()) };
        if row.enabled_at_ms.is_none() {
            return Ok(());
        }
        let given = given.map(str::trim).unwrap_or_default();
        if given.is_empty() {
            return Err(Error::new(codes::TOTP_REQUIRED, "identity.totp.required"));
        }
        if given.len() > 64 {
            return Err(totp_invalid());
        }
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        if given.len() == 6 && given.bytes().all(|b| b.is_ascii_digit()) {
            let secret = self.ctx().vault.open(&row.secret_cipher, &format!("totp:{user_id}"))?;
            let Some(step) = matching_step(&secret, given, now, -1)? else { return Err(totp_invalid()) };
            // Taken only if later than the last accepted one: a code works once.
            let n = sqlx::query("UPDATE identity_totp SET last_step = $1 WHERE user_id = $2 AND last_step < $1")
                .bind(step)
                .bind(user_id)
                .execute(tx.conn())
                .await?
                .rows_affected();
            if n != 1 {
                return Err(Error::new(codes::TOTP_REPLAYED, "identity.totp.replayed"));
            }
        } else {
            let n = sqlx::query(
                "UPDATE identity_totp_recovery SET used_at_ms = $1
                 WHERE user_id = $2 AND code_hash = $3 AND used_at_ms IS NULL",
            )
            .bind(now)
            .bind(user_id)
            .bind(recovery_hash(user_id, given))
            .execute(tx.conn())
            .await?
            .rows_affected();
            if n != 1 {
                return Err(totp_invalid());
            }
            tracing::info!(%user_id, "a recovery code was used");
        }
        tx.commit().await
    }

    /// A platform administrator allowed to act as one now: refused for
    /// anybody else, and for an administrator without a second factor when
    /// the operator requires one of staff. Every admin-only page, route and
    /// domain call goes through this (or [`Identity::require_staff`]).
    pub async fn require_admin(&self, actor: &crate::Principal) -> Result<()> {
        if !actor.is_admin {
            return Err(Error::forbidden("error.forbidden.admin_only"));
        }
        self.require_second_factor_for_staff(actor).await
    }

    /// Refused when the operator requires a second factor of staff and
    /// platform administrators and this one has none.
    pub async fn require_second_factor_for_staff(&self, actor: &crate::Principal) -> Result<()> {
        if self.config().require_totp_for_staff && !self.totp_enabled(&actor.user_id).await? {
            return Err(Error::new(codes::TOTP_REQUIRED_FOR_STAFF, "identity.totp.required_for_staff"));
        }
        Ok(())
    }
}

/// The step within one of `now` whose code is `code`, if later than `after_step`.
fn matching_step(secret: &[u8], code: &str, now_ms: i64, after_step: i64) -> Result<Option<i64>> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now_step = now_ms.div_euclid(STEP_MS);
    for step in [now_step, now_step - 1, now_step + 1] {
        if step <= after_step || step < 0 {
            continue;
        }
        let expected = totp_at(secret, step * STEP_MS, DIGITS)?;
        if constant_eq(expected.as_bytes(), code.as_bytes()) {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

pub(crate) fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, the SHA-1 rows (8 digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59i64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_at(secret, t * 1000, 8).unwrap(), want, "T={t}");
        }
    }

    /// RFC 4226 appendix D.
    #[test]
    fn rfc_4226_hotp_values() {
        let want = [755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489];
        for (i, w) in (0u64..).zip(want) {
            assert_eq!(hotp(b"12345678901234567890", i, 6).unwrap(), w);
        }
    }

    #[test]
    fn base32_round_trips_and_forgives_spacing() {
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap(), b"12345678901234567890");
        assert!(from_base32("not base32!").is_none());
    }

    #[test]
    fn a_code_matches_one_step_either_side_and_only_after_the_last() {
        let s = b"12345678901234567890";
        let now = 1_111_111_111_000;
        let step = now / STEP_MS;
        let before = totp_at(s, now - STEP_MS, 6).unwrap();
        assert_eq!(matching_step(s, &before, now, -1).unwrap(), Some(step - 1));
        assert_eq!(matching_step(s, &before, now, step - 1).unwrap(), None);
        let far = totp_at(s, now - 3 * STEP_MS, 6).unwrap();
        assert_eq!(matching_step(s, &far, now, -1).unwrap(), None);
    }
}
