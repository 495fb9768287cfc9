//! The sandbox outbox: every mail and SMS the sandbox senders "deliver" is one
//! file under `DATA_DIR/outbox/`, named so that names sort by time and say
//! which kind it is (`<epoch ms>-<seq>-mail.txt`, `…-sms.txt`), holding the
//! destination and the text. Nothing in it was delivered.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use yizhan_core::{Error, Result};

/// At most this many messages are listed (the newest).
pub const OUTBOX_LIST_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxKind {
    Mail,
    Sms,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Mail => "mail",
            OutboxKind::Sms => "sms",
        }
    }
}

/// One message in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxItem {
    pub file_name: String,
    pub kind: OutboxKind,
    pub at_ms: i64,
    /// An e-mail address or a phone number.
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
}

const SANDBOX_LINE: &str = "X-Yizhan-Sandbox: not delivered; written to a file by the sandbox";

/// A per-process counter so two messages in the same millisecond keep their order.
static SEQ: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> i64 {
    // The outbox is an operator's view of the wall clock, not domain logic.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Writes one message as a new file (never overwriting another).
pub(crate) async fn write_outbox(
    dir: &Path,
    kind: OutboxKind,
    to: &str,
    subject: Option<&str>,
    text: &str,
) -> Result<()> {
    let mut content = format!("Kind: {}\nTo: {}\n", kind.as_str(), one_line(to));
    if let Some(s) = subject {
        content.push_str(&format!("Subject: {}\n", one_line(s)));
    }
    content.push_str(SANDBOX_LINE);
    content.push_str("\n\n");
    content.push_str(text);
    if !text.ends_with('\n') {
        content.push('\n');
    }
    tokio::fs::create_dir_all(dir).await.map_err(Error::internal)?;
    loop {
        let seq = SEQ.fetch_add(1, Ordering::SeqCst) % 1_000_000;
        let path = dir.join(format!("{:013}-{seq:06}-{}.txt", now_ms(), kind.as_str()));
        match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await {
            Ok(mut f) => {
                f.write_all(content.as_bytes()).await.map_err(Error::internal)?;
                f.flush().await.map_err(Error::internal)?;
                return Ok(());
            }
            // Another process on the same directory took the name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::internal(e)),
        }
    }
}

/// Reads a file's name and content back into an item; `None` for files
/// that are not outbox messages.
pub fn parse_outbox_file(file_name: &str, content: &str) -> Option<OutboxItem> {
    let stem = file_name.strip_suffix(".txt")?;
    let mut parts = stem.splitn(3, '-');
    let at_ms: i64 = parts.next()?.parse().ok()?;
    let _seq = parts.next()?;
    let kind = match parts.next()? {
        "mail" => OutboxKind::Mail,
        "sms" => OutboxKind::Sms,
        _ => return None,
    };
    let (head, text) = content.split_once("\n\n").unwrap_or((content, ""));
    let mut to = String::new();
    let mut subject = None;
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("To: ") {
            to = v.to_string();
        } else if let Some(v) = line.strip_prefix("Subject: ") {
            subject = Some(v.to_string());
        }
    }
    Some(OutboxItem {
        file_name: file_name.to_string(),
        kind,
        at_ms,
        to,
        subject,
        text: text.strip_suffix('\n').unwrap_or(text).to_string(),
    })
}

/// The newest messages first, at most `limit` (capped at [`OUTBOX_LIST_MAX`]);
/// an outbox that does not exist yet is empty.
pub async fn list_outbox(dir: &Path, limit: usize) -> Result<Vec<OutboxItem>> {
    let limit = limit.min(OUTBOX_LIST_MAX);
    let mut names = Vec::new();
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::internal(e)),
    };
    while let Some(entry) = rd.next_entry().await.map_err(Error::internal)? {
        if let Some(name) = entry.file_name().to_str() {
            if name.ends_with("-mail.txt") || name.ends_with("-sms.txt") {
                names.push(name.to_string());
            }
        }
    }
    // Fixed-width time and sequence: the name order is the time order.
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut items = Vec::new();
    for name in names.into_iter().take(limit) {
        let content = match tokio::fs::read(dir.join(&name)).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => continue,
        };
        if let Some(item) = parse_outbox_file(&name, &content) {
            items.push(item);
        }
    }
    Ok(items)
}
