use std::ops::Deref;
use std::sync::Arc;
use yizhan_audit::Audit;
use yizhan_booking::Booking;
use yizhan_city::CityHall;
use yizhan_core::Ctx;
use yizhan_credit::Credit;
use yizhan_idempotency::Idempotency;
use yizhan_identity::Identity;
use yizhan_kit::metrics::Metrics;
use yizhan_kit::WebConfig;
use yizhan_ledger::Ledger;
use yizhan_notify::Notify;
use yizhan_pay::Pay;

/// The services the app built: the rooms take theirs from these, the app's
/// own handlers (home, export, deletion, metrics) use them directly.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub ctx: Ctx,
    pub identity: Identity,
    pub audit: Audit,
    pub notify: Notify,
    /// The ledger's handle (its batcher runs once per process); money moves through `pay`.
    pub ledger: Ledger,
    pub pay: Pay,
    /// Answers to requests that carried an Idempotency-Key.
    pub idempotency: Idempotency,
    /// The credit score (opt-in), fed by the other rooms' events.
    pub credit: Credit,
    /// The shared booking engine (city services now; hospitals and others later).
    pub booking: Booking,
    pub city: CityHall,
    pub config: WebConfig,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl axum::extract::FromRef<AppState> for Identity {
    fn from_ref(s: &AppState) -> Identity {
        s.identity.clone()
    }
}

/// What the services are built with, besides the context.
pub struct Wiring {
    pub mailer: Option<Arc<dyn yizhan_notify::Mailer>>,
    /// Who sends text messages (sign-in codes); none: sending one fails.
    pub sms: Option<Arc<dyn yizhan_notify::SmsSender>>,
    /// Where the sandbox senders write, for the operator's outbox page.
    pub outbox_dir: Option<std::path::PathBuf>,
    pub gateway: Arc<dyn yizhan_pay::FundingGateway>,
    /// Who checks real names and vehicle registrations.
    pub verifier: Arc<dyn yizhan_identity::IdentityVerifier>,
    pub identity: yizhan_identity::IdentityConfig,
    pub pay: yizhan_pay::PayConfig,
    pub config: WebConfig,
}

impl Services {
    /// Build every domain service on one context, the one place they are
    /// wired (the server, the demo and the tests all come through here). It
    /// starts the ledger's batcher and opens the platform's own accounts.
    pub async fn build(ctx: Ctx, w: Wiring) -> yizhan_core::Result<Services> {
        let audit = Audit::new(ctx.clone());
        // Heads written before the access log's chain was keyed get their MAC
        // now, before anyone can write the database unseen by the key.
        audit.seal_legacy_heads().await?;
        let mut notify = Notify::new(ctx.clone(), w.mailer).with_renderer(crate::mail_renderer());
        if let Some(sms) = w.sms {
            notify = notify.with_sms(sms);
        }
        if let Some(dir) = w.outbox_dir {
            notify = notify.with_outbox(dir);
        }
        let identity = Identity::new(ctx.clone(), audit.clone(), notify.clone(), w.verifier, w.identity);
        let ledger = Ledger::start(ctx.clone());
        let pay = Pay::with_config(
            ctx.clone(),
            ledger.clone(),
            identity.clone(),
            audit.clone(),
            notify.clone(),
            w.gateway,
            w.pay,
        );
        pay.open_system_accounts().await?;
        identity.set_relations(Arc::new(Relations { pay: pay.clone() }));
        let idempotency = Idempotency::new(ctx.clone());
        let credit = Credit::new(ctx.clone(), identity.clone(), audit.clone(), notify.clone())?;
        credit.load_models().await?;
        pay.set_bill_events(Arc::new(BillsToCredit { credit: credit.clone() }));
        credit.set_pay_later_wallet(Arc::new(PayLaterOnPay { pay: pay.clone() }));
        let booking = Booking::new(ctx.clone())
            .with_events(Arc::new(crate::booking_notices::Notices {
                notify: notify.clone(),
                identity: identity.clone(),
            }))
            .with_fees(Arc::new(FeesToWallet { pay: pay.clone() }));
        let city = CityHall::new(ctx.clone(), identity.clone(), booking.clone(), notify.clone(), audit.clone())
            .with_deposits(Arc::new(DepositsInWallet {
                pay: pay.clone(),
                credit: credit.clone(),
                identity: identity.clone(),
            }))
            .with_fees(Arc::new(FeesToWallet { pay: pay.clone() }));
        Ok(Services {
            ctx,
            identity,
            audit,
            notify,
            ledger,
            pay,
            idempotency,
            credit,
            booking,
            city,
            config: w.config,
            metrics: Default::default(),
        })
    }
}

