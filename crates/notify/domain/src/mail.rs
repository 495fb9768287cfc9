//! Mail delivery: a sandbox that only writes files, and a minimal SMTP client
//! for a relay the operator runs (no TLS, no authentication: point it at a
//! local relay such as Postfix on 127.0.0.1 that handles the rest).

use async_trait::async_trait;
use base64::Engine as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use yizhan_core::{Code, Error, Result};

#[async_trait]
pub trait Mailer: Send + Sync {
    fn name(&self) -> &'static str;
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()>;
}

/// A recipient address fit for a header and an SMTP command: one `@`, no
/// whitespace, control characters or angle brackets (no header injection).
pub fn check_address(to: &str) -> Result<()> {
    let ok = to.len() <= 254
        && to.matches('@').count() == 1
        && !to.starts_with('@')
        && !to.ends_with('@')
        && !to.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'));
    if ok {
        Ok(())
    } else {
        Err(Error::field("email", "notify.mail.address_invalid"))
    }
}

/// A header value in RFC 2047 form when it is not plain ASCII; line breaks
/// become spaces so a subject cannot add headers.
fn header_value(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.is_ascii() {
        one_line
    } else {
        format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(one_line.as_bytes()))
    }
}

/// A complete message (headers and a base64 UTF-8 body), CRLF line endings.
pub fn format_message(from: &str, to: &str, subject: &str, body: &str, extra_headers: &[(&str, &str)]) -> String {
    let mut m = String::new();
    m.push_str(&format!("From: {from}\r\n"));
    m.push_str(&format!("To: {to}\r\n"));
    m.push_str(&format!("Subject: {}\r\n", header_value(subject)));
    for (k, v) in extra_headers {
        m.push_str(&format!("{k}: {}\r\n", header_value(v)));
    }
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    for chunk in encoded.as_bytes().chunks(76) {
        m.push_str(&String::from_utf8_lossy(chunk));
        m.push_str("\r\n");
    }
    m
}

/// Delivers nothing: writes each mail as an .eml file into a directory, for
/// an operator trying the platform out and for tests.
pub struct SandboxMailer {
    dir: PathBuf,
    next: AtomicU64,
}

impl SandboxMailer {
    pub fn new(dir: impl Into<PathBuf>) -> SandboxMailer {
        SandboxMailer { dir: dir.into(), next: AtomicU64::new(1) }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for SandboxMailer {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        check_address(to)?;
        let message = format_message(
            "yizhan-sandbox@localhost",
            to,
            subject,
            body,
            &[("X-Yizhan-Sandbox", "not delivered; written to a file by the sandbox mailer")],
        );
        tokio::fs::create_dir_all(&self.dir).await.map_err(Error::internal)?;
        // Numbered files; skip numbers taken by an earlier run.
        loop {
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            let path = self.dir.join(format!("mail-{n:06}.eml"));
            match tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await {
                Ok(mut f) => {
                    f.write_all(message.as_bytes()).await.map_err(Error::internal)?;
                    f.flush().await.map_err(Error::internal)?;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::internal(e)),
            }
        }
    }
}

/// A minimal SMTP client: EHLO (HELO if refused), MAIL FROM, RCPT TO, DATA
/// with dot-stuffing, QUIT; every reply code checked, every step timed out.
pub struct SmtpMailer {
    host: String,
    port: u16,
    from: String,
    helo_name: String,
    step_timeout_ms: u64,
}

impl SmtpMailer {
    pub fn new(host: impl Into<String>, port: u16, from: impl Into<String>) -> SmtpMailer {
        SmtpMailer {
            host: host.into(),
            port,
            from: from.into(),
            helo_name: "localhost".into(),
            step_timeout_ms: 30_000,
        }
    }

    /// The name this client gives itself in EHLO.
    pub fn with_helo_name(mut self, name: impl Into<String>) -> SmtpMailer {
        self.helo_name = name.into();
        self
    }

