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

/// One offending input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The error every domain operation returns: a public code, a human detail
/// (English; the web layer adds the translated title), the offending fields
/// for validation, and for internal errors the hidden cause.
#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub detail: String,
    pub fields: Vec<FieldError>,
    /// Seconds to wait before trying again, for rate limits.
    pub retry_after_s: Option<u64>,
    pub source: Option<anyhow::Error>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), fields: Vec::new(), retry_after_s: None, source: None }
    }

    /// A validation failure of one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code: Code::ValidationFailed,
            detail: format!("{field}: {message}"),
            fields: vec![FieldError { field: field.to_string(), message }],
            retry_after_s: None,
            source: None,
        }
    }

    /// A validation failure of several fields at once.
    pub fn fields(fields: Vec<FieldError>) -> Self {
        let detail = fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ");
        Self { code: Code::ValidationFailed, detail, fields, retry_after_s: None, source: None }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, detail)
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self { source: Some(e.into()), ..Self::new(Code::Internal, "internal error") }
    }

    pub fn with_retry_after(mut self, s: u64) -> Self {
        self.retry_after_s = Some(s);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)?;
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
            return Error::new(Code::NotFound, "not found");
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
