//! What the payment services take and give back.

use crate::redpacket::SplitMode;
use serde::{Deserialize, Serialize};
use yizhan_core::{Error, Result};

/// A person's wallet, in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wallet {
    pub user_id: String,
    pub account_id: String,
    /// Posted balance.
    pub balance_fen: i64,
    /// What can be spent now: balance less money on hold.
    pub available_fen: i64,
    /// Money on hold (withdrawals in flight).
    pub pending_fen: i64,
    pub currency: String,
}

/// Who is paid: a person's wallet or an organisation's account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Payee {
    User(String),
    Org(String),
}

impl Payee {
    pub fn account_id(&self) -> String {
        match self {
            Payee::User(id) => crate::wallet_account(id),
            Payee::Org(id) => crate::org_account(id),
        }
    }

    pub fn kind_str(&self) -> &'static str {
        match self {
            Payee::User(_) => "user",
            Payee::Org(_) => "org",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Payee::User(id) | Payee::Org(id) => id,
        }
    }
}

/// Proof that money moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub transfer_id: String,
    pub amount_fen: i64,
    pub category: String,
    pub payee: Payee,
    pub payee_name: String,
    pub at_ms: i64,
}

/// A top-up or withdrawal through the funding gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayReceipt {
    pub transfer_id: String,
    pub amount_fen: i64,
    pub gateway: String,
    pub gateway_ref: String,
    pub at_ms: i64,
}

/// What the payer sees after scanning, before paying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QrPreview {
    pub payee: Payee,
    /// From our records, not from the code.
    pub payee_name: String,
    /// A fixed-amount code must be paid with exactly this.
    pub amount_fen: Option<i64>,
}

/// A customer's one-time pay code. Shown once; only its keyed hash is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayCode {
    /// An opaque id for its owner to ask how it was used (the digits are a
    /// bearer credential and never go in a URL).
    pub id: String,
    /// 18 digits.
    pub code: String,
    pub expires_at_ms: i64,
}

/// A red packet to make.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RedPacketSpec {
    /// A packet for one person (their login or user id); `count` must then be 1.
    pub to_user: Option<String>,
    /// Shares of a group packet.
    pub count: i64,
    pub total_fen: i64,
    pub mode: SplitMode,
    pub greeting: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedPacketClaim {
    pub user_id: String,
    pub amount_fen: i64,
    pub claimed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedPacket {
    pub id: String,
    pub sender_user_id: String,
    pub to_user_id: Option<String>,
    pub mode: SplitMode,
    pub count: i64,
    pub total_fen: i64,
    pub greeting: String,
    /// funding / open / failed / refunded
    pub status: String,
    pub claimed_count: i64,
    pub claimed_fen: i64,
    pub refunded_fen: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub claims: Vec<RedPacketClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimResult {
    pub packet_id: String,
    pub amount_fen: i64,
    pub transfer_id: String,
}

/// What one run of the expiry sweep returned.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RefundReport {
    pub packets: u64,
    pub refunded_fen: i64,
    /// Items that failed this time (logged; the next sweep tries them again).
    pub failures: u64,
}

impl RefundReport {
    pub(crate) fn failed(&mut self, packet_id: &str, what: &str, e: &Error) {
        self.failures += 1;
        tracing::warn!(packet = %packet_id, code = %e.code, error = %e.msg, "{what} failed; the next sweep tries again");
    }
}

/// What a bill is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillKind {
    Fine,
    Water,
    Electricity,
    Gas,
    Heating,
    Medical,
    Fee,
}

impl BillKind {
    pub const ALL: &'static [BillKind] = &[
        BillKind::Fine,
        BillKind::Water,
        BillKind::Electricity,
        BillKind::Gas,
        BillKind::Heating,
        BillKind::Medical,
        BillKind::Fee,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BillKind::Fine => "fine",
            BillKind::Water => "water",
            BillKind::Electricity => "electricity",
            BillKind::Gas => "gas",
            BillKind::Heating => "heating",
            BillKind::Medical => "medical",
            BillKind::Fee => "fee",
        }
    }

    pub fn parse(s: &str) -> Result<BillKind> {
        BillKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::field("kind", "pay.bill.kind_unknown"))
    }
}

