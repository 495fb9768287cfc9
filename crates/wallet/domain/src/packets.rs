//! Red packets: the sender's money goes to escrow at once, split into shares
//! drawn when the packet is made; each claimer takes the next share with one
//! conditional UPDATE (so every share goes to one person and every person gets
//! one share), and after 24 hours what is left returns to the sender.

use crate::redpacket::{self, SplitMode};
use crate::{
    category, check_idempotency_key, scoped_key, ClaimResult, Pay, RedPacket, RedPacketClaim, RedPacketSpec,
    RefundReport, ESCROW_ACCOUNT,
};
use yizhan_core::error::{is_retryable, is_unique_violation};
use yizhan_core::time::HOUR_MS;
use yizhan_core::{Code, Error, Msg, Result};
use yizhan_ledger::{Transfer, TransferSpec};
use yizhan_notify::{Message, Target};

/// How long a packet can be opened; then the rest goes back to the sender.
pub const PACKET_TTL_MS: i64 = 24 * HOUR_MS;
pub const MAX_GREETING_CHARS: usize = 100;
/// A request older than this that left its work half done is finished by the sweep.
const STALE_MS: i64 = 60_000;
/// Packets one sweep handles at most.
const SWEEP_LIMIT: i64 = 500;

/// A row of `red_packets`, as [`PACKET_COLS`] reads it.
#[derive(sqlx::FromRow)]
struct PacketRow {
    id: String,
    sender_user_id: String,
    to_user_id: Option<String>,
    mode: String,
    share_count: i64,
    total_fen: i64,
    greeting: String,
    status: String,
    refunded_fen: i64,
    created_at_ms: i64,
    expires_at_ms: i64,
}

/// A claimed share, as a packet shows it.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    claimed_by: String,
    amount_fen: i64,
    claimed_at_ms: i64,
}

/// A packet whose funding request stopped halfway.
#[derive(sqlx::FromRow)]
struct StaleRow {
    id: String,
    sender_user_id: String,
    idempotency_key: String,
}

/// A refunded packet whose refund transfer has not happened yet.
#[derive(sqlx::FromRow)]
struct UnpaidRefundRow {
    id: String,
    sender_user_id: String,
    refunded_fen: i64,
}

/// A claimed share whose transfer has not happened yet.
#[derive(sqlx::FromRow)]
struct UnpaidShareRow {
    packet_id: String,
    seq: i64,
    amount_fen: i64,
    claimed_by: String,
}
const PACKET_COLS: &str = "id, sender_user_id, to_user_id, mode, share_count, total_fen, greeting, status, \
                           refunded_fen, created_at_ms, expires_at_ms";

fn share_key(packet_id: &str, seq: i64) -> String {
    format!("redpacket:{packet_id}:share:{seq}")
}

fn refund_key(packet_id: &str) -> String {
    format!("redpacket:{packet_id}:refund")
}

impl Pay {
    /// Make a red packet; the total leaves the sender's wallet for escrow at once.
    pub async fn create_red_packet(
        &self,
        sender_user_id: &str,
        spec: RedPacketSpec,
        idempotency_key: &str,
    ) -> Result<RedPacket> {
        let idem = check_idempotency_key(idempotency_key)?.to_string();
        let greeting = spec.greeting.trim().to_string();
        if greeting.chars().count() > MAX_GREETING_CHARS || greeting.chars().any(char::is_control) {
            return Err(Error::field_msg(
                "greeting",
                Msg::new("pay.packet.greeting_too_long").int("max", MAX_GREETING_CHARS as i64),
            ));
        }
        let sender_name = self.live_user_name(sender_user_id).await?;
        self.own_funds_only(sender_user_id, spec.total_fen).await?;
        let to_user = match spec.to_user.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(to) => {
                if spec.count != 1 {
                    return Err(Error::field("count", "pay.packet.one_share"));
                }
                let found = match self.identity().find_by_login(to).await {
                    Ok(Some(u)) => Some(u.user_id),
                    // Not a login: maybe a user id.
                    Ok(None) | Err(_) => match self.live_user_name(to).await {
                        Ok(_) => Some(to.to_string()),
                        Err(_) => None,
                    },
                };
                let id = found.ok_or_else(|| Error::new(Code::NotFound, "pay.no_such_login"))?;
                if id == sender_user_id {
                    return Err(Error::new(yizhan_ledger::codes::SELF_PAYMENT, "pay.packet.self"));
                }
                Some(id)
            }
        };
        let shares = redpacket::split(spec.mode, spec.total_fen, spec.count, &*self.ctx().rng)?;

