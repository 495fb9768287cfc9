//! Bills and fines: an organisation's staff issue them to a person (found by
//! the verified holder of an identity number, or of a car plate bound with
//! proof, both in the identity room); the person pays once from
//! the wallet. Paid and due times are kept, so payment history (on time or
//! late) can feed the credit score.

use crate::{
    category, check_amount, check_idempotency_key, org_account, Bill, BillKind, BillReceipt, BillSpec, BillStatus,
    BillTo, Pay,
};
use std::collections::HashMap;
use yizhan_audit::NewAccess;
use yizhan_core::error::is_unique_violation;
use yizhan_core::{Code, Error, Msg, Result};
pub use yizhan_identity::normalize_plate;
use yizhan_identity::{OrgKind, Principal, Role};
use yizhan_ledger::TransferSpec;
use yizhan_notify::{Message, Target};

pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Told after a bill is paid (once, when the payment is recorded): how the
/// credit room learns of bills paid on time or late without reading the
/// wallet's tables. The default hears nothing.
#[async_trait::async_trait]
pub trait BillEvents: Send + Sync {
    async fn bill_paid(&self, _bill: &Bill) {}
    /// A bill still unpaid this many whole days after its due time (told
    /// once when it becomes overdue and once more past 30 days, by
    /// [`Pay::pay_later_sweep`]).
    async fn bill_overdue(&self, _bill: &Bill, _days_late: i64) {}
    /// A pay-later statement repaid (on time or late).
    async fn pay_later_repaid(&self, _statement: &crate::paylater::Statement) {}
    /// A pay-later statement past its due time and not repaid.
    async fn pay_later_overdue(&self, _statement: &crate::paylater::Statement, _days_late: i64) {}
}
pub const MAX_REASON_CHARS: usize = 1000;
/// The most bills [`Pay::org_bills`] lists.
pub const ORG_BILLS_MAX: i64 = 500;

/// A row of `bills`, as [`BILL_COLS`] reads it.
#[derive(sqlx::FromRow)]
struct BillRow {
    id: String,
    org_id: String,
    user_id: String,
    kind: String,
    amount_fen: i64,
    description: String,
    plate: Option<String>,
    due_at_ms: i64,
    issued_at_ms: i64,
    status: String,
    paid_at_ms: Option<i64>,
    transfer_id: Option<String>,
}
const BILL_COLS: &str = "id, org_id, user_id, kind, amount_fen, description, plate, due_at_ms, issued_at_ms, \
                         status, paid_at_ms, transfer_id, paid_idempotency_key";

impl Pay {
    async fn bill_by_issue_key(&self, org_id: &str, issue_key: &str) -> Result<Option<Bill>> {
        Ok(self.bills_where("org_id = $1 AND issue_key = $2", &[org_id, issue_key]).await?.into_iter().next())
    }

    /// The bill a key already issued, if the request is the same bill.
    fn same_bill_again(
        &self,
        first: Bill,
        user_id: &str,
        spec: &BillSpec,
        amount_fen: i64,
        description: &str,
    ) -> Result<Bill> {
        let same = first.user_id == user_id
            && first.kind == spec.kind
            && first.amount_fen == amount_fen
            && first.due_at_ms == spec.due_at_ms
            && first.description == description;
        if same {
            Ok(first)
        } else {
            Err(Error::new(Code::IdempotencyKeyReused, "pay.bill.key_reused"))
        }
    }
}

fn is_late(due_at_ms: i64, paid_at_ms: Option<i64>, now_ms: i64) -> bool {
    match paid_at_ms {
        Some(p) => p > due_at_ms,
        None => now_ms > due_at_ms,
    }
}

