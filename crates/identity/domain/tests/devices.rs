#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A person's sessions as they see them (device, network, last use), ending
//! one or all but this one, and changing the password.

mod common;

use common::{world, PASSWORD};
use yizhan_core::Code;
use yizhan_identity::{LoginAttempt, LAST_SEEN_EVERY_MS};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1";

fn attempt<'a>(login: &'a str, addr: &'a str, ua: &'a str) -> LoginAttempt<'a> {
    LoginAttempt { login, password: PASSWORD, client_addr: addr, user_agent: ua, totp: None }
}

#[tokio::test]
async fn sessions_are_listed_with_device_network_and_last_use() {
    let w = world().await;
    let user = w.id.register("13800000201", PASSWORD, "王二").await.unwrap();
    let a = w.id.sign_in(attempt("13800000201", "203.0.113.7", FIREFOX)).await.unwrap();
    w.clock.advance_ms(1_000);
    let b = w.id.sign_in(attempt("13800000201", "198.51.100.9", IPHONE)).await.unwrap();
    let list = w.id.sessions(&user, &a.token, "203.0.113.200").await.unwrap();
    assert_eq!(list.len(), 2);
    let mine = list.iter().find(|s| s.current).unwrap();
    assert_eq!(mine.device, "Firefox · Linux");
    assert_eq!(mine.network, "203.0.113.x");
    assert!(mine.this_network);
    let other = list.iter().find(|s| !s.current).unwrap();
    assert_eq!(other.device, "Safari · iOS");
    assert_eq!(other.network, "198.51.100.x");
    assert!(!other.this_network);
    // Opaque ids: neither the token nor anything like it.
    for s in &list {
        assert!(!s.id.is_empty() && s.id != a.token && s.id != b.token);
        assert!(!a.token.contains(&s.id) && !b.token.contains(&s.id));
    }
    let before = other.last_seen_ms;
    assert_eq!(before, other.created_at_ms);

    // Used within the interval: no write. Past it: written once, after the answer.
    w.clock.advance_ms(LAST_SEEN_EVERY_MS + 61_000);
    w.id.authenticate(&b.token).await.unwrap();
    let now = yizhan_core::Clock::now_ms(&*w.clock);
    let mut seen = 0;
    for _ in 0..200 {
        let l = w.id.sessions(&user, &a.token, "").await.unwrap();
        seen = l.iter().find(|s| !s.current).unwrap().last_seen_ms;
        if seen == now {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(seen, now);
    // Another person sees none of them.
    let other_user = w.id.register("13800000202", PASSWORD, "王三").await.unwrap();
    assert!(w.id.sessions(&other_user, &a.token, "").await.unwrap().is_empty());
}

#[tokio::test]
async fn ending_a_session_ends_it_at_once_and_only_for_its_owner() {
    let w = world().await;
    let user = w.id.register("13800000211", PASSWORD, "李一").await.unwrap();
    let stranger = w.id.register("13800000212", PASSWORD, "李二").await.unwrap();
    let a = w.id.sign_in(attempt("13800000211", "10.0.0.1", FIREFOX)).await.unwrap();
    let b = w.id.sign_in(attempt("13800000211", "10.0.0.2", IPHONE)).await.unwrap();
    let c = w.id.sign_in(attempt("13800000211", "10.0.0.3", "")).await.unwrap();
    // Remembered by the cache before they end.
    for t in [&a.token, &b.token, &c.token] {
        w.id.authenticate(t).await.unwrap();
    }
    let list = w.id.sessions(&user, &a.token, "").await.unwrap();
    let b_id = list.iter().find(|s| s.device == "Safari · iOS").unwrap().id.clone();
    // Someone else's id: not found, and nothing ends.
    assert_eq!(w.id.end_session(&stranger, &b_id).await.unwrap_err().code, Code::NotFound);
    assert!(w.id.authenticate(&b.token).await.is_ok());
    w.id.end_session(&user, &b_id).await.unwrap();
    assert_eq!(w.id.authenticate(&b.token).await.unwrap_err().code, Code::Unauthorized);
    assert_eq!(w.id.end_session(&user, &b_id).await.unwrap_err().code, Code::NotFound);
    assert!(w.id.authenticate(&a.token).await.is_ok());

    // All but this one.
    assert_eq!(w.id.end_other_sessions(&user, &a.token).await.unwrap(), 1);
    assert_eq!(w.id.authenticate(&c.token).await.unwrap_err().code, Code::Unauthorized);
    assert!(w.id.authenticate(&a.token).await.is_ok());
    let list = w.id.sessions(&user, &a.token, "").await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].current);
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_ends_the_others_and_tells_the_person() {
    let w = world().await;
    let user = w.id.register("pw@example.com", PASSWORD, "Pass Word").await.unwrap();
    let here = w.id.sign_in(attempt("pw@example.com", "10.0.0.1", FIREFOX)).await.unwrap();
    let there = w.id.sign_in(attempt("pw@example.com", "10.0.0.2", IPHONE)).await.unwrap();
    w.id.authenticate(&there.token).await.unwrap();

    let e = w.id.change_password(&user, &here.token, "not the password", "a new good password").await.unwrap_err();
    assert_eq!(e.code, Code::ValidationFailed);
    assert_eq!(e.fields[0].field, "current_password");
    let e = w.id.change_password(&user, &here.token, PASSWORD, "short").await.unwrap_err();
    assert_eq!(e.fields[0].field, "new_password");
    assert!(w.id.authenticate(&there.token).await.is_ok(), "a refused change ends nothing");

    w.id.change_password(&user, &here.token, PASSWORD, "a new good password").await.unwrap();
    assert_eq!(w.id.authenticate(&there.token).await.unwrap_err().code, Code::Unauthorized);
    assert!(w.id.authenticate(&here.token).await.is_ok());
    assert_eq!(w.id.login("pw@example.com", PASSWORD, "10.0.0.1").await.unwrap_err().code, Code::InvalidCredentials);
    w.id.login("pw@example.com", "a new good password", "10.0.0.1").await.unwrap();
    let inbox = w.notify.inbox(&user, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "identity.password_changed"), "{inbox:?}");
}

