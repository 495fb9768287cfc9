//! People, sessions, real names, cities, organisations and their staff.
//!
//! Identity numbers are stored only sealed (encrypted with the vault key) plus
//! a keyed blind index to find them and keep each on one account; staff who
//! read a person's data do so through [`Identity::staff_read_profile`], which
//! writes the read into the person's access log before returning anything.

mod devices;
mod logins;
mod password;
pub mod rekey;
pub mod session_cache;
pub mod setup;
pub mod totp;
pub mod types;
mod verification;
pub mod verifier;

pub use devices::{
    device_label, network_of, KnownDevice, SessionInfo, LAST_SEEN_EVERY_MS, MAX_LISTED_SESSIONS,
    MAX_PASSWORD_CHANGE_FAILURES,
};
pub use logins::{
    code_invalid, login_unproved, Registered, SignUp, CODES_PER_DESTINATION, CODE_TTL_MS, CODE_WINDOW_MS,
    MAX_CODES_PER_ADDRESS, MAX_CODE_ATTEMPTS, MAX_CODE_CHECKS_PER_ADDRESS,
};
pub use totp::TotpEnrolment;
pub use types::{
    mask_id_number, mask_login, mask_name, normalize_plate, IdNumber, Login, OrgKind, Password, PersonName, Role,
};
pub use verification::{Claim, Dispute, DisputeKind, DisputePage, DisputeStatus, StaffDispute, Vehicle};
pub use verifier::{IdentityVerifier, SandboxIdentityVerifier, VerifyOutcome};

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use yizhan_audit::{Audit, NewAccess};
use yizhan_core::error::unique_as;
use yizhan_core::time::{DAY_MS, MINUTE_MS};
use yizhan_core::{Arg, Code, Ctx, Error, FieldError, MigrationSet, Msg, Result};

pub static MIGRATIONS: MigrationSet = MigrationSet {
    domain: "identity",
    sqlite: &[
        ("0001", include_str!("../migrations/sqlite/0001_identity.sql")),
        ("0002", include_str!("../migrations/sqlite/0002_login_limits.sql")),
        ("0003", include_str!("../migrations/sqlite/0003_verification.sql")),
        ("0004", include_str!("../migrations/sqlite/0004_sessions.sql")),
        ("0005", include_str!("../migrations/sqlite/0005_totp.sql")),
        ("0006", include_str!("../migrations/sqlite/0006_login_proof.sql")),
        ("0007", include_str!("../migrations/sqlite/0007_setup.sql")),
    ],
    postgres: &[
        ("0001", include_str!("../migrations/postgres/0001_identity.sql")),
        ("0002", include_str!("../migrations/postgres/0002_login_limits.sql")),
        ("0003", include_str!("../migrations/postgres/0003_verification.sql")),
        ("0004", include_str!("../migrations/postgres/0004_sessions.sql")),
        ("0005", include_str!("../migrations/postgres/0005_totp.sql")),
        ("0006", include_str!("../migrations/postgres/0006_login_proof.sql")),
        ("0007", include_str!("../migrations/postgres/0007_setup.sql")),
    ],
};

pub const DEFAULT_SESSION_TTL_MS: i64 = 7 * DAY_MS;
pub const LOGIN_WINDOW_MS: i64 = 15 * MINUTE_MS;
/// Failures of one login from one address.
pub const MAX_FAILURES_PER_LOGIN: usize = 5;
pub const MAX_FAILURES_PER_ADDRESS: usize = 30;
/// Failures of one login from all the addresses it never succeeded from (a
/// distributed guess); its owner's known addresses are not held by these.
pub const MAX_FAILURES_PER_LOGIN_ANYWHERE: usize = 50;
/// New accounts from one address in an hour (behind a trusted proxy, the
/// client's address): enough for a family or an office, not for a script.
pub const MAX_REGISTRATIONS_PER_ADDRESS: usize = 20;
pub const REGISTRATION_WINDOW_MS: i64 = 60 * MINUTE_MS;
/// How long an address a login succeeded from stays known.
pub const KNOWN_ADDRESS_MS: i64 = 30 * DAY_MS;
/// Longer passwords are not hashed at login: they cannot match (registration caps at 128).
const MAX_LOGIN_PASSWORD_BYTES: usize = 4096;
const MAX_SERVICE_KEY_CHARS: usize = 64;

/// Verification levels (`Profile::verification_level`): registered only.
pub const VERIFICATION_REGISTERED: i64 = 0;
/// The real name and identity number were matched by the [`IdentityVerifier`].
pub const VERIFICATION_REAL_NAME: i64 = 1;
/// Staff of a city department saw the person and their card at a counter.
pub const VERIFICATION_IN_PERSON: i64 = 2;

/// The identity room's public error codes (their titles are in its texts).
pub mod codes {
    use yizhan_core::{Class, Code};

    /// The verifier could not be asked now; try again later.
    pub const VERIFIER_UNAVAILABLE: Code = Code::new("verifier_unavailable", Class::Unavailable);
    /// The number or plate is bound to another account: a dispute may be opened.
    pub const BOUND_ELSEWHERE: Code = Code::new("bound_elsewhere", Class::Conflict);

    /// The password was right; the second factor (a TOTP or recovery code) is needed too.
    pub const TOTP_REQUIRED: Code = Code::new("totp_required", Class::Unauthenticated);
    /// The second factor given is not a current code nor an unused recovery code.
    pub const TOTP_INVALID: Code = Code::new("totp_invalid", Class::Unauthenticated);
    /// This code was already used: wait for the next one.
    pub const TOTP_REPLAYED: Code = Code::new("totp_replayed", Class::Unauthenticated);
    /// The operator requires staff and administrators to have a second factor on.
    pub const TOTP_REQUIRED_FOR_STAFF: Code = Code::new("totp_required_for_staff", Class::Forbidden);

    /// A one-time code sent to a login is wrong, used, expired or dead, or no
    /// code was sent to that login: one answer for all, so it tells nothing.
    pub const CODE_INVALID: Code = Code::new("code_invalid", Class::Invalid);
    /// The account's login is not proved yet: it cannot pay. Invalid (422),
    /// like `limit_exceeded`: a rule says no until the person proves it.
    pub const LOGIN_UNPROVED: Code = Code::new("login_unproved", Class::Invalid);

    pub const ALL: &[Code] = &[
        VERIFIER_UNAVAILABLE,
        BOUND_ELSEWHERE,
        TOTP_REQUIRED,
        TOTP_INVALID,
        TOTP_REPLAYED,
        TOTP_REQUIRED_FOR_STAFF,
        CODE_INVALID,
        LOGIN_UNPROVED,
    ];
}

#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub session_ttl_ms: i64,
    /// Argon2id at a tiny cost, so tests stay fast. Never in production.
    pub fast_hashing_for_tests: bool,
    /// Password hashes computed at once (each takes about 19 MiB); by default
    /// one per core.
    pub max_concurrent_hashes: usize,
    /// How long a login or registration waits for a hashing slot before it is
    /// refused as busy (`Code::Busy`, with Retry-After).
    pub hash_wait_ms: u64,
    /// New accounts one address may open in an hour through the web side.
    pub registrations_per_address_hour: usize,
    /// Staff and platform administrators cannot act as such without a second
    /// factor (`YIZHAN_REQUIRE_TOTP_FOR_STAFF=true`).
    pub require_totp_for_staff: bool,
    /// One-time codes sent on behalf of one client address in an hour.
    pub codes_per_address_hour: usize,
    /// One-time codes checked from one client address in 15 minutes.
    pub code_checks_per_address: usize,
}

