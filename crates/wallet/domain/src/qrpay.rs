//! QR payments: static codes people and organisations show (EMVCo payloads
//! whose payee reference is signed with the vault key), and the one-time
//! numeric pay codes customers show to a merchant's scanner.

use crate::confirm::{self, Charge, PendingCharge};
use crate::emvco::{self, MerchantAccount, MerchantQr, YIZHAN_GUID};
use crate::{category, check_amount, check_idempotency_key, scoped_key, Pay, PayCode, Payee, QrPreview, Receipt};
use yizhan_core::error::is_unique_violation;
use yizhan_core::{Code, Error, Msg, Result};
use yizhan_identity::{Org, OrgKind, Principal, Role};
use yizhan_ledger::TransferSpec;
use yizhan_notify::{Message, Target};

/// Template tag of our merchant account information.
const TEMPLATE_TAG: u8 = 26;
const SUB_KIND: u8 = 1;
const SUB_ID: u8 = 2;
const SUB_SIG: u8 = 3;
/// Bytes of the MAC kept in the code (96 bits).
const SIG_BYTES: usize = 12;
const MAC_DOMAIN: &str = "pay.qr.v1";

/// How long a customer's pay code may be used.
pub const PAYCODE_TTL_MS: i64 = 60_000;
/// Pay codes start with these digits, so scanners can tell them from other networks'.
pub const PAYCODE_PREFIX: &str = "88";
pub const PAYCODE_DIGITS: usize = 18;

/// How long a customer has to confirm a charge above the threshold. Longer
/// than the code's own minute: a charge made in its last seconds still
/// leaves time to read it and type a PIN.
pub const PAYCODE_CONFIRM_WINDOW_MS: i64 = 90_000;

/// A pay code that could not be taken: whose it is and how it was used.
#[derive(sqlx::FromRow)]
struct UsedCodeRow {
    user_id: String,
    used_at_ms: Option<i64>,
    charge_key: Option<String>,
    amount_fen: Option<i64>,
    confirm_state: Option<String>,
    confirm_expires_at_ms: Option<i64>,
    failure_code: Option<String>,
}

fn mcc_for(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Merchant => "5999",
        OrgKind::Hospital => "8062",
        OrgKind::CityDepartment => "9399",
        OrgKind::MobilityOperator => "4121",
        OrgKind::Court => "9211",
    }
}

