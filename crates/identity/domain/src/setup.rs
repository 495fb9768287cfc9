//! The first start. While no platform administrator exists, each start of
//! the server draws a one-time setup token (32 random bytes; only its SHA-256
//! is kept, so the link cannot be printed again: each start prints a new one
//! and the earlier unused ones stop working). The token opens the page that
//! creates the first administrator (their login counted as proved: the
//! operator typed it at the server) and the first city. A token works once,
//! for [`SETUP_TOKEN_TTL_MS`] on the injected clock, and not at all once an
//! administrator exists.

use crate::{collect, token_hash, City, Identity, Login, Password, PersonName};
use yizhan_core::time::HOUR_MS;
use yizhan_core::{Code, Error, Result};

/// How long a setup link works.
pub const SETUP_TOKEN_TTL_MS: i64 = 24 * HOUR_MS;

/// What the setup made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupDone {
    pub admin_user_id: String,
    pub city: City,
}

fn link_unknown() -> Error {
    Error::new(Code::NotFound, "identity.setup.link_unknown")
}

fn admin_exists() -> Error {
    Error::new(Code::Conflict, "identity.setup.admin_exists")
}

impl Identity {
    /// A platform administrator exists.
    pub async fn has_admin(&self) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM users WHERE is_admin = 1 AND deleted_at_ms IS NULL LIMIT 1")
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        Ok(row.is_some())
    }

    /// At start: a fresh setup token when no administrator exists (the
    /// earlier unused ones no longer work), `None` otherwise.
    pub async fn new_setup_token(&self) -> Result<Option<String>> {
        if self.has_admin().await? {
            return Ok(None);
        }
        let mut raw = [0u8; 32];
        self.ctx().rng.fill(&mut raw);
        let token = hex::encode(raw);
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("DELETE FROM identity_setup_tokens WHERE used_at_ms IS NULL").execute(tx.conn()).await?;
        sqlx::query("INSERT INTO identity_setup_tokens (token_hash, created_at_ms, expires_at_ms) VALUES ($1, $2, $3)")
            .bind(token_hash(&token))
            .bind(now)
            .bind(now + SETUP_TOKEN_TTL_MS)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(Some(token))
    }

    /// The token opens the setup page: known, unused, unexpired, and no
    /// administrator exists yet.
    pub async fn check_setup_token(&self, token: &str) -> Result<()> {
        if self.has_admin().await? {
            return Err(admin_exists());
        }
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT expires_at_ms, used_at_ms FROM identity_setup_tokens WHERE token_hash = $1")
                .bind(token_hash(token.trim()))
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        match row {
            None => Err(link_unknown()),
            Some((_, Some(_))) => Err(Error::new(Code::NotFound, "identity.setup.link_used")),
            Some((expires, None)) if expires <= self.ctx().now_ms() => {
                Err(Error::new(Code::NotFound, "identity.setup.link_expired"))
            }
            Some(_) => Ok(()),
        }
    }

    /// Create the first administrator and the first city (with `services`)
    /// through a setup token, which is used up. Refused when the token is
    /// unknown, used or expired, or when an administrator already exists.
    pub async fn complete_setup(
        &self,
        token: &str,
        login: &str,
        password: &str,
        name: &str,
        city_name: &str,
        services: Vec<String>,
    ) -> Result<SetupDone> {
        let mut errors = Vec::new();
        let checked_login = collect(Login::parse(login), &mut errors);
        let checked_password = collect(Password::parse(password), &mut errors);
        let checked_name = collect(PersonName::parse(name), &mut errors);
        let city = collect(PersonName::parse_field(city_name, "city"), &mut errors);
        let services = collect(crate::parse_services(services), &mut errors);
        let (Some(_), Some(_), Some(_), Some(city), Some(services)) =
            (checked_login, checked_password, checked_name, city, services)
        else {
            return Err(Error::fields(errors));
        };
        self.check_setup_token(token).await?;
        // Used up first, so two submits at once make one administrator.
        let hash = token_hash(token.trim());
        let now = self.ctx().now_ms();
        let claimed = sqlx::query(
            "UPDATE identity_setup_tokens SET used_at_ms = $2
             WHERE token_hash = $1 AND used_at_ms IS NULL AND expires_at_ms > $2",
        )
        .bind(&hash)
        .bind(now)
        .execute(&self.ctx().db.pool)
        .await?
        .rows_affected();
        if claimed != 1 {
            return Err(Error::new(Code::NotFound, "identity.setup.link_used"));
        }
        let made = async {
            if self.has_admin().await? {
                return Err(admin_exists());
            }
            let admin_user_id = self.register(login, password, name).await?;
            self.promote(&admin_user_id).await?;
            let city = self.insert_city(city, services).await?;
            Ok(SetupDone { admin_user_id, city })
        }
        .await;
        match made {
            Ok(done) => {
                tracing::info!(admin = %done.admin_user_id, city = %done.city.id, "first start: administrator and city created");
                Ok(done)
            }
            Err(e) => {
                // No administrator was made (a login already taken, say): the link works again.
                if !self.has_admin().await.unwrap_or(true) {
                    let _ = sqlx::query("UPDATE identity_setup_tokens SET used_at_ms = NULL WHERE token_hash = $1")
                        .bind(&hash)
                        .execute(&self.ctx().db.pool)
                        .await;
                }
                Err(e)
            }
        }
    }
}