pub const DEFAULT_HASH_WAIT_MS: u64 = 5_000;

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            session_ttl_ms: DEFAULT_SESSION_TTL_MS,
            fast_hashing_for_tests: false,
            max_concurrent_hashes: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            hash_wait_ms: DEFAULT_HASH_WAIT_MS,
            registrations_per_address_hour: MAX_REGISTRATIONS_PER_ADDRESS,
            require_totp_for_staff: false,
            codes_per_address_hour: MAX_CODES_PER_ADDRESS,
            code_checks_per_address: MAX_CODE_CHECKS_PER_ADDRESS,
        }
    }
}

/// Who is making a request, as [`Identity::authenticate`] found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: String,
    pub name: String,
    pub is_admin: bool,
}

/// A new session. The token is shown once; only its hash is stored.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub token: String,
    pub user_id: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub org_id: String,
    pub org_name: String,
    pub org_kind: OrgKind,
    pub city_id: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub user_id: String,
    pub login: String,
    /// Whether the login was proved by a code sent to it (until then the
    /// account is not found by its login and cannot pay).
    pub login_verified: bool,
    pub name: String,
    pub is_admin: bool,
    pub verification_level: i64,
    pub real_name: Option<String>,
    pub id_number_masked: Option<String>,
    pub home_city_id: Option<String>,
    pub home_city_name: Option<String>,
    pub created_at_ms: i64,
    pub memberships: Vec<Membership>,
}

/// What staff see of a person: the profile, and the full identity number
/// only when they asked for it (and the access log says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffView {
    pub user_id: String,
    pub login: String,
    pub name: String,
    pub is_admin: bool,
    pub verification_level: i64,
    pub real_name: Option<String>,
    pub id_number_masked: Option<String>,
    pub home_city_id: Option<String>,
    pub home_city_name: Option<String>,
    pub created_at_ms: i64,
    pub memberships: Vec<Membership>,
    pub id_number: Option<String>,
}

impl StaffView {
    fn new(p: Profile, id_number: Option<String>) -> StaffView {
        StaffView {
            user_id: p.user_id,
            login: p.login,
            name: p.name,
            is_admin: p.is_admin,
            verification_level: p.verification_level,
            real_name: p.real_name,
            id_number_masked: p.id_number_masked,
            home_city_id: p.home_city_id,
            home_city_name: p.home_city_name,
            created_at_ms: p.created_at_ms,
            memberships: p.memberships,
            id_number,
        }
    }
}

/// A live account as a payment sees its payer ([`Identity::standing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub name: String,
    pub login_verified: bool,
    pub verification_level: i64,
}

/// A person as others may see them when choosing whom to pay or invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRef {
    pub user_id: String,
    pub name: String,
    pub login_masked: String,
}

