#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use yizhan_audit::Audit;
use yizhan_core::testing::TestDb;
use yizhan_core::{Ctx, ManualClock};
use yizhan_identity::{Identity, IdentityConfig, Principal, SandboxIdentityVerifier};
use yizhan_notify::Notify;

pub struct World {
    pub t: TestDb,
    pub ctx: Ctx,
    pub clock: Arc<ManualClock>,
    pub audit: Audit,
    pub notify: Notify,
    pub id: Identity,
}

pub async fn world() -> World {
    world_with(IdentityConfig { fast_hashing_for_tests: true, ..Default::default() }).await
}

pub async fn world_with(config: IdentityConfig) -> World {
    let t = TestDb::new(&[&yizhan_identity::MIGRATIONS, &yizhan_audit::MIGRATIONS, &yizhan_notify::MIGRATIONS]).await;
    let (ctx, clock) = t.ctx();
    let audit = Audit::new(ctx.clone());
    let notify = Notify::new(ctx.clone(), None);
    let id = Identity::new(ctx.clone(), audit.clone(), notify.clone(), Arc::new(SandboxIdentityVerifier), config);
    World { t, ctx, clock, audit, notify, id }
}

pub const PASSWORD: &str = "correct horse battery";

impl World {
    /// Register and sign in; the principal as a request would see it.
    pub async fn person(&self, login: &str, name: &str) -> Principal {
        let user_id = self.id.register(login, PASSWORD, name).await.unwrap();
        let s = self.id.login(login, PASSWORD, "10.0.0.1").await.unwrap();
        assert_eq!(s.user_id, user_id);
        self.id.authenticate(&s.token).await.unwrap()
    }

    /// The identity room of a second server process on the same database.
    pub fn other_process(&self) -> Identity {
        Identity::new(
            self.ctx.clone(),
            self.audit.clone(),
            self.notify.clone(),
            Arc::new(SandboxIdentityVerifier),
            IdentityConfig { fast_hashing_for_tests: true, ..Default::default() },
        )
    }

    pub async fn admin(&self) -> Principal {
        let user_id = self.id.ensure_admin("admin@yizhan.example", PASSWORD, "Platform Admin").await.unwrap();
        let s = self.id.login("admin@yizhan.example", PASSWORD, "10.0.0.2").await.unwrap();
        let p = self.id.authenticate(&s.token).await.unwrap();
        assert!(p.is_admin && p.user_id == user_id);
        p
    }
}

/// A valid GB 11643 number, the check character computed here from the
/// standard (independently of the crate): weights 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2,
/// sum mod 11 indexes "10X98765432".
pub fn id_number(region: &str, birth: &str, sequence: &str) -> String {
    let first17 = format!("{region}{birth}{sequence}");
    assert_eq!(first17.len(), 17);
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.chars().zip(weights).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
    let check = "10X98765432".chars().nth((sum % 11) as usize).unwrap();
    format!("{first17}{check}")
}
