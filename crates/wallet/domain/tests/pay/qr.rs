use crate::common::*;
use yizhan_core::Code;
use yizhan_identity::OrgKind;
use yizhan_pay::emvco;
use yizhan_pay::Payee;

#[tokio::test]
async fn personal_and_merchant_codes_pay_the_right_account() {
    let e = env().await;
    let payer = e.funded_user("13900000001", "Ma Lin", 10_000).await;
    let friend = e.user("13900000002", "Guo Jing").await;
    let shop = e.org(OrgKind::Merchant, "Lao Wang Noodles").await;

    let code = e.pay.my_qr(&friend).await.unwrap();
    let parsed = emvco::parse(&code).unwrap();
    assert_eq!(parsed.amount_fen, None);
    // The code carries the name masked (any scanner reads it); the preview names the payee from our records.
    assert_eq!(parsed.merchant_name, "***g");
    let p = e.pay.qr_preview(&code).await.unwrap();
    assert_eq!((p.payee.clone(), p.payee_name.as_str(), p.amount_fen), (Payee::User(friend.clone()), "Guo Jing", None));
    let r = e.pay.qr_pay(&payer, &code, 300, "q1").await.unwrap();
    assert_eq!(r.payee, Payee::User(friend.clone()));
    assert_eq!(e.balance(&friend).await, 300);
    // The same code also works through transfer_to_user.
    e.pay.transfer_to_user(&payer, &code, 200, "", "q2").await.unwrap();
    assert_eq!(e.balance(&friend).await, 500);

    let open = e.pay.org_qr(&shop, None).await.unwrap();
    let preview = e.pay.qr_preview(&open).await.unwrap();
    assert_eq!(preview.payee_name, "Lao Wang Noodles");
    assert_eq!(emvco::parse(&open).unwrap().mcc, "5999");
    e.pay.qr_pay(&payer, &open, 1_800, "q3").await.unwrap();
    assert_eq!(e.org_balance(&shop).await, 1_800);

    let fixed = e.pay.org_qr(&shop, Some(2_500)).await.unwrap();
    assert!(fixed.contains("540525.00"));
    assert_eq!(e.pay.qr_preview(&fixed).await.unwrap().amount_fen, Some(2_500));
    let before = e.transfers().await;
    let err = e.pay.qr_pay(&payer, &fixed, 2_000, "q4").await.unwrap_err();
    assert_eq!(err.code, Code::ValidationFailed);
    assert_eq!(err.msg, yizhan_core::Msg::new("pay.fixed_amount_needed").fen("amount", 2_500));
    assert_eq!(e.transfers().await, before);
    e.pay.qr_pay(&payer, &fixed, 2_500, "q5").await.unwrap();
    assert_eq!(e.org_balance(&shop).await, 4_300);
    assert_eq!(e.balance(&payer).await, 10_000 - 300 - 200 - 1_800 - 2_500);
    // A retry pays once.
    e.pay.qr_pay(&payer, &fixed, 2_500, "q5").await.unwrap();
    assert_eq!(e.org_balance(&shop).await, 4_300);
    assert_eq!(code_of(e.pay.org_qr(&shop, Some(0)).await), Code::ValidationFailed);
    assert_eq!(code_of(e.pay.org_qr("no-such-org", None).await), Code::NotFound);
    e.assert_clean().await;
}

fn with_crc(body: &str) -> String {
    let b = format!("{body}6304");
    format!("{b}{:04X}", emvco::crc16_ccitt_false(b.as_bytes()))
}