/// What the rooms know of an organisation's dealings with a person, for the
/// identity room's staff reads: a bill it issued; other reasons (a case, an
/// appointment) have no room that knows them yet.
struct Relations {
    pay: Pay,
}

#[async_trait::async_trait]
impl yizhan_identity::Relations for Relations {
    async fn relation(
        &self,
        org_id: &str,
        subject_user_id: &str,
        reason: &str,
    ) -> yizhan_core::Result<yizhan_identity::Relation> {
        use yizhan_identity::Relation;
        Ok(match reason {
            "bill" if self.pay.org_billed(org_id, subject_user_id).await? => Relation::Yes,
            "bill" => Relation::No,
            _ => Relation::Unknowable,
        })
    }
}

/// The booking engine's fees (and the city room's online applications'
/// fees) paid from the person's wallet to the organisation that owns the
/// service (its `owner_id`), and given back.
struct FeesToWallet {
    pay: Pay,
}

#[async_trait::async_trait]
impl yizhan_booking::Fees for FeesToWallet {
    async fn charge(&self, person_id: &str, owner_id: &str, fee_fen: i64, reference: &str) -> yizhan_core::Result<()> {
        self.pay.pay_fee(person_id, owner_id, fee_fen, reference).await.map(|_| ())
    }

    async fn refund(&self, person_id: &str, owner_id: &str, reference: &str) -> yizhan_core::Result<()> {
        self.pay.refund_fee(person_id, owner_id, reference).await.map(|_| ())
    }
}

/// A city service's deposit: waived when the credit room grants the
/// person the service's perk (asked as the organisation, written to the
/// person's access log by the credit room), otherwise held in the wallet.
struct DepositsInWallet {
    pay: Pay,
    credit: Credit,
    identity: Identity,
}

#[async_trait::async_trait]
impl yizhan_city::Deposits for DepositsInWallet {
    async fn waived(&self, person_id: &str, org_id: &str, perk: &str) -> yizhan_core::Result<bool> {
        let org = self.identity.org(org_id).await?;
        let asker = yizhan_credit::Asker {
            user_id: person_id.to_string(),
            label: org.name.clone(),
            org_id: Some(org.id),
            org_label: Some(org.name),
        };
        Ok(self.credit.can(&asker, person_id, perk).await?.granted())
    }

    async fn hold(&self, person_id: &str, org_id: &str, amount_fen: i64, reference: &str) -> yizhan_core::Result<()> {
        self.pay.hold_deposit(person_id, org_id, amount_fen, reference).await.map(|_| ())
    }

    async fn release(&self, reference: &str) -> yizhan_core::Result<()> {
        self.pay.return_deposit(reference).await.map(|_| ())
    }
}

/// A paid bill becomes a credit record (for a person who opted in): paid by
/// its due time, or the whole days it was late.
struct BillsToCredit {
    credit: Credit,
}

#[async_trait::async_trait]
impl yizhan_pay::bills::BillEvents for BillsToCredit {
    async fn bill_paid(&self, bill: &yizhan_pay::Bill) {
        let paid_at_ms = bill.paid_at_ms.unwrap_or(bill.due_at_ms);
        let late_ms = paid_at_ms - bill.due_at_ms;
        let (outcome, days_late) = if late_ms > 0 {
            (yizhan_credit::Outcome::Late, (late_ms + 86_399_999) / 86_400_000)
        } else {
            (yizhan_credit::Outcome::OnTime, 0)
        };
        let kind =
            if bill.kind == yizhan_pay::BillKind::Fine { yizhan_credit::Kind::Fine } else { yizhan_credit::Kind::Bill };
        let record = yizhan_credit::NewRecord {
            user_id: bill.user_id.clone(),
            kind,
            outcome,
            days_late,
            occurred_at_ms: paid_at_ms,
            source: "wallet".into(),
            source_org_id: Some(bill.org_id.clone()),
            source_ref: format!("bill:{}", bill.id),
        };
        // The payment stands whatever happens here; the score catches up on its next read.
        if let Err(e) = self.credit.record_event(record).await {
            tracing::warn!(user_id = %bill.user_id, code = %e.code, error = %e.msg, "bill not recorded for the credit score");
        }
    }

