//! Pay code charges above the operator's threshold wait for the customer;
//! the payment PIN; the code's status for its owner only.

use crate::common::*;
use yizhan_core::Code;
use yizhan_identity::{OrgKind, Principal};
use yizhan_pay::{Charge, PayCodeState, DEFAULT_PAYCODE_CONFIRM_ABOVE_FEN as LIMIT, PIN_MAX_FAILURES};

struct Shop {
    customer: String,
    shop: String,
    cashier: Principal,
}

async fn shop(e: &Env, n: u32, fen: i64) -> Shop {
    let customer = e.verified_user(&format!("1370000{n:04}"), "Customer", fen).await;
    let shop = e.org(OrgKind::Merchant, &format!("Shop {n}")).await;
    let cashier = e.staff(&shop, &format!("1371000{n:04}"), "Cashier").await;
    Shop { customer, shop, cashier }
}

fn arg<'a>(e: &'a yizhan_core::Error, name: &str) -> Option<&'a yizhan_core::Arg> {
    e.msg.args.iter().find(|(n, _)| n == name).map(|(_, a)| a)
}

fn pending(c: Charge) -> yizhan_pay::PendingCharge {
    match c {
        Charge::AwaitingConfirmation(p) => p,
        Charge::Paid(r) => panic!("expected to wait for the customer, got {r:?}"),
    }
}

#[tokio::test]
async fn up_to_the_threshold_money_moves_at_once_and_the_status_says_paid() {
    let e = env().await;
    let s = shop(&e, 1, 100_000).await;
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    assert_eq!(e.pay.paycode_status(&s.customer, &pc.id).await.unwrap().state, PayCodeState::Waiting);
    let r = e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, LIMIT, "c1").await.unwrap().receipt().unwrap();
    assert_eq!(e.balance(&s.customer).await, 100_000 - LIMIT);
    let st = e.pay.paycode_status(&s.customer, &pc.id).await.unwrap();
    assert_eq!(st.state, PayCodeState::Paid);
    assert_eq!(st.transfer_id.as_deref(), Some(r.transfer_id.as_str()));
    assert_eq!((st.amount_fen, st.payee_name.as_deref()), (Some(LIMIT), Some("Shop 1")));
    assert_eq!(st.paid_at_ms, Some(r.at_ms));
    // Nothing waits to be confirmed.
    assert_eq!(code_of(e.pay.confirm_paycode(&s.customer, &pc.id, None).await), yizhan_pay::codes::ALREADY_PAID);
    e.assert_clean().await;
}

#[tokio::test]
async fn above_the_threshold_the_customer_confirms_and_money_moves_once() {
    let e = env().await;
    let s = shop(&e, 2, 100_000).await;
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    let before = e.transfers().await;
    let p = pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "c1").await.unwrap());
    assert_eq!((p.amount_fen, p.payee_name.as_str()), (60_000, "Shop 2"));
    assert_eq!(p.confirm_expires_at_ms, e.ctx.now_ms() + yizhan_pay::qrpay::PAYCODE_CONFIRM_WINDOW_MS);
    assert_eq!(e.transfers().await, before);
    assert_eq!(e.balance(&s.customer).await, 100_000);
    // The till asks again: still waiting, and another charge of the code is refused.
    pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "c1").await.unwrap());
    assert_eq!(
        code_of(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "c2").await),
        yizhan_pay::codes::CODE_USED
    );
    let st = e.pay.paycode_status(&s.customer, &pc.id).await.unwrap();
    assert_eq!(st.state, PayCodeState::AwaitingConfirmation);
    assert_eq!((st.amount_fen, st.payee_name.as_deref(), st.pin_required), (Some(60_000), Some("Shop 2"), false));
    let inbox = e.notify.inbox(&s.customer, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "pay.paycode_confirm"));

    let r = e.pay.confirm_paycode(&s.customer, &pc.id, None).await.unwrap();
    assert_eq!(r.amount_fen, 60_000);
    assert_eq!(e.balance(&s.customer).await, 40_000);
    assert_eq!(e.org_balance(&s.shop).await, 60_000);
    // Confirming again and the till's retry answer the same receipt; money moved once.
    assert_eq!(e.pay.confirm_paycode(&s.customer, &pc.id, None).await.unwrap().transfer_id, r.transfer_id);
    let till = e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "c1").await.unwrap().receipt().unwrap();
    assert_eq!(till.transfer_id, r.transfer_id);
    assert_eq!(e.transfers().await, before + 1);
    assert_eq!(e.pay.paycode_status(&s.customer, &pc.id).await.unwrap().state, PayCodeState::Paid);
    assert_eq!(code_of(e.pay.decline_paycode(&s.customer, &pc.id).await), yizhan_pay::codes::ALREADY_PAID);
    let inbox = e.notify.inbox(&s.customer, 10).await.unwrap();
    assert_eq!(inbox.iter().filter(|n| n.kind == "pay.paycode_charged").count(), 1);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_declined_or_lapsed_charge_moves_nothing() {
    let e = env().await;
    let s = shop(&e, 3, 100_000).await;
    let before = e.transfers().await;
    // Declined: the till hears so, and a later confirmation cannot pay.
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 70_000, "d1").await.unwrap());
    let st = e.pay.decline_paycode(&s.customer, &pc.id).await.unwrap();
    assert_eq!(st.state, PayCodeState::Declined);
    assert_eq!(e.pay.decline_paycode(&s.customer, &pc.id).await.unwrap().state, PayCodeState::Declined);
    assert_eq!(
        code_of(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 70_000, "d1").await),
        yizhan_pay::codes::PAYCODE_DECLINED
    );
    assert_eq!(code_of(e.pay.confirm_paycode(&s.customer, &pc.id, None).await), yizhan_pay::codes::PAYCODE_DECLINED);

    // Lapsed: the window passes with no answer.
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 70_000, "x1").await.unwrap());
    e.clock.advance_ms(yizhan_pay::qrpay::PAYCODE_CONFIRM_WINDOW_MS);
    assert_eq!(e.pay.paycode_status(&s.customer, &pc.id).await.unwrap().state, PayCodeState::Expired);
    assert_eq!(code_of(e.pay.confirm_paycode(&s.customer, &pc.id, None).await), yizhan_pay::codes::CODE_EXPIRED);
    assert_eq!(code_of(e.pay.decline_paycode(&s.customer, &pc.id).await), yizhan_pay::codes::CODE_EXPIRED);
    assert_eq!(
        code_of(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 70_000, "x1").await),
        yizhan_pay::codes::CODE_EXPIRED
    );
    assert_eq!(e.transfers().await, before);
    assert_eq!(e.balance(&s.customer).await, 100_000);
    assert_eq!(e.org_balance(&s.shop).await, 0);
    e.assert_clean().await;
}