#[tokio::test]
async fn tampered_and_forged_codes_are_refused_and_nothing_moves() {
    let e = env().await;
    let payer = e.funded_user("13900000003", "Ye Wen", 10_000).await;
    let shop = e.org(OrgKind::Merchant, "Tea House").await;
    let thief = e.user("13900000004", "Thief").await;
    let fixed = e.pay.org_qr(&shop, Some(5_000)).await.unwrap();
    let before = e.transfers().await;

    // One changed character: the CRC catches it.
    let mut chars: Vec<char> = fixed.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == '1' { '2' } else { '1' };
    let tampered: String = chars.into_iter().collect();
    assert_eq!(code_of(e.pay.qr_preview(&tampered).await), yizhan_pay::codes::QR_INVALID);
    assert_eq!(code_of(e.pay.qr_pay(&payer, &tampered, 5_000, "t1").await), yizhan_pay::codes::QR_INVALID);

    // A forged payee with a correct CRC: the signature catches it.
    let mut qr = emvco::parse(&fixed).unwrap();
    for f in qr.account.fields.iter_mut() {
        if f.0 == 1 {
            f.1 = "user".into();
        }
        if f.0 == 2 {
            f.1 = thief.clone();
        }
    }
    let forged = emvco::encode(&qr);
    assert!(emvco::parse(&forged).is_ok(), "the forgery is a well-formed code");
    let err = e.pay.qr_pay(&payer, &forged, 5_000, "t2").await.unwrap_err();
    assert_eq!(err.code, yizhan_pay::codes::QR_INVALID);
    assert_eq!(err.msg.key, "qr.bad_signature", "{}", err.msg);

    // The amount lowered with a recomputed CRC: also refused.
    let mut cheaper = emvco::parse(&fixed).unwrap();
    cheaper.amount_fen = Some(1);
    assert_eq!(code_of(e.pay.qr_pay(&payer, &emvco::encode(&cheaper), 1, "t3").await), yizhan_pay::codes::QR_INVALID);
    // The signature removed.
    let mut unsigned = emvco::parse(&fixed).unwrap();
    unsigned.account.fields.retain(|f| f.0 != 3);
    assert_eq!(
        code_of(e.pay.qr_pay(&payer, &emvco::encode(&unsigned), 5_000, "t4").await),
        yizhan_pay::codes::QR_INVALID
    );
    // Another network's code.
    let foreign = with_crc("00020101021126170013com.other.pay5204000053031565802CN5903Ada6007Beijing");
    let err = e.pay.qr_preview(&foreign).await.unwrap_err();
    assert_eq!(err.code, yizhan_pay::codes::QR_INVALID);
    assert_eq!(err.msg.key, "qr.not_ours", "{}", err.msg);
    // Foreign currency, garbage.
    let usd = fixed.replace("5303156", "5303840");
    assert_eq!(code_of(e.pay.qr_preview(&with_crc(&usd[..usd.len() - 8])).await), yizhan_pay::codes::QR_INVALID);
    assert_eq!(code_of(e.pay.qr_preview("hello").await), yizhan_pay::codes::QR_INVALID);
    assert_eq!(
        code_of(e.pay.transfer_to_user(&payer, "000201garbage", 100, "", "t5").await),
        yizhan_pay::codes::QR_INVALID
    );

    // Paying your own code.
    let mine = e.pay.my_qr(&payer).await.unwrap();
    assert_eq!(code_of(e.pay.qr_pay(&payer, &mine, 100, "t6").await), yizhan_ledger::codes::SELF_PAYMENT);
    // A code made under another platform key (another installation) is refused here.
    let other_ctx = yizhan_core::Ctx { vault: std::sync::Arc::new(yizhan_core::Vault::random()), ..e.ctx.clone() };
    let other = yizhan_pay::Pay::new(
        other_ctx,
        e.ledger.clone(),
        e.identity.clone(),
        e.audit.clone(),
        e.notify.clone(),
        e.gateway.clone(),
    );
    let alien = other.org_qr(&shop, None).await.unwrap();
    assert_eq!(code_of(e.pay.qr_pay(&payer, &alien, 100, "t7").await), yizhan_pay::codes::QR_INVALID);

    assert_eq!(e.transfers().await, before);
    assert_eq!(e.balance(&payer).await, 10_000);
    assert_eq!(e.org_balance(&shop).await, 0);
    assert_eq!(e.balance(&thief).await, 0);
    e.assert_clean().await;
}

