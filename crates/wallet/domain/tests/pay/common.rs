#![allow(dead_code)]

use std::sync::Arc;
use yizhan_audit::Audit;
use yizhan_core::testing::TestDb;
use yizhan_core::{Code, Ctx, ManualClock};
use yizhan_identity::types::id_check_char;
use yizhan_identity::{Identity, IdentityConfig, OrgKind, Principal, Role};
use yizhan_ledger::Ledger;
use yizhan_notify::Notify;
use yizhan_pay::{Pay, SandboxGateway};

pub const PASSWORD: &str = "correct horse battery";

pub struct Env {
    pub pay: Pay,
    pub identity: Identity,
    pub ledger: Ledger,
    pub audit: Audit,
    pub notify: Notify,
    pub gateway: Arc<SandboxGateway>,
    pub ctx: Ctx,
    pub clock: Arc<ManualClock>,
    pub admin: Principal,
    pub city_id: String,
    pub t: TestDb,
}

pub async fn env() -> Env {
    let t = TestDb::new(&[
        &yizhan_audit::MIGRATIONS,
        &yizhan_notify::MIGRATIONS,
        &yizhan_identity::MIGRATIONS,
        &yizhan_ledger::MIGRATIONS,
        &yizhan_pay::MIGRATIONS,
        &yizhan_pay::paylater::MIGRATIONS,
    ])
    .await;
    let (ctx, clock) = t.ctx();
    let audit = Audit::new(ctx.clone());
    let notify = Notify::new(ctx.clone(), None);
    let identity = Identity::new(
        ctx.clone(),
        audit.clone(),
        notify.clone(),
        Arc::new(yizhan_identity::SandboxIdentityVerifier),
        IdentityConfig { fast_hashing_for_tests: true, ..Default::default() },
    );
    let ledger = Ledger::start(ctx.clone());
    let gateway = Arc::new(SandboxGateway::new(b"sandbox-test-secret".to_vec()));
    let pay = Pay::new(ctx.clone(), ledger.clone(), identity.clone(), audit.clone(), notify.clone(), gateway.clone());
    pay.open_system_accounts().await.unwrap();
    let admin_id = identity.ensure_admin("admin@yizhan.test", PASSWORD, "Admin").await.unwrap();
    let admin = Principal { user_id: admin_id, name: "Admin".into(), is_admin: true };
    let city = identity.create_city(&admin, "Hangzhou", vec![]).await.unwrap();
    Env { pay, identity, ledger, audit, notify, gateway, ctx, clock, admin, city_id: city.id, t }
}

/// A valid GB 11643 number for a sequence number.
pub fn id_number(n: u32) -> String {
    let first17 = format!("330106199001{:02}{:03}", (n % 28) + 1, n % 1000);
    format!("{first17}{}", id_check_char(&first17).unwrap())
}

impl Env {
    /// A registered person; returns the user id.
    pub async fn user(&self, login: &str, name: &str) -> String {
        self.identity.register(login, PASSWORD, name).await.unwrap()
    }

    pub fn principal(&self, user_id: &str, name: &str) -> Principal {
        Principal { user_id: user_id.into(), name: name.into(), is_admin: false }
    }

    /// A person with money in the wallet.
    pub async fn funded_user(&self, login: &str, name: &str, fen: i64) -> String {
        let id = self.user(login, name).await;
        if fen > 0 {
            self.pay.topup(&id, fen, None, &format!("seed-{login}")).await.unwrap();
        }
        id
    }

    /// A person whose real name is verified (level 1, so the limits of an
    /// unverified account do not apply), with money in the wallet.
    pub async fn verified_user(&self, login: &str, name: &str, fen: i64) -> String {
        let id = self.user(login, name).await;
        let n = NUMBERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.identity.verify_real_name(&id, "居民", &id_number(n)).await.unwrap();
        if fen > 0 {
            self.pay.topup(&id, fen, None, &format!("seed-{login}")).await.unwrap();
        }
        id
    }

    pub async fn org(&self, kind: OrgKind, name: &str) -> String {
        self.identity.create_org(&self.admin, &self.city_id, kind, name).await.unwrap().id
    }

    /// A staff member of an organisation.
    pub async fn staff(&self, org_id: &str, login: &str, name: &str) -> Principal {
        let id = self.user(login, name).await;
        self.identity.add_member(&self.admin, org_id, &id, Role::Operator).await.unwrap();
        self.principal(&id, name)
    }

    pub async fn balance(&self, user_id: &str) -> i64 {
        self.pay.wallet(user_id).await.unwrap().balance_fen
    }

    pub async fn available(&self, user_id: &str) -> i64 {
        self.pay.wallet(user_id).await.unwrap().available_fen
    }

    pub async fn org_balance(&self, org_id: &str) -> i64 {
        match self.ledger.balance(&yizhan_pay::org_account(org_id)).await {
            Ok(b) => b.posted_fen,
            Err(e) if e.code == Code::NotFound => 0,
            Err(e) => panic!("{e}"),
        }
    }

    pub async fn transfers(&self) -> u64 {
        self.ledger.check().await.unwrap().transfers
    }

    /// The ledger's own consistency check, and red packet escrow matching its shares.
    pub async fn assert_clean(&self) {
        let r = self.ledger.check().await.unwrap();
        assert!(r.is_clean(), "ledger check: {:#?}", r.mismatches);
        assert_eq!(r.sum_posted_fen, 0);
        let (escrow, owed) = self.pay.escrow_check().await.unwrap();
        assert_eq!(escrow, owed, "escrow holds {escrow}, open shares add up to {owed}");
    }
}

pub fn code_of<T: std::fmt::Debug>(r: yizhan_core::Result<T>) -> Code {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code,
    }
}

/// Identity numbers for [`Env::verified_user`], apart from those tests choose.
static NUMBERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(100);

static KEYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A new idempotency key.
pub fn key() -> String {
    format!("k-{}", KEYS.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}
