pub use crate::msg::{Arg, Msg};
use serde::Serialize;
use std::fmt;

/// What kind of failure a code is. The web side maps each class to an HTTP
/// status in one table; nothing here knows HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The input is well formed but not acceptable (a rule says no).
    Invalid,
    /// The request itself is malformed (not JSON, a required header missing).
    Malformed,
    /// The body is not of an accepted media type.
    UnsupportedMedia,
    /// The body is larger than the limit.
    TooLarge,
    /// Nobody is logged in, or the credentials are wrong.
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// Too many attempts: wait and try again.
    RateLimited,
    NotFound,
    /// It clashes with the current state (exists, in progress, resolved).
    Conflict,
    /// It was there but is no longer (expired, used up).
    Gone,
    /// A payment provider declined.
    PaymentRequired,
    /// An outside service did not answer in time.
    UpstreamTimeout,
    /// The server is too busy, or could not answer in time: try again shortly.
    Unavailable,
    Internal,
}

/// A public, stable error code: a name clients and translations key on
/// (never rename one) and its class. The platform's own codes are here; a
/// room adds its own with `Code::new` in its domain crate and lists them in
/// its room, and the app refuses a name two rooms claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code {
    name: &'static str,
    class: Class,
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

#[allow(non_upper_case_globals)]
impl Code {
    pub const ValidationFailed: Code = Code::new("validation_failed", Class::Invalid);
    pub const MalformedJson: Code = Code::new("malformed_json", Class::Malformed);
    pub const UnsupportedMediaType: Code = Code::new("unsupported_media_type", Class::UnsupportedMedia);
    pub const PayloadTooLarge: Code = Code::new("payload_too_large", Class::TooLarge);
    pub const CsrfFailed: Code = Code::new("csrf_failed", Class::Forbidden);
    pub const Unauthorized: Code = Code::new("unauthorized", Class::Unauthenticated);
    pub const InvalidCredentials: Code = Code::new("invalid_credentials", Class::Unauthenticated);
    pub const TooManyAttempts: Code = Code::new("too_many_attempts", Class::RateLimited);
    pub const Forbidden: Code = Code::new("forbidden", Class::Forbidden);
    pub const NotFound: Code = Code::new("not_found", Class::NotFound);
    pub const AlreadyExists: Code = Code::new("already_exists", Class::Conflict);
    pub const Conflict: Code = Code::new("conflict", Class::Conflict);
    pub const IdempotencyKeyRequired: Code = Code::new("idempotency_key_required", Class::Malformed);
    pub const IdempotencyKeyReused: Code = Code::new("idempotency_key_reused", Class::Invalid);
    pub const IdempotencyInProgress: Code = Code::new("idempotency_in_progress", Class::Conflict);
    pub const GatewayTimeout: Code = Code::new("gateway_timeout", Class::UpstreamTimeout);
    pub const Busy: Code = Code::new("busy", Class::Unavailable);
    pub const RequestTimeout: Code = Code::new("request_timeout", Class::Unavailable);
    pub const Internal: Code = Code::new("internal", Class::Internal);

    pub const fn new(name: &'static str, class: Class) -> Code {
        Code { name, class }
    }

    /// The platform's codes (a room's own come with its room).
    pub const ALL: &'static [Code] = &[
        Code::ValidationFailed,
        Code::MalformedJson,
        Code::UnsupportedMediaType,
        Code::PayloadTooLarge,
        Code::CsrfFailed,
        Code::Unauthorized,
        Code::InvalidCredentials,
        Code::TooManyAttempts,
        Code::Forbidden,
        Code::NotFound,
        Code::AlreadyExists,
        Code::Conflict,
        Code::IdempotencyKeyRequired,
        Code::IdempotencyKeyReused,
        Code::IdempotencyInProgress,
        Code::GatewayTimeout,
        Code::Busy,
        Code::RequestTimeout,
        Code::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        self.name
    }

    pub fn class(self) -> Class {
        self.class
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One offending input field: its name (for programs) and what is wrong with
/// it, as a message (for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub msg: Msg,
}

impl FieldError {
    pub fn new(field: &str, msg: Msg) -> FieldError {
        FieldError { field: field.to_string(), msg }
    }
}

/// The error every domain operation returns: a public code, what went wrong
/// as a message (a catalogue key and arguments, rendered in the reader's
/// language by the web side), the offending fields for validation, and for
/// internal errors the hidden cause.
#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub msg: Msg,
    pub fields: Vec<FieldError>,
    /// Seconds to wait before trying again, for rate limits and a busy server.
    pub retry_after_s: Option<u64>,
    pub source: Option<anyhow::Error>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this code and message key (arguments follow with `with`).
    pub fn new(code: Code, key: impl Into<String>) -> Self {
        Self { code, msg: Msg::new(key), fields: Vec::new(), retry_after_s: None, source: None }
    }

    /// An error with a whole message.
    pub fn msg(code: Code, msg: Msg) -> Self {
        Self { code, msg, fields: Vec::new(), retry_after_s: None, source: None }
    }

    /// Add an argument to the message.
    pub fn with(mut self, name: &str, value: Arg) -> Self {
        self.msg.args.push((name.to_string(), value));
        self
    }

    /// A validation failure of one field, with a message key for what is wrong.
    pub fn field(field: &str, key: impl Into<String>) -> Self {
        Self::field_msg(field, Msg::new(key))
    }

    /// A validation failure of one field, with a whole message.
    pub fn field_msg(field: &str, msg: Msg) -> Self {
        Self {
            code: Code::ValidationFailed,
            msg: msg.clone(),
            fields: vec![FieldError { field: field.to_string(), msg }],
            retry_after_s: None,
            source: None,
        }
    }

    /// A validation failure of several fields at once.
    pub fn fields(fields: Vec<FieldError>) -> Self {
        let msg = match fields.as_slice() {
            [one] => one.msg.clone(),
            _ => Msg::new("error.validation_failed"),
        };
        Self { code: Code::ValidationFailed, msg, fields, retry_after_s: None, source: None }
    }

    /// Something named by a catalogue key was not found ("error.not_found.user").
    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("error.not_found.{what}"))
    }

    pub fn forbidden(key: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, key)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self { source: Some(e.into()), ..Self::new(Code::Internal, "error.internal") }
    }

    pub fn with_retry_after(mut self, s: u64) -> Self {
        self.retry_after_s = Some(s);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.msg)?;
        for fe in &self.fields {
            write!(f, "; {}: {}", fe.field, fe.msg)?;
        }
        if let Some(s) = &self.source {
            write!(f, " ({s:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::RowNotFound = e {
            return Error::new(Code::NotFound, "error.not_found");
        }
        Error::internal(e)
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::internal(e)
    }
}

/// Whether a database error is a unique-constraint violation, on either engine.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation)
                || d.code().as_deref() == Some("23505")
                || d.code().as_deref() == Some("2067")
                || d.code().as_deref() == Some("1555")
                || d.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// A statement's result, with a unique-constraint violation turned into the
/// domain's own error (e.g. "this login is taken"); other errors pass through.
pub fn unique_as<T>(r: std::result::Result<T, sqlx::Error>, err: impl FnOnce() -> Error) -> Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(e) if is_unique_violation(&e) => Err(err()),
        Err(e) => Err(e.into()),
    }
}

/// Whether a database error means "try the transaction again": a PostgreSQL
/// serialization failure or deadlock, or SQLite busy.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("40001") | Some("40P01") | Some("5") | Some("517"))
                || d.message().contains("database is locked")
        }
        _ => false,
    }
}
