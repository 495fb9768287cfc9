#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `yizhan demo` from the command line on any data directory: a second run
//! adds nothing and says what was already there; a demo login someone else
//! registered first is left alone, and the demo still finishes.

use std::path::Path;
use std::process::{Command, Output};

fn yizhan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yizhan"))
        .args(args)
        .env("YIZHAN_DATA_DIR", dir)
        .env("YIZHAN_LOG", "warn")
        .env_remove("YIZHAN_DATABASE_URL")
        .env_remove("YIZHAN_SECRET_KEY")
        .env_remove("YIZHAN_ADMIN_PASSWORD")
        .env_remove("YIZHAN_GATEWAY")
        .env_remove("YIZHAN_ENV")
        .output()
        .expect("run yizhan")
}

fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line {start:?} in:\n{text}"))
}

#[test]
fn running_the_demo_twice_adds_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = ok(&yizhan(dir.path(), &["demo"]));
    let added = line(&first, "Added: ");
    assert!(added.contains("administrator admin@demo.yizhan.local"), "{first}");
    assert!(added.contains("city Hangzhou 杭州") && added.contains("login 13800000001"), "{first}");
    assert_eq!(line(&first, "Already there: "), "Already there: nothing");
    assert!(!first.contains("Skipped: "), "{first}");

    let second = ok(&yizhan(dir.path(), &["demo"]));
    assert_eq!(line(&second, "Added: "), "Added: nothing", "{second}");
    let there = line(&second, "Already there: ");
    assert!(
        there.contains("login 13800000001") && there.contains("login credit-defaulter@demo.yizhan.local"),
        "{second}"
    );
    assert!(there.contains("organisation West Lake Tea House 西湖茶馆"), "{second}");
    assert!(!second.contains("Skipped: "), "{second}");
}

#[test]
fn a_demo_login_someone_else_holds_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    // A real person holds one of the demo logins (with their own password) before the demo runs.
    ok(&yizhan(
        dir.path(),
        &["admin", "create", "--login", "13800000002", "--password", "someone-else-9!", "--name", "Real Person"],
    ));
    // And one of the city departments' staff logins.
    ok(&yizhan(
        dir.path(),
        &[
            "admin",
            "create",
            "--login",
            "library@demo.yizhan.local",
            "--password",
            "someone-else-9!",
            "--name",
            "Reader",
        ],
    ));
    let out = ok(&yizhan(dir.path(), &["demo"]));
    assert!(out.contains("Skipped: login 13800000002: another account holds it, left alone"), "{out}");
    assert!(out.contains("Skipped: login library@demo.yizhan.local: another account holds it, left alone"), "{out}");
    // The other departments' staff are there; the library's is not listed as the demo's.
    assert!(line(&out, "Added: ").contains("login civil@demo.yizhan.local"), "{out}");
    assert!(!out.lines().any(|l| l.trim_start().starts_with("library@demo.yizhan.local ")), "{out}");
    assert!(out.lines().any(|l| l.trim_start().starts_with("civil@demo.yizhan.local ")), "{out}");
    assert!(!line(&out, "Added: ").contains("13800000002"), "{out}");
    // Everything else was added, and the listing does not offer the other person's login.
    assert!(line(&out, "Added: ").contains("login 13800000001"), "{out}");
    assert!(!out.lines().any(|l| l.trim_start().starts_with("13800000002 ")), "{out}");
    // The same the second time: still theirs, still finishes.
    let again = ok(&yizhan(dir.path(), &["demo"]));
    assert!(again.contains("Skipped: login 13800000002"), "{again}");
    assert!(again.contains("Skipped: login library@demo.yizhan.local"), "{again}");
    assert_eq!(line(&again, "Added: "), "Added: nothing", "{again}");
}
