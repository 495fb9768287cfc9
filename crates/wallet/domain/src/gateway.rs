//! Where money enters and leaves the platform: a card or bank gateway. The
//! platform only talks to it through [`FundingGateway`]; [`SandboxGateway`] is
//! the one that ships, for development, demos and tests, and never moves real money.

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use yizhan_core::{Code, Error, Result};

/// What the gateway reports for a charge or payout that went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayOutcome {
    /// The gateway's own id of the operation, for reconciliation.
    pub gateway_ref: String,
    /// Our reference, echoed back.
    pub reference: String,
    pub amount_fen: i64,
}

/// An asynchronous message from the gateway (a webhook), after its signature was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per notification; the gateway resends with the same id.
    pub id: String,
    /// "charge.succeeded", "charge.failed", "payout.succeeded", "payout.failed".
    pub kind: String,
    /// Our reference of the charge or payout it is about.
    pub reference: String,
    pub amount_fen: i64,
    #[serde(default)]
    pub gateway_ref: String,
}

/// What the gateway knows of a payout, asked by its reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// The money left; the gateway's own id of the payout.
    Paid { gateway_ref: String },
    /// The payout was refused and will not happen.
    Failed,
    /// The gateway has no final answer (still in flight, or it never saw the reference).
    Unknown,
}

#[async_trait]
pub trait FundingGateway: Send + Sync {
    /// Short stable name; the platform's account for this gateway is `gateway:<name>`.
    fn name(&self) -> &'static str;

    /// Whether this gateway only pretends (no real money moves). Required of
    /// every gateway, so a new one cannot pass for real by omission; the app
    /// tells people and refuses such a gateway in production.
    fn is_sandbox(&self) -> bool;

    /// Take `amount_fen` from a card. `reference` is unique per operation: the same
    /// reference again returns the first outcome instead of charging twice.
    /// Errors: [`crate::codes::PAYMENT_DECLINED`], [`Code::GatewayTimeout`] (nothing was charged).
    async fn charge(&self, card: &str, amount_fen: i64, reference: &str) -> Result<GatewayOutcome>;

    /// Send `amount_fen` to a card or bank account; same reference rule and errors as `charge`.
    async fn payout(&self, destination: &str, amount_fen: i64, reference: &str) -> Result<GatewayOutcome>;

    /// What became of the payout sent with `reference` (after a timeout or a crash
    /// left its outcome unknown). An error means the gateway could not be asked.
    async fn payout_status(&self, reference: &str) -> Result<PayoutStatus>;

    /// Check a notification's signature and read it. A bad signature is [`Code::Forbidden`].
    fn verify_notification(&self, body: &[u8], signature: &str) -> Result<Notification>;
}

/// Test cards of the sandbox gateway.
pub mod sandbox_cards {
    /// Succeeds; also used when no card is given.
    pub const SUCCEEDS: &str = "4000000000000002";
    /// Declined by the issuer.
    pub const DECLINED: &str = "4000000000000069";
    /// The gateway does not answer in time; nothing is charged.
    pub const TIMES_OUT: &str = "4000000000000119";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxOperation {
    Charge,
    Payout,
}

/// One operation the sandbox accepted, for tests and the sandbox's own page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    pub operation: SandboxOperation,
    pub card: String,
    pub outcome: GatewayOutcome,
}

/// A gateway that pretends: cards from [`sandbox_cards`] decide the result, and
/// notifications are signed with HMAC-SHA256 under its own secret.
pub struct SandboxGateway {
    secret: Vec<u8>,
    done: Mutex<HashMap<String, SandboxRecord>>,
    /// Payouts that timed out: the bank has them but has not answered yet
    /// (tests decide with [`SandboxGateway::answer_late`]).
    unanswered: Mutex<HashMap<String, SandboxRecord>>,
    /// References of payouts refused for good.
    failed: Mutex<HashSet<String>>,
    seq: Mutex<u64>,
}