#[tokio::test]
async fn wrong_current_passwords_are_limited_per_account() {
    let w = world().await;
    let user = w.id.register("13800000221", PASSWORD, "赵一").await.unwrap();
    let s = w.id.login("13800000221", PASSWORD, "10.0.0.1").await.unwrap();
    for _ in 0..yizhan_identity::MAX_PASSWORD_CHANGE_FAILURES {
        let e = w.id.change_password(&user, &s.token, "wrong wrong", "a new good password").await.unwrap_err();
        assert_eq!(e.code, Code::ValidationFailed);
    }
    // Now even the right one waits (no hashing is done).
    let e = w.id.change_password(&user, &s.token, PASSWORD, "a new good password").await.unwrap_err();
    assert_eq!(e.code, Code::TooManyAttempts);
    assert!(e.retry_after_s.is_some());
    w.clock.advance_ms(yizhan_identity::LOGIN_WINDOW_MS + 1);
    w.id.change_password(&user, &s.token, PASSWORD, "a new good password").await.unwrap();
}

#[tokio::test]
async fn a_sign_in_from_a_new_device_is_told_once() {
    let w = world().await;
    let user = w.id.register("newdev@example.com", PASSWORD, "New Device").await.unwrap();
    let notices = |kind: &'static str| {
        let w = &w;
        let user = user.clone();
        async move { w.notify.inbox(&user, 50).await.unwrap().into_iter().filter(|n| n.kind == kind).count() }
    };
    // The first device of an account is not news.
    w.id.sign_in(attempt("newdev@example.com", "203.0.113.7", FIREFOX)).await.unwrap();
    assert_eq!(notices("identity.new_device").await, 0);
    // The same device on the same network, another address in it: known.
    w.id.sign_in(attempt("newdev@example.com", "203.0.113.8", FIREFOX)).await.unwrap();
    assert_eq!(notices("identity.new_device").await, 0);
    // Another device: told, once.
    w.id.sign_in(attempt("newdev@example.com", "198.51.100.1", IPHONE)).await.unwrap();
    assert_eq!(notices("identity.new_device").await, 1);
    w.id.sign_in(attempt("newdev@example.com", "198.51.100.1", IPHONE)).await.unwrap();
    assert_eq!(notices("identity.new_device").await, 1);
    let n = w.notify.inbox(&user, 50).await.unwrap().into_iter().find(|n| n.kind == "identity.new_device").unwrap();
    assert_eq!(n.body.key, "identity.notice.new_device.body");
    assert!(n.body.args.iter().any(|(k, v)| k == "network" && *v == yizhan_core::Arg::Text("198.51.100.x".into())));
    assert!(n.body.args.iter().any(|(k, v)| k == "device" && *v == yizhan_core::Arg::Text("Safari · iOS".into())));
    let export = w.id.export(&user).await.unwrap();
    assert_eq!(export["known_devices"].as_array().unwrap().len(), 2, "{export}");
    assert_eq!(export["sessions"][0]["device"], "Firefox · Linux");
    // A failed attempt from a new device tells nothing.
    let bad = LoginAttempt { password: "wrong password", ..attempt("newdev@example.com", "192.0.2.1", "curl/8") };
    assert!(w.id.sign_in(bad).await.is_err());
    assert_eq!(notices("identity.new_device").await, 1);
}
