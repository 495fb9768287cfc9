//! Text messages: the `SmsSender` a real provider plugs in behind, and the
//! sandbox that only writes each message into the outbox.

use crate::outbox::{write_outbox, OutboxKind};
use async_trait::async_trait;
use std::path::PathBuf;
use yizhan_core::{Error, Result};

#[async_trait]
pub trait SmsSender: Send + Sync {
    fn name(&self) -> &'static str;
    /// True when nothing is really delivered.
    fn is_sandbox(&self) -> bool;
    async fn send(&self, to_phone: &str, text: &str) -> Result<()>;
}

/// A phone number fit for a provider and a file: an optional leading `+`
/// then 5 to 20 digits (spaces and dashes dropped).
pub fn normalize_phone(to: &str) -> Result<String> {
    let t = to.trim();
    let (plus, digits) = match t.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", t),
    };
    let digits: String = digits.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if (5..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(format!("{plus}{digits}"))
    } else {
        Err(Error::field("phone", "notify.sms.phone_invalid"))
    }
}

/// Delivers nothing: one file per message in the outbox.
pub struct SandboxSmsSender {
    dir: PathBuf,
}

impl SandboxSmsSender {
    pub fn new(dir: impl Into<PathBuf>) -> SandboxSmsSender {
        SandboxSmsSender { dir: dir.into() }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// Longer texts are refused rather than split into many messages.
pub const SMS_MAX_CHARS: usize = 500;

#[async_trait]
impl SmsSender for SandboxSmsSender {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn is_sandbox(&self) -> bool {
        true
    }

    async fn send(&self, to_phone: &str, text: &str) -> Result<()> {
        let to = normalize_phone(to_phone)?;
        if text.trim().is_empty() || text.chars().count() > SMS_MAX_CHARS {
            return Err(Error::field("text", "notify.sms.text_invalid"));
        }
        write_outbox(&self.dir, OutboxKind::Sms, &to, None, text).await
    }
}
