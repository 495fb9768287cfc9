//! Rotating the vault key: sealed identity numbers, their blind index and the
//! access logs move to the new key in one transaction; a chain that does not
//! verify stops the rotation with nothing changed; static QR codes printed
//! before still check while the previous key is kept.

use crate::common::*;
use std::sync::Arc;
use yizhan_app::keys::{key_still_current, rotate};
use yizhan_app::state::Wiring;
use yizhan_app::Services;
use yizhan_audit::NewAccess;
use yizhan_core::{Ctx, Engine, Vault};

fn read(subject: &str, why: &str) -> NewAccess {
    NewAccess {
        subject_user_id: subject.into(),
        actor_user_id: "staff-1".into(),
        actor_label: "Clerk Wang".into(),
        org_id: Some("org-1".into()),
        org_label: Some("Civil Affairs".into()),
        what: "profile".into(),
        why: why.into(),
    }
}

async fn drop_triggers(db: &yizhan_core::Db) {
    let sql = match db.engine() {
        Engine::Sqlite => "DROP TRIGGER access_log_no_update;",
        Engine::Postgres => "DROP TRIGGER access_log_no_update ON access_log;",
    };
    sqlx::raw_sql(sql).execute(&db.pool).await.unwrap();
}

/// The same database and clock as `s`, under another key (as a server
/// restarted with it would be).
async fn services_with(s: &Spawned, vault: Vault) -> Services {
    let ctx = Ctx { vault: Arc::new(vault), ..s.state.ctx.clone() };
    let wiring = Wiring {
        mailer: None,
        sms: None,
        outbox_dir: None,
        gateway: s.gateway.clone(),
        verifier: Arc::new(yizhan_identity::SandboxIdentityVerifier),
        identity: yizhan_identity::IdentityConfig { fast_hashing_for_tests: true, ..Default::default() },
        config: Default::default(),
        pay: Default::default(),
    };
    Services::build(ctx, wiring).await.unwrap()
}

/// A person with a real name and number on file, two reads in their access log.
async fn person(s: &Spawned) -> (String, String) {
    let id = s.state.identity.register("rotate@example.com", "correct horse battery", "Li Lei").await.unwrap();
    let number = id_number("11010519491231002");
    s.state.identity.verify_real_name(&id, "李雷", &number).await.unwrap();
    s.state.audit.record(read(&id, "permit 1")).await.unwrap();
    s.state.audit.record(read(&id, "permit 2")).await.unwrap();
    (id, number)
}