impl std::fmt::Debug for SandboxGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SandboxGateway(sandbox)")
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Whether a card number passes the Luhn check (as every real card number does).
pub fn luhn_ok(number: &str) -> bool {
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl SandboxGateway {
    /// `secret` signs the notifications it sends (derive it from the vault in production use).
    pub fn new(secret: impl Into<Vec<u8>>) -> SandboxGateway {
        SandboxGateway {
            secret: secret.into(),
            done: Mutex::new(HashMap::new()),
            unanswered: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashSet::new()),
            seq: Mutex::new(0),
        }
    }

    /// Signature of a notification body, as the sandbox would send it: lowercase hex HMAC-SHA256.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// A signed notification (body, signature), as the sandbox's webhook would deliver it.
    pub fn notification(&self, n: &Notification) -> Result<(Vec<u8>, String)> {
        let body = serde_json::to_vec(n).map_err(Error::internal)?;
        let sig = self.sign(&body);
        Ok((body, sig))
    }

    /// Every operation that went through, in no particular order.
    pub fn records(&self) -> Vec<SandboxRecord> {
        self.done.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// The bank's late answer to a payout that timed out: it went through
    /// (`paid`) or it was refused. Returns the outcome of a paid one; `None` when
    /// no such payout is waiting for an answer.
    pub fn answer_late(&self, reference: &str, paid: bool) -> Option<GatewayOutcome> {
        let waiting = self.unanswered.lock().unwrap_or_else(|e| e.into_inner()).remove(reference)?;
        if !paid {
            self.failed.lock().unwrap_or_else(|e| e.into_inner()).insert(reference.to_string());
            return None;
        }
        let outcome = GatewayOutcome {
            gateway_ref: self.next_ref(&SandboxOperation::Payout),
            reference: reference.to_string(),
            amount_fen: waiting.outcome.amount_fen,
        };
        let record = SandboxRecord { outcome: outcome.clone(), ..waiting };
        self.done.lock().unwrap_or_else(|e| e.into_inner()).insert(reference.to_string(), record);
        Some(outcome)
    }

    fn next_ref(&self, op: &SandboxOperation) -> String {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        let prefix = match op {
            SandboxOperation::Charge => "sandbox_ch",
            SandboxOperation::Payout => "sandbox_po",
        };
        format!("{prefix}_{:08}", *seq)
    }

    fn run(&self, op: SandboxOperation, card: &str, amount_fen: i64, reference: &str) -> Result<GatewayOutcome> {
        let card = if card.trim().is_empty() { sandbox_cards::SUCCEEDS } else { card.trim() };
        if !luhn_ok(card) {
            return Err(Error::field("card", "pay.gateway.card_invalid"));
        }
        if amount_fen <= 0 {
            return Err(Error::field("amount_fen", "ledger.amount.not_positive"));
        }
        if reference.is_empty() || reference.len() > 200 {
            return Err(Error::field("reference", "pay.gateway.reference_len"));
        }
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = done.get(reference) {
            if r.operation != op || r.outcome.amount_fen != amount_fen || r.card != card {
                return Err(Error::new(Code::Conflict, "pay.gateway.reference_reused"));
            }
            return Ok(r.outcome.clone());
        }
        // Only payouts are remembered when they fail or hang: a payout's reference
        // is asked about later, a charge's is simply tried again.
        let payout = op == SandboxOperation::Payout;
        if payout && self.failed.lock().unwrap_or_else(|e| e.into_inner()).contains(reference) {
            return Err(Error::new(crate::codes::PAYMENT_DECLINED, "pay.gateway.declined"));
        }
        match card {
            sandbox_cards::DECLINED => {
                if payout {
                    self.failed.lock().unwrap_or_else(|e| e.into_inner()).insert(reference.to_string());
                }
                return Err(Error::new(crate::codes::PAYMENT_DECLINED, "pay.gateway.declined"));
            }
            sandbox_cards::TIMES_OUT => {
                if payout {
                    let waiting = SandboxRecord {
                        operation: op,
                        card: card.to_string(),
                        outcome: GatewayOutcome {
                            gateway_ref: String::new(),
                            reference: reference.to_string(),
                            amount_fen,
                        },
                    };
                    self.unanswered.lock().unwrap_or_else(|e| e.into_inner()).insert(reference.to_string(), waiting);
                }
                return Err(Error::new(Code::GatewayTimeout, "pay.gateway.timeout"));
            }
            _ => {}
        }
        let outcome = GatewayOutcome { gateway_ref: self.next_ref(&op), reference: reference.to_string(), amount_fen };
        done.insert(
            reference.to_string(),
            SandboxRecord { operation: op, card: card.to_string(), outcome: outcome.clone() },
        );
        Ok(outcome)
    }
}

#[async_trait]
impl FundingGateway for SandboxGateway {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn is_sandbox(&self) -> bool {
        true
    }

    async fn charge(&self, card: &str, amount_fen: i64, reference: &str) -> Result<GatewayOutcome> {
        self.run(SandboxOperation::Charge, card, amount_fen, reference)
    }

    async fn payout(&self, destination: &str, amount_fen: i64, reference: &str) -> Result<GatewayOutcome> {
        self.run(SandboxOperation::Payout, destination, amount_fen, reference)
    }

    async fn payout_status(&self, reference: &str) -> Result<PayoutStatus> {
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = done.get(reference).filter(|r| r.operation == SandboxOperation::Payout) {
            return Ok(PayoutStatus::Paid { gateway_ref: r.outcome.gateway_ref.clone() });
        }
        drop(done);
        if self.failed.lock().unwrap_or_else(|e| e.into_inner()).contains(reference) {
            return Ok(PayoutStatus::Failed);
        }
        Ok(PayoutStatus::Unknown)
    }

    fn verify_notification(&self, body: &[u8], signature: &str) -> Result<Notification> {
        let sig = signature.trim();
        let sig = sig.strip_prefix("sha256=").unwrap_or(sig);
        let given = hex::decode(sig).map_err(|_| Error::forbidden("pay.gateway.signature_not_hex"))?;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!());
        mac.update(body);
        mac.verify_slice(&given).map_err(|_| Error::forbidden("pay.gateway.signature_mismatch"))?;
        let n: Notification = serde_json::from_slice(body).map_err(|e| Error {
            source: Some(e.into()),
            ..Error::new(Code::MalformedJson, "pay.gateway.bad_notification")
        })?;
        if n.id.is_empty() || n.id.len() > 100 {
            return Err(Error::field("id", "pay.gateway.notification_id"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_pass_luhn() {
        assert!(luhn_ok(sandbox_cards::SUCCEEDS));
        assert!(luhn_ok(sandbox_cards::DECLINED));
        assert!(luhn_ok(sandbox_cards::TIMES_OUT));
        assert!(luhn_ok("4111111111111111"));
        assert!(!luhn_ok("4111111111111112"));
        assert!(!luhn_ok("41111111111a1111"));
    }

    #[tokio::test]
    async fn cards_decide_the_outcome() {
        let g = SandboxGateway::new(b"k".to_vec());
        assert!(g.name().contains("sandbox"));
        assert!(g.is_sandbox());
        let ok = g.charge(sandbox_cards::SUCCEEDS, 500, "r1").await.unwrap();
        assert_eq!(ok.amount_fen, 500);
        assert!(ok.gateway_ref.starts_with("sandbox_"));
        let default = g.charge("", 300, "r2").await.unwrap();
        assert_eq!(default.amount_fen, 300);
        assert_eq!(
            g.charge(sandbox_cards::DECLINED, 500, "r3").await.unwrap_err().code,
            crate::codes::PAYMENT_DECLINED
        );
        let t = g.charge(sandbox_cards::TIMES_OUT, 500, "r4").await.unwrap_err();
        assert_eq!(t.code, Code::GatewayTimeout);
        assert_eq!(g.payout(sandbox_cards::TIMES_OUT, 500, "r5").await.unwrap_err().code, Code::GatewayTimeout);
        assert_eq!(g.charge("4111111111111112", 500, "r6").await.unwrap_err().code, Code::ValidationFailed);
        // Only the two successful charges happened.
        assert_eq!(g.records().len(), 2);
    }

    #[tokio::test]
    async fn a_repeated_reference_charges_once() {
        let g = SandboxGateway::new(b"k".to_vec());
        let a = g.charge(sandbox_cards::SUCCEEDS, 500, "same").await.unwrap();
        let b = g.charge(sandbox_cards::SUCCEEDS, 500, "same").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(g.records().len(), 1);
        assert_eq!(g.charge(sandbox_cards::SUCCEEDS, 600, "same").await.unwrap_err().code, Code::Conflict);
        assert_eq!(g.payout(sandbox_cards::SUCCEEDS, 500, "same").await.unwrap_err().code, Code::Conflict);
    }

    #[tokio::test]
    async fn payouts_are_asked_about_by_reference() {
        let g = SandboxGateway::new(b"k".to_vec());
        let paid = g.payout(sandbox_cards::SUCCEEDS, 500, "p1").await.unwrap();
        assert_eq!(g.payout_status("p1").await.unwrap(), PayoutStatus::Paid { gateway_ref: paid.gateway_ref });
        g.payout(sandbox_cards::DECLINED, 500, "p2").await.unwrap_err();
        assert_eq!(g.payout_status("p2").await.unwrap(), PayoutStatus::Failed);
        assert_eq!(g.payout_status("never").await.unwrap(), PayoutStatus::Unknown);
        g.charge(sandbox_cards::SUCCEEDS, 500, "c1").await.unwrap();
        assert_eq!(g.payout_status("c1").await.unwrap(), PayoutStatus::Unknown);
        // A timed-out payout is unknown until the bank answers; then a retry gets that answer.
        g.payout(sandbox_cards::TIMES_OUT, 700, "p3").await.unwrap_err();
        g.payout(sandbox_cards::TIMES_OUT, 700, "p4").await.unwrap_err();
        assert_eq!(g.payout_status("p3").await.unwrap(), PayoutStatus::Unknown);
        let late = g.answer_late("p3", true).unwrap();
        assert_eq!(late.amount_fen, 700);
        assert_eq!(g.payout_status("p3").await.unwrap(), PayoutStatus::Paid { gateway_ref: late.gateway_ref.clone() });
        assert_eq!(g.payout(sandbox_cards::TIMES_OUT, 700, "p3").await.unwrap(), late);
        assert!(g.answer_late("p4", false).is_none());
        assert_eq!(g.payout_status("p4").await.unwrap(), PayoutStatus::Failed);
        assert_eq!(
            g.payout(sandbox_cards::SUCCEEDS, 700, "p4").await.unwrap_err().code,
            crate::codes::PAYMENT_DECLINED
        );
        assert!(g.answer_late("p4", true).is_none());
    }

    #[test]
    fn notifications_are_signed() {
        let g = SandboxGateway::new(b"secret".to_vec());
        let n = Notification {
            id: "n1".into(),
            kind: "charge.succeeded".into(),
            reference: "r".into(),
            amount_fen: 5,
            gateway_ref: "sandbox_ch_1".into(),
        };
        let (body, sig) = g.notification(&n).unwrap();
        assert_eq!(g.verify_notification(&body, &sig).unwrap(), n);
        assert_eq!(g.verify_notification(&body, &format!("sha256={sig}")).unwrap(), n);
        let mut forged = body.clone();
        let pos = forged.iter().position(|b| *b == b'5').unwrap();
        forged[pos] = b'9';
        assert_eq!(g.verify_notification(&forged, &sig).unwrap_err().code, Code::Forbidden);
        assert_eq!(g.verify_notification(&body, "zz").unwrap_err().code, Code::Forbidden);
        let other = SandboxGateway::new(b"other".to_vec());
        assert_eq!(other.verify_notification(&body, &sig).unwrap_err().code, Code::Forbidden);
    }
}
