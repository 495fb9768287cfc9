#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `yizhan key rotate` from the command line: the data directory's key is
//! replaced (the old one kept as secret.key.previous) and the database
//! follows; with the key in YIZHAN_SECRET_KEY the new one goes to a file the
//! operator names, and only the new key opens the database afterwards.

use std::path::Path;
use std::process::{Command, Output};

fn yizhan(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_yizhan"));
    cmd.args(args)
        .env("YIZHAN_DATA_DIR", dir)
        .env("YIZHAN_LOG", "warn")
        .env_remove("YIZHAN_DATABASE_URL")
        .env_remove("YIZHAN_SECRET_KEY")
        .env_remove("YIZHAN_NEW_SECRET_KEY")
        .env_remove("YIZHAN_PREVIOUS_SECRET_KEY")
        .env_remove("YIZHAN_GATEWAY")
        .env_remove("YIZHAN_ENV");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run yizhan")
}

fn ok(out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn rotating_the_data_directory_key_keeps_the_old_one_as_previous() {
    let dir = tempfile::tempdir().unwrap();
    ok(&yizhan(dir.path(), &["migrate"], &[]));
    let before = std::fs::read_to_string(dir.path().join("secret.key")).unwrap();
    let said = ok(&yizhan(dir.path(), &["key", "rotate"], &[]));
    assert!(said.contains("key rotated"), "{said}");
    let after = std::fs::read_to_string(dir.path().join("secret.key")).unwrap();
    assert_ne!(before.trim(), after.trim());
    assert_eq!(std::fs::read_to_string(dir.path().join("secret.key.previous")).unwrap().trim(), before.trim());
    assert!(!dir.path().join("secret.key.next").exists());
    // The next start opens the database with the new key.
    ok(&yizhan(dir.path(), &["migrate"], &[]));
    // No key in any line it printed.
    assert!(!said.contains(after.trim()) && !said.contains(before.trim()));
}

#[test]
fn with_the_key_in_the_environment_the_new_key_goes_to_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let old = "ab".repeat(64);
    ok(&yizhan(dir.path(), &["migrate"], &[("YIZHAN_SECRET_KEY", &old)]));
    let refused = yizhan(dir.path(), &["key", "rotate"], &[("YIZHAN_SECRET_KEY", &old)]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--new-key-out"));
    let out = dir.path().join("new.key");
    ok(&yizhan(dir.path(), &["key", "rotate", "--new-key-out", out.to_str().unwrap()], &[("YIZHAN_SECRET_KEY", &old)]));
    let new = std::fs::read_to_string(&out).unwrap();
    assert_eq!(new.trim().len(), 128);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The old key no longer opens the database; the new one does.
    let stale = yizhan(dir.path(), &["migrate"], &[("YIZHAN_SECRET_KEY", &old)]);
    assert!(!stale.status.success());
    ok(&yizhan(dir.path(), &["migrate"], &[("YIZHAN_SECRET_KEY", new.trim())]));
}
