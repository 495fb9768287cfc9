//! A person's part of the platform's money records, for their data export and
//! for account deletion. Money records are kept (the law requires payment
//! records). Car plates live in the identity room, which erases them.

use crate::Pay;
use serde_json::json;
use yizhan_core::{Code, Error, Msg, Result};

/// A red packet a person sent, for their data export.
#[derive(sqlx::FromRow)]
struct SentPacketRow {
    id: String,
    total_fen: i64,
    share_count: i64,
    mode: String,
    status: String,
    created_at_ms: i64,
}

/// A share a person opened, for their data export.
#[derive(sqlx::FromRow)]
struct ClaimedShareRow {
    packet_id: String,
    amount_fen: i64,
    claimed_at_ms: i64,
}

/// History pages the export reads at most (a bound on every loop).
const EXPORT_PAGES_MAX: usize = 10_000;

impl Pay {
    /// Everything the payments domain holds about a person, as JSON.
    pub async fn export(&self, user_id: &str) -> Result<serde_json::Value> {
        let wallet = self.wallet(user_id).await?;
        let mut transactions = Vec::new();
        let mut cursor = None;
        for _ in 0..EXPORT_PAGES_MAX {
            let page = self.history(user_id, cursor).await?;
            transactions.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let packets_sent: Vec<SentPacketRow> = sqlx::query_as(
            "SELECT id, total_fen, share_count, mode, status, created_at_ms FROM red_packets \
             WHERE sender_user_id = $1 ORDER BY created_at_ms",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let shares_claimed: Vec<ClaimedShareRow> = sqlx::query_as(
            "SELECT packet_id, amount_fen, claimed_at_ms FROM red_packet_shares \
             WHERE claimed_by = $1 ORDER BY claimed_at_ms",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        Ok(json!({
            "wallet": wallet,
            "transactions": transactions,
            "bills": self.bills(user_id).await?,
            "red_packets_sent": packets_sent.into_iter().map(|p| json!({
                "id": p.id, "total_fen": p.total_fen, "shares": p.share_count, "mode": p.mode,
                "status": p.status, "created_at_ms": p.created_at_ms,
            })).collect::<Vec<_>>(),
            "red_packet_shares_claimed": shares_claimed.into_iter().map(|s| json!({
                "packet_id": s.packet_id, "amount_fen": s.amount_fen, "claimed_at_ms": s.claimed_at_ms,
            })).collect::<Vec<_>>(),
        }))
    }

    /// Refuse deletion while the person still has money or money on hold in
    /// their wallet: it must be withdrawn (or the hold resolved) first, or it
    /// would be stranded in an account nobody can reach.
    /// Close the person's wallet to incoming money, then check it can go: no
    /// money, nothing on hold, no open red packet. On a refusal the wallet is
    /// opened again. Closing first means a payment, a claimed share or a refund
    /// in flight either lands before the check (and is seen) or is refused.
    pub async fn close_for_deletion(&self, user_id: &str) -> Result<()> {
        let account = self.ensure_wallet(user_id).await?;
        self.ledger().set_closed(&account, true).await?;
        if let Err(e) = self.ensure_can_close(user_id).await {
            self.ledger().set_closed(&account, false).await?;
            return Err(e);
        }
        Ok(())
    }

    pub async fn ensure_can_close(&self, user_id: &str) -> Result<()> {
        let w = self.wallet(user_id).await?;
        if w.balance_fen != 0 || w.pending_fen != 0 {
            return Err(Error::msg(
                Code::Conflict,
                Msg::new("pay.close.has_money").fen("balance", w.balance_fen).fen("pending", w.pending_fen),
            ));
        }
        let (open_packets,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM red_packets WHERE sender_user_id = $1 AND status IN ('funding', 'open')",
        )
        .bind(user_id)
        .fetch_one(&self.ctx().db.pool)
        .await?;
        if open_packets > 0 {
            return Err(Error::new(Code::Conflict, "pay.close.open_packets"));
        }
        Ok(())
    }

    /// Erase what is only personal; keep the money records: the payment PIN.
    pub async fn erase_personal(&self, user_id: &str) -> Result<()> {
        let mut tx = self.ctx().db.begin().await?;
        crate::confirm::erase_pin(&mut tx, user_id).await?;
        self.inner.pins.forget(&mut tx, user_id).await?;
        tx.commit().await?;
        self.inner.pins.forgotten(user_id);
        Ok(())
    }
}