    /// An unpaid bill past its due time is an overdue record (paying it
    /// later replaces it with "paid late": same source reference).
    async fn bill_overdue(&self, bill: &yizhan_pay::Bill, days_late: i64) {
        let kind =
            if bill.kind == yizhan_pay::BillKind::Fine { yizhan_credit::Kind::Fine } else { yizhan_credit::Kind::Bill };
        self.record(yizhan_credit::NewRecord {
            user_id: bill.user_id.clone(),
            kind,
            outcome: yizhan_credit::Outcome::Overdue,
            days_late,
            occurred_at_ms: bill.due_at_ms,
            source: "wallet".into(),
            source_org_id: Some(bill.org_id.clone()),
            source_ref: format!("bill:{}", bill.id),
        })
        .await;
    }

    async fn pay_later_repaid(&self, s: &yizhan_pay::paylater::Statement) {
        let days_late = s.days_late(s.paid_at_ms.unwrap_or(s.due_at_ms));
        let outcome = if days_late > 0 { yizhan_credit::Outcome::Late } else { yizhan_credit::Outcome::OnTime };
        self.record(yizhan_credit::NewRecord {
            user_id: s.user_id.clone(),
            kind: yizhan_credit::Kind::PayLater,
            outcome,
            days_late,
            occurred_at_ms: s.paid_at_ms.unwrap_or(s.due_at_ms),
            source: "wallet".into(),
            source_org_id: None,
            source_ref: format!("paylater:{}", s.id),
        })
        .await;
    }

    async fn pay_later_overdue(&self, s: &yizhan_pay::paylater::Statement, days_late: i64) {
        self.record(yizhan_credit::NewRecord {
            user_id: s.user_id.clone(),
            kind: yizhan_credit::Kind::PayLater,
            outcome: yizhan_credit::Outcome::Overdue,
            days_late,
            occurred_at_ms: s.due_at_ms,
            source: "wallet".into(),
            source_org_id: None,
            source_ref: format!("paylater:{}", s.id),
        })
        .await;
    }
}

impl BillsToCredit {
    async fn record(&self, r: yizhan_credit::NewRecord) {
        let user_id = r.user_id.clone();
        if let Err(e) = self.credit.record_event(r).await {
            tracing::warn!(%user_id, code = %e.code, error = %e.msg, "event not recorded for the credit score");
        }
    }
}

/// The wallet side of the credit room's pay-later line.
struct PayLaterOnPay {
    pay: Pay,
}

fn line_state(l: yizhan_pay::paylater::PayLaterLine, now_ms: i64) -> yizhan_credit::PayLaterState {
    yizhan_credit::PayLaterState {
        on: l.on,
        ledger_limit_fen: l.ledger_limit_fen,
        owed_fen: l.owed_fen,
        available_credit_fen: l.available_credit_fen,
        statements: l
            .statements
            .into_iter()
            .map(|s| yizhan_credit::PayLaterStatement {
                days_late: s.days_late(now_ms),
                id: s.id,
                period: s.period,
                amount_fen: s.amount_fen,
                due_at_ms: s.due_at_ms,
                status: s.status,
                paid_at_ms: s.paid_at_ms,
            })
            .collect(),
    }
}

#[async_trait::async_trait]
impl yizhan_credit::PayLaterWallet for PayLaterOnPay {
    async fn set_line(
        &self,
        user_id: &str,
        limit_fen: Option<i64>,
    ) -> yizhan_core::Result<yizhan_credit::PayLaterState> {
        let l = self.pay.pay_later_set(user_id, limit_fen).await?;
        Ok(line_state(l, self.pay.now_ms()))
    }

    async fn line(&self, user_id: &str) -> yizhan_core::Result<yizhan_credit::PayLaterState> {
        let l = self.pay.pay_later(user_id).await?;
        Ok(line_state(l, self.pay.now_ms()))
    }

    async fn repay(&self, user_id: &str, statement_id: &str) -> yizhan_core::Result<yizhan_credit::PayLaterState> {
        self.pay.pay_later_repay(user_id, statement_id, None).await?;
        self.line(user_id).await
    }
}
