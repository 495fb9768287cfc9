use crate::metrics::Metrics;
use std::ops::Deref;
use std::sync::Arc;
use yizhan_audit::Audit;
use yizhan_core::Ctx;
use yizhan_idempotency::Idempotency;
use yizhan_identity::Identity;
use yizhan_ledger::Ledger;
use yizhan_notify::Notify;
use yizhan_pay::Pay;

/// Settings of the web adapter.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Mark cookies `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self { secure_cookies: false, body_limit_bytes: 64 * 1024 }
    }
}

/// Everything a handler may use: the domain services, nothing else.
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