impl UserRef {
    /// The name with all but its last character hidden, for payment previews.
    pub fn name_masked(&self) -> String {
        types::mask_name(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct City {
    pub id: String,
    pub name: String,
    /// Capability keys the city offers, e.g. "bills", "permits", "medical".
    pub services: Vec<String>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    pub id: String,
    pub city_id: String,
    pub kind: OrgKind,
    pub name: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub org_id: String,
    pub user_id: String,
    pub user_name: String,
    pub role: Role,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    login: String,
    name: String,
    is_admin: i64,
    verification_level: i64,
    real_name: Option<String>,
    id_cipher: Option<String>,
    id_index: Option<String>,
    id_masked: Option<String>,
    home_city_id: Option<String>,
    home_city_name: Option<String>,
    verified_by: Option<String>,
    created_at_ms: i64,
    deleted_at_ms: Option<i64>,
    login_verified_at_ms: Option<i64>,
}

/// An unproved account's login is its claim (`pending_login`).
const USER_SELECT: &str =
    "SELECT u.id, COALESCE(u.pending_login, u.login) AS login, u.name, u.is_admin, u.verification_level, \
     u.real_name, u.id_cipher, u.id_index, u.id_masked, u.home_city_id, c.name AS home_city_name, \
     u.verified_by, u.created_at_ms, u.deleted_at_ms, u.login_verified_at_ms \
     FROM users u LEFT JOIN cities c ON c.id = u.home_city_id";

/// Count one more under `key` in a window that starts with the first count
/// and lasts `window_ms` (a count after it starts a new window), atomically
/// on both engines. Returns the count and when its window started.
async fn bump_window(tx: &mut yizhan_core::Tx, key: &str, now: i64, window_ms: i64) -> Result<(i64, i64)> {
    let row: (i64, i64) = sqlx::query_as(
        "INSERT INTO login_limits (limit_key, window_start_ms, failures) VALUES ($1, $2, 1)
         ON CONFLICT (limit_key) DO UPDATE SET
             failures = CASE WHEN login_limits.window_start_ms <= $3 THEN 1 ELSE login_limits.failures + 1 END,
             window_start_ms = CASE WHEN login_limits.window_start_ms <= $3 THEN $2
                                    ELSE login_limits.window_start_ms END
         RETURNING failures, window_start_ms",
    )
    .bind(key)
    .bind(now)
    .bind(now - window_ms)
    .fetch_one(tx.conn())
    .await?;
    Ok(row)
}

/// The limiter's keys of one attempt.
struct LimitKeys {
    pair: String,
    addr: String,
    login: String,
}

/// The reasons staff may give to read a person's full identity number; the
/// person sees the reason in their access log, in their language.
pub const ID_NUMBER_REASONS: &[&str] = &["registration", "case", "bill", "appointment", "permit", "identity_check"];

/// Whether an organisation has something to do with a person, for a reason:
/// the other rooms know (a bill it issued, later a case or an appointment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Yes,
    No,
    /// Nothing on the platform can tell (yet): the reason stands on its own.
    Unknowable,
}

/// Asked before staff read a full identity number (the app gives one that
/// asks the rooms that know).
#[async_trait::async_trait]
pub trait Relations: Send + Sync {
    async fn relation(&self, org_id: &str, subject_user_id: &str, reason: &str) -> Result<Relation>;
}

struct Inner {
    ctx: Ctx,
    audit: Audit,
    notify: yizhan_notify::Notify,
    verifier: Arc<dyn IdentityVerifier>,
    config: IdentityConfig,
    hasher: password::Hasher,
    relations: std::sync::OnceLock<Arc<dyn Relations>>,
    /// A hash to check unknown logins against, so they take as long as known ones.
    dummy_hash: tokio::sync::OnceCell<String>,
    /// Who holds which token, so a request need not read the database.
    sessions: Arc<session_cache::SessionCache>,
    /// What a payment asks of a live person (see [`Identity::standing`]),
    /// by user id; forgotten in every process when the row changes.
    people: Arc<yizhan_core::cache::Remembered<PersonCard>>,
    /// Login → user id, as last read. Only a hint: it is used only when the
    /// person's card (forgotten at every change of login) still carries the
    /// same login, so it never needs forgetting of its own.
    logins: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// What a payment needs of a live person, remembered (see `Inner::people`).
#[derive(Clone)]
struct PersonCard {
    name: String,
    login: String,
    login_verified: bool,
    verification_level: i64,
}

/// The PostgreSQL channel on which a change to a person's row travels.
pub const PEOPLE_CHANNEL: &str = "yizhan_people";
/// People remembered at most, and for how long an entry is trusted.
const PEOPLE_MAX: usize = 200_000;
const PEOPLE_MAX_AGE_MS: i64 = 300_000;

#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

fn invalid_credentials() -> Error {
    Error::new(Code::InvalidCredentials, "identity.login.wrong")
}

fn unauthorized() -> Error {
    Error::new(Code::Unauthorized, "identity.session.ended")
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Keep a parse result, or collect its field errors to report all at once.
fn collect<T>(r: Result<T>, errors: &mut Vec<FieldError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            if e.fields.is_empty() {
                errors.push(FieldError::new("request", e.msg));
            } else {
                errors.extend(e.fields);
            }
            None
        }
    }
}

fn parse_services(services: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in services {
        let s = s.trim().to_string();
        let ok = !s.is_empty()
            && s.chars().count() <= MAX_SERVICE_KEY_CHARS
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(Error::field_msg(
                "services",
                Msg::new("identity.city.service_invalid").int("max", MAX_SERVICE_KEY_CHARS as i64),
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn role_from_db(s: &str) -> Result<Role> {
    Role::parse(s).map_err(|_| Error::internal(anyhow::anyhow!("unknown role {s:?} in org_members")))
}

fn kind_from_db(s: &str) -> Result<OrgKind> {
    OrgKind::parse(s).map_err(|_| Error::internal(anyhow::anyhow!("unknown org kind {s:?} in orgs")))
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: String,
    city_id: String,
    kind: String,
    name: String,
    created_at_ms: i64,
}

fn org_from_row(r: OrgRow) -> Result<Org> {
    Ok(Org { id: r.id, city_id: r.city_id, kind: kind_from_db(&r.kind)?, name: r.name, created_at_ms: r.created_at_ms })
}

#[derive(sqlx::FromRow)]
struct CityRow {
    id: String,
    name: String,
    /// A JSON array of service keys.
    services: String,
    created_at_ms: i64,
}

fn city_from_row(r: CityRow) -> Result<City> {
    let services: Vec<String> = serde_json::from_str(&r.services).map_err(Error::internal)?;
    Ok(City { id: r.id, name: r.name, services, created_at_ms: r.created_at_ms })
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    org_id: String,
    user_id: String,
    user_name: String,
    role: String,
    created_at_ms: i64,
}

fn member_from_row(r: MemberRow) -> Result<Member> {
    Ok(Member {
        org_id: r.org_id,
        user_id: r.user_id,
        user_name: r.user_name,
        role: role_from_db(&r.role)?,
        created_at_ms: r.created_at_ms,
    })
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    org_id: String,
    org_name: String,
    org_kind: String,
    city_id: String,
    role: String,
}

/// Who holds a session.
#[derive(sqlx::FromRow)]
struct SessionUserRow {
    id: String,
    name: String,
    is_admin: i64,
    expires_at_ms: i64,
    last_seen_ms: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    created_at_ms: i64,
    expires_at_ms: i64,
    revoked_at_ms: Option<i64>,
    device: String,
    address: String,
    last_seen_ms: i64,
}

/// One attempt to sign in, with what the session will be known by.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoginAttempt<'a> {
    pub login: &'a str,
    pub password: &'a str,
    /// The client's address (behind a trusted proxy, the forwarded one).
    pub client_addr: &'a str,
    /// The raw User-Agent header: only a short label made from it is kept.
    pub user_agent: &'a str,
    /// A TOTP or recovery code, for a person whose second factor is on.
    pub totp: Option<&'a str>,
}

/// A person as others may see them, before masking the login.
#[derive(sqlx::FromRow)]
struct UserRefRow {
    id: String,
    name: String,
    login: String,
}

const CARD_COLS: &str = "id, name, login, login_verified_at_ms, verification_level";

#[derive(sqlx::FromRow)]
struct CardRow {
    id: String,
    name: String,
    login: String,
    login_verified_at_ms: Option<i64>,
    verification_level: i64,
}

impl From<UserRefRow> for UserRef {
    fn from(r: UserRefRow) -> UserRef {
        UserRef { user_id: r.id, login_masked: mask_login(&r.login), name: r.name }
    }
}

impl Identity {
    pub fn new(
        ctx: Ctx,
        audit: Audit,
        notify: yizhan_notify::Notify,
        verifier: Arc<dyn IdentityVerifier>,
        config: IdentityConfig,
    ) -> Identity {
        let hasher =
            password::Hasher::new(config.fast_hashing_for_tests, config.max_concurrent_hashes, config.hash_wait_ms);
        let sessions = Arc::new(session_cache::SessionCache::new(ctx.db.engine()));
        session_cache::listen(&ctx.db, sessions.clone());
        let people = yizhan_core::cache::Remembered::start(&ctx.db, PEOPLE_CHANNEL, PEOPLE_MAX, PEOPLE_MAX_AGE_MS);
        Identity {
            inner: Arc::new(Inner {
                ctx,
                audit,
                notify,
                verifier,
                config,
                hasher,
                relations: std::sync::OnceLock::new(),
                dummy_hash: tokio::sync::OnceCell::new(),
                sessions,
                people,
                logins: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        }
    }

    fn ctx(&self) -> &Ctx {
        &self.inner.ctx
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.inner.config
    }

    /// How many more password hashes could start now (see
    /// [`IdentityConfig::max_concurrent_hashes`]).
    pub fn free_hashing_slots(&self) -> usize {
        self.inner.hasher.free_slots()
    }

    async fn hash_password(&self, password: &Password) -> Result<String> {
        let mut salt = [0u8; 16];
        self.ctx().rng.fill(&mut salt);
        self.inner.hasher.hash(password.expose().to_string(), salt).await
    }

    /// An Argon2id hash (PHC string) of a short secret another room keeps for
    /// a person (a payment PIN), on the same bounded pool as passwords: a flood
    /// of PIN checks takes no more memory than a flood of logins.
    pub async fn hash_secret(&self, secret: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        self.ctx().rng.fill(&mut salt);
        self.inner.hasher.hash(secret.to_string(), salt).await
    }

    /// Whether `secret` gives the PHC string `hash` from [`Identity::hash_secret`].
    pub async fn verify_secret(&self, secret: &str, hash: &str) -> Result<bool> {
        if secret.len() > MAX_LOGIN_PASSWORD_BYTES {
            return Ok(false);
        }
        self.inner.hasher.verify(secret.to_string(), hash.to_string()).await
    }

    /// Whether `password` is the person's account password, for a step that
    /// asks for it again (setting a payment PIN). The caller counts failures.
    pub async fn check_password(&self, user_id: &str, password: &str) -> Result<bool> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = $1 AND deleted_at_ms IS NULL")
                .bind(user_id)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        let Some((hash,)) = row else { return Err(Error::not_found("user")) };
        self.verify_secret(password, &hash).await
    }

    async fn user_row(&self, user_id: &str) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as::<_, UserRow>(&format!("{USER_SELECT} WHERE u.id = $1"))
            .bind(user_id)
            .fetch_optional(&self.ctx().db.pool)
            .await?)
    }

    /// A user who exists and is not deleted.
    async fn live_user(&self, user_id: &str) -> Result<UserRow> {
        match self.user_row(user_id).await? {
            Some(u) if u.deleted_at_ms.is_none() => Ok(u),
            _ => Err(Error::not_found("user")),
        }
    }

    // ---- registration and sessions ----

    /// Register a person whose login the caller vouches for (the operator's
    /// tools, the demo, tests): proved at once, and unproved claims to it
    /// are dropped. People registering themselves go through
    /// [`Identity::sign_up`]. Returns the new user id.
    pub async fn register(&self, login: &str, password: &str, name: &str) -> Result<String> {
        let mut errors = Vec::new();
        let login = collect(Login::parse(login), &mut errors);
        let password = collect(Password::parse(password), &mut errors);
        let name = collect(PersonName::parse(name), &mut errors);
        let (Some(login), Some(password), Some(name)) = (login, password, name) else {
            return Err(Error::fields(errors));
        };
        // Refuse early so a taken login costs no hashing; the UNIQUE index decides races.
        if self.user_id_by_login(&login).await?.is_some() {
            return Err(login_taken());
        }
        let hash = self.hash_password(&password).await?;
        let id = self.ctx().new_id();
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, login, name, password_hash, is_admin, verification_level, created_at_ms,
                 login_verified_at_ms)
             VALUES ($1, $2, $3, $4, 0, 0, $5, $5)",
        )
        .bind(&id)
        .bind(login.as_str())
        .bind(name.as_str())
        .bind(&hash)
        .bind(now)
        .execute(tx.conn())
        .await;
        unique_as(inserted, login_taken)?;
        tx.commit().await?;
        self.drop_claims(&login, None).await?;
        tracing::info!(user_id = %id, "user registered");
        Ok(id)
    }

    async fn user_id_by_login(&self, login: &Login) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE login = $1")
            .bind(login.as_str())
            .fetch_optional(&self.ctx().db.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn dummy_hash(&self) -> Result<String> {
        let h = self
            .inner
            .dummy_hash
            .get_or_try_init(|| async {
                let mut salt = [0u8; 16];
                self.ctx().rng.fill(&mut salt);
                self.inner.hasher.hash("not-a-password-anyone-has".to_string(), salt).await
            })
            .await?;
        Ok(h.clone())
    }

    /// Sign in. Failures are counted per login and per client address; past
    /// the limit every attempt is refused without checking the password.
    pub async fn login(&self, login: &str, password: &str, client_addr: &str) -> Result<Session> {
        self.sign_in(LoginAttempt { login, password, client_addr, user_agent: "", totp: None }).await
    }

    /// [`Identity::login`], naming the session's device from its User-Agent.
    pub async fn sign_in(&self, a: LoginAttempt<'_>) -> Result<Session> {
        let LoginAttempt { login, password, client_addr, user_agent, totp } = a;
        let parsed = Login::parse(login).ok();
        // Unparseable logins are counted too, under their raw (bounded) spelling.
        let login_key = match &parsed {
            Some(l) => l.as_str().to_string(),
            None => login.trim().to_lowercase().chars().take(300).collect(),
        };
        let addr: String = client_addr.chars().take(100).collect();
        let attempt_ms = self.ctx().now_ms();
        let keys = LimitKeys {
            pair: self.limit_key("pair", &format!("{login_key}\u{1f}{addr}")),
            addr: self.limit_key("addr", &addr),
            login: self.limit_key("login", &login_key),
        };
        // Counted before checking, so concurrent attempts cannot pass the limit;
        // taken back on success.
        if let Some(s) = self.count_attempt(&keys, attempt_ms).await? {
            return Err(Error::new(Code::TooManyAttempts, "identity.login.too_many_attempts")
                .with("minutes", Arg::Int(s.div_ceil(60) as i64))
                .with_retry_after(s));
        }
        let owner: Option<(String, String)> = match &parsed {
            Some(l) => {
                sqlx::query_as("SELECT id, password_hash FROM users WHERE login = $1 AND deleted_at_ms IS NULL")
                    .bind(l.as_str())
                    .fetch_optional(&self.ctx().db.pool)
                    .await?
            }
            None => None,
        };
        // Nobody owns the login: the accounts claiming it (unproved) may sign in.
        let candidates = match (owner, &parsed) {
            (Some(o), _) => vec![o],
            (None, Some(l)) => self.claims_of(l).await?,
            (None, None) => Vec::new(),
        };
        let password = if password.len() > MAX_LOGIN_PASSWORD_BYTES { "" } else { password };
        let mut matched = None;
        let tried = !candidates.is_empty();
        for (id, hash) in candidates {
            if self.inner.hasher.verify(password.to_string(), hash).await? {
                matched = Some(id);
                break;
            }
        }
        let user_id = match matched {
            Some(id) => id,
            None if tried => return Err(invalid_credentials()),
            None => {
                // Spend what checking a real hash costs, so the answer does not
                // tell whether the login exists. Making the dummy hash the first
                // time costs about the same as checking it.
                let dummy_was_ready = self.inner.dummy_hash.initialized();
                let dummy = self.dummy_hash().await?;
                if dummy_was_ready {
                    let _ = self.inner.hasher.verify(password.to_string(), dummy).await?;
                }
                return Err(invalid_credentials());
            }
        };
        // Only after the right password: a missing or wrong code stays counted.
        self.check_second_factor(&user_id, totp).await?;
        self.after_success(&keys, attempt_ms).await?;
        let device = device_label(user_agent);
        let session = self.create_session(&user_id, &device, &addr).await?;
        self.note_device(&user_id, &device, &addr).await?;
        Ok(session)
    }

    /// A limiter key: a keyed hash, so the table holds no login or address.
    fn limit_key(&self, scope: &str, value: &str) -> String {
        hex::encode(&self.ctx().vault.mac("login-limit", format!("{scope}:{value}").as_bytes())[..16])
    }

    /// Count one attempt under each of its keys (in one transaction); the
    /// seconds to wait when one of them is over its limit.
    async fn count_attempt(&self, k: &LimitKeys, now: i64) -> Result<Option<u64>> {
        let known: Option<(i64,)> = sqlx::query_as(
            "SELECT last_ok_ms FROM login_known_addresses WHERE login_key = $1 AND addr_key = $2 AND last_ok_ms > $3",
        )
        .bind(&k.login)
        .bind(&k.addr)
        .bind(now - KNOWN_ADDRESS_MS)
        .fetch_optional(&self.ctx().db.pool)
        .await?;
        let mut limits = vec![(&k.pair, MAX_FAILURES_PER_LOGIN), (&k.addr, MAX_FAILURES_PER_ADDRESS)];
        if known.is_none() {
            limits.push((&k.login, MAX_FAILURES_PER_LOGIN_ANYWHERE));
        }
        let mut wait: Option<u64> = None;
        let mut tx = self.ctx().db.begin().await?;
        for (key, max) in limits {
            let (failures, start) = bump_window(&mut tx, key, now, LOGIN_WINDOW_MS).await?;
            if failures > max as i64 {
                let ms = (start + LOGIN_WINDOW_MS - now).max(1);
                let s = u64::try_from(ms).unwrap_or(1).div_ceil(1000);
                wait = Some(wait.map_or(s, |w| w.max(s)));
            }
        }
        tx.commit().await?;
        Ok(wait)
    }

    /// A login went through: its failures from this address and anywhere are
    /// forgiven, the address's count loses this attempt, the address is known.
    async fn after_success(&self, k: &LimitKeys, now: i64) -> Result<()> {
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("DELETE FROM login_limits WHERE limit_key = $1 OR limit_key = $2")
            .bind(&k.pair)
            .bind(&k.login)
            .execute(tx.conn())
            .await?;
        sqlx::query("UPDATE login_limits SET failures = failures - 1 WHERE limit_key = $1 AND failures > 0")
            .bind(&k.addr)
            .execute(tx.conn())
            .await?;
        sqlx::query(
            "INSERT INTO login_known_addresses (login_key, addr_key, last_ok_ms) VALUES ($1, $2, $3)
             ON CONFLICT (login_key, addr_key) DO UPDATE SET last_ok_ms = $3",
        )
        .bind(&k.login)
        .bind(&k.addr)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }

    /// Count a registration attempt from an address; refused (429, with the
    /// wait) past `IdentityConfig::registrations_per_address_hour` (by default
    /// [`MAX_REGISTRATIONS_PER_ADDRESS`]) an hour. Called by the web
    /// side before it registers anyone (the demo and administrators do not).
    pub async fn count_registration(&self, client_addr: &str) -> Result<()> {
        let addr: String = client_addr.chars().take(100).collect();
        let key = self.limit_key("register", &addr);
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let (n, start) = bump_window(&mut tx, &key, now, REGISTRATION_WINDOW_MS).await?;
        tx.commit().await?;
        if n > self.inner.config.registrations_per_address_hour as i64 {
            let s = u64::try_from((start + REGISTRATION_WINDOW_MS - now).max(1)).unwrap_or(1).div_ceil(1000);
            return Err(Error::new(Code::TooManyAttempts, "identity.register.too_many")
                .with("minutes", Arg::Int(s.div_ceil(60) as i64))
                .with_retry_after(s));
        }
        Ok(())
    }

    /// Forget counters whose window has passed and addresses not used for long.
    /// Returns how many rows went.
    pub async fn purge_login_limits(&self) -> Result<u64> {
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let a = sqlx::query("DELETE FROM login_limits WHERE window_start_ms <= $1")
            .bind(now - LOGIN_WINDOW_MS.max(REGISTRATION_WINDOW_MS))
            .execute(tx.conn())
            .await?
            .rows_affected();
        let b = sqlx::query("DELETE FROM login_known_addresses WHERE last_ok_ms <= $1")
            .bind(now - KNOWN_ADDRESS_MS)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(a + b + self.purge_login_codes().await?)
    }

    async fn create_session(&self, user_id: &str, device: &str, address: &str) -> Result<Session> {
        let mut raw = [0u8; 32];
        self.ctx().rng.fill(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = self.ctx().now_ms();
        let expires_at_ms = now.saturating_add(self.inner.config.session_ttl_ms);
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at_ms, expires_at_ms, revoked_at_ms,
                 id, device, address, last_seen_ms)
             VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $3)",
        )
        .bind(token_hash(&token))
        .bind(user_id)
        .bind(now)
        .bind(expires_at_ms)
        .bind(self.ctx().new_id())
        .bind(device)
        .bind(address)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Session { token, user_id: user_id.to_string(), expires_at_ms })
    }

