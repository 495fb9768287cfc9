//! A person's sessions as they see them: which device, from roughly where,
//! last used when; ending one or all but this one; changing the password.
//!
//! There is no GeoIP database offline, so "where" is the address masked to
//! its network (IPv4 /24, IPv6 /48), and whether it is the network the
//! person is asking from.

use crate::{session_cache, token_hash, Identity, Password, LOGIN_WINDOW_MS, MAX_LOGIN_PASSWORD_BYTES};
use serde::Serialize;
use yizhan_core::time::MINUTE_MS;
use yizhan_core::{Arg, Code, Error, Msg, Result};
use yizhan_notify::{Message, Target};

/// A session's last use is written at most this often (never per request).
pub const LAST_SEEN_EVERY_MS: i64 = 5 * MINUTE_MS;
/// Sessions listed at most (the newest used first).
pub const MAX_LISTED_SESSIONS: i64 = 100;
/// Wrong current passwords per account in a login window.
pub const MAX_PASSWORD_CHANGE_FAILURES: i64 = 5;
const MAX_DEVICE_CHARS: usize = 60;

/// One live session of the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Opaque: neither the token nor its hash.
    pub id: String,
    /// Browser and system named from the User-Agent; empty when unknown.
    pub device: String,
    /// The address it was opened from, masked to its network ("203.0.113.x").
    pub network: String,
    /// Whether that network is the one this request comes from.
    pub this_network: bool,
    /// The session of this request.
    pub current: bool,
    pub created_at_ms: i64,
    /// Accurate to [`LAST_SEEN_EVERY_MS`].
    pub last_seen_ms: i64,
    pub expires_at_ms: i64,
}

/// A device and network the person signed in from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct KnownDevice {
    pub device: String,
    pub network: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
}

#[derive(sqlx::FromRow)]
struct InfoRow {
    id: String,
    token_hash: String,
    device: String,
    address: String,
    created_at_ms: i64,
    last_seen_ms: i64,
    expires_at_ms: i64,
}

/// A short, safe name for a device from its User-Agent: known browser and
/// system words only (never the raw header), at most 60 characters.
pub fn device_label(user_agent: &str) -> String {
    let ua: String = user_agent.chars().take(512).collect();
    let has = |w: &str| ua.contains(w);
    let browser = if has("MicroMessenger") {
        Some("WeChat")
    } else if has("Edg/") || has("Edge/") {
        Some("Edge")
    } else if has("OPR/") || has("Opera") {
        Some("Opera")
    } else if has("Firefox/") {
        Some("Firefox")
    } else if has("Chrome/") || has("CriOS/") {
        Some("Chrome")
    } else if has("Safari/") {
        Some("Safari")
    } else {
        None
    };
    let os = if has("HarmonyOS") || has("OpenHarmony") {
        Some("HarmonyOS")
    } else if has("iPhone") || has("iPad") || has("iOS") {
        Some("iOS")
    } else if has("Android") {
        Some("Android")
    } else if has("Windows") {
        Some("Windows")
    } else if has("Mac OS") || has("Macintosh") {
        Some("macOS")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    let label = match (browser, os) {
        (Some(b), Some(o)) => format!("{b} · {o}"),
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => o.to_string(),
        // A tool ("curl/8.5"): its first word, letters and digits only.
        (None, None) => ua
            .split(['/', ' '])
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect(),
    };
    label.chars().take(MAX_DEVICE_CHARS).collect()
}

/// The address masked to its network: "203.0.113.x" (a /24), "2001:db8:1::/48";
/// anything else as "?".
pub fn network_of(address: &str) -> String {
    match address.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            let o = a.octets();
            format!("{}.{}.{}.x", o[0], o[1], o[2])
        }
        Ok(std::net::IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => network_of(&v4.to_string()),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
        Err(_) => "?".to_string(),
    }
}

fn wrong_password() -> Error {
    Error::field("current_password", "identity.password.current_wrong")
}