#[tokio::test]
async fn a_confirmed_charge_without_the_money_fails_and_the_till_hears_why() {
    let e = env().await;
    let s = shop(&e, 4, 60_000).await;
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "f1").await.unwrap());
    // The money leaves by another way meanwhile.
    e.user("13720000004", "Friend").await;
    e.pay.transfer_to_user(&s.customer, "13720000004", 30_000, "", "away").await.unwrap();
    assert_eq!(
        code_of(e.pay.confirm_paycode(&s.customer, &pc.id, None).await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    assert_eq!(e.pay.paycode_status(&s.customer, &pc.id).await.unwrap().state, PayCodeState::Failed);
    assert_eq!(
        code_of(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "f1").await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    assert_eq!(e.balance(&s.customer).await, 30_000);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirmation_racing_a_decline_has_one_outcome() {
    let e = env().await;
    let s = shop(&e, 5, 500_000).await;
    let mut paid = 0;
    for round in 0..6 {
        let pc = e.pay.create_paycode(&s.customer).await.unwrap();
        pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, &format!("r{round}")).await.unwrap());
        let mut confirms = Vec::new();
        let mut declines = Vec::new();
        for _ in 0..3 {
            let (pay, who, id) = (e.pay.clone(), s.customer.clone(), pc.id.clone());
            confirms.push(tokio::spawn(async move { pay.confirm_paycode(&who, &id, None).await }));
            let (pay, who, id) = (e.pay.clone(), s.customer.clone(), pc.id.clone());
            declines.push(tokio::spawn(async move { pay.decline_paycode(&who, &id).await }));
        }
        let mut confirmed = Vec::new();
        for t in confirms {
            if let Ok(r) = t.await.unwrap() {
                confirmed.push(r.transfer_id);
            }
        }
        let declined = {
            let mut n = 0;
            for t in declines {
                if t.await.unwrap().is_ok() {
                    n += 1;
                }
            }
            n
        };
        let state = e.pay.paycode_status(&s.customer, &pc.id).await.unwrap().state;
        match state {
            PayCodeState::Paid => {
                assert_eq!(declined, 0, "round {round}");
                assert!(!confirmed.is_empty() && confirmed.iter().all(|t| *t == confirmed[0]), "round {round}");
                paid += 1;
            }
            PayCodeState::Declined => assert!(confirmed.is_empty() && declined > 0, "round {round}"),
            other => panic!("round {round}: {other:?}"),
        }
    }
    assert_eq!(e.balance(&s.customer).await, 500_000 - paid * 60_000);
    assert_eq!(e.org_balance(&s.shop).await, paid * 60_000);
    e.assert_clean().await;
}

#[tokio::test]
async fn someone_elses_pay_code_is_not_found() {
    let e = env().await;
    let s = shop(&e, 6, 100_000).await;
    let thief = e.verified_user("13720000006", "Thief", 0).await;
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "t1").await.unwrap());
    assert_eq!(code_of(e.pay.paycode_status(&thief, &pc.id).await), Code::NotFound);
    assert_eq!(code_of(e.pay.confirm_paycode(&thief, &pc.id, None).await), Code::NotFound);
    assert_eq!(code_of(e.pay.decline_paycode(&thief, &pc.id).await), Code::NotFound);
    assert_eq!(code_of(e.pay.paycode_status(&s.customer, "no-such-id").await), Code::NotFound);
    assert_eq!(e.pay.paycode_status(&s.customer, &pc.id).await.unwrap().state, PayCodeState::AwaitingConfirmation);
    assert_eq!(e.balance(&s.customer).await, 100_000);
}

