//! Proving a login (a mobile number or an e-mail address) with a one-time
//! code sent to it, at registration, to set a new password, and to change
//! the login.
//!
//! A login is owned only once proved. Until then the account's claim is in
//! `users.pending_login` (and `users.login` holds `unproved:<id>`), so many
//! accounts may claim one number and the first to prove it owns it (the
//! UNIQUE index on `users.login` decides a race); the other claims are then
//! dropped and their accounts told. An unproved account can sign in and look
//! around, but [`Identity::find_by_login`] does not find it and Pay refuses
//! its payments ([`login_unproved`]).
//!
//! Someone registering a login another account already proved is answered
//! like any registration (a new id, "a code was sent"), nothing is stored,
//! and the owner is told instead: the answer says nothing about who is on
//! the platform. The answers to a wrong login, an unknown destination, a
//! wrong, used, expired or dead code are one and the same ([`codes::CODE_INVALID`]).
//!
//! Codes: 6 digits, valid [`CODE_TTL_MS`], [`MAX_CODE_ATTEMPTS`] tries (each
//! try is counted before the comparison, so concurrent guesses cannot pass
//! the limit), single-use; stored only as an HMAC (the vault's key, over the
//! row id and the code) and compared in constant time. Sending is limited per
//! destination ([`CODES_PER_DESTINATION`] an hour) and per client address
//! (`IdentityConfig::codes_per_address_hour`); checking per client address
//! (`IdentityConfig::code_checks_per_address`, per 15 minutes).

use crate::totp::constant_eq;
use crate::{
    bump_window, codes, collect, session_cache, Identity, Login, Password, PersonName, LOGIN_WINDOW_MS,
    MAX_LOGIN_PASSWORD_BYTES,
};
use yizhan_core::error::unique_as;
use yizhan_core::time::MINUTE_MS;
use yizhan_core::{Arg, Code, Error, FieldError, Msg, Result};
use yizhan_notify::{Message, Target};

/// How long a code stays valid.
pub const CODE_TTL_MS: i64 = 10 * MINUTE_MS;
/// Wrong tries before a code is dead.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Codes (and "already registered" notices) sent to one destination in [`CODE_WINDOW_MS`].
pub const CODES_PER_DESTINATION: i64 = 5;
pub const CODE_WINDOW_MS: i64 = 60 * MINUTE_MS;
/// Codes sent on behalf of one client address in an hour.
pub const MAX_CODES_PER_ADDRESS: usize = 20;
/// Codes checked from one client address in a log-in window (15 minutes).
pub const MAX_CODE_CHECKS_PER_ADDRESS: usize = 30;
/// Unproved accounts claiming one login that a sign-in tries (the newest).
pub const MAX_CLAIMS_TRIED: i64 = 3;
/// Live codes one check compares at most (one per claiming account).
const MAX_CODES_COMPARED: i64 = 5;

/// Why a code is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    Reset,
    Change,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::Reset => "reset",
            Purpose::Change => "change",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Purpose::Register => "identity.code.purpose.register",
            Purpose::Reset => "identity.code.purpose.reset",
            Purpose::Change => "identity.code.purpose.change",
        }
    }
}

/// Which live codes a check compares.
enum CodeBy<'a> {
    Login(&'a str),
    LoginAndUser(&'a str, &'a str),
    User(&'a str),
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: String,
    user_id: String,
    login: String,
    code_hash: String,
}

/// A new account, as its owner is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub user_id: String,
    pub login_verified: bool,
}

/// Someone registering themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignUp<'a> {
    pub login: &'a str,
    pub password: &'a str,
    pub name: &'a str,
    /// The client's address (behind a trusted proxy, the forwarded one).
    pub client_addr: &'a str,
    /// The language the code's text message is written in ("zh-CN" or "en").
    pub lang: &'a str,
}