#[tokio::test]
async fn rotation_moves_sealed_numbers_indexes_and_access_logs_to_the_new_key() {
    let s = spawn().await;
    let db = s.state.ctx.db.clone();
    let now = yizhan_core::Clock::now_ms(&*s.clock);
    s.state.ctx.vault.check_against(&db, now).await.unwrap();
    let (user, number) = person(&s).await;
    s.state.pay.set_payment_pin(&user, "correct horse battery", "024681").await.unwrap();
    // Someone else claims the same number: a dispute holds their evidence sealed.
    let claimant = s.state.identity.register("claimant@example.com", "correct horse battery", "Li Lei").await.unwrap();
    let claim = yizhan_identity::Claim::IdNumber { name: "李雷", id_number: &number };
    s.state.identity.open_dispute(&claimant, claim).await.unwrap();
    let qr = s.state.pay.my_qr(&user).await.unwrap();
    // A second factor: its secret is sealed too.
    let enrolment = s.state.identity.start_totp(&user).await.unwrap();
    let totp_secret = yizhan_identity::totp::from_base32(&enrolment.secret).unwrap();
    let code = yizhan_identity::totp::totp_at(&totp_secret, now, 6).unwrap();
    s.state.identity.confirm_totp(&user, &code).await.unwrap();
    let head_before = s.state.audit.export(&user).await.unwrap()["head"].clone();
    let cipher_before: (String, String) = sqlx::query_as("SELECT id_cipher, id_index FROM users WHERE id = $1")
        .bind(&user)
        .fetch_one(&db.pool)
        .await
        .unwrap();

    let new = Vault::generate();
    let new_hex = new.to_hex();
    let report = rotate(&db, &s.state.ctx.vault, &new, now, &|_| {}).await.unwrap();
    assert_eq!(report.identity.id_numbers, 1);
    assert_eq!(report.access_logs.subjects, 1);
    assert_eq!(report.access_logs.entries, 2);
    // A payment PIN is hashed over the key: it cannot move, and its owner is told.
    assert_eq!(report.wallet.pins_dropped, vec![user.clone()]);

    // The process still holding the old key learns it is stale.
    assert!(!key_still_current(&db, &s.state.ctx.vault).await.unwrap());
    let cipher_after: (String, String) = sqlx::query_as("SELECT id_cipher, id_index FROM users WHERE id = $1")
        .bind(&user)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_ne!(cipher_after.0, cipher_before.0);
    assert_ne!(cipher_after.1, cipher_before.1);
    assert!(!cipher_after.1.starts_with("rekey:"));
    // The dispute's evidence opens under the new key, and names the number by its new index.
    assert_eq!(report.identity.disputes, 1);
    assert_eq!(report.identity.totp_secrets, 1);
    let (sealed, subject): (String, String) =
        sqlx::query_as("SELECT id_cipher, subject_key FROM identity_disputes WHERE claimant_user_id = $1")
            .bind(&claimant)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let new_again = Vault::from_hex(&new_hex).unwrap();
    assert_eq!(new_again.open(&sealed, &format!("id_number:{claimant}")).unwrap(), number.as_bytes());
    assert_eq!(subject, cipher_after.1);

    // A server started with the new key (keeping the old one for printed codes).
    let old_again = Vault::from_hex(&s.state.ctx.vault.to_hex()).unwrap();
    let after = services_with(&s, Vault::from_hex(&new_hex).unwrap().with_previous(&old_again)).await;
    after.ctx.vault.check_against(&db, now).await.unwrap();
    assert!(!after.pay.has_payment_pin(&user).await.unwrap());
    yizhan_app::keys::after_rotation(&after.pay, &report).await;
    let inbox = after.notify.inbox(&user, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "pay.pin_dropped"), "{inbox:?}");
    assert_eq!(after.identity.reveal_own_id_number(&user).await.unwrap(), number);
    // The second factor still checks, under the new key only.
    let (totp_sealed,): (String,) = sqlx::query_as("SELECT secret_cipher FROM identity_totp WHERE user_id = $1")
        .bind(&user)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(new_again.open(&totp_sealed, &format!("totp:{user}")).unwrap(), totp_secret);
    assert!(old_again.open(&totp_sealed, &format!("totp:{user}")).is_err());
    s.clock.advance_ms(yizhan_identity::totp::STEP_MS);
    let code = yizhan_identity::totp::totp_at(&totp_secret, yizhan_core::Clock::now_ms(&*s.clock), 6).unwrap();
    let attempt = yizhan_identity::LoginAttempt {
        login: "rotate@example.com",
        password: "correct horse battery",
        client_addr: "10.0.0.1",
        user_agent: "",
        totp: Some(&code),
    };
    after.identity.sign_in(attempt).await.unwrap();
    assert_eq!(after.identity.find_by_id_number(&number).await.unwrap().unwrap().user_id, user);
    let check = after.audit.verify(&user).await.unwrap();
    assert!(check.ok, "{check:?}");
    // The head a person exported before still matches: no entry was rewritten.
    assert_eq!(after.audit.export(&user).await.unwrap()["head"], head_before);
    after.audit.record(read(&user, "permit 3")).await.unwrap();
    let check = after.audit.verify(&user).await.unwrap();
    assert!(check.ok && check.entries == 3, "{check:?}");
    // A QR code printed before the rotation still pays the right person.
    assert!(after.pay.decode_qr(&qr).is_ok());
    // Without the previous key it no longer checks; new codes do.
    let strict = services_with(&s, Vault::from_hex(&new_hex).unwrap()).await;
    assert!(strict.pay.decode_qr(&qr).is_err());
    let fresh = strict.pay.my_qr(&user).await.unwrap();
    assert!(strict.pay.decode_qr(&fresh).is_ok());

    // An entry from before the rotation altered behind the triggers' back shows.
    drop_triggers(&db).await;
    sqlx::query("UPDATE access_log SET why = 'nothing to see' WHERE subject_user_id = $1 AND seq = 1")
        .bind(&user)
        .execute(&db.pool)
        .await
        .unwrap();
    let check = after.audit.verify(&user).await.unwrap();
    assert!(!check.ok);
    assert_eq!(check.first_bad_seq, Some(1));
    // So does the checkpoint's removal: the old entries no longer verify under the new key.
    sqlx::query("UPDATE access_log SET why = 'permit 1' WHERE subject_user_id = $1 AND seq = 1")
        .bind(&user)
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(after.audit.verify(&user).await.unwrap().ok);
    sqlx::query("DELETE FROM access_log_checkpoints").execute(&db.pool).await.unwrap();
    assert!(!after.audit.verify(&user).await.unwrap().ok);
}

#[tokio::test]
async fn rotation_refuses_a_broken_chain_or_the_wrong_key_and_changes_nothing() {
    let s = spawn().await;
    let db = s.state.ctx.db.clone();
    let now = yizhan_core::Clock::now_ms(&*s.clock);
    s.state.ctx.vault.check_against(&db, now).await.unwrap();
    let (user, number) = person(&s).await;

    // The wrong old key: refused.
    let stranger = Vault::generate();
    let e = rotate(&db, &stranger, &Vault::generate(), now, &|_| {}).await.unwrap_err();
    assert_eq!(e.code, yizhan_core::Code::Conflict);

    // A chain altered under the old key: the rotation will not launder it.
    drop_triggers(&db).await;
    sqlx::query("UPDATE access_log SET why = 'rewritten' WHERE subject_user_id = $1 AND seq = 2")
        .bind(&user)
        .execute(&db.pool)
        .await
        .unwrap();
    let e = rotate(&db, &s.state.ctx.vault, &Vault::generate(), now, &|_| {}).await.unwrap_err();
    assert_eq!(e.msg.key, "audit.rekey.broken_chains");
    // Nothing moved: the old key still opens and finds everything.
    assert!(key_still_current(&db, &s.state.ctx.vault).await.unwrap());
    assert_eq!(s.state.identity.reveal_own_id_number(&user).await.unwrap(), number);
    assert_eq!(s.state.identity.find_by_id_number(&number).await.unwrap().unwrap().user_id, user);
}
