// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use yizhan_audit::{entry_hash, AccessEntry, Audit, NewAccess, CHAIN_KEYED, CHAIN_PLAIN, GENESIS_HASH, MIGRATIONS};
use yizhan_core::testing::{TestDb, T0_MS};
use yizhan_core::{Code, Engine, Msg};

fn read(subject: &str, what: &str, why: &str) -> NewAccess {
    NewAccess {
        subject_user_id: subject.into(),
        actor_user_id: "staff-1".into(),
        actor_label: "Officer Zhang".into(),
        org_id: Some("org-1".into()),
        org_label: Some("Hangzhou Public Security Bureau".into()),
        what: what.into(),
        why: why.into(),
    }
}

async fn raw(db: &yizhan_core::Db, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sql).execute(&db.pool).await.map(|r| r.rows_affected())
}

async fn drop_triggers(db: &yizhan_core::Db) {
    let sql = match db.engine() {
        Engine::Sqlite => "DROP TRIGGER access_log_no_update; DROP TRIGGER access_log_no_delete;",
        Engine::Postgres => {
            "DROP TRIGGER access_log_no_update ON access_log; DROP TRIGGER access_log_no_delete ON access_log;"
        }
    };
    sqlx::raw_sql(sql).execute(&db.pool).await.unwrap();
}

#[tokio::test]
async fn records_chain_per_subject_and_lists_newest_first() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    let audit = Audit::new(ctx);

    let a1 = audit.record(read("alice", "profile", "  permit application 42 ")).await.unwrap();
    clock.advance_ms(1000);
    let a2 = audit.record(read("alice", "identity_number", "permit application 42")).await.unwrap();
    let b1 = audit.record(read("bob", "profile", "library card")).await.unwrap();

    assert_eq!((a1.seq, a2.seq, b1.seq), (1, 2, 1));
    assert_eq!(a1.prev_hash, GENESIS_HASH);
    assert_eq!(a2.prev_hash, a1.hash);
    assert_eq!(b1.prev_hash, GENESIS_HASH, "each subject has its own chain");
    assert_eq!(a1.why, "permit application 42", "the reason is stored trimmed");
    assert_eq!(a1.at_ms, T0_MS);
    assert_eq!(a2.at_ms, T0_MS + 1000);
    // The chain is keyed: a plain SHA-256 over the same fields is not the hash.
    assert_eq!(a2.chain_version, CHAIN_KEYED);
    assert_ne!(entry_hash(&a2), a2.hash);
    assert_eq!(a2.hash.len(), 64);

    let list = audit.list("alice", 50, None).await.unwrap();
    assert_eq!(list, vec![a2.clone(), a1.clone()]);
    assert_eq!(list[0].actor_label, "Officer Zhang");
    assert_eq!(list[0].org_label.as_deref(), Some("Hangzhou Public Security Bureau"));
    assert_eq!(audit.list("alice", 1, None).await.unwrap(), vec![a2.clone()]);
    assert_eq!(audit.list("alice", 50, Some(2)).await.unwrap(), vec![a1.clone()]);
    assert!(audit.list("alice", 50, Some(1)).await.unwrap().is_empty());
    assert!(audit.list("nobody", 50, None).await.unwrap().is_empty());
    assert_eq!(audit.count("alice").await.unwrap(), 2);

    for subject in ["alice", "bob"] {
        let c = audit.verify(subject).await.unwrap();
        assert!(c.ok, "{subject}: {c:?}");
        assert_eq!(c.first_bad_seq, None);
    }
    let empty = audit.verify("nobody").await.unwrap();
    assert_eq!((empty.entries, empty.ok), (0, true));

    let export = audit.export("alice").await.unwrap();
    let entries = export["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["seq"], 1, "export is oldest first");
    assert_eq!(entries[1]["what"], "identity_number");
    assert_eq!(export["chain"]["ok"], true);
}

#[tokio::test]
async fn a_reason_is_required() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let audit = Audit::new(ctx);
    for why in ["", "   "] {
        let e = audit.record(read("alice", "profile", why)).await.unwrap_err();
        assert_eq!(e.code, Code::ValidationFailed);
        assert_eq!(e.fields[0].field, "reason");
        assert_eq!(e.fields[0].msg, Msg::new("error.field.empty"));
    }
    let e = audit.record(read("alice", "", "x")).await.unwrap_err();
    assert_eq!(e.fields[0].field, "what");
    assert_eq!(e.fields[0].msg, Msg::new("error.field.empty"));
    let e = audit.record(read("alice", "profile", &"x".repeat(1001))).await.unwrap_err();
    assert_eq!(e.fields[0].field, "reason");
    assert_eq!(e.fields[0].msg, Msg::new("error.field.too_long").int("max", 1000));
    assert_eq!(audit.count("alice").await.unwrap(), 0);
}

