#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `yizhan serve` on a data directory without an administrator prints a
//! one-time setup link on the console and in the log; the link opens the
//! setup page; the next start prints a new one (the old one stops working);
//! once an administrator exists no link is printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    addr: String,
    link: Option<String>,
    lines: BufReader<std::process::ChildStdout>,
}

fn start(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yizhan"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("YIZHAN_DATA_DIR", dir)
        .env("YIZHAN_LOG", "warn")
        .env_remove("YIZHAN_DATABASE_URL")
        .env_remove("YIZHAN_SECRET_KEY")
        .env_remove("YIZHAN_ADMIN_LOGIN")
        .env_remove("YIZHAN_ADMIN_PASSWORD")
        .env_remove("YIZHAN_GATEWAY")
        .env_remove("YIZHAN_ENV")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start yizhan serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut addr = String::new();
    let mut line = String::new();
    while addr.is_empty() {
        line.clear();
        assert!(lines.read_line(&mut line).unwrap() > 0, "serve ended before listening");
        if let Some(rest) = line.trim().strip_prefix("yizhan listening on http://") {
            addr = rest.split_whitespace().next().unwrap().to_string();
        }
    }
    // The link, if any, is printed right after (stdout is line-buffered):
    // ask the health check first, so everything printed at start is there.
    let (status, _) = get(&addr, "/healthz");
    assert_eq!(status, 200);
    Server { child, addr, link: None, lines }
}

impl Server {
    /// Stop the server; what it printed after the listening line, and its log.
    fn stop(mut self) -> (Option<String>, String) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let mut rest = String::new();
        self.lines.read_to_string(&mut rest).unwrap();
        let mut log = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
        let link = rest.lines().map(str::trim).find(|l| l.contains("/setup?token=")).map(str::to_string);
        (link.or(self.link), log)
    }

    /// The link printed at start (the server keeps running).
    fn setup_link(&mut self) -> Option<String> {
        let mut line = String::new();
        // The line after the listening line says whether setup is needed.
        self.lines.read_line(&mut line).unwrap();
        if line.starts_with("No administrator yet") {
            line.clear();
            self.lines.read_line(&mut line).unwrap();
            self.link = Some(line.trim().to_string());
        }
        self.link.clone()
    }
}

/// A plain HTTP GET: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Language: en\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out)
}

fn path_of(link: &str) -> String {
    let at = link.find("/setup?token=").unwrap();
    link[at..].to_string()
}

#[test]
fn a_first_start_prints_a_setup_link_until_an_administrator_exists() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start(dir.path());
    let link = s.setup_link().expect("no administrator: a setup link");
    assert!(link.starts_with(&format!("http://{}/setup?token=", s.addr)), "{link}");
    let (status, page) = get(&s.addr, &path_of(&link));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"setup-form\""), "{page}");
    let (_, log) = s.stop();
    assert!(log.contains("no administrator yet") && log.contains("/setup?token="), "the log says it too: {log}");

    // The next start: a new link; the first no longer opens the page.
    let mut s = start(dir.path());
    let again = s.setup_link().expect("still no administrator");
    assert_ne!(again, link);
    assert_eq!(get(&s.addr, &path_of(&link)).0, 404);
    assert_eq!(get(&s.addr, &path_of(&again)).0, 200);
    s.stop();

    // An administrator made on the command line: no link at the next start.
    let out = Command::new(env!("CARGO_BIN_EXE_yizhan"))
        .args(["admin", "create", "--login", "ops@example.org", "--password", "correct-horse-9!", "--name", "Ops"])
        .env("YIZHAN_DATA_DIR", dir.path())
        .env("YIZHAN_LOG", "warn")
        .env_remove("YIZHAN_DATABASE_URL")
        .env_remove("YIZHAN_SECRET_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = start(dir.path());
    let (link, _) = s.stop();
    assert!(link.is_none(), "{link:?}");
}
