// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use yizhan_core::testing::{TestDb, T0_MS};
use yizhan_core::{Arg, Code, Error, Msg};
use yizhan_notify::mail::is_loopback_host;
use yizhan_notify::{
    list_outbox, Mailer, Message, Notify, OutboxKind, Renderer, SandboxMailer, SandboxSmsSender, SmsSender, SmtpConfig,
    SmtpMailer, SmtpTls, Target, MIGRATIONS,
};

fn msg(kind: &str, n: u32) -> Message {
    Message {
        kind: kind.into(),
        title: Msg::new("t.received").int("n", n.into()),
        body: Msg::new("t.sent").text("who", "Li Wei").fen("amount", 1200),
        target: Some(Target::new("transfer", "t1")),
    }
}

/// A renderer over a two-message catalogue, as the app gives one over the joined catalogue.
fn renderer() -> Renderer {
    Arc::new(|lang: &str, m: &Msg| {
        let arg = |name: &str| m.args.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let n = match arg("n") {
            Some(Arg::Int(n)) => n,
            _ => 0,
        };
        match (m.key.as_str(), lang.starts_with("zh")) {
            ("t.received", true) => format!("收到付款 {n}"),
            ("t.received", false) => format!("Payment received {n}"),
            ("t.sent", true) => "李伟向你转账 12.00 元。".into(),
            ("t.sent", false) => "Li Wei sent you 12.00 yuan.".into(),
            _ => m.key.clone(),
        }
    })
}

#[tokio::test]
async fn inbox_lists_newest_first_and_marks_read() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    let notify = Notify::new(ctx, None);
    assert_eq!(notify.mailer_name(), None);

    let first = notify.send("alice", Some("alice@example.com"), msg("pay.received", 1)).await.unwrap();
    clock.advance_ms(1000);
    let second = notify.send("alice", None, msg("pay.received", 2)).await.unwrap();
    clock.advance_ms(1000);
    let third = notify.send("alice", None, Message { target: None, ..msg("city.permit", 3) }).await.unwrap();
    let bobs = notify.send("bob", None, msg("pay.received", 4)).await.unwrap();

    let inbox = notify.inbox("alice", 50).await.unwrap();
    assert_eq!(inbox.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), vec![&third, &second, &first]);
    assert_eq!(inbox[2].created_at_ms, T0_MS);
    assert_eq!(inbox[2].title, Msg::new("t.received").int("n", 1));
    assert_eq!(inbox[2].body, Msg::new("t.sent").text("who", "Li Wei").fen("amount", 1200));
    assert_eq!(inbox[2].target, Some(Target::new("transfer", "t1")));
    assert_eq!(inbox[0].target, None);
    assert_eq!(inbox[0].kind, "city.permit");
    assert!(inbox.iter().all(|n| n.read_at_ms.is_none() && n.user_id == "alice"));
    assert_eq!(notify.inbox("alice", 2).await.unwrap().len(), 2);
    assert_eq!(notify.unread_count("alice").await.unwrap(), 3);

    // One of one's own.
    clock.advance_ms(5000);
    assert_eq!(notify.mark_read("alice", Some(&second)).await.unwrap(), 1);
    assert_eq!(notify.mark_read("alice", Some(&second)).await.unwrap(), 0, "already read");
    assert_eq!(notify.unread_count("alice").await.unwrap(), 2);
    let read = notify.inbox("alice", 50).await.unwrap().into_iter().find(|n| n.id == second).unwrap();
    assert_eq!(read.read_at_ms, Some(T0_MS + 7000));

    // Not someone else's.
    let e = notify.mark_read("alice", Some(&bobs)).await.unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert_eq!(notify.unread_count("bob").await.unwrap(), 1);
    assert_eq!(notify.mark_read("alice", Some("no-such-id")).await.unwrap_err().code, Code::NotFound);

    // All of one's own.
    assert_eq!(notify.mark_read("alice", None).await.unwrap(), 2);
    assert_eq!(notify.unread_count("alice").await.unwrap(), 0);
    assert_eq!(notify.unread_count("bob").await.unwrap(), 1);
}

