//! A person's wallet history: pages filtered by type and by month, and one
//! transfer in full (what, when, who, amount, fee, how it stands), only to a
//! person it touches.

use crate::{category, wallet_account, Counterpart, HistoryLine, HistoryPage, Pay, HISTORY_PAGE};
use serde::Serialize;
use yizhan_core::{Code, Error, Msg, Result};
use yizhan_ledger::{HistoryFilter, HistoryItem, HoldState, TransferKind};

/// The types a history can be filtered by (a red packet's refund counts as a red packet).
pub const HISTORY_TYPES: &[&str] = &[
    category::TOPUP,
    category::WITHDRAWAL,
    category::P2P,
    category::QR,
    category::PAYCODE,
    category::RED_PACKET,
    category::BILL,
];

/// Which lines a history page holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// One of [`HISTORY_TYPES`].
    pub kind: Option<String>,
    /// A calendar month, China time.
    pub month: Option<(i64, u32)>,
    /// Lines per page (1..=[`yizhan_ledger::MAX_PAGE`]); [`HISTORY_PAGE`] when absent.
    pub limit: Option<i64>,
}

impl HistoryQuery {
    fn filter(&self) -> Result<HistoryFilter> {
        let categories = match self.kind.as_deref() {
            None => Vec::new(),
            Some(k) if k == category::RED_PACKET => {
                vec![category::RED_PACKET.to_string(), category::RED_PACKET_REFUND.to_string()]
            }
            Some(k) if HISTORY_TYPES.contains(&k) => vec![k.to_string()],
            Some(_) => return Err(Error::field("type", "pay.history.type_unknown")),
        };
        let between = match self.month {
            None => None,
            Some((y, m)) => {
                if !(1..=12).contains(&m) {
                    return Err(Error::field("month", "pay.month_range"));
                }
                if !(2000..=2200).contains(&y) {
                    return Err(Error::field_msg("year", Msg::new("pay.year_range").int("min", 2000).int("max", 2200)));
                }
                Some(yizhan_core::time::month_range_cst(y, m))
            }
        };
        Ok(HistoryFilter { categories, between })
    }
}

/// How a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// The money moved.
    Done,
    /// Held (a withdrawal waiting for the bank's answer).
    OnHold,
    /// A hold given back: no money moved.
    Released,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Done => "done",
            EntryStatus::OnHold => "on_hold",
            EntryStatus::Released => "released",
        }
    }
}

/// One transfer of a person's history, in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub line: HistoryLine,
    /// A person on the other side with all but the last character of the name hidden.
    pub counterpart_masked: Counterpart,
    pub fee_fen: i64,
    pub status: EntryStatus,
}

impl Pay {
    /// The wallet's transfers, newest first, with the other side named; of
    /// one type or one month when asked.
    pub async fn history_where(&self, user_id: &str, cursor: Option<i64>, q: &HistoryQuery) -> Result<HistoryPage> {
        let filter = q.filter()?;
        let account = self.ensure_wallet(user_id).await?;
        let limit = q.limit.unwrap_or(HISTORY_PAGE);
        let page = self.ledger().history_filtered(&account, cursor, limit, &filter).await?;
        let items = self.lines(page.items).await?;
        Ok(HistoryPage { items, next_cursor: page.next_cursor })
    }

    /// One transfer of the person's wallet; `NotFound` when it is not theirs.
    pub async fn history_entry(&self, user_id: &str, transfer_id: &str) -> Result<HistoryEntry> {
        let gone = || Error::new(Code::NotFound, "pay.history.no_such_transfer");
        let account = wallet_account(user_id);
        let t = match self.ledger().get_transfer(transfer_id).await {
            Ok(t) => t,
            Err(e) if e.code == Code::NotFound => return Err(gone()),
            Err(e) => return Err(e),
        };
        if t.debit_account_id != account && t.credit_account_id != account {
            return Err(gone());
        }
        let status = match t.kind {
            TransferKind::Posted | TransferKind::PostPending => EntryStatus::Done,
            TransferKind::VoidPending | TransferKind::ExpirePending => EntryStatus::Released,
            TransferKind::Pending => match self.ledger().hold(&t.id).await?.state {
                HoldState::Pending => EntryStatus::OnHold,
                HoldState::Posted => EntryStatus::Done,
                HoldState::Voided | HoldState::Expired => EntryStatus::Released,
            },
        };
        let line = self.lines(vec![HistoryItem::of(&account, t)]).await?.pop().ok_or_else(gone)?;
        let counterpart_masked = match &line.counterpart {
            Counterpart::Person(n) => Counterpart::Person(yizhan_identity::mask_name(n)),
            c => c.clone(),
        };
        Ok(HistoryEntry { line, counterpart_masked, fee_fen: 0, status })
    }

    /// Ledger rows as history lines: the other side named, the payer's note
    /// kept only where the payer wrote it, a paid bill's kind.
    async fn lines(&self, rows: Vec<HistoryItem>) -> Result<Vec<HistoryLine>> {
        let mut names: std::collections::HashMap<String, Counterpart> = std::collections::HashMap::new();
        let bill_ids: Vec<&str> =
            rows.iter().filter(|h| h.transfer.category == category::BILL).map(|h| h.transfer.id.as_str()).collect();
        let bill_kinds = self.bill_kinds_of(&bill_ids).await?;
        let mut items = Vec::with_capacity(rows.len());
        for h in rows {
            let counterpart = match names.get(&h.counterparty) {
                Some(n) => n.clone(),
                None => {
                    let n = self.counterpart(&h.counterparty).await;
                    names.insert(h.counterparty.clone(), n.clone());
                    n
                }
            };
            let memo = match h.transfer.category.as_str() {
                category::P2P | category::QR => h.transfer.memo,
                _ => String::new(),
            };
            let bill_kind = bill_kinds.get(&h.transfer.id).copied();
            items.push(HistoryLine {
                transfer_id: h.transfer.id,
                seq: h.transfer.seq,
                kind: h.transfer.kind.as_str().to_string(),
                direction: match h.direction {
                    yizhan_ledger::Direction::In => "in".into(),
                    yizhan_ledger::Direction::Out => "out".into(),
                },
                amount_fen: h.transfer.amount_fen,
                posted_change_fen: h.posted_change_fen,
                bill_kind,
                category: h.transfer.category,
                memo,
                counterparty_account: h.counterparty,
                counterparty_name: counterpart.name().to_string(),
                counterpart,
                pending_id: h.transfer.pending_id,
                at_ms: h.transfer.created_at_ms,
            });
        }
        Ok(items)
    }
}