impl Pay {
    /// Staff of an organisation bill a person. Fines only come from city departments and courts.
    /// Issue a bill to a person, once per the issuer's `idempotency_key`: the
    /// same key again answers the bill it issued (and tells the person once);
    /// the same key with another bill is refused.
    pub async fn issue_bill(
        &self,
        actor: &Principal,
        org_id: &str,
        spec: BillSpec,
        idempotency_key: &str,
    ) -> Result<Bill> {
        let issue_key = check_idempotency_key(idempotency_key)?.to_string();
        self.identity().require_staff(actor, org_id, Role::Operator).await?;
        let org = self.identity().org(org_id).await?;
        if spec.kind == BillKind::Fine && !matches!(org.kind, OrgKind::CityDepartment | OrgKind::Court) {
            return Err(Error::forbidden("pay.bill.issuer_only"));
        }
        let amount_fen = check_amount(spec.amount_fen)?;
        let now = self.ctx().now_ms();
        if spec.due_at_ms <= now {
            return Err(Error::field("due_at_ms", "pay.bill.due_past"));
        }
        let description = spec.description.trim().to_string();
        if description.is_empty() || description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Error::field_msg(
                "description",
                Msg::new("pay.bill.description_len").int("max", MAX_DESCRIPTION_CHARS as i64),
            ));
        }
        if description.chars().any(|c| c.is_control() && c != '\n') {
            return Err(Error::field("description", "pay.bill.description_control"));
        }
        let (user_id, plate) = match &spec.to {
            BillTo::IdNumber(n) => {
                // Only a verified holder (through the verifier or at a counter).
                let u = self
                    .identity()
                    .find_by_id_number(n)
                    .await?
                    .ok_or_else(|| Error::new(Code::NotFound, "pay.bill.no_person"))?;
                (u.user_id, None)
            }
            BillTo::Plate(p) => {
                // Plates are bound in the identity room, only with proof (a
                // registration checked by the verifier or at a counter).
                let plate = normalize_plate(p)?;
                let user_id = self
                    .identity()
                    .plate_holder(&plate)
                    .await?
                    .ok_or_else(|| Error::new(Code::NotFound, "pay.bill.no_vehicle"))?;
                (user_id, Some(plate))
            }
        };
        if let Some(first) = self.bill_by_issue_key(org_id, &issue_key).await? {
            return self.same_bill_again(first, &user_id, &spec, amount_fen, &description);
        }
        let id = self.ctx().new_id();
        let mut tx = self.ctx().db.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO bills ({BILL_COLS}, issued_by_user_id, issue_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'unpaid', NULL, NULL, NULL, $10, $11)"
        ))
        .bind(&id)
        .bind(org_id)
        .bind(&user_id)
        .bind(spec.kind.as_str())
        .bind(amount_fen)
        .bind(&description)
        .bind(&plate)
        .bind(spec.due_at_ms)
        .bind(now)
        .bind(&actor.user_id)
        .bind(&issue_key)
        .execute(tx.conn())
        .await;
        if let Err(e) = inserted {
            // Two issues with one key at once: the other one won; answer its bill.
            if is_unique_violation(&e) {
                drop(tx);
                if let Some(first) = self.bill_by_issue_key(org_id, &issue_key).await? {
                    return self.same_bill_again(first, &user_id, &spec, amount_fen, &description);
                }
            }
            return Err(e.into());
        }
        tx.commit().await?;
        self.tell(
            &user_id,
            Message {
                kind: "pay.bill".into(),
                title: Msg::new("pay.notice.bill.title")
                    .key_arg("kind", format!("pay.bill_kind.{}", spec.kind.as_str()))
                    .text("org", org.name.clone())
                    .fen("amount", amount_fen),
                body: Msg::new("pay.notice.bill.body")
                    .text("description", description.clone())
                    .time("due", spec.due_at_ms),
                target: Some(Target::new("bill", &id)),
            },
        )
        .await;
        self.bill(&user_id, &id).await
    }

    fn bill_from_row(&self, r: BillRow, org_names: &HashMap<String, String>, now: i64) -> Result<Bill> {
        let status = match r.status.as_str() {
            "paid" => BillStatus::Paid,
            _ => BillStatus::Unpaid,
        };
        Ok(Bill {
            org_name: org_names.get(&r.org_id).cloned().unwrap_or_default(),
            late: is_late(r.due_at_ms, r.paid_at_ms, now),
            kind: BillKind::parse(&r.kind)?,
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            amount_fen: r.amount_fen,
            description: r.description,
            plate: r.plate,
            due_at_ms: r.due_at_ms,
            issued_at_ms: r.issued_at_ms,
            status,
            paid_at_ms: r.paid_at_ms,
            transfer_id: r.transfer_id,
        })
    }

    async fn bills_where(&self, sql_where: &str, binds: &[&str]) -> Result<Vec<Bill>> {
        self.bills_where_limit(sql_where, binds, None).await
    }

    async fn bills_where_limit(&self, sql_where: &str, binds: &[&str], limit: Option<i64>) -> Result<Vec<Bill>> {
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let sql = format!("SELECT {BILL_COLS} FROM bills WHERE {sql_where} ORDER BY issued_at_ms DESC, id DESC{limit}");
        let mut q = sqlx::query_as::<_, BillRow>(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&self.ctx().db.pool).await?;
        let mut names = HashMap::new();
        for r in &rows {
            if !names.contains_key(&r.org_id) {
                let name = self.identity().org(&r.org_id).await.map(|o| o.name).unwrap_or_default();
                names.insert(r.org_id.clone(), name);
            }
        }
        let now = self.ctx().now_ms();
        rows.into_iter().map(|r| self.bill_from_row(r, &names, now)).collect()
    }

    /// The bills an organisation issued, newest first, at most `limit` (1..=500),
    /// for its staff: what is paid, what is still open, what is overdue.
    pub async fn org_bills(&self, actor: &Principal, org_id: &str, limit: i64) -> Result<Vec<Bill>> {
        self.identity().require_staff(actor, org_id, Role::Operator).await?;
        let limit = limit.clamp(1, ORG_BILLS_MAX);
        self.bills_where_limit("org_id = $1", &[org_id], Some(limit)).await
    }

    /// A person's bills, newest first, paid and unpaid.
    pub async fn bills(&self, user_id: &str) -> Result<Vec<Bill>> {
        self.bills_where("user_id = $1", &[user_id]).await
    }

    /// One of the person's bills (someone else's is not found).
    pub async fn bill(&self, user_id: &str, bill_id: &str) -> Result<Bill> {
        self.bills_where("user_id = $1 AND id = $2", &[user_id, bill_id])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("bill"))
    }

    /// Whether the organisation ever issued a bill to the person (what lets its
    /// staff give "a bill" as their reason to read the person's identity number).
    pub async fn org_billed(&self, org_id: &str, user_id: &str) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bills WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_one(&self.ctx().db.pool)
            .await?;
        Ok(n > 0)
    }

    /// Pay a bill from the wallet. The ledger key is the bill's own, so of two
    /// payments at once (whatever their keys) one moves money; a retry with the
    /// same key gets the receipt, another key gets `AlreadyPaid`.
    pub async fn pay_bill(&self, user_id: &str, bill_id: &str, idempotency_key: &str) -> Result<BillReceipt> {
        let idem = check_idempotency_key(idempotency_key)?.to_string();
        let bill = self.bill(user_id, bill_id).await?;
        if bill.status == BillStatus::Paid {
            return self.paid_receipt(&bill, &idem).await;
        }
        let from = self.ensure_wallet(user_id).await?;
        let to = self.ensure_org(&bill.org_id).await?;
        debug_assert_eq!(to, org_account(&bill.org_id));
        let ledger_key = format!("bill:{}:pay", bill.id);
        self.reserve_limit(user_id, crate::Operation::Payment, bill.amount_fen, &ledger_key).await?;
        let t = match self
            .transfer(
                TransferSpec::new(from, to, bill.amount_fen, category::BILL)
                    .with_memo(format!("{} {}", bill.kind.as_str(), bill.id))
                    .with_idempotency_key(ledger_key.clone()),
            )
            .await
        {
            Ok(t) => t,
            Err(e) => {
                self.give_back_if_refused(&ledger_key, &e).await;
                return Err(e);
            }
        };
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query(
            "UPDATE bills SET status = 'paid', paid_at_ms = $1, transfer_id = $2, paid_idempotency_key = $3
             WHERE id = $4 AND status = 'unpaid'",
        )
        .bind(t.created_at_ms)
        .bind(&t.id)
        .bind(&idem)
        .bind(&bill.id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        let bill = self.bill(user_id, bill_id).await?;
        if n == 0 {
            // A concurrent payment recorded it first (the money moved once).
            return self.paid_receipt(&bill, &idem).await;
        }
        let paid_at_ms = bill.paid_at_ms.unwrap_or(t.created_at_ms);
        if let Some(events) = self.bill_events() {
            events.bill_paid(&bill).await;
        }
        Ok(BillReceipt {
            bill_id: bill.id,
            transfer_id: t.id,
            amount_fen: bill.amount_fen,
            paid_at_ms,
            payee_org_id: bill.org_id,
            payee_org_name: bill.org_name,
            late: bill.late,
        })
    }

    async fn paid_receipt(&self, bill: &Bill, idem: &str) -> Result<BillReceipt> {
        let (key,): (Option<String>,) = sqlx::query_as("SELECT paid_idempotency_key FROM bills WHERE id = $1")
            .bind(&bill.id)
            .fetch_one(&self.ctx().db.pool)
            .await?;
        if key.as_deref() != Some(idem) {
            return Err(Error::new(crate::codes::ALREADY_PAID, "pay.bill.already_paid"));
        }
        Ok(BillReceipt {
            bill_id: bill.id.clone(),
            transfer_id: bill.transfer_id.clone().unwrap_or_default(),
            amount_fen: bill.amount_fen,
            paid_at_ms: bill.paid_at_ms.unwrap_or_default(),
            payee_org_id: bill.org_id.clone(),
            payee_org_name: bill.org_name.clone(),
            late: bill.late,
        })
    }

    /// Staff read a person's bills from their organisation, with a stated
    /// reason; the read is written to the person's access log first.
    pub async fn staff_list_bills(
        &self,
        actor: &Principal,
        org_id: &str,
        subject_user_id: &str,
        reason: &str,
    ) -> Result<Vec<Bill>> {
        let member = self.identity().require_staff(actor, org_id, Role::Operator).await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::field_msg(
                "reason",
                Msg::new("pay.reason_required").int("max", MAX_REASON_CHARS as i64),
            ));
        }
        self.identity().user_ref(subject_user_id).await?;
        let org = self.identity().org(org_id).await?;
        self.audit()
            .record(NewAccess {
                subject_user_id: subject_user_id.to_string(),
                actor_user_id: actor.user_id.clone(),
                actor_label: member.user_name,
                org_id: Some(org.id.clone()),
                org_label: Some(org.name),
                what: "bills".into(),
                why: reason.to_string(),
            })
            .await?;
        self.bills_where("user_id = $1 AND org_id = $2", &[subject_user_id, org_id]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness() {
        assert!(!is_late(100, None, 50));
        assert!(is_late(100, None, 101));
        assert!(!is_late(100, Some(100), 500));
        assert!(is_late(100, Some(101), 500));
    }
}