        // A retry with the same key finds the packet it made.
        if let Some(p) = self.packet_by_key(sender_user_id, &idem).await? {
            if p.total_fen != spec.total_fen || p.count != spec.count || p.mode != spec.mode || p.to_user_id != to_user
            {
                return Err(Error::new(Code::IdempotencyKeyReused, "pay.packet.key_reused"));
            }
            return self.fund_packet(p).await;
        }

        // Counted before the packet exists, so a packet over the limit is never made.
        let funding_key = scoped_key("user", sender_user_id, "redpacket", &idem);
        self.reserve_limit(sender_user_id, crate::Operation::Payment, spec.total_fen, &funding_key).await?;
        let now = self.ctx().now_ms();
        let id = self.ctx().new_id();
        let mut tx = self.ctx().db.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO red_packets ({PACKET_COLS}, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, 'funding', 0, $8, $9, $10)"
        ))
        .bind(&id)
        .bind(sender_user_id)
        .bind(&to_user)
        .bind(spec.mode.as_str())
        .bind(spec.count)
        .bind(spec.total_fen)
        .bind(&greeting)
        .bind(now)
        .bind(now + PACKET_TTL_MS)
        .bind(&idem)
        .execute(tx.conn())
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                let p =
                    self.packet_by_key(sender_user_id, &idem).await?.ok_or_else(|| Error::not_found("red_packet"))?;
                return self.fund_packet(p).await;
            }
            Err(e) => return Err(e.into()),
        }
        for (i, amount) in shares.iter().enumerate() {
            sqlx::query("INSERT INTO red_packet_shares (packet_id, seq, amount_fen) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(i64::try_from(i).map_err(Error::internal)? + 1)
                .bind(*amount)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        let packet = self.red_packet(&id).await?;
        let packet = self.fund_packet(packet).await?;
        if let Some(to) = &packet.to_user_id {
            self.tell(
                to,
                Message {
                    kind: "pay.red_packet".into(),
                    title: Msg::new("pay.notice.packet.title").text("sender", sender_name.clone()),
                    body: if greeting.is_empty() {
                        Msg::new("pay.notice.packet.body")
                    } else {
                        Msg::new("pay.notice.packet.greeting").text("greeting", greeting.clone())
                    },
                    target: Some(Target::new("red_packet", &packet.id)),
                },
            )
            .await;
        }
        Ok(packet)
    }

    async fn packet_by_key(&self, sender_user_id: &str, idem: &str) -> Result<Option<RedPacket>> {
        let id: Option<(String,)> =
            sqlx::query_as("SELECT id FROM red_packets WHERE sender_user_id = $1 AND idempotency_key = $2")
                .bind(sender_user_id)
                .bind(idem)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
        match id {
            Some((id,)) => Ok(Some(self.red_packet(&id).await?)),
            None => Ok(None),
        }
    }

    /// Move a packet's total into escrow (once: the ledger key is the packet's) and open it.
    async fn fund_packet(&self, packet: RedPacket) -> Result<RedPacket> {
        match packet.status.as_str() {
            "funding" => {}
            "failed" => {
                return Err(Error::new(Code::Conflict, "pay.packet.unfunded"));
            }
            _ => return Ok(packet),
        }
        let from = self.ensure_wallet(&packet.sender_user_id).await?;
        self.ensure_escrow().await?;
        let key =
            scoped_key("user", &packet.sender_user_id, "redpacket", &packet_idem(&self.ctx().db, &packet.id).await?);
        let funded = self
            .transfer(
                TransferSpec::new(from, ESCROW_ACCOUNT, packet.total_fen, category::RED_PACKET)
                    .with_memo(format!("red_packet {}", packet.id))
                    .with_idempotency_key(key.clone())
                    .own_funds_only(true),
            )
            .await;
        let mut tx = self.ctx().db.begin().await?;
        match funded {
            Ok(t) => {
                // 'failed' too: the sweep may have given up on a request that then went through.
                sqlx::query(
                    "UPDATE red_packets SET status = 'open', funding_transfer_id = $1
                     WHERE id = $2 AND status IN ('funding', 'failed')",
                )
                .bind(&t.id)
                .bind(&packet.id)
                .execute(tx.conn())
                .await?;
                tx.commit().await?;
                self.red_packet(&packet.id).await
            }
            Err(e) if e.code != Code::Internal => {
                sqlx::query("UPDATE red_packets SET status = 'failed' WHERE id = $1 AND status = 'funding'")
                    .bind(&packet.id)
                    .execute(tx.conn())
                    .await?;
                tx.commit().await?;
                self.give_back_if_refused(&key, &e).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// A packet with its claims so far.
    pub async fn red_packet(&self, packet_id: &str) -> Result<RedPacket> {
        let row: Option<PacketRow> = sqlx::query_as(&format!("SELECT {PACKET_COLS} FROM red_packets WHERE id = $1"))
            .bind(packet_id)
            .fetch_optional(&self.ctx().db.pool)
            .await?;
        let r = row.ok_or_else(|| Error::not_found("red_packet"))?;
        let claims: Vec<ClaimRow> = sqlx::query_as(
            "SELECT claimed_by, amount_fen, claimed_at_ms FROM red_packet_shares
             WHERE packet_id = $1 AND claimed_by IS NOT NULL ORDER BY claimed_at_ms, seq",
        )
        .bind(packet_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let claims: Vec<RedPacketClaim> = claims
            .into_iter()
            .map(|c| RedPacketClaim { user_id: c.claimed_by, amount_fen: c.amount_fen, claimed_at_ms: c.claimed_at_ms })
            .collect();
        Ok(RedPacket {
            mode: SplitMode::parse(&r.mode)?,
            id: r.id,
            sender_user_id: r.sender_user_id,
            to_user_id: r.to_user_id,
            count: r.share_count,
            total_fen: r.total_fen,
            greeting: r.greeting,
            status: r.status,
            refunded_fen: r.refunded_fen,
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            claimed_count: i64::try_from(claims.len()).unwrap_or(i64::MAX),
            claimed_fen: claims.iter().map(|c| c.amount_fen).sum(),
            claims,
        })
    }

    /// Open a packet: each person once; a one-person packet only by that person.
    pub async fn claim(&self, packet_id: &str, user_id: &str) -> Result<ClaimResult> {
        let packet = self.red_packet(packet_id).await?;
        match packet.status.as_str() {
            "open" => {}
            "refunded" => return Err(Error::new(crate::codes::PACKET_EMPTY, "pay.packet.refunded")),
            _ => return Err(Error::not_found("red_packet")),
        }
        if let Some(to) = &packet.to_user_id {
            if to != user_id {
                return Err(Error::forbidden("pay.packet.not_yours"));
            }
        }
        self.live_user_name(user_id).await?;
        // Taken before. A payout a crash interrupted is finished by the sweep
        // (`refund_expired`), not here, so a double tap never reports two wins.
        if self.share_of(packet_id, user_id).await?.is_some() {
            return Err(Error::new(crate::codes::ALREADY_CLAIMED, "pay.packet.already_opened"));
        }
        let now = self.ctx().now_ms();
        if now >= packet.expires_at_ms {
            return Err(Error::new(crate::codes::PACKET_EMPTY, "pay.packet.expired"));
        }
        // Each round either takes a share or loses one to a concurrent claimer,
        // so this ends within count + a few rounds.
        for _ in 0..(packet.count + 8) {
            let mut tx = self.ctx().db.begin().await?;
            let taken: std::result::Result<Option<(i64, i64)>, sqlx::Error> = sqlx::query_as(
                "UPDATE red_packet_shares SET claimed_by = $1, claimed_at_ms = $2
                 WHERE packet_id = $3 AND claimed_by IS NULL AND refunded = 0
                   AND seq = (SELECT MIN(seq) FROM red_packet_shares
                              WHERE packet_id = $3 AND claimed_by IS NULL AND refunded = 0)
                   AND EXISTS (SELECT 1 FROM red_packets WHERE id = $3 AND status = 'open' AND expires_at_ms > $2)
                 RETURNING seq, amount_fen",
            )
            .bind(user_id)
            .bind(now)
            .bind(packet_id)
            .fetch_optional(tx.conn())
            .await;
            match taken {
                Ok(Some((seq, amount_fen))) => {
                    tx.commit().await?;
                    let t = self.pay_share(packet_id, seq, amount_fen, user_id).await?;
                    return Ok(ClaimResult { packet_id: packet_id.to_string(), amount_fen, transfer_id: t.id });
                }
                Ok(None) => {
                    drop(tx);
                    let left: (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM red_packet_shares WHERE packet_id = $1 AND claimed_by IS NULL AND refunded = 0",
                    )
                    .bind(packet_id)
                    .fetch_one(&self.ctx().db.pool)
                    .await?;
                    if left.0 == 0 {
                        return Err(Error::new(crate::codes::PACKET_EMPTY, "pay.packet.all_taken"));
                    }
                    // Someone took the share this round aimed at; try the next.
                    tokio::task::yield_now().await;
                }
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::new(crate::codes::ALREADY_CLAIMED, "pay.packet.already_opened"))
                }
                Err(e) if is_retryable(&e) => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(Code::Conflict, "pay.packet.busy"))
    }

    async fn share_of(&self, packet_id: &str, user_id: &str) -> Result<Option<(i64,)>> {
        Ok(sqlx::query_as("SELECT seq FROM red_packet_shares WHERE packet_id = $1 AND claimed_by = $2")
            .bind(packet_id)
            .bind(user_id)
            .fetch_optional(&self.ctx().db.pool)
            .await?)
    }

    /// Escrow → claimer, once per share (the ledger key is the share's).
    async fn pay_share(&self, packet_id: &str, seq: i64, amount_fen: i64, user_id: &str) -> Result<Transfer> {
        let to = self.ensure_wallet(user_id).await?;
        self.ensure_escrow().await?;
        let t = self
            .transfer(
                TransferSpec::new(ESCROW_ACCOUNT, to, amount_fen, category::RED_PACKET)
                    .with_memo(format!("red_packet {packet_id}"))
                    .with_idempotency_key(share_key(packet_id, seq)),
            )
            .await?;
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE red_packet_shares SET transfer_id = $1 WHERE packet_id = $2 AND seq = $3")
            .bind(&t.id)
            .bind(packet_id)
            .bind(seq)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Return what is left of packets older than 24 hours to their senders, and
    /// finish payouts a crash interrupted. Run it periodically.
    pub async fn refund_expired(&self) -> Result<RefundReport> {
        let now = self.ctx().now_ms();
        let mut report = RefundReport::default();
        // Each item stands alone: one that fails (and is tried again by the
        // next sweep) never holds up the others.
        let due: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM red_packets WHERE status = 'open' AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT $2",
        )
        .bind(now)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        for (id,) in due {
            match self.close_expired(&id).await {
                Ok(Some(sum)) => {
                    report.packets += 1;
                    report.refunded_fen += sum;
                }
                Ok(None) => {}
                Err(e) => report.failed(&id, "closing an expired red packet", &e),
            }
        }
        // Packets whose funding request stopped between its row and its transfer:
        // open them if the money reached escrow, otherwise they never will be.
        let stale: Vec<StaleRow> = sqlx::query_as(
            "SELECT id, sender_user_id, idempotency_key FROM red_packets
             WHERE status = 'funding' AND created_at_ms < $1 ORDER BY id LIMIT $2",
        )
        .bind(now - STALE_MS)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        for row in stale {
            let id = row.id.clone();
            if let Err(e) = self.settle_stale_funding(row).await {
                report.failed(&id, "settling a red packet's funding", &e);
            }
        }
        // Refunds and claims whose ledger transfer has not happened yet (new ones, or a crash).
        let unpaid_refunds: Vec<UnpaidRefundRow> = sqlx::query_as(
            "SELECT id, sender_user_id, refunded_fen FROM red_packets
             WHERE status = 'refunded' AND refunded_fen > 0 AND refund_transfer_id IS NULL ORDER BY id LIMIT $1",
        )
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        for row in unpaid_refunds {
            let id = row.id.clone();
            if let Err(e) = self.pay_refund(row).await {
                report.failed(&id, "paying a red packet's refund", &e);
            }
        }
        let unpaid_shares: Vec<UnpaidShareRow> = sqlx::query_as(
            "SELECT packet_id, seq, amount_fen, claimed_by FROM red_packet_shares
             WHERE claimed_by IS NOT NULL AND transfer_id IS NULL AND claimed_at_ms < $1
             ORDER BY packet_id, seq LIMIT $2",
        )
        .bind(now - STALE_MS)
        .bind(SWEEP_LIMIT)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        for s in unpaid_shares {
            if let Err(e) = self.pay_share(&s.packet_id, s.seq, s.amount_fen, &s.claimed_by).await {
                report.failed(&s.packet_id, "paying a claimed red packet share", &e);
            }
        }
        Ok(report)
    }

    /// Mark an expired packet refunded with what its unclaimed shares hold;
    /// `None` when another sweep got it first.
    async fn close_expired(&self, id: &str) -> Result<Option<i64>> {
        let mut tx = self.ctx().db.begin().await?;
        let amounts: Vec<(i64,)> = sqlx::query_as(
            "UPDATE red_packet_shares SET refunded = 1
             WHERE packet_id = $1 AND claimed_by IS NULL AND refunded = 0 RETURNING amount_fen",
        )
        .bind(id)
        .fetch_all(tx.conn())
        .await?;
        let sum: i64 = amounts.iter().map(|a| a.0).sum();
        let n = sqlx::query(
            "UPDATE red_packets SET status = 'refunded', refunded_fen = $1 WHERE id = $2 AND status = 'open'",
        )
        .bind(sum)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None); // another sweep got it; dropping the transaction undoes ours
        }
        tx.commit().await?;
        Ok(Some(sum))
    }

    async fn settle_stale_funding(&self, row: StaleRow) -> Result<()> {
        let StaleRow { id, sender_user_id, idempotency_key } = row;
        let key = scoped_key("user", &sender_user_id, "redpacket", &idempotency_key);
        let funded = self.ledger().transfer_by_idempotency_key(&key).await?;
        let mut tx = self.ctx().db.begin().await?;
        match funded {
            Some(t) => sqlx::query(
                "UPDATE red_packets SET status = 'open', funding_transfer_id = $1 WHERE id = $2 AND status = 'funding'",
            )
            .bind(&t.id)
            .bind(&id)
            .execute(tx.conn())
            .await?,
            None => {
                sqlx::query("UPDATE red_packets SET status = 'failed' WHERE id = $1 AND status = 'funding'")
                    .bind(&id)
                    .execute(tx.conn())
                    .await?
            }
        };
        tx.commit().await?;
        Ok(())
    }

    async fn pay_refund(&self, row: UnpaidRefundRow) -> Result<()> {
        let UnpaidRefundRow { id, sender_user_id: sender, refunded_fen: amount_fen } = row;
        let to = self.ensure_wallet(&sender).await?;
        self.ensure_escrow().await?;
        let t = self
            .transfer(
                TransferSpec::new(ESCROW_ACCOUNT, to, amount_fen, category::RED_PACKET_REFUND)
                    .with_memo(format!("red_packet_refund {id}"))
                    .with_idempotency_key(refund_key(&id)),
            )
            .await?;
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE red_packets SET refund_transfer_id = $1 WHERE id = $2")
            .bind(&t.id)
            .bind(&id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        self.tell(
            &sender,
            Message {
                kind: "pay.red_packet_refund".into(),
                title: Msg::new("pay.notice.refund.title").fen("amount", amount_fen),
                body: Msg::new("pay.notice.refund.body"),
                target: Some(Target::new("red_packet", &id)),
            },
        )
        .await;
        Ok(())
    }

    /// Escrow must hold exactly the shares not yet paid out or refunded.
    /// Returns (escrow balance, what the open shares add up to).
    pub async fn escrow_check(&self) -> Result<(i64, i64)> {
        self.ensure_escrow().await?;
        let balance = self.ledger().balance(ESCROW_ACCOUNT).await?.posted_fen;
        let owed: (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(s.amount_fen), 0) AS BIGINT) FROM red_packet_shares s
             JOIN red_packets p ON p.id = s.packet_id
             WHERE p.status IN ('open', 'refunded') AND s.transfer_id IS NULL
               AND (s.claimed_by IS NOT NULL OR s.refunded = 0 OR p.refund_transfer_id IS NULL)",
        )
        .fetch_one(&self.ctx().db.pool)
        .await?;
        Ok((balance, owed.0))
    }
}