/// Whom a bill is for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum BillTo {
    /// A resident identity number; reaches only its verified holder (through
    /// the identity room's verifier or at a counter).
    IdNumber(String),
    /// A car plate bound with proof in the identity room
    /// ([`yizhan_identity::Identity::bind_vehicle`]), e.g. "浙A12345".
    Plate(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BillSpec {
    pub to: BillTo,
    pub kind: BillKind,
    pub amount_fen: i64,
    pub due_at_ms: i64,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    Unpaid,
    Paid,
}

impl BillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BillStatus::Unpaid => "unpaid",
            BillStatus::Paid => "paid",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bill {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub user_id: String,
    pub kind: BillKind,
    pub amount_fen: i64,
    pub description: String,
    pub plate: Option<String>,
    pub due_at_ms: i64,
    pub issued_at_ms: i64,
    pub status: BillStatus,
    pub paid_at_ms: Option<i64>,
    pub transfer_id: Option<String>,
    /// Unpaid past its due time, or paid after it (payment history for the credit score).
    pub late: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillReceipt {
    pub bill_id: String,
    pub transfer_id: String,
    pub amount_fen: i64,
    pub paid_at_ms: i64,
    pub payee_org_id: String,
    pub payee_org_name: String,
    pub late: bool,
}

/// Money in and out of a wallet in one category over a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementLine {
    pub category: String,
    pub in_fen: i64,
    pub out_fen: i64,
    pub transfers: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub user_id: String,
    pub year: i64,
    pub month: u32,
    pub from_ms: i64,
    pub to_ms: i64,
    pub lines: Vec<StatementLine>,
    pub total_in_fen: i64,
    pub total_out_fen: i64,
}

/// One line of a wallet's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryLine {
    pub transfer_id: String,
    pub seq: i64,
    /// posted, pending, post_pending, void_pending, expire_pending
    pub kind: String,
    /// "in" or "out"
    pub direction: String,
    pub amount_fen: i64,
    /// The change of the posted balance (0 for holds and releases).
    pub posted_change_fen: i64,
    pub category: String,
    /// The payer's own note (transfers and QR payments); empty otherwise.
    /// What the platform writes into the ledger's memo is never shown.
    pub memo: String,
    pub counterparty_account: String,
    /// A name for programs: the person's or organisation's name, the
    /// gateway's name for a card, empty for the platform's own accounts.
    pub counterparty_name: String,
    /// Who or what is on the other side, for a page to put in words.
    pub counterpart: Counterpart,
    /// The kind of a paid bill (category "bill").
    pub bill_kind: Option<BillKind>,
    /// A hold's settlement (post, void or expiry): the hold it settles.
    pub pending_id: Option<String>,
    pub at_ms: i64,
}

/// The other side of a history line, as data: the web side puts it in words
/// in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Counterpart {
    /// A person, by display name ("—" when they cannot be found).
    Person(String),
    /// An organisation, by name.
    Org(String),
    /// A bank card through this funding gateway ("sandbox").
    Card(String),
    /// The red packet escrow: money into or out of a red packet.
    RedPacket,
    /// Another of the platform's own accounts.
    Platform,
}

impl Counterpart {
    /// The name for programs (see [`HistoryLine::counterparty_name`]).
    pub fn name(&self) -> &str {
        match self {
            Counterpart::Person(n) | Counterpart::Org(n) | Counterpart::Card(n) => n,
            Counterpart::RedPacket | Counterpart::Platform => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryPage {
    pub items: Vec<HistoryLine>,
    pub next_cursor: Option<i64>,
}

/// What the platform answered to a gateway notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationAck {
    pub id: String,
    /// The notification was seen before; nothing was done this time.
    pub duplicate: bool,
    /// What was done with it (first time) or had been done (replay).
    pub outcome: String,
}