/// What a static code's signature covers: the payee and the fixed amount, if any.
fn payee_message(payee: &Payee, amount_fen: Option<i64>) -> Vec<u8> {
    let amount = amount_fen.map(|a| a.to_string()).unwrap_or_default();
    format!("{}:{}:{}", payee.kind_str(), payee.id(), amount).into_bytes()
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl Pay {
    fn sign_payee(&self, payee: &Payee, amount_fen: Option<i64>) -> String {
        let mac = self.ctx().vault.mac(MAC_DOMAIN, &payee_message(payee, amount_fen));
        hex::encode(&mac[..SIG_BYTES])
    }

    fn payload_for(&self, payee: &Payee, amount_fen: Option<i64>, name: &str, city: &str, mcc: &str) -> Result<String> {
        let qr = MerchantQr {
            account: MerchantAccount {
                tag: TEMPLATE_TAG,
                guid: YIZHAN_GUID.into(),
                fields: vec![
                    (SUB_KIND, payee.kind_str().into()),
                    (SUB_ID, payee.id().into()),
                    (SUB_SIG, self.sign_payee(payee, amount_fen)),
                ],
            },
            mcc: mcc.into(),
            amount_fen,
            merchant_name: cut(name, emvco::MAX_NAME_CHARS),
            merchant_city: cut(city, emvco::MAX_CITY_CHARS),
            other: vec![],
        };
        qr.validate()?;
        Ok(emvco::encode(&qr))
    }

    /// The person's static code to receive money (the payer types the amount).
    /// It carries the person's name masked, as the payer's preview shows it:
    /// any scanner can read a code's name field.
    pub async fn my_qr(&self, user_id: &str) -> Result<String> {
        let profile = self.identity().profile(user_id).await?;
        let city = profile.home_city_name.unwrap_or_else(|| "China".into());
        let name = yizhan_identity::mask_name(&profile.name);
        self.payload_for(&Payee::User(profile.user_id), None, &name, &city, "0000")
    }

    /// An organisation's code; with an amount it is a fixed-amount code. Anyone may
    /// ask for it (it is printed at the counter); it pays only the organisation.
    pub async fn org_qr(&self, org_id: &str, amount_fen: Option<i64>) -> Result<String> {
        if let Some(a) = amount_fen {
            check_amount(a)?;
        }
        let org = self.identity().org(org_id).await?;
        let city = self.identity().city(&org.city_id).await.map(|c| c.name).unwrap_or_else(|_| "China".into());
        self.payload_for(&Payee::Org(org.id), amount_fen, &org.name, &city, mcc_for(org.kind))
    }

    /// Read and check one of our codes: CRC, shape, our template, and our signature.
    pub fn decode_qr(&self, payload: &str) -> Result<(Payee, Option<i64>)> {
        let qr = emvco::parse(payload)?;
        if qr.account.guid != YIZHAN_GUID {
            return Err(Error::new(crate::codes::QR_INVALID, "qr.not_ours"));
        }
        let bad = |key: &str| Error::new(crate::codes::QR_INVALID, format!("qr.{key}"));
        let id = qr.account.field(SUB_ID).ok_or_else(|| bad("no_payee"))?.to_string();
        let payee = match qr.account.field(SUB_KIND) {
            Some("user") => Payee::User(id),
            Some("org") => Payee::Org(id),
            _ => return Err(bad("unknown_payee_kind")),
        };
        let sig = qr.account.field(SUB_SIG).ok_or_else(|| bad("unsigned"))?;
        // Checked in constant time, under the key now or (for codes printed
        // before a key rotation, while the operator keeps it) the previous one.
        let tag = hex::decode(sig).unwrap_or_default();
        if tag.len() != SIG_BYTES
            || !self.ctx().vault.mac_matches(MAC_DOMAIN, &payee_message(&payee, qr.amount_fen), &tag)
        {
            return Err(bad("bad_signature"));
        }
        Ok((payee, qr.amount_fen))
    }

    /// What the payer sees after scanning: who is paid (from our records) and the fixed amount, if any.
    pub async fn qr_preview(&self, payload: &str) -> Result<QrPreview> {
        let (payee, amount_fen) = self.decode_qr(payload)?;
        let payee_name = match &payee {
            Payee::User(id) => {
                self.live_user_name(id).await.map_err(|_| Error::new(Code::NotFound, "pay.payee_gone"))?
            }
            Payee::Org(id) => {
                self.identity().org(id).await.map_err(|_| Error::new(Code::NotFound, "pay.payee_gone"))?.name
            }
        };
        Ok(QrPreview { payee, payee_name, amount_fen })
    }

    /// Pay a scanned static code. A fixed-amount code must be paid with exactly its amount.
    pub async fn qr_pay(
        &self,
        payer_user_id: &str,
        payload: &str,
        amount_fen: i64,
        idempotency_key: &str,
    ) -> Result<Receipt> {
        check_amount(amount_fen)?;
        check_idempotency_key(idempotency_key)?;
        let preview = self.qr_preview(payload).await?;
        self.pay_payee(payer_user_id, &preview, amount_fen, "", idempotency_key, category::QR).await
    }

    // ---- customer-presented pay codes ----

    fn paycode_hash(&self, code: &str) -> String {
        self.ctx().vault.blind_index("paycode", code)
    }

    /// A fresh one-time code (18 digits) valid for 60 seconds. Only its keyed hash is stored.
    pub async fn create_paycode(&self, user_id: &str) -> Result<PayCode> {
        self.live_user_name(user_id).await?;
        self.ensure_wallet(user_id).await?;
        let now = self.ctx().now_ms();
        let expires_at_ms = now + PAYCODE_TTL_MS;
        for _ in 0..5 {
            let random = self.ctx().rng.below(10u64.pow(16));
            let code = format!("{PAYCODE_PREFIX}{random:016}");
            let mut id = [0u8; 16];
            self.ctx().rng.fill(&mut id);
            let id = hex::encode(id);
            let mut tx = self.ctx().db.begin().await?;
            // Old codes nobody used are of no further use.
            sqlx::query("DELETE FROM paycodes WHERE user_id = $1 AND used_at_ms IS NULL AND expires_at_ms < $2")
                .bind(user_id)
                .bind(now - yizhan_core::time::DAY_MS)
                .execute(tx.conn())
                .await?;
            let r = sqlx::query(
                "INSERT INTO paycodes (code_hash, user_id, created_at_ms, expires_at_ms, public_id)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(self.paycode_hash(&code))
            .bind(user_id)
            .bind(now)
            .bind(expires_at_ms)
            .bind(&id)
            .execute(tx.conn())
            .await;
            match r {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(PayCode { id, code, expires_at_ms });
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal(anyhow::anyhow!("could not draw a unique pay code")))
    }

    /// A merchant's staff charges a customer's pay code. The code is taken by one
    /// conditional UPDATE, so of two charges at once exactly one gets it. Above
    /// the operator's threshold ([`crate::PayConfig`]) no money moves yet: the
    /// charge waits for the customer to confirm it, and the same charge again
    /// (same organisation, key and amount) answers how it stands.
    pub async fn merchant_charge(
        &self,
        actor: &Principal,
        org_id: &str,
        code: &str,
        amount_fen: i64,
        idempotency_key: &str,
    ) -> Result<Charge> {
        let amount_fen = check_amount(amount_fen)?;
        let idem = check_idempotency_key(idempotency_key)?;
        self.identity().require_staff(actor, org_id, Role::Operator).await?;
        let code = code.trim();
        if code.len() != PAYCODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::field_msg("code", Msg::new("pay.paycode.digits").int("digits", PAYCODE_DIGITS as i64)));
        }
        let org = self.identity().org(org_id).await?;
        let hash = self.paycode_hash(code);
        let key = scoped_key("org", org_id, "paycode", idem);
        let now = self.ctx().now_ms();
        let needs_confirmation = amount_fen > self.config().paycode_confirm_above_fen;
        let confirm_until = now + PAYCODE_CONFIRM_WINDOW_MS;

        let mut tx = self.ctx().db.begin().await?;
        let taken: Option<(String,)> = sqlx::query_as(
            "UPDATE paycodes SET used_at_ms = $1, used_by_org_id = $2, charge_key = $3, amount_fen = $4,
                 confirm_state = $6, confirm_expires_at_ms = $7
             WHERE code_hash = $5 AND used_at_ms IS NULL AND expires_at_ms > $1
             RETURNING user_id",
        )
        .bind(now)
        .bind(org_id)
        .bind(&key)
        .bind(amount_fen)
        .bind(&hash)
        .bind(needs_confirmation.then_some(confirm::AWAITING))
        .bind(needs_confirmation.then_some(confirm_until))
        .fetch_optional(tx.conn())
        .await?;
        tx.commit().await?;

        let pending = |confirm_expires_at_ms: i64| {
            Charge::AwaitingConfirmation(PendingCharge {
                amount_fen,
                payee: Payee::Org(org.id.clone()),
                payee_name: org.name.clone(),
                confirm_expires_at_ms,
            })
        };
        let customer = match taken {
            Some((user_id,)) if needs_confirmation => {
                self.ask_to_confirm(&user_id, &hash, amount_fen, &org.name).await;
                return Ok(pending(confirm_until));
            }
            Some((user_id,)) => user_id,
            None => {
                let row: Option<UsedCodeRow> = sqlx::query_as(
                    "SELECT user_id, used_at_ms, charge_key, amount_fen, confirm_state, confirm_expires_at_ms,
                            failure_code
                     FROM paycodes WHERE code_hash = $1",
                )
                .bind(&hash)
                .fetch_optional(&self.ctx().db.pool)
                .await?;
                let Some(row) = row else { return Err(Error::not_found("pay_code")) };
                let same_key = row.charge_key.as_deref() == Some(key.as_str());
                match (row.used_at_ms, same_key) {
                    // The same charge again (a retry): how it stands, finished if it may be.
                    (Some(_), true) if row.amount_fen == Some(amount_fen) => {
                        match (row.confirm_state.as_deref(), row.confirm_expires_at_ms) {
                            (None | Some(confirm::CONFIRMED), _) => row.user_id,
                            (Some(confirm::AWAITING), Some(until)) if until > now => return Ok(pending(until)),
                            (Some(confirm::AWAITING), _) => {
                                return Err(Error::new(crate::codes::CODE_EXPIRED, "pay.paycode.confirm_expired"))
                            }
                            (Some(confirm::DECLINED), _) => {
                                return Err(Error::new(crate::codes::PAYCODE_DECLINED, "pay.paycode.declined"))
                            }
                            (Some(_), _) => return Err(confirm::failure(row.failure_code.as_deref())),
                        }
                    }
                    (Some(_), true) => return Err(Error::new(Code::IdempotencyKeyReused, "pay.paycode.key_reused")),
                    (Some(_), false) => return Err(Error::new(crate::codes::CODE_USED, "pay.paycode.used")),
                    (None, _) => return Err(Error::new(crate::codes::CODE_EXPIRED, "pay.paycode.expired")),
                }
            }
        };
        self.finish_paycode(&customer, &org, &hash, &key, amount_fen).await.map(Charge::Paid)
    }

    /// Move the money of a pay code taken by `key` (the cashier's charge, or
    /// the customer's confirmation of it), once, and tell the customer.
    pub(crate) async fn finish_paycode(
        &self,
        customer: &str,
        org: &Org,
        hash: &str,
        key: &str,
        amount_fen: i64,
    ) -> Result<Receipt> {
        let from = self.ensure_wallet(customer).await?;
        let to = self.ensure_org(&org.id).await?;
        // The customer is told once, by the request that moved the money.
        // The ledger's key names the code itself: a code moves money at most once,
        // whatever keys the merchant's tills send.
        let ledger_key = format!("paycode:{hash}");
        let replay = self.ledger().transfer_by_idempotency_key(&ledger_key).await?.is_some();
        let moved = async {
            // The customer pays: the limit is theirs, counted once per code.
            self.reserve_limit(customer, crate::Operation::Payment, amount_fen, &ledger_key).await?;
            self.transfer(
                TransferSpec::new(from, to, amount_fen, category::PAYCODE)
                    .with_memo(format!("paycode org:{}", org.id))
                    .with_idempotency_key(ledger_key.clone()),
            )
            .await
        };
        let t = match moved.await {
            Ok(t) => t,
            Err(e) => {
                self.give_back_if_refused(&ledger_key, &e).await;
                if e.code != Code::Internal {
                    let mut tx = self.ctx().db.begin().await?;
                    // Refused for good (e.g. not enough money): a code charged without
                    // confirmation may be used again; a confirmed one has failed.
                    sqlx::query(
                        "UPDATE paycodes SET used_at_ms = NULL, used_by_org_id = NULL, charge_key = NULL, amount_fen = NULL
                         WHERE code_hash = $1 AND charge_key = $2 AND transfer_id IS NULL AND confirm_state IS NULL",
                    )
                    .bind(hash)
                    .bind(key)
                    .execute(tx.conn())
                    .await?;
                    sqlx::query(
                        "UPDATE paycodes SET confirm_state = $3, failure_code = $4
                         WHERE code_hash = $1 AND charge_key = $2 AND transfer_id IS NULL AND confirm_state = $5",
                    )
                    .bind(hash)
                    .bind(key)
                    .bind(confirm::FAILED)
                    .bind(e.code.as_str())
                    .bind(confirm::CONFIRMED)
                    .execute(tx.conn())
                    .await?;
                    tx.commit().await?;
                }
                return Err(e);
            }
        };
        let mut tx = self.ctx().db.begin().await?;
        sqlx::query("UPDATE paycodes SET transfer_id = $1, paid_at_ms = $2 WHERE code_hash = $3")
            .bind(&t.id)
            .bind(t.created_at_ms)
            .bind(hash)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        if !replay {
            self.tell(
                customer,
                Message {
                    kind: "pay.paycode_charged".into(),
                    title: Msg::new("pay.notice.paycode.title").fen("amount", amount_fen).text("org", org.name.clone()),
                    body: Msg::new("pay.notice.paycode.body").fen("amount", amount_fen).text("org", org.name.clone()),
                    target: Some(Target::new("transfer", &t.id)),
                },
            )
            .await;
        }
        Ok(Receipt {
            transfer_id: t.id,
            amount_fen,
            category: category::PAYCODE.into(),
            payee: Payee::Org(org.id.clone()),
            payee_name: org.name.clone(),
            at_ms: t.created_at_ms,
        })
    }
}