#[tokio::test]
async fn the_database_refuses_update_and_delete() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let audit = Audit::new(ctx);
    audit.record(read("alice", "profile", "reason")).await.unwrap();

    let e = raw(&t.db, "UPDATE access_log SET why = 'nothing to see'").await.unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = raw(&t.db, "DELETE FROM access_log").await.unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    if t.db.engine() == Engine::Postgres {
        let e = raw(&t.db, "TRUNCATE access_log").await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    let list = audit.list("alice", 10, None).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].why, "reason");
    assert!(audit.verify("alice").await.unwrap().ok);
}

async fn three_entries(audit: &Audit, subject: &str) {
    for i in 1..=3 {
        audit.record(read(subject, "profile", &format!("reason {i}"))).await.unwrap();
    }
    assert!(audit.verify(subject).await.unwrap().ok);
}

#[tokio::test]
async fn verify_finds_altered_and_removed_entries() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let audit = Audit::new(ctx);
    for s in ["altered", "rehashed", "middle", "first", "newest", "untouched"] {
        three_entries(&audit, s).await;
    }
    drop_triggers(&t.db).await;

    // A changed reason no longer matches its hash.
    raw(&t.db, "UPDATE access_log SET why = 'routine' WHERE subject_user_id = 'altered' AND seq = 2").await.unwrap();
    let c = audit.verify("altered").await.unwrap();
    assert_eq!((c.entries, c.ok, c.first_bad_seq), (3, false, Some(2)));

    // Changed and re-hashed with SHA-256: without the key the hash does not match.
    let mut e2 = audit.list("rehashed", 1, Some(3)).await.unwrap().remove(0);
    e2.actor_label = "nobody".into();
    let forged = entry_hash(&e2);
    raw(
        &t.db,
        &format!(
            "UPDATE access_log SET actor_label = 'nobody', hash = '{forged}' WHERE subject_user_id = 'rehashed' AND seq = 2"
        ),
    )
    .await
    .unwrap();
    let c = audit.verify("rehashed").await.unwrap();
    assert_eq!((c.ok, c.first_bad_seq), (false, Some(2)));

    raw(&t.db, "DELETE FROM access_log WHERE subject_user_id = 'middle' AND seq = 2").await.unwrap();
    let c = audit.verify("middle").await.unwrap();
    assert_eq!((c.entries, c.ok, c.first_bad_seq), (2, false, Some(2)));

    raw(&t.db, "DELETE FROM access_log WHERE subject_user_id = 'first' AND seq = 1").await.unwrap();
    assert_eq!(audit.verify("first").await.unwrap().first_bad_seq, Some(1));

    // Removing the newest entry leaves no gap; the remembered head shows it.
    raw(&t.db, "DELETE FROM access_log WHERE subject_user_id = 'newest' AND seq = 3").await.unwrap();
    let c = audit.verify("newest").await.unwrap();
    assert_eq!((c.entries, c.ok, c.first_bad_seq), (2, false, Some(3)));

    // Renumbering to hide a gap breaks the hashes.
    raw(&t.db, "DELETE FROM access_log WHERE subject_user_id = 'untouched' AND seq = 2").await.unwrap();
    raw(&t.db, "UPDATE access_log SET seq = 2 WHERE subject_user_id = 'untouched' AND seq = 3").await.unwrap();
    raw(&t.db, "UPDATE access_log_heads SET last_seq = 2 WHERE subject_user_id = 'untouched'").await.unwrap();
    let c = audit.verify("untouched").await.unwrap();
    assert_eq!((c.ok, c.first_bad_seq), (false, Some(2)));

    // Removing the head as well as the newest entry still shows.
    three_entries(&audit, "headless").await;
    raw(&t.db, "DELETE FROM access_log WHERE subject_user_id = 'headless' AND seq = 3").await.unwrap();
    raw(&t.db, "DELETE FROM access_log_heads WHERE subject_user_id = 'headless'").await.unwrap();
    assert!(!audit.verify("headless").await.unwrap().ok);

    // The export carries the verdict.
    let export = audit.export("middle").await.unwrap();
    assert_eq!(export["chain"]["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_records_keep_one_gapless_chain() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let audit = Audit::new(ctx);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let audit = audit.clone();
        let subject = if i % 4 == 0 { "other" } else { "hot" };
        tasks.push(tokio::spawn(async move { audit.record(read(subject, "profile", &format!("read {i}"))).await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let hot = audit.verify("hot").await.unwrap();
    assert_eq!((hot.entries, hot.ok), (30, true), "{hot:?}");
    let other = audit.verify("other").await.unwrap();
    assert_eq!((other.entries, other.ok), (10, true), "{other:?}");
    let seqs: Vec<i64> = audit.list("hot", 100, None).await.unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=30).rev().collect::<Vec<_>>());
}

/// Rewrite the subject's entries from `from_seq` on as plain SHA-256 entries
/// (what someone with write access but no key can compute), and the head.
async fn rewrite_plain(t: &TestDb, audit: &Audit, subject: &str, from_seq: i64, new_why: &str) {
    let mut entries: Vec<AccessEntry> = audit.list(subject, 1000, None).await.unwrap();
    entries.reverse();
    let mut prev = GENESIS_HASH.to_string();
    for mut e in entries {
        if e.seq >= from_seq {
            if e.seq == from_seq {
                e.why = new_why.into();
            }
            e.prev_hash = prev.clone();
            e.chain_version = CHAIN_PLAIN;
            e.hash = entry_hash(&e);
            sqlx::query(
                "UPDATE access_log SET why = $1, prev_hash = $2, hash = $3, chain_version = $4
                 WHERE subject_user_id = $5 AND seq = $6",
            )
            .bind(&e.why)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .bind(e.chain_version)
            .bind(subject)
            .bind(e.seq)
            .execute(&t.db.pool)
            .await
            .unwrap();
            sqlx::query("UPDATE access_log_heads SET last_seq = $1, last_hash = $2 WHERE subject_user_id = $3")
                .bind(e.seq)
                .bind(&e.hash)
                .bind(subject)
                .execute(&t.db.pool)
                .await
                .unwrap();
        }
        prev = e.hash;
    }
}

#[tokio::test]
async fn a_chain_recomputed_without_the_key_fails_and_the_export_holds_the_head() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let audit = Audit::new(ctx);
    three_entries(&audit, "alice").await;
    three_entries(&audit, "bob").await;
    // The person keeps an export: it holds the head.
    let before = audit.export("alice").await.unwrap();
    let newest = audit.list("alice", 1, None).await.unwrap().remove(0);
    assert_eq!(before["head"]["seq"], 3);
    assert_eq!(before["head"]["hash"], newest.hash.as_str());
    assert_eq!(before["chain"]["ok"], true);
    drop_triggers(&t.db).await;

    // Entry 2 rewritten, entries 2 and 3 and the head recomputed as a
    // consistent plain SHA-256 chain: it no longer verifies.
    rewrite_plain(&t, &audit, "alice", 2, "nothing to see").await;
    let c = audit.verify("alice").await.unwrap();
    assert_eq!((c.ok, c.first_bad_seq), (false, Some(2)));
    // The whole chain rewritten as plain entries: the head's MAC gives it away.
    rewrite_plain(&t, &audit, "bob", 1, "nothing to see").await;
    let c = audit.verify("bob").await.unwrap();
    assert_eq!((c.ok, c.first_bad_seq), (false, Some(3)));
    // And against the earlier export, the head has moved.
    let after = audit.export("alice").await.unwrap();
    assert_ne!(after["head"]["hash"], before["head"]["hash"]);
}

#[tokio::test]
async fn entries_written_before_the_chain_was_keyed_still_verify() {
    let t = TestDb::new(&[&MIGRATIONS]).await;
    let (ctx, _) = t.ctx();
    let audit = Audit::new(ctx);
    // Two entries and a head as the plain chain wrote them (no head MAC).
    let mut prev = GENESIS_HASH.to_string();
    for seq in 1..=2 {
        let mut e = AccessEntry {
            id: format!("legacy-{seq}"),
            subject_user_id: "carol".into(),
            seq,
            actor_user_id: "staff-1".into(),
            actor_label: "Officer Zhang".into(),
            org_id: None,
            org_label: None,
            what: "profile".into(),
            why: format!("old reason {seq}"),
            at_ms: 1_000 * seq,
            prev_hash: prev.clone(),
            hash: String::new(),
            chain_version: CHAIN_PLAIN,
        };
        e.hash = entry_hash(&e);
        sqlx::query(
            "INSERT INTO access_log (id, subject_user_id, seq, actor_user_id, actor_label, org_id, org_label, what,
                 why, at_ms, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7, $8, $9, $10)",
        )
        .bind(&e.id)
        .bind(&e.subject_user_id)
        .bind(e.seq)
        .bind(&e.actor_user_id)
        .bind(&e.actor_label)
        .bind(&e.what)
        .bind(&e.why)
        .bind(e.at_ms)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(&t.db.pool)
        .await
        .unwrap();
        prev = e.hash;
    }
    sqlx::query("INSERT INTO access_log_heads (subject_user_id, last_seq, last_hash) VALUES ('carol', 2, $1)")
        .bind(&prev)
        .execute(&t.db.pool)
        .await
        .unwrap();
    // Not vouched for until the start seals the head with the key.
    assert!(!audit.verify("carol").await.unwrap().ok);
    assert_eq!(audit.seal_legacy_heads().await.unwrap(), 1);
    assert_eq!(audit.seal_legacy_heads().await.unwrap(), 0);
    let c = audit.verify("carol").await.unwrap();
    assert_eq!((c.entries, c.ok), (2, true));
    // New entries are keyed and link onto the plain ones.
    let e3 = audit.record(read("carol", "profile", "new reason")).await.unwrap();
    assert_eq!((e3.seq, e3.chain_version, e3.prev_hash), (3, CHAIN_KEYED, prev));
    assert!(audit.verify("carol").await.unwrap().ok);
    // A plain entry rewritten and the chain recomputed: the keyed entry's link breaks.
    drop_triggers(&t.db).await;
    rewrite_plain(&t, &audit, "carol", 1, "forged").await;
    assert!(!audit.verify("carol").await.unwrap().ok);
}