#[tokio::test]
async fn the_payment_pin_needs_the_password_and_wrong_pins_lock_it_for_the_hour() {
    let e = env().await;
    let s = shop(&e, 7, 500_000).await;
    let field = |r: yizhan_core::Result<()>| {
        let err = r.unwrap_err();
        (err.code, err.fields.first().map(|f| (f.field.clone(), f.msg.key.clone())))
    };
    // Setting one asks for the account password, and a PIN of six digits, not a run.
    assert_eq!(
        field(e.pay.set_payment_pin(&s.customer, "wrong password", "274951").await),
        (Code::ValidationFailed, Some(("password".into(), "pay.pin.wrong_password".into())))
    );
    for bad in ["12345", "1234567", "12a456", "111111", "123456", "987654"] {
        assert_eq!(code_of(e.pay.set_payment_pin(&s.customer, PASSWORD, bad).await), Code::ValidationFailed, "{bad}");
    }
    assert!(!e.pay.has_payment_pin(&s.customer).await.unwrap());
    e.pay.set_payment_pin(&s.customer, PASSWORD, "274951").await.unwrap();
    assert!(e.pay.has_payment_pin(&s.customer).await.unwrap());
    let stored: (String,) = sqlx::query_as("SELECT pin_hash FROM payment_pins").fetch_one(&e.t.db.pool).await.unwrap();
    assert!(stored.0.starts_with("$argon2id$") && !stored.0.contains("274951"));

    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "p1").await.unwrap());
    assert!(e.pay.paycode_status(&s.customer, &pc.id).await.unwrap().pin_required);
    assert_eq!(code_of(e.pay.confirm_paycode(&s.customer, &pc.id, None).await), Code::ValidationFailed);
    for i in 0..PIN_MAX_FAILURES {
        let err = e.pay.confirm_paycode(&s.customer, &pc.id, Some("000001")).await.unwrap_err();
        assert_eq!(err.code, yizhan_pay::codes::WRONG_PIN, "try {i}");
        assert_eq!(arg(&err, "left"), Some(&yizhan_core::Arg::Int(PIN_MAX_FAILURES - 1 - i)));
    }
    // Locked: even the right PIN is refused, and the answer says until when.
    let locked_at = e.ctx.now_ms();
    let err = e.pay.confirm_paycode(&s.customer, &pc.id, Some("274951")).await.unwrap_err();
    assert_eq!(err.code, Code::TooManyAttempts);
    assert_eq!(err.msg.key, "pay.pin.locked");
    assert_eq!(arg(&err, "until"), Some(&yizhan_core::Arg::Time(locked_at + yizhan_pay::PIN_WINDOW_MS)));
    assert_eq!(err.retry_after_s, Some(3600));
    assert_eq!(e.balance(&s.customer).await, 500_000);

    // After the hour a new charge is confirmed with the right PIN.
    e.clock.advance_ms(yizhan_pay::PIN_WINDOW_MS);
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    pending(e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 60_000, "p2").await.unwrap());
    assert_eq!(code_of(e.pay.confirm_paycode(&s.customer, &pc.id, Some("000002")).await), yizhan_pay::codes::WRONG_PIN);
    e.pay.confirm_paycode(&s.customer, &pc.id, Some("274951")).await.unwrap();
    assert_eq!(e.balance(&s.customer).await, 440_000);

    // Wrong passwords are counted too.
    for _ in 0..PIN_MAX_FAILURES {
        assert_eq!(code_of(e.pay.set_payment_pin(&s.customer, "nope", "274951").await), Code::ValidationFailed);
    }
    assert_eq!(code_of(e.pay.set_payment_pin(&s.customer, "nope", "274951").await), Code::TooManyAttempts);
    assert_eq!(code_of(e.pay.set_payment_pin(&s.customer, PASSWORD, "274951").await), Code::TooManyAttempts);
    // A below-threshold charge never asks for the PIN.
    let pc = e.pay.create_paycode(&s.customer).await.unwrap();
    e.pay.merchant_charge(&s.cashier, &s.shop, &pc.code, 1_000, "p3").await.unwrap().receipt().unwrap();
    // A deleted account's PIN goes with its other personal data.
    e.pay.erase_personal(&s.customer).await.unwrap();
    assert!(!e.pay.has_payment_pin(&s.customer).await.unwrap());
    e.assert_clean().await;
}