async fn packet_idem(db: &yizhan_core::Db, packet_id: &str) -> Result<String> {
    let (k,): (String,) = sqlx::query_as("SELECT idempotency_key FROM red_packets WHERE id = $1")
        .bind(packet_id)
        .fetch_one(&db.pool)
        .await?;
    Ok(k)
}

/// How many packets each list of [`Pay::my_red_packets`] holds.
pub const MY_PACKETS_MAX: i64 = 30;

/// A packet in the person's lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketLine {
    pub packet_id: String,
    /// Sent: the packet's total; received: my share (none while unopened).
    pub amount_fen: Option<i64>,
    /// Sent: the recipient (a personal packet) or none (a group); received: the sender.
    pub other_user_id: Option<String>,
    pub greeting: String,
    pub share_count: i64,
    pub status: String,
    pub at_ms: i64,
}

/// The packets a person sent and received, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyPackets {
    pub sent: Vec<PacketLine>,
    /// Opened by me, and personal packets to me still waiting to be opened.
    pub received: Vec<PacketLine>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    packet_id: String,
    amount_fen: Option<i64>,
    other_user_id: Option<String>,
    greeting: String,
    share_count: i64,
    status: String,
    at_ms: i64,
}

impl From<LineRow> for PacketLine {
    fn from(r: LineRow) -> Self {
        PacketLine {
            packet_id: r.packet_id,
            amount_fen: r.amount_fen,
            other_user_id: r.other_user_id,
            greeting: r.greeting,
            share_count: r.share_count,
            status: r.status,
            at_ms: r.at_ms,
        }
    }
}