#[tokio::test]
async fn export_and_delete_all_touch_only_the_person() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    let notify = Notify::new(ctx, None);
    for n in 0..3 {
        notify.send("alice", None, msg("pay.received", n)).await.unwrap();
        clock.advance_ms(10);
    }
    notify.send("bob", None, msg("pay.received", 9)).await.unwrap();
    let export = notify.export("alice").await.unwrap();
    let list = export["notifications"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["title"]["key"], "t.received", "export is oldest first");
    assert_eq!(list[0]["title"]["args"][0][1]["v"], 0);
    assert_eq!(list[0]["body"]["key"], "t.sent");
    assert!(list[0]["read_at_ms"].is_null());

    assert_eq!(notify.delete_all("alice").await.unwrap(), 3);
    assert!(notify.inbox("alice", 50).await.unwrap().is_empty());
    assert_eq!(notify.delete_all("alice").await.unwrap(), 0);
    assert_eq!(notify.inbox("bob", 50).await.unwrap().len(), 1);
}

#[tokio::test]
async fn messages_are_validated() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let notify = Notify::new(ctx, None);
    let e =
        notify.send("alice", None, Message { kind: "".into(), title: Msg::new(" "), ..msg("x", 1) }).await.unwrap_err();
    assert_eq!(e.code, Code::ValidationFailed);
    let fields: Vec<&str> = e.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, vec!["kind", "title"]);
    assert!(e.fields.iter().all(|f| f.msg == Msg::new("error.field.empty")), "{e}");
    let long = Message { body: Msg::new("t.sent").text("who", "x".repeat(9000)), ..msg("x", 1) };
    let e = notify.send("alice", None, long).await.unwrap_err();
    assert_eq!(e.fields[0].field, "body");
    assert_eq!(e.fields[0].msg.key, "error.field.too_long");
    assert!(matches!(e.fields[0].msg.args.as_slice(), [(name, Arg::Int(_))] if name == "max"), "{e}");
    assert!(notify.inbox("alice", 10).await.unwrap().is_empty());
}

async fn wait_for_files(dir: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
    for _ in 0..500 {
        let mut files: Vec<_> =
            std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        if files.len() >= n {
            files.sort();
            return files;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} mails in {}", dir.display());
}

#[tokio::test]
async fn the_sandbox_mailer_writes_one_outbox_file_per_mail_when_an_address_is_given() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let notify = Notify::new(ctx, Some(Arc::new(SandboxMailer::new(&outbox)))).with_renderer(renderer());
    assert_eq!(notify.mailer_name(), Some("sandbox"));

    notify.send("alice", None, msg("pay.received", 1)).await.unwrap();
    notify.send("alice", Some("alice@example.com"), msg("pay.received", 2)).await.unwrap();
    let files = wait_for_files(&outbox, 1).await;
    assert_eq!(files.len(), 1, "no address, no mail");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.ends_with("-mail.txt"), "{name}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("To: alice@example.com\n"), "{text}");
    assert!(text.contains("X-Yizhan-Sandbox: not delivered"), "{text}");
    assert!(text.contains("Subject: 收到付款 2 / Payment received 2\n"), "{text}");
    assert!(text.contains("李伟向你转账 12.00 元。") && text.contains("Li Wei sent you 12.00 yuan."), "{text}");
    // Both stored in the inbox regardless.
    assert_eq!(notify.inbox("alice", 10).await.unwrap().len(), 2);

    // A second mailer on the same directory does not overwrite the first's files.
    let again = SandboxMailer::new(&outbox);
    again.send("bob@example.com", "hi", "there").await.unwrap();
    assert_eq!(wait_for_files(&outbox, 2).await.len(), 2);
}

#[tokio::test]
async fn the_sandbox_sms_sender_writes_the_number_and_the_text_and_the_outbox_lists_newest_first() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let sms = Arc::new(SandboxSmsSender::new(&outbox));
    assert!(sms.is_sandbox());
    assert_eq!(sms.name(), "sandbox");
    let notify = Notify::new(ctx.clone(), Some(Arc::new(SandboxMailer::new(&outbox))))
        .with_renderer(renderer())
        .with_sms(sms.clone())
        .with_outbox(&outbox);
    assert_eq!(notify.sms_sender(), Some(("sandbox", true)));

    SandboxMailer::new(&outbox).send("carol@example.com", "验证码", "你的验证码是 123456").await.unwrap();
    notify.send_sms("+86 138-0013-8000", "zh-CN", &Msg::new("t.received").int("n", 7)).await.unwrap();
    notify.send_sms("+8613800138000", "en", &Msg::new("t.received").int("n", 8)).await.unwrap();

    let items = notify.outbox(100).await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].kind, OutboxKind::Sms);
    assert_eq!(items[0].to, "+8613800138000");
    assert_eq!(items[0].text, "Payment received 8");
    assert_eq!(items[1].text, "收到付款 7");
    assert_eq!(items[2].kind, OutboxKind::Mail);
    assert_eq!(items[2].to, "carol@example.com");
    assert_eq!(items[2].subject.as_deref(), Some("验证码"));
    assert_eq!(items[2].text, "你的验证码是 123456");
    assert!(items[0].at_ms >= items[2].at_ms);
    assert_eq!(list_outbox(&outbox, 1).await.unwrap().len(), 1);
    assert!(list_outbox(&dir.path().join("none"), 10).await.unwrap().is_empty());

    for bad in ["", "12", "+86 abc", "+8613800138000\nBcc: x"] {
        assert_eq!(sms.send(bad, "hi").await.unwrap_err().code, Code::ValidationFailed, "{bad:?}");
    }
    assert_eq!(sms.send("+8613800138000", &"码".repeat(501)).await.unwrap_err().code, Code::ValidationFailed);
    let without = Notify::new(ctx, None);
    assert!(without.send_sms("+8613800138000", "en", &Msg::new("t.received")).await.is_err());
    assert!(without.outbox(10).await.unwrap().is_empty());
}