    /// How long to wait for the connection and for each reply.
    pub fn with_step_timeout_ms(mut self, ms: u64) -> SmtpMailer {
        self.step_timeout_ms = ms;
        self
    }
}

/// Body lines with CRLF endings and a leading '.' doubled (RFC 5321 4.5.2).
pub fn dot_stuff(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    let normalized = message.replace("\r\n", "\n");
    let trimmed = normalized.strip_suffix('\n').unwrap_or(&normalized);
    for line in trimmed.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

struct SmtpConn {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    timeout: Duration,
}

/// The relay did not answer in time; the step goes to the log, not to the person.
fn smtp_timeout(step: &str, what: &str) -> Error {
    let mut e = Error::new(Code::GatewayTimeout, "notify.mail.timeout");
    e.source = Some(anyhow::anyhow!("SMTP {step}: {what}"));
    e
}

fn smtp_err(step: &str, detail: impl std::fmt::Display) -> Error {
    // The detail never holds the recipient: only the step and the reply code.
    Error::internal(anyhow::anyhow!("SMTP {step}: {detail}"))
}

impl SmtpConn {
    /// One reply, possibly multi-line ("250-…" then "250 …"); its code.
    async fn reply(&mut self, step: &str) -> Result<u16> {
        let mut code = None;
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.timeout, self.reader.read_line(&mut line))
                .await
                .map_err(|_| smtp_timeout(step, "no reply in time"))?
                .map_err(|e| smtp_err(step, e))?;
            if n == 0 {
                return Err(smtp_err(step, "connection closed"));
            }
            if line.len() > 4096 {
                return Err(smtp_err(step, "reply line too long"));
            }
            let digits = line.get(..3).and_then(|d| d.parse::<u16>().ok());
            let Some(c) = digits else {
                return Err(smtp_err(step, "malformed reply"));
            };
            if code.is_some_and(|prev| prev != c) {
                return Err(smtp_err(step, "inconsistent multi-line reply"));
            }
            code = Some(c);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(c);
            }
        }
    }

    async fn write(&mut self, step: &str, data: &[u8]) -> Result<()> {
        tokio::time::timeout(self.timeout, self.writer.write_all(data))
            .await
            .map_err(|_| smtp_timeout(step, "write timed out"))?
            .map_err(|e| smtp_err(step, e))
    }

    async fn command(&mut self, step: &str, line: &str, expect: &[u16]) -> Result<u16> {
        self.write(step, format!("{line}\r\n").as_bytes()).await?;
        let code = self.reply(step).await?;
        if expect.contains(&code) {
            Ok(code)
        } else {
            Err(smtp_err(step, format!("refused with {code}")))
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        check_address(to)?;
        check_address(&self.from).map_err(|_| Error::field("from", "notify.mail.sender_invalid"))?;
        let timeout = Duration::from_millis(self.step_timeout_ms);
        let stream = tokio::time::timeout(timeout, TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| smtp_timeout("connect", "timed out"))?
            .map_err(|e| smtp_err("connect", e))?;
        let (r, w) = stream.into_split();
        let mut c = SmtpConn { reader: BufReader::new(r), writer: w, timeout };
        let greeting = c.reply("greeting").await?;
        if greeting != 220 {
            return Err(smtp_err("greeting", format!("refused with {greeting}")));
        }
        if c.command("EHLO", &format!("EHLO {}", self.helo_name), &[250]).await.is_err() {
            c.command("HELO", &format!("HELO {}", self.helo_name), &[250]).await?;
        }
        c.command("MAIL FROM", &format!("MAIL FROM:<{}>", self.from), &[250]).await?;
        c.command("RCPT TO", &format!("RCPT TO:<{to}>"), &[250, 251]).await?;
        c.command("DATA", "DATA", &[354]).await?;
        let message = format_message(&self.from, to, subject, body, &[]);
        let mut data = dot_stuff(&message);
        data.push_str(".\r\n");
        c.write("DATA", data.as_bytes()).await?;
        let code = c.reply("end of DATA").await?;
        if code != 250 {
            return Err(smtp_err("end of DATA", format!("refused with {code}")));
        }
        // The mail is accepted; a failed QUIT changes nothing.
        let _ = c.command("QUIT", "QUIT", &[221]).await;
        Ok(())
    }
}
