#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The binary refuses a gateway configuration it cannot honour: before it
//! opens anything, with a clear message and a non-zero exit.

use std::process::Command;

fn serve_with(vars: &[(&str, &str)]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("yizhan-gateway-config-{}", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_yizhan"));
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .env("YIZHAN_DATA_DIR", &dir)
        .env("YIZHAN_LOG", "warn")
        .env_remove("YIZHAN_DATABASE_URL")
        .env_remove("YIZHAN_GATEWAY")
        .env_remove("YIZHAN_ENV");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run yizhan serve");
    // The refusal comes before the data directory is created.
    assert!(!dir.join("secret.key").exists(), "a refused start wrote a key");
    out
}

#[test]
fn production_refuses_the_sandbox_gateway() {
    let out = serve_with(&[("YIZHAN_ENV", "production")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started in production with the sandbox: {err}");
    assert!(err.contains("YIZHAN_ENV=production refuses the sandbox gateway"), "{err}");
}

#[test]
fn an_unknown_gateway_is_refused() {
    let out = serve_with(&[("YIZHAN_GATEWAY", "acme")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with an unknown gateway: {err}");
    assert!(err.contains("\"acme\"") && err.contains("supported: sandbox"), "{err}");
}