struct FailingMailer;

#[async_trait]
impl Mailer for FailingMailer {
    fn name(&self) -> &'static str {
        "failing"
    }
    async fn send(&self, _to: &str, _subject: &str, _body: &str) -> yizhan_core::Result<()> {
        Err(Error::new(Code::GatewayTimeout, "notify.mail.timeout"))
    }
}

#[tokio::test]
async fn a_failing_mailer_does_not_fail_the_notification() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let notify = Notify::new(ctx, Some(Arc::new(FailingMailer)));
    notify.send("alice", Some("alice@example.com"), msg("pay.received", 1)).await.unwrap();
    assert_eq!(notify.unread_count("alice").await.unwrap(), 1);
}

#[tokio::test]
async fn addresses_that_could_inject_headers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = SandboxMailer::new(dir.path());
    let smtp = SmtpMailer::new(plain("127.0.0.1", 9)).unwrap();
    for bad in ["a@b.cn\r\nBcc: x@y.cn", "a b@c.cn", "<a@b.cn>", "nobody", "a@b@c"] {
        assert_eq!(m.send(bad, "s", "b").await.unwrap_err().code, Code::ValidationFailed, "{bad:?}");
        assert_eq!(smtp.send(bad, "s", "b").await.unwrap_err().code, Code::ValidationFailed, "{bad:?}");
    }
    // A subject cannot add lines to the file either.
    m.send("t@x.cn", "hi\r\nBcc: evil@x.cn", "b").await.unwrap();
    let text = std::fs::read_to_string(wait_for_files(dir.path(), 1).await.remove(0)).unwrap();
    assert!(!text.contains("\nBcc:"), "{text}");
}

/// A mailer without TLS, as for a relay on loopback.
fn plain(host: &str, port: u16) -> SmtpConfig {
    SmtpConfig {
        tls: SmtpTls::None,
        helo_name: Some("yizhan.example".into()),
        ..SmtpConfig::new(host, port, "noreply@yizhan.example")
    }
}

#[test]
fn no_tls_is_refused_to_a_host_not_on_loopback() {
    assert!(SmtpMailer::new(plain("mail.example.com", 25)).is_err());
    assert!(SmtpMailer::new(plain("10.0.0.1", 25)).is_err());
    assert!(SmtpMailer::new(plain("localhost", 25)).is_ok());
    assert!(SmtpMailer::new(plain("::1", 25)).is_ok());
    assert!(is_loopback_host("127.0.0.2") && is_loopback_host("[::1]") && !is_loopback_host("example.com"));
    // With TLS any host will do.
    assert!(SmtpMailer::new(SmtpConfig::new("mail.example.com", 587, "noreply@yizhan.example")).is_ok());
    assert_eq!(SmtpTls::parse(""), Some(SmtpTls::StartTls));
    assert_eq!(SmtpTls::parse("TLS"), Some(SmtpTls::Implicit));
    assert_eq!(SmtpTls::parse("none"), Some(SmtpTls::None));
    assert_eq!(SmtpTls::parse("ssl"), None);
    assert!(SmtpMailer::new(SmtpConfig {
        extra_ca_pem: Some(b"not a pem".to_vec()),
        ..SmtpConfig::new("h", 1, "a@b.cn")
    })
    .is_err());
}

