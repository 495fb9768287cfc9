//! A shop's side of being paid: the money that reached the organisation's
//! account today (China day), newest first, with the day's total, for the
//! receiving page its staff keep open at the counter.

use crate::limits::next_china_midnight;
use crate::{org_account, Pay};
use yizhan_core::time::DAY_MS;
use yizhan_core::Result;
use yizhan_identity::{Principal, Role};

/// How many of today's payments the receiving page lists.
pub const RECEIVED_LIST_MAX: i64 = 50;

/// One payment that reached the organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub transfer_id: String,
    pub amount_fen: i64,
    /// "paycode", "qr", "bill", …
    pub category: String,
    /// The payer's name with all but its last character hidden (a person), or
    /// the organisation's name.
    pub from_name: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedToday {
    /// Every payment in today, also those beyond the list.
    pub total_fen: i64,
    pub count: i64,
    /// The latest [`RECEIVED_LIST_MAX`] of them.
    pub items: Vec<Received>,
    /// When today began (00:00 China time).
    pub day_start_ms: i64,
}

impl Pay {
    /// What the organisation received today (its staff).
    pub async fn received_today(&self, actor: &Principal, org_id: &str) -> Result<ReceivedToday> {
        self.identity().require_staff(actor, org_id, Role::Operator).await?;
        self.ensure_org(org_id).await?;
        let account = org_account(org_id);
        let now = self.ctx().now_ms();
        let day_start_ms = next_china_midnight(now) - DAY_MS;
        let sums = self.ledger().sum_by_category(&account, day_start_ms, now + 1).await?;
        let total_fen = sums.iter().map(|s| s.credit_fen).sum();
        let page = self.ledger().history(&account, None, RECEIVED_LIST_MAX).await?;
        let mut items = Vec::new();
        let mut count = 0;
        for h in page.items {
            if h.transfer.created_at_ms < day_start_ms {
                break;
            }
            if !matches!(h.direction, yizhan_ledger::Direction::In) || h.posted_change_fen <= 0 {
                continue;
            }
            count += 1;
            let from_name = self.payer_name(&h.counterparty).await;
            items.push(Received {
                transfer_id: h.transfer.id,
                amount_fen: h.transfer.amount_fen,
                category: h.transfer.category,
                from_name,
                at_ms: h.transfer.created_at_ms,
            });
        }
        // An organisation's account is only paid into; a category that also paid
        // out (none today) would count its outgoing rows, so the list's count is the floor.
        let counted: i64 = sums.iter().filter(|s| s.debit_fen == 0).map(|s| s.transfers).sum();
        let count = counted.max(count);
        Ok(ReceivedToday { total_fen, count, items, day_start_ms })
    }

    async fn payer_name(&self, account: &str) -> String {
        if let Some(user) = account.strip_prefix("wallet:") {
            return self.identity().user_ref(user).await.map(|u| u.name_masked()).unwrap_or_else(|_| "—".into());
        }
        if let Some(org) = account.strip_prefix("org:") {
            return self.identity().org(org).await.map(|o| o.name).unwrap_or_else(|_| "—".into());
        }
        "—".into()
    }
}
