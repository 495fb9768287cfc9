#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Remembered sessions: a token is answered without reading the database,
//! and ending it takes effect at once, in this process and (on PostgreSQL) in
//! every other process on the same database.

mod common;

use common::{world, PASSWORD};
use yizhan_core::Code;
use yizhan_identity::Identity;

/// Whether every one of `ids` answers `token` with the session table out of
/// reach (it remembers it). On PostgreSQL a process remembers nothing until
/// its eviction listener is connected: try for a while.
async fn remembered(ids: &[&Identity], token: &str, db: &yizhan_core::Db) -> bool {
    for _ in 0..250 {
        for id in ids {
            id.authenticate(token).await.unwrap();
        }
        sqlx::query("ALTER TABLE sessions RENAME TO sessions_away").execute(&db.pool).await.unwrap();
        let mut all = true;
        for id in ids {
            all &= id.authenticate(token).await.is_ok();
        }
        sqlx::query("ALTER TABLE sessions_away RENAME TO sessions").execute(&db.pool).await.unwrap();
        if all {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_remembered_session_ends_at_once_when_it_is_ended() {
    let w = world().await;
    let user = w.id.register("13800000101", PASSWORD, "王一").await.unwrap();
    let a = w.id.login("13800000101", PASSWORD, "10.0.0.1").await.unwrap();
    let b = w.id.login("13800000101", PASSWORD, "10.0.0.2").await.unwrap();
    assert_eq!(w.id.authenticate(&a.token).await.unwrap().user_id, user);
    assert_eq!(w.id.authenticate(&b.token).await.unwrap().user_id, user);
    // Remembered: answered even with the session table out of reach...
    assert!(remembered(&[&w.id], &a.token, &w.t.db).await);
    // ...and forgotten the moment it ends.
    w.id.logout(&a.token).await.unwrap();
    assert_eq!(w.id.authenticate(&a.token).await.unwrap_err().code, Code::Unauthorized);
    assert!(w.id.authenticate(&b.token).await.is_ok());
    w.id.logout_all(&user).await.unwrap();
    assert_eq!(w.id.authenticate(&b.token).await.unwrap_err().code, Code::Unauthorized);
    // An expired session is not answered from memory either.
    let c = w.id.login("13800000101", PASSWORD, "10.0.0.1").await.unwrap();
    w.id.authenticate(&c.token).await.unwrap();
    w.clock.advance_ms(c.expires_at_ms - yizhan_core::Clock::now_ms(&*w.clock));
    assert_eq!(w.id.authenticate(&c.token).await.unwrap_err().code, Code::Unauthorized);
}

#[tokio::test]
async fn a_deleted_account_or_a_new_role_is_seen_at_once() {
    let w = world().await;
    let user = w.id.register("rolechange@example.com", PASSWORD, "Role Change").await.unwrap();
    let s = w.id.login("rolechange@example.com", PASSWORD, "10.0.0.1").await.unwrap();
    assert!(!w.id.authenticate(&s.token).await.unwrap().is_admin);
    w.id.ensure_admin("rolechange@example.com", PASSWORD, "Role Change").await.unwrap();
    assert!(w.id.authenticate(&s.token).await.unwrap().is_admin);
    w.id.delete_account(&user).await.unwrap();
    assert_eq!(w.id.authenticate(&s.token).await.unwrap_err().code, Code::Unauthorized);
}

/// Two server processes on one PostgreSQL database: a logout in one ends
/// the session the other remembers (through LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_in_one_process_ends_the_session_in_another() {
    let w = world().await;
    if w.t.db.engine() != yizhan_core::Engine::Postgres {
        eprintln!("PostgreSQL only: one process per SQLite file");
        return;
    }
    let other = w.other_process();
    let user = w.id.register("13800000102", PASSWORD, "王二").await.unwrap();
    let s = w.id.login("13800000102", PASSWORD, "10.0.0.1").await.unwrap();
    // Both listeners are up once a session is remembered in each.
    assert!(remembered(&[&w.id, &other], &s.token, &w.t.db).await, "the listeners never connected");
    assert_eq!(other.authenticate(&s.token).await.unwrap().user_id, user);
    w.id.logout(&s.token).await.unwrap();
    // The eviction arrives with the commit; wait for it, boundedly.
    let mut ended = false;
    for _ in 0..250 {
        if other.authenticate(&s.token).await.is_err() {
            ended = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ended, "the other process still answers an ended session");
}
