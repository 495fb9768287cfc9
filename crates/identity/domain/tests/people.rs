#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What a payment asks of a person (their standing, who a login belongs to)
//! is remembered so a payment need not read the database, and every change
//! to the person is seen at once: in this process, and (on PostgreSQL) in
//! every other process on the same database.

mod common;

use common::{id_number, world, PASSWORD};
use yizhan_core::Code;
use yizhan_identity::Identity;

/// Whether every one of `ids` answers `user_id`'s standing and `login` with
/// the users table out of reach (it remembers them). On PostgreSQL a process
/// remembers nothing until its listener is connected: try for a while.
async fn remembered(ids: &[&Identity], user_id: &str, login: &str, db: &yizhan_core::Db) -> bool {
    for _ in 0..250 {
        for id in ids {
            id.standing(user_id).await.unwrap();
            id.find_by_login(login).await.unwrap().unwrap();
        }
        sqlx::query("ALTER TABLE users RENAME TO users_away").execute(&db.pool).await.unwrap();
        let mut all = true;
        for id in ids {
            all &= id.standing(user_id).await.is_ok();
            all &= matches!(id.find_by_login(login).await, Ok(Some(_)));
        }
        sqlx::query("ALTER TABLE users_away RENAME TO users").execute(&db.pool).await.unwrap();
        if all {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_remembered_person_changes_at_once_when_their_row_changes() {
    let w = world().await;
    let user = w.id.register("13800000201", PASSWORD, "Li Lei").await.unwrap();
    let s = w.id.standing(&user).await.unwrap();
    assert_eq!((s.name.as_str(), s.verification_level), ("Li Lei", 0));
    assert_eq!(w.id.find_by_login("13800000201").await.unwrap().unwrap().user_id, user);
    assert!(remembered(&[&w.id], &user, "13800000201", &w.t.db).await);

    // A verification raises the level the limits go by, at once.
    w.id.verify_real_name(&user, "李雷", &id_number("330106", "19900307", "123")).await.unwrap();
    assert_eq!(w.id.standing(&user).await.unwrap().verification_level, 1);
    assert!(remembered(&[&w.id], &user, "13800000201", &w.t.db).await);

    // A deleted person is found neither by id nor by login, at once.
    w.id.delete_account(&user).await.unwrap();
    assert_eq!(w.id.standing(&user).await.unwrap_err().code, Code::NotFound);
    assert!(w.id.find_by_login("13800000201").await.unwrap().is_none());
    // The login is free again: a new account holding it is the one found.
    let again = w.id.register("13800000201", PASSWORD, "Han Meimei").await.unwrap();
    let found = w.id.find_by_login("13800000201").await.unwrap().unwrap();
    assert_eq!((found.user_id.as_str(), found.name.as_str()), (again.as_str(), "Han Meimei"));
}

/// Two server processes on one PostgreSQL database: a verification in one
/// is seen by the other, which remembered the person (through LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_one_process_is_seen_in_another() {
    let w = world().await;
    if w.t.db.engine() != yizhan_core::Engine::Postgres {
        eprintln!("PostgreSQL only: one process per SQLite file");
        return;
    }
    let other = w.other_process();
    let user = w.id.register("13800000202", PASSWORD, "Wang Er").await.unwrap();
    assert!(remembered(&[&w.id, &other], &user, "13800000202", &w.t.db).await, "the listeners never connected");
    assert_eq!(other.standing(&user).await.unwrap().verification_level, 0);
    w.id.verify_real_name(&user, "王二", &id_number("330106", "19900307", "456")).await.unwrap();
    let mut seen = false;
    for _ in 0..250 {
        if other.standing(&user).await.unwrap().verification_level == 1 {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen, "the other process still answers the old level");
    w.id.delete_account(&user).await.unwrap();
    let mut gone = false;
    for _ in 0..250 {
        if other.standing(&user).await.is_err() && other.find_by_login("13800000202").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gone, "the other process still answers a deleted person");
}