/// How the fake SMTP server behaves.
#[derive(Clone, Copy)]
struct Script {
    ehlo_code: u16,
    rcpt_code: u16,
    silent_after_greeting: bool,
}

const GOOD: Script = Script { ehlo_code: 250, rcpt_code: 250, silent_after_greeting: false };

/// A one-connection SMTP server on 127.0.0.1:0; returns its port and, when
/// the session ends, the command lines it read and the DATA it received.
async fn fake_smtp(script: Script) -> (u16, tokio::task::JoinHandle<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        let mut commands = Vec::new();
        let mut data = String::new();
        w.write_all(b"220 fake.example ESMTP ready\r\n").await.unwrap();
        if script.silent_after_greeting {
            tokio::time::sleep(Duration::from_secs(5)).await;
            return (commands, data);
        }
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            let cmd = line.trim_end().to_string();
            commands.push(cmd.clone());
            let upper = cmd.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") {
                if script.ehlo_code == 250 {
                    "250-fake.example\r\n250-SIZE 1000000\r\n250 HELP\r\n".into()
                } else {
                    format!("{} not supported\r\n", script.ehlo_code)
                }
            } else if upper.starts_with("HELO") || upper.starts_with("MAIL FROM") {
                "250 ok\r\n".into()
            } else if upper.starts_with("RCPT TO") {
                format!("{} rcpt\r\n", script.rcpt_code)
            } else if upper == "DATA" {
                w.write_all(b"354 go ahead\r\n").await.unwrap();
                loop {
                    let mut l = String::new();
                    r.read_line(&mut l).await.unwrap();
                    if l == ".\r\n" {
                        break;
                    }
                    // Undo dot-stuffing as a real server would.
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                "250 queued\r\n".into()
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                "500 what\r\n".into()
            };
            w.write_all(reply.as_bytes()).await.unwrap();
        }
        (commands, data)
    });
    (port, handle)
}

#[tokio::test]
async fn the_smtp_mailer_speaks_smtp() {
    let (port, server) = fake_smtp(GOOD).await;
    let mailer = SmtpMailer::new(plain("127.0.0.1", port)).unwrap();
    assert_eq!(mailer.name(), "smtp");
    mailer.send("alice@example.com", "收到付款 / Payment", "line one\n.hidden dot line\nend").await.unwrap();
    let (commands, data) = server.await.unwrap();
    assert_eq!(
        commands,
        vec![
            "EHLO yizhan.example",
            "MAIL FROM:<noreply@yizhan.example>",
            "RCPT TO:<alice@example.com>",
            "DATA",
            "QUIT"
        ]
    );
    assert!(data.contains("From: noreply@yizhan.example\r\n"), "{data}");
    assert!(data.contains("To: alice@example.com\r\n"), "{data}");
    assert!(data.contains("Subject: =?utf-8?"), "{data}");
    assert!(data.contains(".hidden dot line") || data.contains("Content-Transfer-Encoding: base64"), "{data}");
}

#[tokio::test]
async fn the_smtp_mailer_reports_refusals_without_the_address() {
    let (port, server) = fake_smtp(Script { rcpt_code: 550, ..GOOD }).await;
    let e = SmtpMailer::new(plain("127.0.0.1", port))
        .unwrap()
        .send("secret.person@example.com", "s", "b")
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::Internal);
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("550"), "{shown}");
    assert!(!shown.contains("secret.person"), "{shown}");
    drop(server);
}

#[tokio::test]
async fn the_smtp_mailer_times_out() {
    let (port, _server) = fake_smtp(Script { silent_after_greeting: true, ..GOOD }).await;
    let started = std::time::Instant::now();
    let e = SmtpMailer::new(SmtpConfig { timeout_ms: 200, ..plain("127.0.0.1", port) })
        .unwrap()
        .send("a@example.com", "s", "b")
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::GatewayTimeout, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn the_smtp_mailer_refuses_a_server_without_starttls() {
    let (port, _server) = fake_smtp(GOOD).await;
    let cfg = SmtpConfig { tls: SmtpTls::StartTls, ..plain("127.0.0.1", port) };
    let e = SmtpMailer::new(cfg).unwrap().send("a@example.com", "s", "b").await.unwrap_err();
    assert_eq!(e.code, Code::Internal, "{e:?}");
}

#[tokio::test]
async fn the_smtp_mailer_reports_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = SmtpMailer::new(plain("127.0.0.1", port)).unwrap().send("a@example.com", "s", "b").await.unwrap_err();
    assert!(matches!(e.code, Code::Internal | Code::GatewayTimeout));
}