impl Pay {
    /// The packets the person sent and the ones they received (or may open).
    pub async fn my_red_packets(&self, user_id: &str) -> Result<MyPackets> {
        let pool = &self.ctx().db.pool;
        let sent: Vec<LineRow> = sqlx::query_as(
            "SELECT id AS packet_id, total_fen AS amount_fen, to_user_id AS other_user_id, greeting, share_count,
                    status, created_at_ms AS at_ms
             FROM red_packets WHERE sender_user_id = $1 AND status <> 'funding' AND status <> 'failed'
             ORDER BY created_at_ms DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(MY_PACKETS_MAX)
        .fetch_all(pool)
        .await?;
        let mut received: Vec<LineRow> = sqlx::query_as(
            "SELECT p.id AS packet_id, s.amount_fen AS amount_fen, p.sender_user_id AS other_user_id, p.greeting,
                    p.share_count, p.status, s.claimed_at_ms AS at_ms
             FROM red_packet_shares s JOIN red_packets p ON p.id = s.packet_id
             WHERE s.claimed_by = $1 AND s.claimed_at_ms IS NOT NULL
             ORDER BY s.claimed_at_ms DESC, p.id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(MY_PACKETS_MAX)
        .fetch_all(pool)
        .await?;
        let waiting: Vec<LineRow> = sqlx::query_as(
            "SELECT p.id AS packet_id, CAST(NULL AS BIGINT) AS amount_fen, p.sender_user_id AS other_user_id,
                    p.greeting, p.share_count, p.status, p.created_at_ms AS at_ms
             FROM red_packets p
             WHERE p.to_user_id = $1 AND p.status = 'open' AND p.expires_at_ms > $3
               AND NOT EXISTS (SELECT 1 FROM red_packet_shares s WHERE s.packet_id = p.id AND s.claimed_by = $1)
             ORDER BY p.created_at_ms DESC, p.id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(MY_PACKETS_MAX)
        .bind(self.ctx().now_ms())
        .fetch_all(pool)
        .await?;
        // Waiting ones first: they are what the person can still do something with.
        received.splice(0..0, waiting);
        received.truncate(usize::try_from(MY_PACKETS_MAX).unwrap_or(0));
        Ok(MyPackets {
            sent: sent.into_iter().map(PacketLine::from).collect(),
            received: received.into_iter().map(PacketLine::from).collect(),
        })
    }
}