impl Identity {
    /// The person's live sessions, the newest used first (at most
    /// [`MAX_LISTED_SESSIONS`]); `current_token` marks the caller's own.
    pub async fn sessions(&self, user_id: &str, current_token: &str, client_addr: &str) -> Result<Vec<SessionInfo>> {
        let now = self.ctx().now_ms();
        let rows: Vec<InfoRow> = sqlx::query_as(
            "SELECT id, token_hash, device, address, created_at_ms, last_seen_ms, expires_at_ms FROM sessions
             WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2 AND id IS NOT NULL
             ORDER BY last_seen_ms DESC, created_at_ms DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(MAX_LISTED_SESSIONS)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let current = token_hash(current_token);
        let here = network_of(client_addr);
        Ok(rows
            .into_iter()
            .map(|r| {
                let network = network_of(&r.address);
                SessionInfo {
                    id: r.id,
                    device: r.device,
                    this_network: network != "?" && network == here,
                    network,
                    current: r.token_hash == current,
                    created_at_ms: r.created_at_ms,
                    last_seen_ms: r.last_seen_ms,
                    expires_at_ms: r.expires_at_ms,
                }
            })
            .collect())
    }

    /// End one of the person's sessions (another person's id: not found).
    pub async fn end_session(&self, user_id: &str, session_id: &str) -> Result<()> {
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE sessions SET revoked_at_ms = $1
             WHERE id = $2 AND user_id = $3 AND revoked_at_ms IS NULL AND expires_at_ms > $1
             RETURNING token_hash",
        )
        .bind(now)
        .bind(session_id)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some((hash,)) = row else { return Err(Error::not_found("session")) };
        let eviction = session_cache::Eviction::Token(hash);
        self.evict_sessions(&mut tx, &eviction).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        tracing::info!(%user_id, %session_id, "session ended by its owner");
        Ok(())
    }

    /// End every session of the person but the one of `current_token`; returns how many.
    pub async fn end_other_sessions(&self, user_id: &str, current_token: &str) -> Result<u64> {
        let mut tx = self.ctx().db.begin().await?;
        let n = self.revoke_others(&mut tx, user_id, current_token).await?;
        let eviction = session_cache::Eviction::User(user_id.to_string());
        self.evict_sessions(&mut tx, &eviction).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        Ok(n)
    }