    /// Who holds this token: remembered (see [`session_cache`]), else one
    /// indexed query.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        if token.is_empty() || token.len() > 128 {
            return Err(unauthorized());
        }
        let hash = token_hash(token);
        let now = self.ctx().now_ms();
        if let Some(p) = self.inner.sessions.get(&hash, now) {
            return Ok(p);
        }
        let generation = self.inner.sessions.generation();
        let row: Option<SessionUserRow> = sqlx::query_as(
            "SELECT u.id, u.name, u.is_admin, s.expires_at_ms, s.last_seen_ms FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.revoked_at_ms IS NULL AND s.expires_at_ms > $2
               AND u.deleted_at_ms IS NULL",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(&self.ctx().db.pool)
        .await?;
        let u = row.ok_or_else(unauthorized)?;
        let p = Principal { user_id: u.id, name: u.name, is_admin: u.is_admin != 0 };
        self.inner.sessions.put(&hash, p.clone(), u.expires_at_ms, now, generation);
        self.touch_later(hash, u.last_seen_ms, now);
        Ok(p)
    }

    /// Forget remembered sessions, here and (with the transaction's commit) in
    /// every other process.
    async fn evict_sessions(&self, tx: &mut yizhan_core::Tx, e: &session_cache::Eviction) -> Result<()> {
        self.inner.sessions.evict(e);
        session_cache::announce(tx, self.ctx().db.engine(), e).await
    }

    /// After the revoking transaction committed: a read that began before it
    /// may have put the session back; evict once more.
    fn evicted(&self, e: &session_cache::Eviction) {
        self.inner.sessions.evict(e);
    }

    /// End the session of this token (unknown or ended tokens: nothing to do).
    pub async fn logout(&self, token: &str) -> Result<()> {
        let hash = token_hash(token);
        let eviction = session_cache::Eviction::Token(hash.clone());
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE sessions SET revoked_at_ms = $1 WHERE token_hash = $2 AND revoked_at_ms IS NULL")
            .bind(self.ctx().now_ms())
            .bind(&hash)
            .execute(tx.conn())
            .await?;
        self.evict_sessions(&mut tx, &eviction).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        Ok(())
    }

    /// End every session of the person (e.g. "sign out everywhere"); returns how many.
    pub async fn logout_all(&self, user_id: &str) -> Result<u64> {
        let eviction = session_cache::Eviction::User(user_id.to_string());
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("UPDATE sessions SET revoked_at_ms = $1 WHERE user_id = $2 AND revoked_at_ms IS NULL")
            .bind(self.ctx().now_ms())
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        self.evict_sessions(&mut tx, &eviction).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        Ok(n)
    }

    // ---- profile and real name ----

    pub async fn profile(&self, user_id: &str) -> Result<Profile> {
        let u = self.live_user(user_id).await?;
        let memberships = self.memberships(user_id).await?;
        Ok(Profile {
            user_id: u.id,
            login: u.login,
            login_verified: u.login_verified_at_ms.is_some(),
            name: u.name,
            is_admin: u.is_admin != 0,
            verification_level: u.verification_level,
            real_name: u.real_name,
            id_number_masked: u.id_masked,
            home_city_id: u.home_city_id,
            home_city_name: u.home_city_name,
            created_at_ms: u.created_at_ms,
            memberships,
        })
    }

    async fn open_id_number(&self, user_id: &str, sealed: &str) -> Result<String> {
        let bytes = self.ctx().vault.open(sealed, &format!("id_number:{user_id}"))?;
        String::from_utf8(bytes).map_err(Error::internal)
    }

    /// The person's own identity number, in full.
    pub async fn reveal_own_id_number(&self, user_id: &str) -> Result<String> {
        let u = self.live_user(user_id).await?;
        let sealed = u.id_cipher.ok_or_else(|| Error::not_found("identity_number"))?;
        self.open_id_number(user_id, &sealed).await
    }

    /// Staff of `org_id` read a person's profile (and, if asked, the full
    /// identity number) for a stated reason. The read is written into the
    /// person's access log before anything is returned.
    /// Who can tell whether an organisation has to do with a person (set once, at start).
    pub fn set_relations(&self, relations: Arc<dyn Relations>) {
        let _ = self.inner.relations.set(relations);
    }

    pub async fn staff_read_profile(
        &self,
        actor: &Principal,
        org_id: &str,
        subject_user_id: &str,
        reason: &str,
        include_id_number: bool,
    ) -> Result<StaffView> {
        self.require_staff(actor, org_id, Role::Operator).await?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::field("reason", "identity.staff_read.reason_required"));
        }
        let org = self.org(org_id).await?;
        // Identity numbers are for the organisations whose work needs them
        // (registering a patient, a court case, a permit); a shop never gets one.
        let may_read_id = matches!(org.kind, OrgKind::CityDepartment | OrgKind::Hospital | OrgKind::Court);
        if include_id_number && !may_read_id && !actor.is_admin {
            return Err(Error::forbidden("identity.staff_read.no_id_number")
                .with("kind", Arg::Key(format!("kind.{}", org.kind.as_str()))));
        }
        if include_id_number && !ID_NUMBER_REASONS.contains(&reason) {
            return Err(Error::field_msg(
                "reason",
                Msg::new("identity.staff_read.reason_from_list").text("reasons", ID_NUMBER_REASONS.join(", ")),
            ));
        }
        let subject = self.live_user(subject_user_id).await?;
        // Staff (not the platform's support) need a relation to the person where one can be known.
        let member = self.memberships(&actor.user_id).await?.iter().any(|m| m.org_id == org.id);
        if include_id_number && member {
            if let Some(rel) = self.inner.relations.get() {
                if rel.relation(&org.id, subject_user_id, reason).await? == Relation::No {
                    return Err(Error::forbidden("identity.staff_read.no_relation")
                        .with("reason", Arg::Key(format!("access.reason.{reason}"))));
                }
            }
        }
        let id_number = match (&subject.id_cipher, include_id_number) {
            (Some(sealed), true) => Some(self.open_id_number(subject_user_id, sealed).await?),
            _ => None,
        };
        self.inner
            .audit
            .record(NewAccess {
                subject_user_id: subject_user_id.to_string(),
                actor_user_id: actor.user_id.clone(),
                actor_label: actor.name.clone(),
                // A platform admin reads as the platform's support, whatever org the path names.
                org_id: member.then(|| org.id.clone()),
                org_label: Some(if member { org.name.clone() } else { yizhan_audit::PLATFORM_SUPPORT.to_string() }),
                what: if include_id_number { "identity_number" } else { "profile" }.to_string(),
                why: reason.to_string(),
            })
            .await?;
        let profile = self.profile(subject_user_id).await?;
        Ok(StaffView::new(profile, id_number))
    }

    // ---- finding people ----

    pub async fn find_by_login(&self, login: &str) -> Result<Option<UserRef>> {
        let login = Login::parse(login)?;
        let hinted = self.inner.logins.lock().unwrap_or_else(|e| e.into_inner()).get(login.as_str()).cloned();
        if let Some(user_id) = hinted {
            let now = self.ctx().now_ms();
            if let Some(card) = self.inner.people.get(&user_id, now).filter(|c| c.login == login.as_str()) {
                return Ok(Some(UserRef { login_masked: mask_login(&card.login), user_id, name: card.name }));
            }
        }
        let generation = self.inner.people.generation();
        let row: Option<CardRow> =
            sqlx::query_as(&format!("SELECT {CARD_COLS} FROM users WHERE login = $1 AND deleted_at_ms IS NULL"))
                .bind(login.as_str())
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        Ok(row.map(|r| {
            let (user_id, card) = self.remember_card(r, generation);
            UserRef { login_masked: mask_login(&card.login), user_id, name: card.name }
        }))
    }

    /// What a payment needs to know of its payer: the name the
    /// payee is told, whether the login is proved, and the verification
    /// level the limits go by. A deleted or unknown account is not found.
    /// Remembered, and forgotten in every process when the person's row
    /// changes ([`Identity::person_changed`]).
    pub async fn standing(&self, user_id: &str) -> Result<Standing> {
        let now = self.ctx().now_ms();
        let card = match self.inner.people.get(user_id, now) {
            Some(c) => c,
            None => {
                let generation = self.inner.people.generation();
                let row: Option<CardRow> =
                    sqlx::query_as(&format!("SELECT {CARD_COLS} FROM users WHERE id = $1 AND deleted_at_ms IS NULL"))
                        .bind(user_id)
                        .fetch_optional(&self.ctx().db.pool)
                        .await?;
                self.remember_card(row.ok_or_else(|| Error::not_found("user"))?, generation).1
            }
        };
        Ok(Standing {
            name: card.name,
            login_verified: card.login_verified,
            verification_level: card.verification_level,
        })
    }

    fn remember_card(&self, r: CardRow, generation: u64) -> (String, PersonCard) {
        let card = PersonCard {
            name: r.name,
            login: r.login,
            login_verified: r.login_verified_at_ms.is_some(),
            verification_level: r.verification_level,
        };
        self.inner.people.put(&r.id, card.clone(), self.ctx().now_ms(), generation);
        let mut logins = self.inner.logins.lock().unwrap_or_else(|e| e.into_inner());
        if logins.len() >= PEOPLE_MAX && !logins.contains_key(&card.login) {
            logins.clear();
        }
        logins.insert(card.login.clone(), r.id.clone());
        (r.id, card)
    }

    /// In a transaction that changes a person's row (name, login, proof of
    /// the login, verification level, deletion): forget what is remembered
    /// of them, here and, when it commits, in every other process. Call
    /// [`Identity::person_changed_after`] after the commit.
    pub(crate) async fn person_changed(&self, tx: &mut yizhan_core::Tx, user_id: &str) -> Result<()> {
        self.inner.people.forget(tx, user_id).await
    }

    /// After the commit of a transaction that called [`Identity::person_changed`].
    pub(crate) fn person_changed_after(&self, user_id: &str) {
        self.inner.people.forgotten(user_id);
    }

    /// The verified holder of an identity number (bound through the verifier
    /// or at a counter), if any: what bills by number reach.
    pub async fn find_by_id_number(&self, number: &str) -> Result<Option<UserRef>> {
        let number = IdNumber::parse(number)?;
        let index = self.ctx().vault.blind_index("id_number", number.expose());
        let row: Option<UserRefRow> = sqlx::query_as(
            "SELECT id, name, login FROM users WHERE id_index = $1 AND deleted_at_ms IS NULL AND verification_level >= $2",
        )
        .bind(&index)
        .bind(VERIFICATION_REAL_NAME)
        .fetch_optional(&self.ctx().db.pool)
        .await?;
        Ok(row.map(UserRef::from))
    }

    /// The verification levels of many live users at once (absent: no such
    /// live user), for batch work such as recomputing credit scores.
    pub async fn verification_levels(&self, user_ids: &[String]) -> Result<std::collections::HashMap<String, i64>> {
        let mut out = std::collections::HashMap::new();
        for chunk in user_ids.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, verification_level FROM users WHERE deleted_at_ms IS NULL AND id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(&self.ctx().db.pool).await?);
        }
        Ok(out)
    }

    /// Any user, deleted ones included (their name is erased), for showing
    /// who is on the other side of old payments.
    pub async fn user_ref(&self, user_id: &str) -> Result<UserRef> {
        let row: Option<UserRefRow> =
            sqlx::query_as("SELECT id, name, COALESCE(pending_login, login) AS login FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        Ok(row.ok_or_else(|| Error::not_found("user"))?.into())
    }

    pub async fn set_home_city(&self, user_id: &str, city_id: &str) -> Result<()> {
        self.city(city_id).await?;
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("UPDATE users SET home_city_id = $1 WHERE id = $2 AND deleted_at_ms IS NULL")
            .bind(city_id)
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n != 1 {
            return Err(Error::not_found("user"));
        }
        tx.commit().await
    }

    // ---- cities and organisations ----

    pub async fn create_city(&self, actor: &Principal, name: &str, services: Vec<String>) -> Result<City> {
        if !actor.is_admin {
            return Err(Error::forbidden("identity.city.admin_only"));
        }
        self.require_second_factor_for_staff(actor).await?;
        let mut errors = Vec::new();
        let name = collect(PersonName::parse_field(name, "name"), &mut errors);
        let services = collect(parse_services(services), &mut errors);
        let (Some(name), Some(services)) = (name, services) else {
            return Err(Error::fields(errors));
        };
        let city = self.insert_city(name, services).await?;
        tracing::info!(city_id = %city.id, actor = %actor.user_id, "city created");
        Ok(city)
    }

    /// A new city, its name and services already checked.
    async fn insert_city(&self, name: PersonName, services: Vec<String>) -> Result<City> {
        let city =
            City { id: self.ctx().new_id(), name: name.into_string(), services, created_at_ms: self.ctx().now_ms() };
        let services_json = serde_json::to_string(&city.services).map_err(Error::internal)?;
        let mut tx = self.ctx().db.begin().await?;
        let r = sqlx::query("INSERT INTO cities (id, name, services, created_at_ms) VALUES ($1, $2, $3, $4)")
            .bind(&city.id)
            .bind(&city.name)
            .bind(&services_json)
            .bind(city.created_at_ms)
            .execute(tx.conn())
            .await;
        unique_as(r, || Error::new(Code::AlreadyExists, "identity.city.taken"))?;
        tx.commit().await?;
        Ok(city)
    }

    pub async fn list_cities(&self) -> Result<Vec<City>> {
        let rows: Vec<CityRow> =
            sqlx::query_as("SELECT id, name, services, created_at_ms FROM cities ORDER BY name, id")
                .fetch_all(&self.ctx().db.pool)
                .await?;
        rows.into_iter().map(city_from_row).collect()
    }

    pub async fn city(&self, id: &str) -> Result<City> {
        let row: Option<CityRow> = sqlx::query_as("SELECT id, name, services, created_at_ms FROM cities WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.ctx().db.pool)
            .await?;
        city_from_row(row.ok_or_else(|| Error::not_found("city"))?)
    }

    pub async fn create_org(&self, actor: &Principal, city_id: &str, kind: OrgKind, name: &str) -> Result<Org> {
        if !actor.is_admin {
            return Err(Error::forbidden("identity.org.admin_only"));
        }
        self.require_second_factor_for_staff(actor).await?;
        let name = PersonName::parse_field(name, "name")?;
        self.city(city_id).await?;
        let org = Org {
            id: self.ctx().new_id(),
            city_id: city_id.to_string(),
            kind,
            name: name.into_string(),
            created_at_ms: self.ctx().now_ms(),
        };
        let mut tx = self.ctx().db.begin().await?;
        let r = sqlx::query("INSERT INTO orgs (id, city_id, kind, name, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&org.id)
            .bind(&org.city_id)
            .bind(org.kind.as_str())
            .bind(&org.name)
            .bind(org.created_at_ms)
            .execute(tx.conn())
            .await;
        unique_as(r, || Error::new(Code::AlreadyExists, "identity.org.taken"))?;
        tx.commit().await?;
        tracing::info!(org_id = %org.id, actor = %actor.user_id, "organisation created");
        Ok(org)
    }

    pub async fn org(&self, id: &str) -> Result<Org> {
        let row: Option<OrgRow> =
            sqlx::query_as("SELECT id, city_id, kind, name, created_at_ms FROM orgs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        org_from_row(row.ok_or_else(|| Error::not_found("organisation"))?)
    }

    pub async fn list_orgs(&self, city_id: Option<&str>) -> Result<Vec<Org>> {
        let rows: Vec<OrgRow> = match city_id {
            Some(c) => {
                sqlx::query_as(
                    "SELECT id, city_id, kind, name, created_at_ms FROM orgs WHERE city_id = $1 ORDER BY name, id",
                )
                .bind(c)
                .fetch_all(&self.ctx().db.pool)
                .await?
            }
            None => {
                sqlx::query_as("SELECT id, city_id, kind, name, created_at_ms FROM orgs ORDER BY city_id, name, id")
                    .fetch_all(&self.ctx().db.pool)
                    .await?
            }
        };
        rows.into_iter().map(org_from_row).collect()
    }

    /// Make a person staff of an organisation (or change their role). Platform
    /// admins and the organisation's admins may.
    pub async fn add_member(&self, actor: &Principal, org_id: &str, user_id: &str, role: Role) -> Result<Member> {
        self.require_staff(actor, org_id, Role::Admin).await?;
        let user = self.live_user(user_id).await?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query(
            "INSERT INTO org_members (org_id, user_id, role, created_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(tx.conn())
        .await?;
        let (created_at_ms,): (i64,) =
            sqlx::query_as("SELECT created_at_ms FROM org_members WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .fetch_one(tx.conn())
                .await?;
        tx.commit().await?;
        tracing::info!(%org_id, %user_id, role = role.as_str(), actor = %actor.user_id, "staff member set");
        Ok(Member { org_id: org_id.to_string(), user_id: user.id, user_name: user.name, role, created_at_ms })
    }

    /// Remove a person from an organisation's staff. Platform admins and the
    /// organisation's admins may.
    pub async fn remove_member(&self, actor: &Principal, org_id: &str, user_id: &str) -> Result<()> {
        self.require_staff(actor, org_id, Role::Admin).await?;
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::not_found("member"));
        }
        tx.commit().await
    }

    /// The organisation's staff, admins first, then by name.
    pub async fn list_members(&self, actor: &Principal, org_id: &str) -> Result<Vec<Member>> {
        self.require_staff(actor, org_id, Role::Operator).await?;
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT m.org_id, m.user_id, u.name AS user_name, m.role, m.created_at_ms
             FROM org_members m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1
             ORDER BY CASE m.role WHEN 'admin' THEN 0 ELSE 1 END, u.name, m.user_id",
        )
        .bind(org_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        rows.into_iter().map(member_from_row).collect()
    }

    /// The actor's membership of the organisation, if at least `min_role`;
    /// platform admins pass as admins. Forbidden otherwise (also when the
    /// organisation does not exist, so outsiders learn nothing).
    pub async fn require_staff(&self, actor: &Principal, org_id: &str, min_role: Role) -> Result<Member> {
        self.require_second_factor_for_staff(actor).await?;
        if actor.is_admin {
            let org = self.org(org_id).await?;
            return Ok(Member {
                org_id: org.id,
                user_id: actor.user_id.clone(),
                user_name: actor.name.clone(),
                role: Role::Admin,
                created_at_ms: org.created_at_ms,
            });
        }
        let row: Option<MemberRow> = sqlx::query_as(
            "SELECT m.org_id, m.user_id, u.name AS user_name, m.role, m.created_at_ms
             FROM org_members m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1 AND m.user_id = $2 AND u.deleted_at_ms IS NULL",
        )
        .bind(org_id)
        .bind(&actor.user_id)
        .fetch_optional(&self.ctx().db.pool)
        .await?;
        let member = match row {
            Some(r) => member_from_row(r)?,
            None => return Err(Error::forbidden("identity.staff.not_member")),
        };
        if !member.role.at_least(min_role) {
            return Err(Error::forbidden("identity.staff.role_needed")
                .with("role", Arg::Key(format!("role.{}", min_role.as_str()))));
        }
        Ok(member)
    }

    pub async fn memberships(&self, user_id: &str) -> Result<Vec<Membership>> {
        let rows: Vec<MembershipRow> = sqlx::query_as(
            "SELECT m.org_id, o.name AS org_name, o.kind AS org_kind, o.city_id, m.role
             FROM org_members m JOIN orgs o ON o.id = m.org_id
             WHERE m.user_id = $1 ORDER BY o.name, o.id",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Membership {
                    org_id: r.org_id,
                    org_name: r.org_name,
                    org_kind: kind_from_db(&r.org_kind)?,
                    city_id: r.city_id,
                    role: role_from_db(&r.role)?,
                })
            })
            .collect()
    }

    // ---- administration ----

    /// Make sure a platform admin with this login exists: create them, or
    /// promote the existing account, but only when `password` is that
    /// account's own (whoever registered the login first must not become an
    /// admin on the operator's word). An account that is already an admin is
    /// left as it is, so a restart with a stale password still starts.
    pub async fn ensure_admin(&self, login: &str, password: &str, name: &str) -> Result<String> {
        let parsed = Login::parse(login)?;
        if self.user_id_by_login(&parsed).await?.is_none() {
            match self.register(login, password, name).await {
                Ok(id) => return self.promote(&id).await.map(|()| id),
                // Someone registered it in between: checked below like any other.
                Err(e) if e.code == Code::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let existing: Option<(String, String, i64)> =
            sqlx::query_as("SELECT id, password_hash, is_admin FROM users WHERE login = $1 AND deleted_at_ms IS NULL")
                .bind(parsed.as_str())
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        let Some((user_id, hash, is_admin)) = existing else {
            return Err(Error::not_found("user"));
        };
        if is_admin == 1 {
            return Ok(user_id);
        }
        let password = if password.len() > MAX_LOGIN_PASSWORD_BYTES { "" } else { password };
        if !self.inner.hasher.verify(password.to_string(), hash).await? {
            tracing::warn!(%user_id, "admin bootstrap refused: the login is another account's");
            return Err(Error::new(Code::AlreadyExists, "identity.admin.login_taken"));
        }
        self.promote(&user_id).await?;
        Ok(user_id)
    }

    async fn promote(&self, user_id: &str) -> Result<()> {
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("UPDATE users SET is_admin = 1 WHERE id = $1 AND deleted_at_ms IS NULL")
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n != 1 {
            return Err(Error::not_found("user"));
        }
        // Sessions remembered before answer with the role they had.
        let eviction = session_cache::Eviction::User(user_id.to_string());
        self.evict_sessions(&mut tx, &eviction).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        tracing::info!(%user_id, "promoted to platform admin");
        Ok(())
    }

    // ---- the person's rights: export and deletion ----

    /// Everything identity holds about the person, the full identity number
    /// included (the owner asks).
    pub async fn export(&self, user_id: &str) -> Result<serde_json::Value> {
        let profile = self.profile(user_id).await?;
        let id_number = match self.live_user(user_id).await?.id_cipher {
            Some(sealed) => Some(self.open_id_number(user_id, &sealed).await?),
            None => None,
        };
        let now = self.ctx().now_ms();
        let sessions: Vec<SessionRow> = sqlx::query_as(
            "SELECT created_at_ms, expires_at_ms, revoked_at_ms, device, address, last_seen_ms
             FROM sessions WHERE user_id = $1 ORDER BY created_at_ms",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let active = sessions.iter().filter(|s| s.revoked_at_ms.is_none() && s.expires_at_ms > now).count();
        let session_list: Vec<serde_json::Value> = sessions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "created_at_ms": s.created_at_ms,
                    "expires_at_ms": s.expires_at_ms,
                    "revoked_at_ms": s.revoked_at_ms,
                    "device": s.device,
                    "address": s.address,
                    "last_seen_ms": s.last_seen_ms,
                })
            })
            .collect();
        let vehicles = self.vehicles(user_id).await?;
        let disputes = self.my_disputes(user_id).await?;
        Ok(serde_json::json!({
            "profile": profile,
            "id_number": id_number,
            "verified_by": self.live_user(user_id).await?.verified_by,
            "vehicles": vehicles,
            "disputes": disputes,
            "memberships": profile.memberships,
            "sessions_count": sessions.len(),
            "active_sessions_count": active,
            "sessions": session_list,
            "second_factor_on": self.totp_enabled(user_id).await?,
            "known_devices": self.known_devices(user_id).await?,
        }))
    }

    /// Erase the person: name, login, password hash and real-name data go,
    /// sessions end, memberships end. The row stays (with deleted_at_ms) so
    /// payments and the access log still point at an id. Deleting twice is fine.
    pub async fn delete_account(&self, user_id: &str) -> Result<()> {
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let row: Option<(Option<i64>,)> = sqlx::query_as("SELECT deleted_at_ms FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(tx.conn())
            .await?;
        match row {
            None => return Err(Error::not_found("user")),
            Some((Some(_),)) => return Ok(()),
            Some((None,)) => {}
        }
        sqlx::query(
            "UPDATE users SET login = $1, name = '', password_hash = '', is_admin = 0, verification_level = 0,
                 real_name = NULL, id_cipher = NULL, id_index = NULL, id_masked = NULL, home_city_id = NULL,
                 verified_by = NULL, verified_at_ms = NULL, deleted_at_ms = $2, pending_login = NULL
             WHERE id = $3",
        )
        .bind(format!("deleted:{user_id}"))
        .bind(now)
        .bind(user_id)
        .execute(tx.conn())
        .await?;
        sqlx::query("UPDATE sessions SET revoked_at_ms = $1 WHERE user_id = $2 AND revoked_at_ms IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM org_members WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        verification::erase_for_deletion(&mut tx, user_id).await?;
        sqlx::query("DELETE FROM identity_totp WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM identity_known_devices WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM identity_totp_recovery WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM identity_login_codes WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
        let eviction = session_cache::Eviction::User(user_id.to_string());
        self.evict_sessions(&mut tx, &eviction).await?;
        self.person_changed(&mut tx, user_id).await?;
        tx.commit().await?;
        self.evicted(&eviction);
        self.person_changed_after(user_id);
        tracing::info!(%user_id, "account deleted");
        Ok(())
    }
}

fn login_taken() -> Error {
    let mut e = Error::new(Code::AlreadyExists, "identity.login.taken");
    e.fields.push(FieldError::new("login", Msg::new("identity.login.taken")));
    e
}