#[tokio::test]
async fn paycodes_charge_once_and_expire() {
    let e = env().await;
    let customer = e.funded_user("13900000005", "Kong Yi", 10_000).await;
    let shop = e.org(OrgKind::Merchant, "Corner Shop").await;
    let other_shop = e.org(OrgKind::Merchant, "Other Shop").await;
    let cashier = e.staff(&shop, "13900000006", "Cashier").await;
    let other_cashier = e.staff(&other_shop, "13900000007", "Other Cashier").await;

    let pc = e.pay.create_paycode(&customer).await.unwrap();
    assert_eq!(pc.code.len(), 18);
    assert!(pc.code.starts_with("88") && pc.code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(pc.expires_at_ms, e.ctx.now_ms() + 60_000);
    // Only a keyed hash is stored.
    let stored: Vec<(String,)> =
        sqlx::query_as("SELECT code_hash FROM paycodes").fetch_all(&e.t.db.pool).await.unwrap();
    assert!(stored.iter().all(|(h,)| !h.contains(&pc.code) && h.len() == 64));

    let r = e.pay.merchant_charge(&cashier, &shop, &pc.code, 1_500, "m1").await.unwrap().receipt().unwrap();
    assert_eq!((r.amount_fen, r.payee_name.as_str()), (1_500, "Corner Shop"));
    assert_eq!(e.balance(&customer).await, 8_500);
    assert_eq!(e.org_balance(&shop).await, 1_500);
    // The merchant's retry gets the same receipt; a second charge is refused.
    let again = e.pay.merchant_charge(&cashier, &shop, &pc.code, 1_500, "m1").await.unwrap().receipt().unwrap();
    assert_eq!(again.transfer_id, r.transfer_id);
    assert_eq!(
        code_of(e.pay.merchant_charge(&cashier, &shop, &pc.code, 1_500, "m2").await),
        yizhan_pay::codes::CODE_USED
    );
    assert_eq!(
        code_of(e.pay.merchant_charge(&other_cashier, &other_shop, &pc.code, 100, "m3").await),
        yizhan_pay::codes::CODE_USED
    );
    assert_eq!(e.balance(&customer).await, 8_500);
    let inbox = e.notify.inbox(&customer, 10).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "pay.paycode_charged" && n.title.to_string().contains("Corner Shop")));

    // Expired.
    let pc2 = e.pay.create_paycode(&customer).await.unwrap();
    e.clock.advance_ms(60_001);
    assert_eq!(
        code_of(e.pay.merchant_charge(&cashier, &shop, &pc2.code, 100, "m4").await),
        yizhan_pay::codes::CODE_EXPIRED
    );
    // Unknown, malformed.
    assert_eq!(code_of(e.pay.merchant_charge(&cashier, &shop, "881234567890123456", 100, "m5").await), Code::NotFound);
    assert_eq!(code_of(e.pay.merchant_charge(&cashier, &shop, "12345", 100, "m6").await), Code::ValidationFailed);

    // Only staff of that organisation may charge into it.
    let pc3 = e.pay.create_paycode(&customer).await.unwrap();
    assert_eq!(code_of(e.pay.merchant_charge(&other_cashier, &shop, &pc3.code, 100, "m7").await), Code::Forbidden);
    let stranger = e.principal(&customer, "Kong Yi");
    assert_eq!(code_of(e.pay.merchant_charge(&stranger, &shop, &pc3.code, 100, "m8").await), Code::Forbidden);
    // Bad amounts leave the code usable.
    assert_eq!(code_of(e.pay.merchant_charge(&cashier, &shop, &pc3.code, 0, "m9").await), Code::ValidationFailed);
    assert_eq!(code_of(e.pay.merchant_charge(&cashier, &shop, &pc3.code, -1, "m9").await), Code::ValidationFailed);
    // Not enough money: refused, and the code can still be used for less.
    assert_eq!(
        code_of(e.pay.merchant_charge(&cashier, &shop, &pc3.code, 9_000, "m10").await),
        yizhan_ledger::codes::INSUFFICIENT_FUNDS
    );
    assert_eq!(e.balance(&customer).await, 8_500);
    e.pay.merchant_charge(&cashier, &shop, &pc3.code, 500, "m11").await.unwrap().receipt().unwrap();
    assert_eq!(e.balance(&customer).await, 8_000);
    assert_eq!(e.org_balance(&shop).await, 2_000);
    e.assert_clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pay_code_charged_twice_at_once_charges_once() {
    let e = env().await;
    let customer = e.verified_user("13900000008", "Lu Xun", 100_000).await;
    let shop = e.org(OrgKind::Merchant, "Busy Shop").await;
    let a = e.staff(&shop, "13900000009", "Till A").await;
    let b = e.staff(&shop, "13900000010", "Till B").await;
    for round in 0..5 {
        let pc = e.pay.create_paycode(&customer).await.unwrap();
        let mut tasks = Vec::new();
        for (i, who) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
            let pay = e.pay.clone();
            let shop = shop.clone();
            let code = pc.code.clone();
            tasks.push(tokio::spawn(async move {
                pay.merchant_charge(&who, &shop, &code, 1_000, &format!("r{round}-{i}")).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(err) => assert_eq!(err.code, yizhan_pay::codes::CODE_USED),
            }
        }
        assert_eq!(ok, 1, "round {round}");
    }
    assert_eq!(e.balance(&customer).await, 100_000 - 5 * 1_000);
    assert_eq!(e.org_balance(&shop).await, 5 * 1_000);
    e.assert_clean().await;
}
