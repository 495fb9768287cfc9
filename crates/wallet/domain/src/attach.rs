//! What a payment writes with its money, in the ledger's transaction (see
//! `yizhan_ledger::Attachment`): the payee's notice, and the stored answer of
//! the request that paid. Each part's rows are written by that part's code;
//! here they are only handed to the ledger.

use futures::future::BoxFuture;
use std::sync::Arc;
use yizhan_core::{Msg, Result};
use yizhan_idempotency::DomainAnswer;
use yizhan_ledger::{Attachment, Transfer};
use yizhan_notify::{Message, Notify, PreparedNotice, Target};

/// "You received ¥x from Y", about the transfer that is being made.
pub(crate) struct ReceivedNotice {
    pub notify: Notify,
    pub payee_user_id: String,
    pub payer_name: String,
    pub memo: String,
    /// The payee's address for a mailed copy, when a mailer is configured.
    pub email: Option<String>,
    /// Filled in when written, for the mail after commit.
    pub prepared: std::sync::Mutex<Option<PreparedNotice>>,
}

impl ReceivedNotice {
    fn message(&self, t: &Transfer) -> Message {
        let body = if self.memo.is_empty() {
            Msg::new("pay.notice.received.body")
        } else {
            Msg::new("pay.notice.received.body_memo").text("memo", &self.memo)
        };
        Message {
            kind: "pay.received".into(),
            title: Msg::new("pay.notice.received.title").fen("amount", t.amount_fen),
            body: body.text("payer", self.payer_name.clone()).fen("amount", t.amount_fen),
            target: Some(Target::new("transfer", &t.id)),
        }
    }

    /// After the payment committed: mail the copy, if any.
    pub fn mail(&self) {
        let prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = prepared.as_ref() {
            self.notify.mail_prepared(n, self.email.as_deref());
        }
    }
}

impl Attachment for ReceivedNotice {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn write_all<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        all: &'a [(&'a dyn Attachment, &'a Transfer)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut notices = Vec::with_capacity(all.len());
            for (a, t) in all {
                let Some(n) = a.as_any().downcast_ref::<ReceivedNotice>() else { continue };
                match n.notify.prepare(&n.payee_user_id, n.message(t)) {
                    Ok(p) => notices.push((n, p)),
                    // A notice that cannot be made never stops a payment.
                    Err(e) => tracing::warn!(user_id = %n.payee_user_id, code = %e.code, "payment notice not made"),
                }
            }
            let refs: Vec<&PreparedNotice> = notices.iter().map(|(_, p)| p).collect();
            Notify::insert_prepared(conn, &refs).await?;
            for (n, p) in notices {
                *n.prepared.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
            Ok(())
        })
    }
}

/// The answer of the idempotent request that pays, kept with the money.
pub(crate) struct RequestAnswer(pub DomainAnswer);

impl Attachment for RequestAnswer {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn write_all<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        all: &'a [(&'a dyn Attachment, &'a Transfer)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let answers: Vec<&DomainAnswer> =
                all.iter().filter_map(|(a, _)| a.as_any().downcast_ref::<RequestAnswer>()).map(|r| &r.0).collect();
            DomainAnswer::insert_all(conn, &answers).await
        })
    }
}

/// The request's answer, if the request that runs this payment offers one.
pub(crate) fn request_answer() -> Option<Arc<dyn Attachment>> {
    yizhan_idempotency::take_domain_answer().map(|a| Arc::new(RequestAnswer(a)) as Arc<dyn Attachment>)
}