/// The same answer to a wrong login, an unknown destination and a wrong,
/// used, expired or dead code.
pub fn code_invalid() -> Error {
    let mut e = Error::new(codes::CODE_INVALID, "identity.code.invalid");
    e.fields.push(FieldError::new("code", Msg::new("identity.code.invalid")));
    e
}

/// What Pay answers an account whose login is not proved yet.
pub fn login_unproved() -> Error {
    Error::new(codes::LOGIN_UNPROVED, "identity.login.unproved_pay")
}

fn too_many(seconds: u64) -> Error {
    Error::new(Code::TooManyAttempts, "identity.code.too_many")
        .with("minutes", Arg::Int(i64::try_from(seconds.div_ceil(60)).unwrap_or(i64::MAX)))
        .with_retry_after(seconds)
}

fn wait_seconds(window_start_ms: i64, window_ms: i64, now: i64) -> u64 {
    u64::try_from((window_start_ms + window_ms - now).max(1)).unwrap_or(1).div_ceil(1000)
}

/// The login as a field error names it.
fn parse_login(s: &str, field: &str) -> Result<Login> {
    Login::parse(s).map_err(|mut e| {
        for f in &mut e.fields {
            f.field = field.to_string();
        }
        e
    })
}

impl Identity {
    fn code_hash(&self, id: &str, code: &str) -> String {
        hex::encode(self.ctx().vault.mac("login-code", format!("{id}:{code}").as_bytes()))
    }

    fn new_code(&self) -> String {
        let mut b = [0u8; 8];
        self.ctx().rng.fill(&mut b);
        format!("{:06}", u64::from_be_bytes(b) % 1_000_000)
    }

    /// Refused (a field error) when this server has no way to send to the login.
    fn can_send_to(&self, login: &Login, field: &str) -> Result<()> {
        let notify = &self.inner.notify;
        if login.is_email() && notify.mailer_name().is_none() {
            return Err(Error::field(field, "identity.code.no_mail"));
        }
        if !login.is_email() && notify.sms_sender().is_none() {
            return Err(Error::field(field, "identity.code.no_sms"));
        }
        Ok(())
    }

    /// Count one message to `dest` on behalf of `client_addr`; refused past
    /// either limit (the same for every destination, known or not).
    async fn count_code_sent(&self, dest: &str, client_addr: &str) -> Result<()> {
        let addr: String = client_addr.chars().take(100).collect();
        let now = self.ctx().now_ms();
        let limits = [
            (self.limit_key("code-dest", dest), CODES_PER_DESTINATION),
            (
                self.limit_key("code-addr", &addr),
                i64::try_from(self.config().codes_per_address_hour).unwrap_or(i64::MAX),
            ),
        ];
        let mut wait: Option<u64> = None;
        let mut tx = self.ctx().db.begin().await?;
        for (key, max) in limits {
            let (n, start) = bump_window(&mut tx, &key, now, CODE_WINDOW_MS).await?;
            if n > max {
                let s = wait_seconds(start, CODE_WINDOW_MS, now);
                wait = Some(wait.map_or(s, |w| w.max(s)));
            }
        }
        tx.commit().await?;
        match wait {
            Some(s) => Err(too_many(s)),
            None => Ok(()),
        }
    }

    /// Count one check of a code from `client_addr`; refused past the limit.
    async fn count_code_check(&self, client_addr: &str) -> Result<()> {
        let addr: String = client_addr.chars().take(100).collect();
        let now = self.ctx().now_ms();
        let key = self.limit_key("code-check", &addr);
        let mut tx = self.ctx().db.begin().await?;
        let (n, start) = bump_window(&mut tx, &key, now, LOGIN_WINDOW_MS).await?;
        tx.commit().await?;
        if n > i64::try_from(self.config().code_checks_per_address).unwrap_or(i64::MAX) {
            return Err(too_many(wait_seconds(start, LOGIN_WINDOW_MS, now)));
        }
        Ok(())
    }

