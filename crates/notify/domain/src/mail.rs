//! Mail delivery: a sandbox that only writes files into the outbox, and an
//! SMTP mailer on `lettre` (STARTTLS or implicit TLS through rustls,
//! authentication, timeouts) for a real server.

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;
use yizhan_core::{Code, Error, Result};

use crate::outbox::{write_outbox, OutboxKind};

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

/// Delivers nothing: writes each mail as one file into the outbox (the
/// destination, the subject and the text), for an operator trying the
/// platform out and for tests.
pub struct SandboxMailer {
    dir: PathBuf,
}

impl SandboxMailer {
    pub fn new(dir: impl Into<PathBuf>) -> SandboxMailer {
        SandboxMailer { dir: dir.into() }
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
        let subject = one_line(subject);
        write_outbox(&self.dir, OutboxKind::Mail, to, Some(&subject), body).await
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    StartTls,
    /// TLS from the first byte (usually port 465).
    Implicit,
    /// No TLS at all: only for a relay on the loopback interface.
    None,
}

impl SmtpTls {
    pub fn parse(s: &str) -> Option<SmtpTls> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Implicit),
            "none" => Some(SmtpTls::None),
            _ => None,
        }
    }
}

/// What the SMTP mailer needs. No `Debug`: the password must not reach a log.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub tls: SmtpTls,
    /// User and password for AUTH (PLAIN or LOGIN; in the clear only with `SmtpTls::None`, on loopback).
    pub credentials: Option<(String, String)>,
    /// For connecting, and for each reply.
    pub timeout_ms: u64,
    /// PEM certificates trusted besides the public roots (a private or test CA).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// The name this client gives itself in EHLO (default: the machine's host name).
    pub helo_name: Option<String>,
}

impl SmtpConfig {
    pub fn new(host: impl Into<String>, port: u16, from: impl Into<String>) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port,
            from: from.into(),
            tls: SmtpTls::StartTls,
            credentials: None,
            timeout_ms: 10_000,
            extra_ca_pem: None,
            helo_name: None,
        }
    }
}

/// Whether a host name is this machine's loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// SMTP through `lettre`: one connection per mail, every step under the timeout.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    timeout_ms: u64,
}

fn config_err(what: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("SMTP configuration: {what}"))
}

impl SmtpMailer {
    /// Refuses a configuration that would send mail or a password in the
    /// clear over the network (`SmtpTls::None` to a host not on loopback), a
    /// bad sender address and an unreadable CA.
    pub fn new(cfg: SmtpConfig) -> Result<SmtpMailer> {
        check_address(&cfg.from).map_err(|_| Error::field("from", "notify.mail.sender_invalid"))?;
        let from = cfg.from.parse().map_err(|_| Error::field("from", "notify.mail.sender_invalid"))?;
        if cfg.tls == SmtpTls::None && !is_loopback_host(&cfg.host) {
            return Err(config_err(format!(
                "TLS none is only allowed to a relay on loopback, not to {:?}; use starttls or tls",
                cfg.host
            )));
        }
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(&cfg)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(&cfg)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(cfg.timeout_ms)));
        if let Some(name) = &cfg.helo_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        if let Some((user, password)) = &cfg.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpMailer { transport: builder.build(), from, timeout_ms: cfg.timeout_ms })
    }
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(pem) = &cfg.extra_ca_pem {
        // An empty or garbled file would otherwise add nothing, silently.
        if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(config_err("the CA file holds no PEM certificate"));
        }
        let cert = Certificate::from_pem(pem).map_err(|e| config_err(format!("the CA file: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls().map_err(|e| config_err(format!("TLS: {e}")))
}

/// Control characters become spaces, so a subject cannot add headers.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A lettre error for the log: what failed and the reply code, never the
/// server's text (which may quote the recipient).
fn send_err(e: &lettre::transport::smtp::Error) -> Error {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_tls() {
        "TLS failed"
    } else if e.is_permanent() {
        "refused (permanent)"
    } else if e.is_transient() {
        "refused (transient)"
    } else if e.is_client() {
        "client error"
    } else {
        "connection failed"
    };
    let code = e.status().map(|c| format!(" with {c}")).unwrap_or_default();
    let detail = anyhow::anyhow!("SMTP: {what}{code}");
    if e.is_timeout() {
        let mut err = Error::new(Code::GatewayTimeout, "notify.mail.timeout");
        err.source = Some(detail);
        err
    } else {
        Error::internal(detail)
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()> {
        check_address(to)?;
        let to_box: lettre::message::Mailbox =
            to.parse().map_err(|_| Error::field("email", "notify.mail.address_invalid"))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to_box)
            .subject(one_line(subject))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string())
            .map_err(|e| Error::internal(anyhow::anyhow!("building the mail: {e}")))?;
        // A timeout on lettre's own clock can only cover each step; this bounds the whole mail too.
        let whole = Duration::from_millis(self.timeout_ms.saturating_mul(6));
        match tokio::time::timeout(whole, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(send_err(&e)),
            Err(_) => {
                let mut err = Error::new(Code::GatewayTimeout, "notify.mail.timeout");
                err.source = Some(anyhow::anyhow!("SMTP: the whole exchange timed out"));
                Err(err)
            }
        }
    }
}