    async fn revoke_others(&self, tx: &mut yizhan_core::Tx, user_id: &str, current_token: &str) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $1 WHERE user_id = $2 AND token_hash <> $3 AND revoked_at_ms IS NULL",
        )
        .bind(self.ctx().now_ms())
        .bind(user_id)
        .bind(token_hash(current_token))
        .execute(tx.conn())
        .await?
        .rows_affected())
    }

    /// Remember that a session was used, at most every [`LAST_SEEN_EVERY_MS`],
    /// after the request that found it stale was answered.
    pub(crate) fn touch_later(&self, hash: String, last_seen_ms: i64, now: i64) {
        if now - last_seen_ms < LAST_SEEN_EVERY_MS {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let r = async {
                let mut tx = me.ctx().db.begin().await?;
                sqlx::query("UPDATE sessions SET last_seen_ms = $1 WHERE token_hash = $2 AND last_seen_ms < $1")
                    .bind(now)
                    .bind(&hash)
                    .execute(tx.conn())
                    .await?;
                tx.commit().await
            }
            .await;
            if let Err(e) = r {
                tracing::warn!(code = %e.code, "a session's last use was not written");
            }
        });
    }

    /// The devices and networks the person signed in from (for the export).
    pub(crate) async fn known_devices(&self, user_id: &str) -> Result<Vec<KnownDevice>> {
        Ok(sqlx::query_as(
            "SELECT device, network, first_seen_ms, last_seen_ms FROM identity_known_devices
             WHERE user_id = $1 ORDER BY first_seen_ms",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?)
    }

    /// A sign-in succeeded: remember its device and network, and tell the
    /// person when neither was seen together before (not for their first).
    pub(crate) async fn note_device(&self, user_id: &str, device: &str, address: &str) -> Result<()> {
        let now = self.ctx().now_ms();
        let network = network_of(address);
        let mut tx = self.ctx().db.begin().await?;
        let (known,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM identity_known_devices WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(tx.conn())
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO identity_known_devices (user_id, device, network, first_seen_ms, last_seen_ms)
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, device, network) DO NOTHING",
        )
        .bind(user_id)
        .bind(device)
        .bind(&network)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if inserted == 0 {
            sqlx::query(
                "UPDATE identity_known_devices SET last_seen_ms = $1 WHERE user_id = $2 AND device = $3 AND network = $4",
            )
            .bind(now)
            .bind(user_id)
            .bind(device)
            .bind(&network)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await?;
        if inserted == 1 && known > 0 {
            let device_arg =
                if device.is_empty() { Arg::Key("devices.unknown".into()) } else { Arg::Text(device.into()) };
            let body = Msg::new("identity.notice.new_device.body")
                .arg("device", device_arg.clone())
                .text("network", &network)
                .time("at", now);
            let title = Msg::new("identity.notice.new_device.title").arg("device", device_arg);
            let msg = Message {
                kind: "identity.new_device".into(),
                title,
                body,
                target: Some(Target::new("profile", user_id)),
            };
            self.tell(user_id, msg).await;
        }
        Ok(())
    }

    /// Change the password: the current one is needed (wrong ones are
    /// counted per account, like logins); every other session ends and the
    /// person is told.
    pub async fn change_password(
        &self,
        user_id: &str,
        current_token: &str,
        current_password: &str,
        new_password: &str,
    ) -> Result<()> {
        let now = self.ctx().now_ms();
        let key = self.limit_key("password", user_id);
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT failures, window_start_ms FROM login_limits WHERE limit_key = $1")
                .bind(&key)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        if let Some((failures, start)) = row {
            if failures >= MAX_PASSWORD_CHANGE_FAILURES && start > now - LOGIN_WINDOW_MS {
                let s = u64::try_from((start + LOGIN_WINDOW_MS - now).max(1)).unwrap_or(1).div_ceil(1000);
                return Err(Error::new(Code::TooManyAttempts, "identity.login.too_many_attempts")
                    .with("minutes", Arg::Int(i64::try_from(s.div_ceil(60)).unwrap_or(i64::MAX)))
                    .with_retry_after(s));
            }
        }
        let new = Password::parse(new_password).map_err(|mut e| {
            for f in &mut e.fields {
                f.field = "new_password".to_string();
            }
            e
        })?;
        let (hash,): (String,) =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = $1 AND deleted_at_ms IS NULL")
                .bind(user_id)
                .fetch_optional(&self.ctx().db.pool)
                .await?
                .ok_or_else(|| Error::not_found("user"))?;
        let current = if current_password.len() > MAX_LOGIN_PASSWORD_BYTES { "" } else { current_password };
        if !self.inner.hasher.verify(current.to_string(), hash).await? {
            let mut tx = self.ctx().db.begin().await?;
            crate::bump_window(&mut tx, &key, now, LOGIN_WINDOW_MS).await?;
            tx.commit().await?;
            tracing::info!(%user_id, "password change refused: wrong current password");
            return Err(wrong_password());
        }
        let new_hash = self.hash_password(&new).await?;
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at_ms IS NULL")
            .bind(&new_hash)
            .bind(user_id)
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM login_limits WHERE limit_key = $1").bind(&key).execute(tx.conn()).await?;
        let ended = self.revoke_others(&mut tx, user_id, current_token).await?;
        let eviction = session_cache::Eviction::User(user_id.to_string());
        self.evict_sessions(&mut tx, &eviction).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        tracing::info!(%user_id, ended, "password changed");
        let msg = Message {
            kind: "identity.password_changed".into(),
            title: Msg::new("identity.notice.password_changed.title"),
            body: Msg::new("identity.notice.password_changed.body").time("at", now),
            target: Some(Target::new("profile", user_id)),
        };
        self.tell(user_id, msg).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_by_known_words_only() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert_eq!(device_label(firefox), "Firefox · Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_label(iphone), "Safari · iOS");
        let wechat = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/116.0 Mobile MicroMessenger/8.0.40";
        assert_eq!(device_label(wechat), "WeChat · Android");
        assert_eq!(device_label("curl/8.5.0"), "curl");
        assert_eq!(device_label("<script>alert(1)</script>"), "scriptalert1");
        assert_eq!(device_label(""), "");
        assert!(device_label(&"x".repeat(1000)).chars().count() <= MAX_DEVICE_CHARS);
    }

    #[test]
    fn addresses_are_shown_as_their_network() {
        assert_eq!(network_of("203.0.113.7"), "203.0.113.x");
        assert_eq!(network_of("2001:db8:1:2::5"), "2001:db8:1::/48");
        assert_eq!(network_of("::ffff:10.1.2.3"), "10.1.2.x");
        assert_eq!(network_of("unknown"), "?");
    }
}
