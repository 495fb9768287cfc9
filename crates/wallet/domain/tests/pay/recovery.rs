//! A crash between a row claimed here and its ledger transfer is finished by
//! the next retry (or the sweep), never paid twice. Each test builds the state
//! such a crash leaves behind, then retries.

use crate::common::*;
use yizhan_core::Code;
use yizhan_identity::OrgKind;
use yizhan_ledger::TransferSpec;
use yizhan_pay::{wallet_account, BillKind, BillSpec, BillStatus, BillTo, RedPacketSpec, SplitMode};

#[tokio::test]
async fn a_pay_code_taken_but_not_charged_is_finished_by_the_merchants_retry() {
    let e = env().await;
    let customer = e.funded_user("13500000001", "Customer", 5_000).await;
    let shop = e.org(OrgKind::Merchant, "Shop").await;
    let cashier = e.staff(&shop, "13500000002", "Cashier").await;
    let pc = e.pay.create_paycode(&customer).await.unwrap();
    let mut tx = e.t.db.begin().await.unwrap();
    sqlx::query("UPDATE paycodes SET used_at_ms = $1, used_by_org_id = $2, charge_key = $3, amount_fen = 700")
        .bind(e.ctx.now_ms())
        .bind(&shop)
        .bind(format!("org:{shop}:paycode:m1"))
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(e.balance(&customer).await, 5_000);
    // Another charge of the code is refused; the original request's retry completes it.
    assert_eq!(
        code_of(e.pay.merchant_charge(&cashier, &shop, &pc.code, 700, "m2").await),
        yizhan_pay::codes::CODE_USED
    );
    let r = e.pay.merchant_charge(&cashier, &shop, &pc.code, 700, "m1").await.unwrap().receipt().unwrap();
    let again = e.pay.merchant_charge(&cashier, &shop, &pc.code, 700, "m1").await.unwrap().receipt().unwrap();
    assert_eq!(r.transfer_id, again.transfer_id);
    assert_eq!(code_of(e.pay.merchant_charge(&cashier, &shop, &pc.code, 800, "m1").await), Code::IdempotencyKeyReused);
    assert_eq!(e.balance(&customer).await, 4_300);
    assert_eq!(e.org_balance(&shop).await, 700);
    // The customer hears of it once.
    let notices = e.notify.inbox(&customer, 50).await.unwrap();
    assert_eq!(notices.iter().filter(|n| n.kind == "pay.paycode_charged").count(), 1);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_bill_paid_in_the_ledger_but_not_marked_is_marked_by_the_retry() {
    let e = env().await;
    let dept = e.org(OrgKind::CityDepartment, "Water Bureau").await;
    let clerk = e.staff(&dept, "13500000011", "Clerk").await;
    let u = e.funded_user("13500000012", "Resident", 9_000).await;
    let id_no = id_number(3);
    e.identity.verify_real_name(&u, "居民", &id_no).await.unwrap();
    let spec = BillSpec {
        to: BillTo::IdNumber(id_no),
        kind: BillKind::Water,
        amount_fen: 4_000,
        due_at_ms: e.ctx.now_ms() + 1_000_000,
        description: "Water, November".into(),
    };
    let bill = e.pay.issue_bill(&clerk, &dept, spec, &key()).await.unwrap();
    e.ledger.open_account(&yizhan_pay::org_account(&dept), "org", false).await.unwrap();
    let moved = e
        .ledger
        .transfer(
            TransferSpec::new(wallet_account(&u), yizhan_pay::org_account(&dept), 4_000, "bill")
                .with_idempotency_key(format!("bill:{}:pay", bill.id)),
        )
        .await
        .unwrap();
    assert_eq!(e.pay.bill(&u, &bill.id).await.unwrap().status, BillStatus::Unpaid);
    let r = e.pay.pay_bill(&u, &bill.id, "k1").await.unwrap();
    assert_eq!(r.transfer_id, moved.id);
    assert_eq!(e.balance(&u).await, 5_000);
    assert_eq!(e.pay.bill(&u, &bill.id).await.unwrap().status, BillStatus::Paid);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_withdrawal_held_but_not_paid_out_is_finished_by_the_retry() {
    let e = env().await;
    let u = e.funded_user("13500000021", "Saver", 6_000).await;
    let key = format!("user:{u}:withdraw:w1");
    e.ledger
        .transfer(
            TransferSpec::new(wallet_account(&u), yizhan_pay::gateway_account("sandbox"), 2_000, "withdrawal")
                .with_idempotency_key(key)
                .pending(None),
        )
        .await
        .unwrap();
    assert_eq!(e.pay.wallet(&u).await.unwrap().pending_fen, 2_000);
    e.pay.withdraw(&u, 2_000, None, "w1").await.unwrap();
    let w = e.pay.wallet(&u).await.unwrap();
    assert_eq!((w.balance_fen, w.available_fen, w.pending_fen), (4_000, 4_000, 0));
    e.assert_clean().await;
}

#[tokio::test]
async fn a_share_taken_but_not_paid_is_paid_by_the_sweep() {
    let e = env().await;
    let sender = e.funded_user("13500000031", "Sender", 5_000).await;
    let u = e.user("13500000032", "Claimer").await;
    let spec =
        RedPacketSpec { to_user: None, count: 2, total_fen: 1_000, mode: SplitMode::Fixed, greeting: String::new() };
    let p = e.pay.create_red_packet(&sender, spec, "rp").await.unwrap();
    let mut tx = e.t.db.begin().await.unwrap();
    sqlx::query("UPDATE red_packet_shares SET claimed_by = $1, claimed_at_ms = $2 WHERE packet_id = $3 AND seq = 1")
        .bind(&u)
        .bind(e.ctx.now_ms())
        .bind(&p.id)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    e.assert_clean().await; // escrow still holds the unpaid share
    assert_eq!(code_of(e.pay.claim(&p.id, &u).await), yizhan_pay::codes::ALREADY_CLAIMED);
    // A fresh claim is left to its own request; after a minute the sweep pays it.
    e.pay.refund_expired().await.unwrap();
    assert_eq!(e.balance(&u).await, 0);
    e.clock.advance_ms(61_000);
    e.pay.refund_expired().await.unwrap();
    assert_eq!(e.balance(&u).await, 500);
    e.pay.refund_expired().await.unwrap();
    assert_eq!(e.balance(&u).await, 500);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_packet_left_funding_is_opened_or_failed_by_the_sweep() {
    let e = env().await;
    let sender = e.funded_user("13500000041", "Sender", 5_000).await;
    let spec =
        RedPacketSpec { to_user: None, count: 2, total_fen: 1_000, mode: SplitMode::Fixed, greeting: String::new() };
    // The money reached escrow but the packet was not marked open.
    let paid = e.pay.create_red_packet(&sender, spec.clone(), "paid").await.unwrap();
    // The row was written but the request stopped before the transfer (simulated by
    // renaming its key, so the ledger knows no transfer for it; escrow is not checked here).
    let unpaid = e.pay.create_red_packet(&sender, spec, "unpaid").await.unwrap();
    let mut tx = e.t.db.begin().await.unwrap();
    sqlx::query("UPDATE red_packets SET status = 'funding' WHERE id IN ($1, $2)")
        .bind(&paid.id)
        .bind(&unpaid.id)
        .execute(tx.conn())
        .await
        .unwrap();
    sqlx::query("UPDATE red_packets SET idempotency_key = 'never-sent' WHERE id = $1")
        .bind(&unpaid.id)
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let u = e.user("13500000042", "Claimer").await;
    assert_eq!(code_of(e.pay.claim(&paid.id, &u).await), Code::NotFound);
    e.clock.advance_ms(61_000);
    e.pay.refund_expired().await.unwrap();
    assert_eq!(e.pay.red_packet(&paid.id).await.unwrap().status, "open");
    assert_eq!(e.pay.red_packet(&unpaid.id).await.unwrap().status, "failed");
    assert_eq!(e.pay.claim(&paid.id, &u).await.unwrap().amount_fen, 500);
    assert_eq!(code_of(e.pay.claim(&unpaid.id, &u).await), Code::NotFound);
}
