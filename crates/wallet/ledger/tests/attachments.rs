#![allow(clippy::unwrap_used)]
//! Attachments: rows of another part written in the transaction that makes a
//! transfer — once for a transfer made, never for a replay or a refusal, many
//! in one batch — on SQLite (pipelined) and PostgreSQL.

mod common;

use common::{code, env};
use futures::future::{join_all, BoxFuture};
use std::sync::Arc;
use yizhan_ledger::{Attachment, Transfer, TransferSpec};

/// Writes (note, transfer id) into a table of the test's own.
struct Note(String);

impl Attachment for Note {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn write_all<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        all: &'a [(&'a dyn Attachment, &'a Transfer)],
    ) -> BoxFuture<'a, yizhan_core::Result<()>> {
        Box::pin(async move {
            for (a, t) in all {
                let note = a.as_any().downcast_ref::<Note>().unwrap();
                sqlx::query("INSERT INTO test_notes (note, transfer_id) VALUES ($1, $2)")
                    .bind(&note.0)
                    .bind(&t.id)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}

fn note(s: &str) -> Vec<Arc<dyn Attachment>> {
    vec![Arc::new(Note(s.to_string()))]
}

async fn notes(e: &common::Env) -> Vec<(String, String)> {
    sqlx::query_as("SELECT note, transfer_id FROM test_notes ORDER BY note").fetch_all(&e.t.db.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_commit_with_the_transfer_and_only_when_it_is_made() {
    let e = env().await;
    sqlx::query("CREATE TABLE test_notes (note TEXT NOT NULL, transfer_id TEXT NOT NULL)")
        .execute(&e.t.db.pool)
        .await
        .unwrap();
    e.wallet("wallet:a", 1_000).await;
    e.wallet("wallet:b", 0).await;
    let spec = || TransferSpec::new("wallet:a", "wallet:b", 100, "p2p").with_idempotency_key("user:a:k1");
    let first = e.ledger.transfer_with(spec(), note("first")).await.unwrap();
    // A replay of the key answers the first transfer and writes nothing.
    let again = e.ledger.transfer_with(spec(), note("replay")).await.unwrap();
    assert_eq!(again.id, first.id);
    // A refusal writes nothing either.
    let refused =
        e.ledger.transfer_with(TransferSpec::new("wallet:a", "wallet:b", 5_000, "p2p"), note("refused")).await;
    assert_eq!(code(refused), yizhan_ledger::codes::INSUFFICIENT_FUNDS);
    assert_eq!(notes(&e).await, vec![("first".to_string(), first.id.clone())]);

    // Many at once share batches; each made transfer gets its own row.
    let made = join_all((0..50).map(|i| {
        e.ledger.transfer_with(TransferSpec::new("wallet:a", "wallet:b", 10, "p2p"), note(&format!("n{i:02}")))
    }))
    .await;
    let ok: Vec<Transfer> = made.into_iter().filter_map(Result::ok).collect();
    // 900 fen left: 90 payments of 10 would fit, so all 50 are made.
    assert_eq!(ok.len(), 50);
    let all = notes(&e).await;
    assert_eq!(all.len(), 51);
    for t in &ok {
        assert_eq!(all.iter().filter(|(_, id)| id == &t.id).count(), 1);
    }
    e.assert_clean().await;
}
