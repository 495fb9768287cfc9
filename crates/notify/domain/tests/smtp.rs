//! Mail through a real SMTP server that requires STARTTLS and AUTH. Run by
//! tests/smtp/run.sh, which starts one (aiosmtpd) and sets the variables
//! below; without them each test says so and passes without sending.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;
use yizhan_core::Code;
use yizhan_notify::{Mailer, SmtpConfig, SmtpMailer, SmtpTls};

struct Server {
    port: u16,
    plain_port: u16,
    implicit_port: u16,
    user: String,
    password: String,
    ca_pem: Vec<u8>,
    received: PathBuf,
}

fn server() -> Option<Server> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(port) = var("YIZHAN_TEST_SMTP_PORT") else {
        eprintln!("YIZHAN_TEST_SMTP_PORT is not set: skipped (tests/smtp/run.sh starts a server and sets it)");
        return None;
    };
    Some(Server {
        port: port.parse().unwrap(),
        plain_port: var("YIZHAN_TEST_SMTP_PLAIN_PORT").unwrap().parse().unwrap(),
        implicit_port: var("YIZHAN_TEST_SMTP_IMPLICIT_PORT").unwrap().parse().unwrap(),
        user: var("YIZHAN_TEST_SMTP_USER").unwrap(),
        password: var("YIZHAN_TEST_SMTP_PASSWORD").unwrap(),
        ca_pem: std::fs::read(var("YIZHAN_TEST_SMTP_CA_FILE").unwrap()).unwrap(),
        received: PathBuf::from(var("YIZHAN_TEST_SMTP_RECEIVED").unwrap()),
    })
}

impl Server {
    fn config(&self) -> SmtpConfig {
        SmtpConfig {
            tls: SmtpTls::StartTls,
            credentials: Some((self.user.clone(), self.password.clone())),
            extra_ca_pem: Some(self.ca_pem.clone()),
            timeout_ms: 5_000,
            helo_name: Some("yizhan.test".into()),
            ..SmtpConfig::new("127.0.0.1", self.port, "noreply@yizhan.test")
        }
    }

    /// The messages received so far, decoded by the server.
    fn received(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.received)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} messages at the server");
    }
}

#[tokio::test]
async fn a_chinese_mail_arrives_over_starttls_with_auth() {
    let Some(s) = server() else { return };
    let before = s.received().len();
    let mailer = SmtpMailer::new(s.config()).unwrap();
    let subject = "验证码 / Your code";
    let body = "你的验证码是 482913，十分钟内有效。\nYour code is 482913.\n.a line starting with a dot\n";
    mailer.send("li.wei@example.cn", subject, body).await.unwrap();
    let got = s.wait_for(before + 1).await;
    let m = &got[before];
    assert_eq!(m["port"], "tls", "{m}");
    assert_eq!(m["tls"], true, "{m}");
    assert_eq!(m["auth"], s.user.as_str(), "{m}");
    assert_eq!(m["mail_from"], "noreply@yizhan.test", "{m}");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["li.wei@example.cn"]), "{m}");
    assert_eq!(m["from"], "noreply@yizhan.test", "{m}");
    assert_eq!(m["to"], "li.wei@example.cn", "{m}");
    assert_eq!(m["subject"], subject, "{m}");
    assert_eq!(m["content_type"], "text/plain", "{m}");
    assert_eq!(m["charset"], "utf-8", "{m}");
    assert_eq!(m["body"].as_str().unwrap().replace("\r\n", "\n"), body, "{m}");
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let Some(s) = server() else { return };
    let before = s.received().len();
    let cfg = SmtpConfig { credentials: Some((s.user.clone(), "wrong password".into())), ..s.config() };
    let e = SmtpMailer::new(cfg).unwrap().send("li.wei@example.cn", "s", "b").await.unwrap_err();
    assert_eq!(e.code, Code::Internal, "{e:?}");
    let shown = format!("{e:?}");
    assert!(shown.contains("535") && !shown.contains("wrong password"), "{shown}");
    assert_eq!(s.received().len(), before);
}

#[tokio::test]
async fn without_credentials_the_server_refuses_the_mail() {
    let Some(s) = server() else { return };
    let before = s.received().len();
    let cfg = SmtpConfig { credentials: None, ..s.config() };
    assert!(SmtpMailer::new(cfg).unwrap().send("li.wei@example.cn", "s", "b").await.is_err());
    assert_eq!(s.received().len(), before);
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let Some(s) = server() else { return };
    let before = s.received().len();
    let cfg = SmtpConfig { extra_ca_pem: None, ..s.config() };
    let e = SmtpMailer::new(cfg).unwrap().send("li.wei@example.cn", "s", "b").await.unwrap_err();
    assert_eq!(e.code, Code::Internal, "{e:?}");
    assert_eq!(s.received().len(), before);
}

#[tokio::test]
async fn a_server_without_starttls_is_refused_before_anything_is_sent() {
    let Some(s) = server() else { return };
    let before = s.received().len();
    let cfg = SmtpConfig { port: s.plain_port, ..s.config() };
    let e = SmtpMailer::new(cfg).unwrap().send("li.wei@example.cn", "s", "b").await.unwrap_err();
    assert_eq!(e.code, Code::Internal, "{e:?}");
    assert_eq!(s.received().len(), before, "the plain server got a message: the password or mail went in the clear");
}

#[tokio::test]
async fn a_mail_arrives_over_implicit_tls_with_auth() {
    let Some(s) = server() else { return };
    let before = s.received().len();
    let cfg = SmtpConfig { tls: SmtpTls::Implicit, port: s.implicit_port, ..s.config() };
    SmtpMailer::new(cfg).unwrap().send("wang.fang@example.cn", "账单 / Bill", "水费 30.00 元").await.unwrap();
    let got = s.wait_for(before + 1).await;
    let m = &got[before];
    assert_eq!((m["port"].as_str(), m["auth"].as_str()), (Some("implicit"), Some(s.user.as_str())), "{m}");
    assert_eq!(m["subject"], "账单 / Bill", "{m}");
    assert_eq!(m["body"].as_str().unwrap().trim_end(), "水费 30.00 元", "{m}");
}