    /// A text message or a mail to the login. Failures are logged by notify
    /// and not answered: the answer must not depend on an account.
    async fn send_to_login(&self, login: &Login, lang: &str, title: Msg, body: Msg) {
        let r = if login.is_email() {
            self.inner.notify.send_mail_now(login.as_str(), &title, &body).await
        } else {
            self.inner.notify.send_sms(login.as_str(), lang, &body).await
        };
        if r.is_err() {
            tracing::warn!(email = login.is_email(), "a message to a login was not sent");
        }
    }

    /// Store a new code for the account and purpose (replacing the one
    /// before) and send it to `login`.
    async fn issue_code(&self, purpose: Purpose, user_id: &str, login: &Login, lang: &str) -> Result<()> {
        let code = self.new_code();
        let id = self.ctx().new_id();
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO identity_login_codes
                 (id, purpose, user_id, login, code_hash, attempts, created_at_ms, expires_at_ms, used_at_ms)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, NULL)
             ON CONFLICT (purpose, user_id) DO UPDATE SET id = $1, login = $4, code_hash = $5, attempts = 0,
                 created_at_ms = $6, expires_at_ms = $7, used_at_ms = NULL",
        )
        .bind(&id)
        .bind(purpose.as_str())
        .bind(user_id)
        .bind(login.as_str())
        .bind(self.code_hash(&id, &code))
        .bind(now)
        .bind(now + CODE_TTL_MS)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        let body = Msg::new("identity.code.text")
            .text("code", &code)
            .key_arg("purpose", purpose.key())
            .int("minutes", CODE_TTL_MS / MINUTE_MS);
        let title = Msg::new("identity.code.mail_title").text("code", &code);
        self.send_to_login(login, lang, title, body).await;
        Ok(())
    }

    /// Tell the owner of a proved login that someone tried to take it.
    async fn tell_login_taken(&self, login: &Login, lang: &str) {
        let title = Msg::new("identity.code.already_yours_title");
        let body = Msg::new("identity.code.already_yours");
        self.send_to_login(login, lang, title, body).await;
    }

    /// Check `code` against the live codes `by` selects; each compared code
    /// loses a try first. The matching code is used up and returned.
    async fn take_code(&self, purpose: Purpose, by: CodeBy<'_>, code: &str) -> Result<Option<CodeRow>> {
        let code = code.trim();
        let now = self.ctx().now_ms();
        let (filter, a, b) = match by {
            CodeBy::Login(l) => ("login = $3", l, ""),
            CodeBy::LoginAndUser(l, u) => ("login = $3 AND user_id = $4", l, u),
            CodeBy::User(u) => ("user_id = $3", u, ""),
        };
        let sql = format!(
            "SELECT id, user_id, login, code_hash FROM identity_login_codes
             WHERE purpose = $1 AND used_at_ms IS NULL AND expires_at_ms > $2 AND {filter}
               AND attempts < {MAX_CODE_ATTEMPTS}
             ORDER BY created_at_ms DESC LIMIT {MAX_CODES_COMPARED}"
        );
        let mut q = sqlx::query_as::<_, CodeRow>(&sql).bind(purpose.as_str()).bind(now).bind(a);
        if !b.is_empty() {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.ctx().db.pool).await?;
        let well_formed = code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit());
        for row in rows {
            let mut tx = self.ctx().db.begin().await?;
            let counted = sqlx::query(
                "UPDATE identity_login_codes SET attempts = attempts + 1
                 WHERE id = $1 AND used_at_ms IS NULL AND expires_at_ms > $2 AND attempts < $3",
            )
            .bind(&row.id)
            .bind(now)
            .bind(MAX_CODE_ATTEMPTS)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if counted == 1
                && well_formed
                && constant_eq(self.code_hash(&row.id, code).as_bytes(), row.code_hash.as_bytes())
            {
                let used =
                    sqlx::query("UPDATE identity_login_codes SET used_at_ms = $1 WHERE id = $2 AND used_at_ms IS NULL")
                        .bind(now)
                        .bind(&row.id)
                        .execute(tx.conn())
                        .await?
                        .rows_affected();
                tx.commit().await?;
                if used == 1 {
                    return Ok(Some(row));
                }
                continue;
            }
            tx.commit().await?;
        }
        Ok(None)
    }

    /// Make `login` the account's own, proved: refused ([`code_invalid`]) when
    /// another account proved it first (that claim is then dropped). Other
    /// accounts' claims to it are dropped and they are told.
    async fn own_login(&self, user_id: &str, login: &Login) -> Result<()> {
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let r = sqlx::query(
            "UPDATE users SET login = $1, pending_login = NULL, login_verified_at_ms = COALESCE(login_verified_at_ms, $2)
             WHERE id = $3 AND deleted_at_ms IS NULL",
        )
        .bind(login.as_str())
        .bind(now)
        .bind(user_id)
        .execute(tx.conn())
        .await;
        let n = match unique_as(r, code_invalid) {
            Ok(r) => r.rows_affected(),
            Err(e) if e.code == codes::CODE_INVALID => {
                drop(tx);
                self.drop_claims(login, Some(user_id)).await?;
                tracing::info!(%user_id, "a login was proved by another account first");
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if n != 1 {
            return Err(code_invalid());
        }
        // A registration code still out for an earlier claim of this account proves nothing now.
        sqlx::query("DELETE FROM identity_login_codes WHERE user_id = $1 AND purpose = 'register'")
            .bind(user_id)
            .execute(tx.conn())
            .await?;
        self.person_changed(&mut tx, user_id).await?;
        tx.commit().await?;
        self.person_changed_after(user_id);
        self.drop_claims(login, None).await?;
        tracing::info!(%user_id, email = login.is_email(), "login proved");
        Ok(())
    }

    /// Drop the claims of unproved accounts to `login` (all, or this
    /// account's), with their codes, and tell those accounts.
    pub(crate) async fn drop_claims(&self, login: &Login, only: Option<&str>) -> Result<()> {
        let mut tx = self.ctx().db.begin().await?;
        let dropped: Vec<(String,)> = match only {
            Some(u) => {
                sqlx::query_as(
                    "UPDATE users SET pending_login = NULL WHERE pending_login = $1 AND id = $2 RETURNING id",
                )
                .bind(login.as_str())
                .bind(u)
                .fetch_all(tx.conn())
                .await?
            }
            None => {
                sqlx::query_as("UPDATE users SET pending_login = NULL WHERE pending_login = $1 RETURNING id")
                    .bind(login.as_str())
                    .fetch_all(tx.conn())
                    .await?
            }
        };
        for (id,) in &dropped {
            sqlx::query("DELETE FROM identity_login_codes WHERE user_id = $1 AND login = $2")
                .bind(id)
                .bind(login.as_str())
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        for (id,) in dropped {
            let msg = Message {
                kind: "identity.login_claim_dropped".into(),
                title: Msg::new("identity.notice.claim_dropped.title"),
                body: Msg::new("identity.notice.claim_dropped.body").text("login", login.masked()),
                target: Some(Target::new("profile", &id)),
            };
            self.tell(&id, msg).await;
        }
        Ok(())
    }

    /// Someone registers themselves: the account exists at once (and may
    /// sign in) but its login is proved only by the code sent to it. A login
    /// another account proved gets the same answer, stores nothing, and
    /// its owner is told. The web side counts the registration
    /// ([`Identity::count_registration`]) first.
    pub async fn sign_up(&self, r: SignUp<'_>) -> Result<Registered> {
        let mut errors = Vec::new();
        let login = collect(Login::parse(r.login), &mut errors);
        let password = collect(Password::parse(r.password), &mut errors);
        let name = collect(PersonName::parse(r.name), &mut errors);
        let (Some(login), Some(password), Some(name)) = (login, password, name) else {
            return Err(Error::fields(errors));
        };
        self.can_send_to(&login, "login")?;
        let user_id = self.ctx().new_id();
        // Hashed either way, so both answers take as long.
        let hash = self.hash_password(&password).await?;
        let taken = self.user_id_by_login(&login).await?.is_some();
        let counted = self.count_code_sent(login.as_str(), r.client_addr).await;
        if taken {
            if counted.is_ok() {
                self.tell_login_taken(&login, r.lang).await;
            }
            tracing::info!("registration of a login another account holds: its owner is told");
            return Ok(Registered { user_id, login_verified: false });
        }
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, login, name, password_hash, is_admin, verification_level, created_at_ms,
                 pending_login, login_verified_at_ms)
             VALUES ($1, $2, $3, $4, 0, 0, $5, $6, NULL)",
        )
        .bind(&user_id)
        .bind(format!("unproved:{user_id}"))
        .bind(name.as_str())
        .bind(&hash)
        .bind(now)
        .bind(login.as_str())
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        tracing::info!(%user_id, "user registered, login not proved yet");
        let welcome = Message {
            kind: "welcome".into(),
            title: Msg::new("notify.welcome_title"),
            body: Msg::new("notify.welcome_body"),
            target: Some(Target::new("profile", &user_id)),
        };
        self.inner.notify.send(&user_id, None, welcome).await?;
        // Over a sending limit the account stays; a code can be asked for later.
        if counted.is_ok() {
            self.issue_code(Purpose::Register, &user_id, &login, r.lang).await?;
        }
        Ok(Registered { user_id, login_verified: false })
    }

    /// Prove a login with the code sent at registration: the account (the
    /// caller's, when signed in; otherwise the one the code was for) owns it.
    /// Returns the account's id.
    pub async fn prove_login(
        &self,
        login: &str,
        code: &str,
        client_addr: &str,
        caller: Option<&str>,
    ) -> Result<String> {
        self.count_code_check(client_addr).await?;
        let Ok(login) = Login::parse(login) else { return Err(code_invalid()) };
        let by = match caller {
            Some(u) => CodeBy::LoginAndUser(login.as_str(), u),
            None => CodeBy::Login(login.as_str()),
        };
        let Some(row) = self.take_code(Purpose::Register, by, code).await? else {
            return Err(code_invalid());
        };
        self.own_login(&row.user_id, &login).await?;
        Ok(row.user_id)
    }

    /// Send a new registration code to `login`: for the caller's claim when
    /// signed in, otherwise for the newest account claiming it. The answer is
    /// the same whether anyone claims it (a sending limit applies to all).
    pub async fn resend_code(&self, login: &str, client_addr: &str, lang: &str, caller: Option<&str>) -> Result<()> {
        let login = parse_login(login, "login")?;
        self.can_send_to(&login, "login")?;
        self.count_code_sent(login.as_str(), client_addr).await?;
        let claim: Option<(String,)> = match caller {
            Some(u) => {
                sqlx::query_as(
                    "SELECT id FROM users WHERE id = $1 AND pending_login = $2 AND login_verified_at_ms IS NULL
                       AND deleted_at_ms IS NULL",
                )
                .bind(u)
                .bind(login.as_str())
                .fetch_optional(&self.ctx().db.pool)
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT id FROM users WHERE pending_login = $1 AND login_verified_at_ms IS NULL
                       AND deleted_at_ms IS NULL ORDER BY created_at_ms DESC, id DESC LIMIT 1",
                )
                .bind(login.as_str())
                .fetch_optional(&self.ctx().db.pool)
                .await?
            }
        };
        if let Some((user_id,)) = claim {
            self.issue_code(Purpose::Register, &user_id, &login, lang).await?;
        }
        Ok(())
    }

    /// The unproved accounts claiming `login`, the newest first, with their
    /// password hashes (what a sign-in tries when no account owns it).
    pub(crate) async fn claims_of(&self, login: &Login) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE pending_login = $1 AND login_verified_at_ms IS NULL
               AND deleted_at_ms IS NULL ORDER BY created_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(login.as_str())
        .bind(MAX_CLAIMS_TRIED)
        .fetch_all(&self.ctx().db.pool)
        .await?)
    }

    /// Whether the person's login is proved (Pay asks before a payment).
    pub async fn login_verified(&self, user_id: &str) -> Result<bool> {
        Ok(self.live_user(user_id).await?.login_verified_at_ms.is_some())
    }

    // ---- a forgotten password ----

    /// Send a code to set a new password to `login`, if an account proved
    /// it. The answer is the same either way.
    pub async fn request_password_reset(&self, login: &str, client_addr: &str, lang: &str) -> Result<()> {
        let login = parse_login(login, "login")?;
        self.can_send_to(&login, "login")?;
        self.count_code_sent(login.as_str(), client_addr).await?;
        if let Some(user_id) = self.user_id_by_login(&login).await? {
            self.issue_code(Purpose::Reset, &user_id, &login, lang).await?;
        }
        Ok(())
    }

    /// Set a new password with the code sent to the login: every session
    /// ends, and the person is told in the inbox and at the login.
    pub async fn confirm_password_reset(
        &self,
        login: &str,
        code: &str,
        new_password: &str,
        client_addr: &str,
        lang: &str,
    ) -> Result<()> {
        let password = Password::parse(new_password)?;
        self.count_code_check(client_addr).await?;
        let Ok(login) = Login::parse(login) else { return Err(code_invalid()) };
        let Some(row) = self.take_code(Purpose::Reset, CodeBy::Login(login.as_str()), code).await? else {
            return Err(code_invalid());
        };
        let user_id = row.user_id;
        let hash = self.hash_password(&password).await?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let n =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND login = $3 AND deleted_at_ms IS NULL")
                .bind(&hash)
                .bind(&user_id)
                .bind(login.as_str())
                .execute(tx.conn())
                .await?
                .rows_affected();
        if n != 1 {
            return Err(code_invalid());
        }
        let ended = sqlx::query("UPDATE sessions SET revoked_at_ms = $1 WHERE user_id = $2 AND revoked_at_ms IS NULL")
            .bind(now)
            .bind(&user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        // Wrong current passwords counted against a password change are forgiven.
        sqlx::query("DELETE FROM login_limits WHERE limit_key = $1")
            .bind(self.limit_key("password", &user_id))
            .execute(tx.conn())
            .await?;
        let eviction = session_cache::Eviction::User(user_id.clone());
        self.evict_sessions(&mut tx, &eviction).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        tracing::info!(%user_id, ended, "password set with a code");
        let body = Msg::new("identity.notice.password_reset.body").time("at", now);
        let title = Msg::new("identity.notice.password_reset.title");
        let msg = Message {
            kind: "identity.password_reset".into(),
            title: title.clone(),
            body: body.clone(),
            target: Some(Target::new("profile", &user_id)),
        };
        // The inbox, and the login itself (a mail comes with the inbox's copy).
        self.tell(&user_id, msg).await;
        if !login.is_email() {
            self.send_to_login(&login, lang, title, body).await;
        }
        Ok(())
    }

    // ---- changing the login ----

    /// Start changing the login to `new_login` (the password needed): a code
    /// goes to the new one. A login another account holds gets the same
    /// answer and no code (its owner is told).
    pub async fn start_login_change(
        &self,
        user_id: &str,
        new_login: &str,
        password: &str,
        client_addr: &str,
        lang: &str,
    ) -> Result<()> {
        let login = parse_login(new_login, "login")?;
        self.can_send_to(&login, "login")?;
        self.check_current_password(user_id, password, "password").await?;
        let user = self.live_user(user_id).await?;
        if user.login == login.as_str() {
            return Err(Error::field("login", "identity.login.same"));
        }
        self.count_code_sent(login.as_str(), client_addr).await?;
        if self.user_id_by_login(&login).await?.is_some() {
            self.tell_login_taken(&login, lang).await;
            return Ok(());
        }
        self.issue_code(Purpose::Change, user_id, &login, lang).await
    }

    /// The new login a change waits to be proved for (masked), if any.
    pub async fn pending_login_change(&self, user_id: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT login FROM identity_login_codes
             WHERE purpose = 'change' AND user_id = $1 AND used_at_ms IS NULL AND expires_at_ms > $2 AND attempts < $3",
        )
        .bind(user_id)
        .bind(self.ctx().now_ms())
        .bind(MAX_CODE_ATTEMPTS)
        .fetch_optional(&self.ctx().db.pool)
        .await?;
        Ok(row.map(|r| crate::mask_login(&r.0)))
    }

    /// Finish a login change with the code sent to the new one: it becomes
    /// the login (proved); the old one and the inbox are told. Returns the new login.
    pub async fn confirm_login_change(
        &self,
        user_id: &str,
        code: &str,
        client_addr: &str,
        lang: &str,
    ) -> Result<String> {
        self.count_code_check(client_addr).await?;
        let before = self.live_user(user_id).await?;
        let Some(row) = self.take_code(Purpose::Change, CodeBy::User(user_id), code).await? else {
            return Err(code_invalid());
        };
        let login = Login::parse(&row.login).map_err(|_| code_invalid())?;
        self.own_login(user_id, &login).await?;
        let now = self.ctx().now_ms();
        let body = Msg::new("identity.notice.login_changed.body").text("login", login.masked()).time("at", now);
        let title = Msg::new("identity.notice.login_changed.title");
        let msg = Message {
            kind: "identity.login_changed".into(),
            title: title.clone(),
            body: body.clone(),
            target: Some(Target::new("profile", user_id)),
        };
        self.inner.notify.send(user_id, None, msg).await?;
        // The old login, if it was proved: mail or a text message.
        if before.login_verified_at_ms.is_some() {
            if let Ok(old) = Login::parse(&before.login) {
                self.send_to_login(&old, lang, title, body).await;
            }
        }
        tracing::info!(%user_id, "login changed");
        Ok(login.as_str().to_string())
    }

    /// Whether `password` is the account's, counted like a password change's
    /// current password (refused for a while after too many wrong ones).
    pub(crate) async fn check_current_password(&self, user_id: &str, password: &str, field: &str) -> Result<()> {
        let now = self.ctx().now_ms();
        let key = self.limit_key("password", user_id);
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT failures, window_start_ms FROM login_limits WHERE limit_key = $1")
                .bind(&key)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        if let Some((failures, start)) = row {
            if failures >= crate::MAX_PASSWORD_CHANGE_FAILURES && start > now - LOGIN_WINDOW_MS {
                let s = wait_seconds(start, LOGIN_WINDOW_MS, now);
                return Err(Error::new(Code::TooManyAttempts, "identity.login.too_many_attempts")
                    .with("minutes", Arg::Int(i64::try_from(s.div_ceil(60)).unwrap_or(i64::MAX)))
                    .with_retry_after(s));
            }
        }
        let (hash,): (String,) =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = $1 AND deleted_at_ms IS NULL")
                .bind(user_id)
                .fetch_optional(&self.ctx().db.pool)
                .await?
                .ok_or_else(|| Error::not_found("user"))?;
        let given = if password.len() > MAX_LOGIN_PASSWORD_BYTES { "" } else { password };
        if !self.inner.hasher.verify(given.to_string(), hash).await? {
            let mut tx = self.ctx().db.begin().await?;
            bump_window(&mut tx, &key, now, LOGIN_WINDOW_MS).await?;
            tx.commit().await?;
            return Err(Error::field(field, "identity.password.current_wrong"));
        }
        Ok(())
    }

    /// Forget codes that can no longer be used; returns how many went.
    pub async fn purge_login_codes(&self) -> Result<u64> {
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("DELETE FROM identity_login_codes WHERE expires_at_ms <= $1 OR used_at_ms IS NOT NULL")
            .bind(self.ctx().now_ms())
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
