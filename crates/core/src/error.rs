pub use crate::msg::{Arg, Msg};
use serde::Serialize;
use std::fmt;

/// The public, stable error codes of the platform. Clients and translations
/// key on these strings; never rename one. The web crate maps each to an HTTP
/// status in one table; nothing else here knows HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    // request shape
    ValidationFailed,
    MalformedJson,
    UnsupportedMediaType,
    PayloadTooLarge,
    CsrfFailed,
    // who you are and what you may do
    Unauthorized,
    InvalidCredentials,
    TooManyAttempts,
    Forbidden,
    // things
    NotFound,
    AlreadyExists,
    Conflict,
    // money
    InsufficientFunds,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    IdempotencyInProgress,
    TransferAlreadyResolved,
    HoldExpired,
    SelfPayment,
    CodeExpired,
    CodeUsed,
    QrInvalid,
    PaymentDeclined,
    GatewayTimeout,
    AlreadyClaimed,
    PacketEmpty,
    AlreadyPaid,
    // everything else
    Internal,
}

impl Code {
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
        Code::InsufficientFunds,
        Code::IdempotencyKeyRequired,
        Code::IdempotencyKeyReused,
        Code::IdempotencyInProgress,
        Code::TransferAlreadyResolved,
        Code::HoldExpired,
        Code::SelfPayment,
        Code::CodeExpired,
        Code::CodeUsed,
        Code::QrInvalid,
        Code::PaymentDeclined,
        Code::GatewayTimeout,
        Code::AlreadyClaimed,
        Code::PacketEmpty,
        Code::AlreadyPaid,
        Code::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::ValidationFailed => "validation_failed",
            Code::MalformedJson => "malformed_json",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::PayloadTooLarge => "payload_too_large",
            Code::CsrfFailed => "csrf_failed",
            Code::Unauthorized => "unauthorized",
            Code::InvalidCredentials => "invalid_credentials",
            Code::TooManyAttempts => "too_many_attempts",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::Conflict => "conflict",
            Code::InsufficientFunds => "insufficient_funds",
            Code::IdempotencyKeyRequired => "idempotency_key_required",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::IdempotencyInProgress => "idempotency_in_progress",
            Code::TransferAlreadyResolved => "transfer_already_resolved",
            Code::HoldExpired => "hold_expired",
            Code::SelfPayment => "self_payment",
            Code::CodeExpired => "code_expired",
            Code::CodeUsed => "code_used",
            Code::QrInvalid => "qr_invalid",
            Code::PaymentDeclined => "payment_declined",
            Code::GatewayTimeout => "gateway_timeout",
            Code::AlreadyClaimed => "already_claimed",
            Code::PacketEmpty => "packet_empty",
            Code::AlreadyPaid => "already_paid",
            Code::Internal => "internal",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One offending input field: its name (for programs) and what is wrong with
/// it, as a message (for people).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Seconds to wait before trying again, for rate limits.
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
