//! Real-name verification with proof, car plates bound with proof, and the
//! disputes that settle who a number or a plate belongs to.
//!
//! What may be learnt from the answers: a claimant first has to pass the
//! [`IdentityVerifier`] for the name and number (or the vehicle registration)
//! they type, and only then is the blind index consulted. An attacker who
//! types someone's number with a wrong name gets "no match", whether or not
//! the number is on the platform; only someone the verifier matched (the real
//! holder of the name and number, as far as the authority can tell) hears
//! that it is bound to another account, and is offered a dispute. The holder
//! is told of every dispute and of every binding that moves.

use crate::types::{normalize_plate, IdNumber, PersonName};
use crate::verifier::VerifyOutcome;
use crate::{codes, collect, Identity, Profile, UserRef, UserRefRow, VERIFICATION_IN_PERSON, VERIFICATION_REAL_NAME};
use serde::{Deserialize, Serialize};
use yizhan_audit::NewAccess;
use yizhan_core::error::is_unique_violation;
use yizhan_core::time::{days_from_civil, CST_OFFSET_MS, DAY_MS};
use yizhan_core::{Code, Error, FieldError, Msg, Result};
use yizhan_notify::{Message, Target};

use crate::types::{OrgKind, Role};
use crate::Principal;

/// Disputes a page shows at most.
pub const MAX_DISPUTES_PAGE: i64 = 100;
pub const DEFAULT_DISPUTES_PAGE: i64 = 50;
/// A person's own disputes listed at most (in the export and on the profile).
const MAX_OWN_DISPUTES: i64 = 200;

/// A car plate bound to a person with proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vehicle {
    pub plate: String,
    /// The last 4 digits of the registration certificate that proved it.
    pub certificate_last4: String,
    /// "verifier:<name>" or "counter:<org id>".
    pub verified_by: String,
    pub verified_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeKind {
    IdNumber,
    Plate,
}

impl DisputeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeKind::IdNumber => "id_number",
            DisputeKind::Plate => "plate",
        }
    }

    pub fn parse(s: &str) -> Result<DisputeKind> {
        match s {
            "id_number" => Ok(DisputeKind::IdNumber),
            "plate" => Ok(DisputeKind::Plate),
            _ => Err(Error::field("kind", "identity.dispute.kind_invalid")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    Open,
    Upheld,
    Rejected,
    /// The claimant deleted their account.
    Withdrawn,
}

impl DisputeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DisputeStatus::Open => "open",
            DisputeStatus::Upheld => "upheld",
            DisputeStatus::Rejected => "rejected",
            DisputeStatus::Withdrawn => "withdrawn",
        }
    }

    fn from_db(s: &str) -> Result<DisputeStatus> {
        match s {
            "open" => Ok(DisputeStatus::Open),
            "upheld" => Ok(DisputeStatus::Upheld),
            "rejected" => Ok(DisputeStatus::Rejected),
            "withdrawn" => Ok(DisputeStatus::Withdrawn),
            _ => Err(Error::internal(anyhow::anyhow!("unknown dispute status {s:?}"))),
        }
    }
}

/// A dispute as its claimant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dispute {
    pub id: String,
    pub kind: DisputeKind,
    /// The masked identity number, or the plate.
    pub subject: String,
    pub status: DisputeStatus,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
}

/// A dispute as city-department staff see it: who claims and who holds (as
/// anyone choosing whom to pay sees a person: name, masked login), and only
/// enough of the subject to match it with the card or registration at a
/// counter (the last 4 characters of the number, the plate's ends). Listing
/// is therefore no read of personal data; deciding writes both access logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffDispute {
    pub id: String,
    pub kind: DisputeKind,
    /// "**************123X", or "浙A***45".
    pub subject: String,
    pub status: DisputeStatus,
    pub claimant: UserRef,
    pub holder: UserRef,
    /// What the claimant showed: "verifier:<name>".
    pub evidence: String,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisputePage {
    pub items: Vec<StaffDispute>,
    /// Pass as `after` for the next page.
    pub next_cursor: Option<String>,
}

/// What a claimant claims.
#[derive(Debug, Clone, Copy)]
pub enum Claim<'a> {
    IdNumber { name: &'a str, id_number: &'a str },
    Plate { plate: &'a str, certificate: &'a str },
}

#[derive(sqlx::FromRow)]
struct DisputeRow {
    id: String,
    kind: String,
    subject_key: String,
    claimant_user_id: String,
    holder_user_id: String,
    claimant_name: Option<String>,
    id_cipher: Option<String>,
    id_masked: Option<String>,
    certificate_index: Option<String>,
    certificate_last4: Option<String>,
    evidence: String,
    status: String,
    opened_at_ms: i64,
    resolved_at_ms: Option<i64>,
}

const DISPUTE_COLS: &str = "id, kind, subject_key, claimant_user_id, holder_user_id, claimant_name, id_cipher, \
     id_masked, certificate_index, certificate_last4, evidence, status, opened_at_ms, resolved_at_ms";

impl DisputeRow {
    fn kind(&self) -> Result<DisputeKind> {
        DisputeKind::parse(&self.kind).map_err(|_| Error::internal(anyhow::anyhow!("unknown dispute kind")))
    }

    /// The masked number or the plate (a plate's key is the plate itself).
    fn subject(&self) -> String {
        match self.kind.as_str() {
            "plate" => self.subject_key.clone(),
            _ => self.id_masked.clone().unwrap_or_else(|| "******".into()),
        }
    }

    /// What staff see of the subject (see [`StaffDispute`]).
    fn staff_subject(&self) -> String {
        let chars: Vec<char> = self.subject().chars().collect();
        let n = chars.len();
        match self.kind.as_str() {
            "plate" if n > 4 => {
                format!("{}***{}", chars[..2].iter().collect::<String>(), chars[n - 2..].iter().collect::<String>())
            }
            _ if n >= 4 => format!("{}{}", "*".repeat(n - 4), chars[n - 4..].iter().collect::<String>()),
            _ => "*".repeat(n),
        }
    }

    fn own(&self) -> Result<Dispute> {
        Ok(Dispute {
            id: self.id.clone(),
            kind: self.kind()?,
            subject: self.subject(),
            status: DisputeStatus::from_db(&self.status)?,
            opened_at_ms: self.opened_at_ms,
            resolved_at_ms: self.resolved_at_ms,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VehicleRow {
    plate: String,
    certificate_last4: String,
    verified_by: String,
    verified_at_ms: i64,
}

impl From<VehicleRow> for Vehicle {
    fn from(r: VehicleRow) -> Vehicle {
        Vehicle {
            plate: r.plate,
            certificate_last4: r.certificate_last4,
            verified_by: r.verified_by,
            verified_at_ms: r.verified_at_ms,
        }
    }
}

/// What a claimant showed, as a dispute keeps it.
struct Evidence {
    kind: DisputeKind,
    /// The number's blind index, or the plate.
    subject_key: String,
    holder: String,
    name: Option<String>,
    /// The number sealed for the claimant's account.
    cipher: Option<String>,
    masked: Option<String>,
    cert_index: Option<String>,
    cert_last4: Option<String>,
}

/// A vehicle registration certificate number: 12 digits (spaces ignored).
fn parse_certificate(s: &str) -> Result<String> {
    let c: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if c.len() != 12 || !c.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::field("certificate", "identity.vehicle.certificate_format"));
    }
    Ok(c)
}

fn last4(s: &str) -> String {
    s.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect()
}

fn unavailable() -> Error {
    Error::new(codes::VERIFIER_UNAVAILABLE, "identity.verify.unavailable").with_retry_after(30)
}

/// The one answer to a name and number the verifier does not match, whatever
/// the platform holds about the number.
fn no_match() -> Error {
    Error::field("id_number", "identity.verify.no_match")
}

fn id_bound_elsewhere() -> Error {
    let mut e = Error::new(codes::BOUND_ELSEWHERE, "identity.id_number.bound_elsewhere");
    e.fields.push(FieldError::new("id_number", Msg::new("identity.id_number.bound_elsewhere")));
    e
}

fn plate_bound_elsewhere() -> Error {
    let mut e = Error::new(codes::BOUND_ELSEWHERE, "identity.plate.bound_elsewhere");
    e.fields.push(FieldError::new("plate", Msg::new("identity.plate.bound_elsewhere")));
    e
}

fn other_on_account() -> Error {
    Error::new(Code::Conflict, "identity.id_number.other_on_account")
}

/// Erase what a deleted account left in this module's tables: its plates, and
/// the evidence of its disputes (an open one is withdrawn).
pub(crate) async fn erase_for_deletion(tx: &mut yizhan_core::Tx, user_id: &str) -> Result<u64> {
    let n = sqlx::query("DELETE FROM identity_vehicles WHERE user_id = $1").bind(user_id).execute(tx.conn()).await?;
    sqlx::query(
        "UPDATE identity_disputes SET status = CASE WHEN status = 'open' THEN 'withdrawn' ELSE status END,
             claimant_name = NULL, id_cipher = NULL, certificate_index = NULL
         WHERE claimant_user_id = $1",
    )
    .bind(user_id)
    .execute(tx.conn())
    .await?;
    Ok(n.rows_affected())
}

/// A real name and number as typed, checked (all field errors at once).
fn parse_real_name(id: &Identity, name: &str, id_number: &str) -> Result<(PersonName, IdNumber)> {
    let mut errors = Vec::new();
    let name = collect(PersonName::parse(name), &mut errors);
    let number = collect(IdNumber::parse(id_number), &mut errors);
    if let Some(n) = &number {
        let (y, m, d) = n.birth_date();
        let today = (id.ctx().now_ms() + CST_OFFSET_MS).div_euclid(DAY_MS);
        if days_from_civil(y, m, d) > today {
            errors.push(FieldError::new("id_number", Msg::new("identity.id_number.birth_in_future")));
        }
    }
    match (name, number, errors.is_empty()) {
        (Some(name), Some(number), true) => Ok((name, number)),
        _ => Err(Error::fields(errors)),
    }
}

impl Identity {
    /// The verifier's name ("sandbox").
    pub fn verifier_name(&self) -> &'static str {
        self.inner.verifier.name()
    }

    /// Whether the verifier asks nobody: the forms say so.
    pub fn verifier_is_sandbox(&self) -> bool {
        self.inner.verifier.is_sandbox()
    }

    fn verifier_label(&self) -> String {
        format!("verifier:{}", self.inner.verifier.name())
    }

    fn id_index(&self, number: &IdNumber) -> String {
        self.ctx().vault.blind_index("id_number", number.expose())
    }

    fn certificate_index(&self, certificate: &str) -> String {
        self.ctx().vault.blind_index("vehicle_certificate", certificate)
    }

    /// Tell a person something. A binding never fails because its notice
    /// could not be stored: that is logged instead.
    pub(crate) async fn tell(&self, user_id: &str, msg: Message) {
        let email = match self.profile(user_id).await {
            Ok(p) if p.login_verified && p.login.contains('@') => Some(p.login),
            Ok(_) => None,
            // A deleted account has no inbox to tell.
            Err(_) => return,
        };
        if let Err(e) = self.inner.notify.send(user_id, email.as_deref(), msg).await {
            tracing::warn!(%user_id, code = %e.code, error = %e.msg, "identity notice not stored");
        }
    }

    async fn tell_key(&self, user_id: &str, kind: &str, title: Msg, body: Msg) {
        let msg = Message { kind: kind.into(), title, body, target: Some(Target::new("profile", user_id)) };
        self.tell(user_id, msg).await;
    }

    /// Ask the verifier whether the name is the holder of the number.
    async fn ask_person(&self, user_login: &str, name: &PersonName, number: &IdNumber) -> Result<()> {
        // A mobile login is the phone the authority may check with the name.
        let phone = (!user_login.contains('@') && !user_login.starts_with("deleted:")).then_some(user_login);
        match self.inner.verifier.verify_person(name.as_str(), number, phone).await {
            VerifyOutcome::Match => Ok(()),
            VerifyOutcome::NoMatch => Err(no_match()),
            VerifyOutcome::Unavailable => Err(unavailable()),
        }
    }

    /// Verify the person's real name and identity number through the
    /// verifier (level 1). The verifier is asked first, before anything
    /// about the number is looked up, so its answer to a wrong name is the
    /// same whether or not the number is on the platform; a number the
    /// verifier matched but another account holds is refused with
    /// [`codes::BOUND_ELSEWHERE`], and the person may open a dispute
    /// ([`Identity::open_dispute`]). The number is stored sealed, with a
    /// blind index that keeps it on one account.
    pub async fn verify_real_name(&self, user_id: &str, name: &str, id_number: &str) -> Result<Profile> {
        let (name, number) = parse_real_name(self, name, id_number)?;
        let user = self.live_user(user_id).await?;
        let index = self.id_index(&number);
        match &user.id_index {
            Some(existing) if *existing == index && user.verification_level >= VERIFICATION_REAL_NAME => {
                return self.profile(user_id).await;
            }
            Some(existing) if *existing != index => return Err(other_on_account()),
            _ => {}
        }
        self.ask_person(&user.login, &name, &number).await?;
        let sealed = self.ctx().vault.seal(number.expose().as_bytes(), &format!("id_number:{user_id}"))?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let updated = sqlx::query(
            "UPDATE users SET real_name = $1, id_cipher = $2, id_index = $3, id_masked = $4, verification_level = $5,
                 verified_by = $6, verified_at_ms = $7
             WHERE id = $8 AND deleted_at_ms IS NULL",
        )
        .bind(name.as_str())
        .bind(&sealed)
        .bind(&index)
        .bind(number.masked())
        .bind(VERIFICATION_REAL_NAME)
        .bind(self.verifier_label())
        .bind(now)
        .bind(user_id)
        .execute(tx.conn())
        .await;
        // The UNIQUE blind index decides between two claims at once: one binds.
        let updated = yizhan_core::error::unique_as(updated, id_bound_elsewhere)?;
        if updated.rows_affected() != 1 {
            return Err(Error::not_found("user"));
        }
        self.person_changed(&mut tx, user_id).await?;
        tx.commit().await?;
        self.person_changed_after(user_id);
        tracing::info!(%user_id, verifier = self.verifier_name(), "real name verified");
        self.profile(user_id).await
    }

    /// The live account other than `user_id` that holds this number's index.
    async fn number_holder(&self, index: &str, user_id: &str) -> Result<Option<UserRefRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, login FROM users WHERE id_index = $1 AND id <> $2 AND deleted_at_ms IS NULL",
        )
        .bind(index)
        .bind(user_id)
        .fetch_optional(&self.ctx().db.pool)
        .await?)
    }

    async fn plate_row(&self, plate: &str) -> Result<Option<(String,)>> {
        Ok(sqlx::query_as("SELECT user_id FROM identity_vehicles WHERE plate = $1")
            .bind(plate)
            .fetch_optional(&self.ctx().db.pool)
            .await?)
    }

    /// Open a dispute for a number or plate bound to another account. The
    /// claimant passes the verifier for it first (as for verifying or binding
    /// it), so the refusals before that are the same whether or not the
    /// number or plate is on the platform. The holder is told.
    pub async fn open_dispute(&self, user_id: &str, claim: Claim<'_>) -> Result<Dispute> {
        let user = self.live_user(user_id).await?;
        let id = self.ctx().new_id();
        let now = self.ctx().now_ms();
        let e = match claim {
            Claim::IdNumber { name, id_number } => {
                let (name, number) = parse_real_name(self, name, id_number)?;
                let index = self.id_index(&number);
                if user.id_index.as_deref().is_some_and(|i| i != index) {
                    return Err(other_on_account());
                }
                self.ask_person(&user.login, &name, &number).await?;
                let holder = self
                    .number_holder(&index, user_id)
                    .await?
                    .ok_or_else(|| Error::new(Code::Conflict, "identity.dispute.nothing_to_dispute"))?;
                // Sealed for the claimant's account, so upholding moves it as it is.
                let sealed = self.ctx().vault.seal(number.expose().as_bytes(), &format!("id_number:{user_id}"))?;
                Evidence {
                    kind: DisputeKind::IdNumber,
                    subject_key: index,
                    holder: holder.id,
                    name: Some(name.into_string()),
                    cipher: Some(sealed),
                    masked: Some(number.masked()),
                    cert_index: None,
                    cert_last4: None,
                }
            }
            Claim::Plate { plate, certificate } => {
                let (plate, certificate) = self.check_vehicle_claim(&user, plate, certificate).await?;
                let holder = match self.plate_row(&plate).await? {
                    Some((h,)) if h != user_id => h,
                    _ => return Err(Error::new(Code::Conflict, "identity.dispute.nothing_to_dispute")),
                };
                Evidence {
                    kind: DisputeKind::Plate,
                    cert_index: Some(self.certificate_index(&certificate)),
                    cert_last4: Some(last4(&certificate)),
                    subject_key: plate,
                    holder,
                    name: user.real_name.clone(),
                    cipher: None,
                    masked: None,
                }
            }
        };
        let Evidence { kind, subject_key, holder, name, cipher, masked, cert_index, cert_last4 } = e;
        let mut tx = self.ctx().db.begin().await?;
        let r = sqlx::query(&format!(
            "INSERT INTO identity_disputes ({DISPUTE_COLS}, resolved_by_user_id, resolved_org_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open', $12, NULL, NULL, NULL)"
        ))
        .bind(&id)
        .bind(kind.as_str())
        .bind(&subject_key)
        .bind(user_id)
        .bind(&holder)
        .bind(&name)
        .bind(&cipher)
        .bind(&masked)
        .bind(&cert_index)
        .bind(&cert_last4)
        .bind(self.verifier_label())
        .bind(now)
        .execute(tx.conn())
        .await;
        match r {
            Ok(_) => tx.commit().await?,
            Err(e) if is_unique_violation(&e) => {
                // Already open: the same dispute again (the holder was told once).
                drop(tx);
                let row: DisputeRow = sqlx::query_as(&format!(
                    "SELECT {DISPUTE_COLS} FROM identity_disputes
                     WHERE kind = $1 AND subject_key = $2 AND claimant_user_id = $3 AND status = 'open'"
                ))
                .bind(kind.as_str())
                .bind(&subject_key)
                .bind(user_id)
                .fetch_one(&self.ctx().db.pool)
                .await?;
                return row.own();
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(dispute_id = %id, kind = kind.as_str(), claimant = %user_id, "dispute opened");
        let subject = match kind {
            DisputeKind::IdNumber => masked.clone().unwrap_or_default(),
            DisputeKind::Plate => subject_key.clone(),
        };
        self.tell_key(
            &holder,
            "identity.dispute",
            Msg::new("identity.notice.claimed.title").text("subject", &subject),
            Msg::new("identity.notice.claimed.body").text("subject", &subject),
        )
        .await;
        self.dispute_row(&id).await?.own()
    }

    async fn dispute_row(&self, id: &str) -> Result<DisputeRow> {
        sqlx::query_as::<_, DisputeRow>(&format!("SELECT {DISPUTE_COLS} FROM identity_disputes WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.ctx().db.pool)
            .await?
            .ok_or_else(|| Error::not_found("dispute"))
    }

    /// The disputes the person opened, newest first.
    pub async fn my_disputes(&self, user_id: &str) -> Result<Vec<Dispute>> {
        let rows: Vec<DisputeRow> = sqlx::query_as(&format!(
            "SELECT {DISPUTE_COLS} FROM identity_disputes WHERE claimant_user_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(MAX_OWN_DISPUTES)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        rows.iter().map(DisputeRow::own).collect()
    }

    /// Staff of a city department: the organisation is one, and they are at
    /// least operators there (platform admins pass as its admins).
    async fn city_department_staff(&self, actor: &Principal, org_id: &str) -> Result<(crate::Member, crate::Org)> {
        let member = self.require_staff(actor, org_id, Role::Operator).await?;
        let org = self.org(org_id).await?;
        if org.kind != OrgKind::CityDepartment {
            // 403 says who the caller is (not staff); what the organisation
            // is (not a city department) is a conflict with this action.
            return Err(Error::new(Code::Conflict, "identity.counter.city_department_only"));
        }
        Ok((member, org))
    }

    async fn record(
        &self,
        actor: &Principal,
        member: &crate::Member,
        org: &crate::Org,
        subject: &str,
        what: &str,
        why: &str,
    ) -> Result<()> {
        self.inner
            .audit
            .record(NewAccess {
                subject_user_id: subject.to_string(),
                actor_user_id: actor.user_id.clone(),
                actor_label: member.user_name.clone(),
                org_id: Some(org.id.clone()),
                org_label: Some(org.name.clone()),
                what: what.to_string(),
                why: why.to_string(),
            })
            .await
            .map(|_| ())
    }

    /// Staff of a city department verify a person in person, from the card
    /// they see (level 2). A number bound to another account is shown to them
    /// ([`codes::BOUND_ELSEWHERE`], with that account's masked login); with
    /// `move_binding` it moves to this person, and both are told. Written to
    /// the person's access log (and the former holder's) as the organisation.
    pub async fn counter_verify(
        &self,
        actor: &Principal,
        org_id: &str,
        subject_user_id: &str,
        name: &str,
        id_number: &str,
        move_binding: bool,
    ) -> Result<Profile> {
        let (member, org) = self.city_department_staff(actor, org_id).await?;
        let (name, number) = parse_real_name(self, name, id_number)?;
        let subject = self.live_user(subject_user_id).await?;
        let index = self.id_index(&number);
        if subject.id_index.as_deref().is_some_and(|i| i != index) {
            return Err(other_on_account());
        }
        let holder = self.number_holder(&index, subject_user_id).await?;
        if let (Some(h), false) = (&holder, move_binding) {
            return Err(Error::msg(
                codes::BOUND_ELSEWHERE,
                Msg::new("identity.counter.bound_elsewhere").text("login", crate::mask_login(&h.login)),
            ));
        }
        self.record(actor, &member, &org, subject_user_id, "identity_verification", "counter_verification").await?;
        if let Some(h) = &holder {
            self.record(actor, &member, &org, &h.id, "identity_verification", "binding_moved").await?;
        }
        let sealed = self.ctx().vault.seal(number.expose().as_bytes(), &format!("id_number:{subject_user_id}"))?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        if let Some(h) = &holder {
            clear_number(&mut tx, &h.id, &index).await?;
            // The person's own open disputes for this number are settled by the counter.
            sqlx::query(
                "UPDATE identity_disputes SET status = 'upheld', resolved_at_ms = $1, resolved_by_user_id = $2,
                     resolved_org_id = $3, id_cipher = NULL
                 WHERE kind = 'id_number' AND subject_key = $4 AND claimant_user_id = $5 AND status = 'open'",
            )
            .bind(now)
            .bind(&actor.user_id)
            .bind(&org.id)
            .bind(&index)
            .bind(subject_user_id)
            .execute(tx.conn())
            .await?;
        }
        let updated = sqlx::query(
            "UPDATE users SET real_name = $1, id_cipher = $2, id_index = $3, id_masked = $4, verification_level = $5,
                 verified_by = $6, verified_at_ms = $7
             WHERE id = $8 AND deleted_at_ms IS NULL",
        )
        .bind(name.as_str())
        .bind(&sealed)
        .bind(&index)
        .bind(number.masked())
        .bind(VERIFICATION_IN_PERSON)
        .bind(format!("counter:{}", org.id))
        .bind(now)
        .bind(subject_user_id)
        .execute(tx.conn())
        .await;
        let updated = yizhan_core::error::unique_as(updated, id_bound_elsewhere)?;
        if updated.rows_affected() != 1 {
            return Err(Error::not_found("user"));
        }
        self.person_changed(&mut tx, subject_user_id).await?;
        if let Some(h) = &holder {
            self.person_changed(&mut tx, &h.id).await?;
        }
        tx.commit().await?;
        self.person_changed_after(subject_user_id);
        if let Some(h) = &holder {
            self.person_changed_after(&h.id);
        }
        tracing::info!(user_id = %subject_user_id, org_id = %org.id, moved = holder.is_some(), "verified at a counter");
        let masked = number.masked();
        self.tell_key(
            subject_user_id,
            "identity.verification",
            Msg::new("identity.notice.counter_verified.title").text("subject", &masked),
            Msg::new("identity.notice.counter_verified.body").text("subject", &masked),
        )
        .await;
        if let Some(h) = &holder {
            self.tell_key(
                &h.id,
                "identity.dispute",
                Msg::new("identity.notice.moved_away.title").text("subject", &masked),
                Msg::new("identity.notice.moved_away.body").text("subject", &masked),
            )
            .await;
        }
        self.profile(subject_user_id).await
    }

    /// The plate and certificate, checked, for a claimant: they must be
    /// verified (the registry matches a vehicle to a name and number), and the
    /// verifier must match the certificate to the plate and to them.
    async fn check_vehicle_claim(
        &self,
        user: &crate::UserRow,
        plate: &str,
        certificate: &str,
    ) -> Result<(String, String)> {
        let mut errors = Vec::new();
        let plate = collect(normalize_plate(plate), &mut errors);
        let certificate = collect(parse_certificate(certificate), &mut errors);
        let (Some(plate), Some(certificate)) = (plate, certificate) else {
            return Err(Error::fields(errors));
        };
        let (Some(real_name), Some(sealed), true) =
            (&user.real_name, &user.id_cipher, user.verification_level >= VERIFICATION_REAL_NAME)
        else {
            return Err(Error::new(Code::Conflict, "identity.vehicle.verify_first"));
        };
        let number = IdNumber::parse(&self.open_id_number(&user.id, sealed).await?)?;
        match self.inner.verifier.verify_vehicle(&plate, &certificate, real_name, &number).await {
            VerifyOutcome::Match => Ok((plate, certificate)),
            VerifyOutcome::NoMatch => Err(Error::field("certificate", "identity.vehicle.no_match")),
            VerifyOutcome::Unavailable => Err(unavailable()),
        }
    }

    /// Bind a car plate to the person, with its registration certificate
    /// checked by the verifier against the person's verified identity. A
    /// plate another account holds is refused with [`codes::BOUND_ELSEWHERE`]
    /// (a dispute may be opened); binding one's own plate again is fine.
    pub async fn bind_vehicle(&self, user_id: &str, plate: &str, certificate: &str) -> Result<Vehicle> {
        let user = self.live_user(user_id).await?;
        let (plate, certificate) = self.check_vehicle_claim(&user, plate, certificate).await?;
        self.insert_vehicle(user_id, &plate, &certificate, &self.verifier_label(), None).await
    }

    /// Insert the binding; with `replace_holder`, the plate's current holder's
    /// row goes first (a counter or an upheld dispute moves it).
    async fn insert_vehicle(
        &self,
        user_id: &str,
        plate: &str,
        certificate: &str,
        verified_by: &str,
        replace_holder: Option<&str>,
    ) -> Result<Vehicle> {
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        if let Some(h) = replace_holder {
            sqlx::query("DELETE FROM identity_vehicles WHERE plate = $1 AND user_id = $2")
                .bind(plate)
                .bind(h)
                .execute(tx.conn())
                .await?;
        }
        let r = sqlx::query(
            "INSERT INTO identity_vehicles (plate, user_id, certificate_index, certificate_last4, verified_by, verified_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (plate) DO UPDATE SET certificate_index = excluded.certificate_index,
                 certificate_last4 = excluded.certificate_last4, verified_by = excluded.verified_by,
                 verified_at_ms = excluded.verified_at_ms
             WHERE identity_vehicles.user_id = excluded.user_id",
        )
        .bind(plate)
        .bind(user_id)
        .bind(self.certificate_index(certificate))
        .bind(last4(certificate))
        .bind(verified_by)
        .bind(now)
        .execute(tx.conn())
        .await?;
        // Nothing written: the plate is another account's (the primary key decides races).
        if r.rows_affected() != 1 {
            return Err(plate_bound_elsewhere());
        }
        tx.commit().await?;
        tracing::info!(%user_id, %verified_by, "vehicle bound");
        Ok(Vehicle {
            plate: plate.to_string(),
            certificate_last4: last4(certificate),
            verified_by: verified_by.to_string(),
            verified_at_ms: now,
        })
    }

    /// Staff of a city department (acting as the traffic police) bind a plate
    /// to a person from the registration certificate they see. A plate bound
    /// to another account is shown to them; with `move_binding` it moves, and
    /// both are told. Written to the access logs as the organisation.
    pub async fn counter_bind_vehicle(
        &self,
        actor: &Principal,
        org_id: &str,
        subject_user_id: &str,
        plate: &str,
        certificate: &str,
        move_binding: bool,
    ) -> Result<Vehicle> {
        let (member, org) = self.city_department_staff(actor, org_id).await?;
        let mut errors = Vec::new();
        let plate = collect(normalize_plate(plate), &mut errors);
        let certificate = collect(parse_certificate(certificate), &mut errors);
        let (Some(plate), Some(certificate)) = (plate, certificate) else {
            return Err(Error::fields(errors));
        };
        self.live_user(subject_user_id).await?;
        let holder = match self.plate_row(&plate).await? {
            Some((h,)) if h != subject_user_id => Some(h),
            _ => None,
        };
        if let (Some(h), false) = (&holder, move_binding) {
            let login = self.user_ref(h).await?.login_masked;
            return Err(Error::msg(
                codes::BOUND_ELSEWHERE,
                Msg::new("identity.counter.plate_bound_elsewhere").text("login", login),
            ));
        }
        self.record(actor, &member, &org, subject_user_id, "vehicle", "counter_vehicle_registration").await?;
        if let Some(h) = &holder {
            self.record(actor, &member, &org, h, "vehicle", "binding_moved").await?;
        }
        let v = self
            .insert_vehicle(subject_user_id, &plate, &certificate, &format!("counter:{}", org.id), holder.as_deref())
            .await?;
        if let Some(h) = &holder {
            self.tell_key(
                h,
                "identity.dispute",
                Msg::new("identity.notice.moved_away.title").text("subject", &plate),
                Msg::new("identity.notice.moved_away.body").text("subject", &plate),
            )
            .await;
        }
        Ok(v)
    }

    /// The plates bound to the person.
    pub async fn vehicles(&self, user_id: &str) -> Result<Vec<Vehicle>> {
        let rows: Vec<VehicleRow> = sqlx::query_as(
            "SELECT plate, certificate_last4, verified_by, verified_at_ms FROM identity_vehicles
             WHERE user_id = $1 ORDER BY plate",
        )
        .bind(user_id)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        Ok(rows.into_iter().map(Vehicle::from).collect())
    }

    /// Unbind one of the person's plates (a car sold).
    pub async fn remove_vehicle(&self, user_id: &str, plate: &str) -> Result<()> {
        let plate = normalize_plate(plate)?;
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("DELETE FROM identity_vehicles WHERE plate = $1 AND user_id = $2")
            .bind(&plate)
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::not_found("vehicle"));
        }
        tx.commit().await
    }

    /// Every plate of the person goes (account deletion); how many.
    pub async fn erase_vehicles(&self, user_id: &str) -> Result<u64> {
        let mut tx = self.ctx().db.begin().await?;
        let n = sqlx::query("DELETE FROM identity_vehicles WHERE user_id = $1")
            .bind(user_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Who a plate is bound to (always with proof), if a live account: what
    /// fines by plate reach.
    pub async fn plate_holder(&self, plate: &str) -> Result<Option<String>> {
        let plate = normalize_plate(plate)?;
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT v.user_id FROM identity_vehicles v JOIN users u ON u.id = v.user_id
             WHERE v.plate = $1 AND u.deleted_at_ms IS NULL",
        )
        .bind(&plate)
        .fetch_optional(&self.ctx().db.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    async fn staff_dispute(&self, r: &DisputeRow) -> Result<StaffDispute> {
        Ok(StaffDispute {
            id: r.id.clone(),
            kind: r.kind()?,
            subject: r.staff_subject(),
            status: DisputeStatus::from_db(&r.status)?,
            claimant: self.user_ref(&r.claimant_user_id).await?,
            holder: self.user_ref(&r.holder_user_id).await?,
            evidence: r.evidence.clone(),
            opened_at_ms: r.opened_at_ms,
            resolved_at_ms: r.resolved_at_ms,
        })
    }

    /// Open disputes, oldest first, a bounded page at a time (`after`: the
    /// last id of the previous page), for city-department staff. Only masked
    /// numbers and logins are shown; deciding one writes both persons' logs.
    pub async fn list_disputes(
        &self,
        actor: &Principal,
        org_id: &str,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<DisputePage> {
        self.city_department_staff(actor, org_id).await?;
        let limit = limit.unwrap_or(DEFAULT_DISPUTES_PAGE).clamp(1, MAX_DISPUTES_PAGE);
        let rows: Vec<DisputeRow> = sqlx::query_as(&format!(
            "SELECT {DISPUTE_COLS} FROM identity_disputes WHERE status = 'open' AND id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.ctx().db.pool)
        .await?;
        let more = rows.len() as i64 > limit;
        let mut items = Vec::new();
        for r in rows.iter().take(usize::try_from(limit).unwrap_or(0)) {
            items.push(self.staff_dispute(r).await?);
        }
        let next_cursor = if more { items.last().map(|d| d.id.clone()) } else { None };
        Ok(DisputePage { items, next_cursor })
    }

    /// City-department staff decide a dispute. Upheld: the binding moves to
    /// the claimant at the level of their evidence (the verifier: level 1),
    /// and a former holder of a number drops to level 0. Rejected: nothing
    /// moves. Both persons are told, and both access logs have the decision.
    pub async fn resolve_dispute(
        &self,
        actor: &Principal,
        org_id: &str,
        dispute_id: &str,
        uphold: bool,
    ) -> Result<StaffDispute> {
        let (member, org) = self.city_department_staff(actor, org_id).await?;
        let d = self.dispute_row(dispute_id).await?;
        if d.status != "open" {
            return Err(Error::new(Code::Conflict, "identity.dispute.resolved"));
        }
        let kind = d.kind()?;
        self.live_user(&d.claimant_user_id).await?;
        let what = match kind {
            DisputeKind::IdNumber => "identity_verification",
            DisputeKind::Plate => "vehicle",
        };
        let why = if uphold { "dispute_upheld" } else { "dispute_rejected" };
        self.record(actor, &member, &org, &d.claimant_user_id, what, why).await?;
        self.record(actor, &member, &org, &d.holder_user_id, what, why).await?;
        let now = self.ctx().now_ms();
        let mut tx = self.ctx().db.begin().await?;
        let claimed = sqlx::query(
            "UPDATE identity_disputes SET status = $1, resolved_at_ms = $2, resolved_by_user_id = $3,
                 resolved_org_id = $4, id_cipher = NULL
             WHERE id = $5 AND status = 'open'",
        )
        .bind(if uphold { "upheld" } else { "rejected" })
        .bind(now)
        .bind(&actor.user_id)
        .bind(&org.id)
        .bind(dispute_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if claimed != 1 {
            return Err(Error::new(Code::Conflict, "identity.dispute.resolved"));
        }
        if uphold {
            match kind {
                DisputeKind::IdNumber => {
                    clear_number(&mut tx, &d.holder_user_id, &d.subject_key).await?;
                    let sealed =
                        d.id_cipher.clone().ok_or_else(|| Error::new(Code::Conflict, "identity.dispute.resolved"))?;
                    let updated = sqlx::query(
                        "UPDATE users SET real_name = $1, id_cipher = $2, id_index = $3, id_masked = $4,
                             verification_level = $5, verified_by = $6, verified_at_ms = $7
                         WHERE id = $8 AND deleted_at_ms IS NULL AND (id_index IS NULL OR id_index = $3)",
                    )
                    .bind(&d.claimant_name)
                    .bind(&sealed)
                    .bind(&d.subject_key)
                    .bind(&d.id_masked)
                    .bind(VERIFICATION_REAL_NAME)
                    .bind(&d.evidence)
                    .bind(now)
                    .bind(&d.claimant_user_id)
                    .execute(tx.conn())
                    .await;
                    // Held by a third account since, or the claimant verified another number.
                    let updated = yizhan_core::error::unique_as(updated, || {
                        Error::new(Code::Conflict, "identity.dispute.holder_changed")
                    })?;
                    if updated.rows_affected() != 1 {
                        return Err(other_on_account());
                    }
                }
                DisputeKind::Plate => {
                    sqlx::query("DELETE FROM identity_vehicles WHERE plate = $1 AND user_id = $2")
                        .bind(&d.subject_key)
                        .bind(&d.holder_user_id)
                        .execute(tx.conn())
                        .await?;
                    let r = sqlx::query(
                        "INSERT INTO identity_vehicles
                             (plate, user_id, certificate_index, certificate_last4, verified_by, verified_at_ms)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&d.subject_key)
                    .bind(&d.claimant_user_id)
                    .bind(d.certificate_index.clone().unwrap_or_default())
                    .bind(d.certificate_last4.clone().unwrap_or_default())
                    .bind(&d.evidence)
                    .bind(now)
                    .execute(tx.conn())
                    .await;
                    yizhan_core::error::unique_as(r, || Error::new(Code::Conflict, "identity.dispute.holder_changed"))?;
                }
            }
        }
        for id in [&d.claimant_user_id, &d.holder_user_id] {
            self.person_changed(&mut tx, id).await?;
        }
        tx.commit().await?;
        for id in [&d.claimant_user_id, &d.holder_user_id] {
            self.person_changed_after(id);
        }
        tracing::info!(%dispute_id, upheld = uphold, org_id = %org.id, "dispute resolved");
        let subject = d.subject();
        // Both sides hear the outcome, each in their own words.
        let (to_claimant, to_holder) = if uphold { ("upheld", "moved_away") } else { ("rejected", "kept") };
        for (user_id, outcome) in [(&d.claimant_user_id, to_claimant), (&d.holder_user_id, to_holder)] {
            self.tell_key(
                user_id,
                "identity.dispute",
                Msg::new(format!("identity.notice.{outcome}.title")).text("subject", &subject),
                Msg::new(format!("identity.notice.{outcome}.body")).text("subject", &subject),
            )
            .await;
        }
        self.staff_dispute(&self.dispute_row(dispute_id).await?).await
    }
}

/// The holder loses the number: back to level 0, their real-name data gone.
async fn clear_number(tx: &mut yizhan_core::Tx, holder_user_id: &str, index: &str) -> Result<()> {
    sqlx::query(
        "UPDATE users SET real_name = NULL, id_cipher = NULL, id_index = NULL, id_masked = NULL,
             verification_level = 0, verified_by = NULL, verified_at_ms = NULL
         WHERE id = $1 AND id_index = $2",
    )
    .bind(holder_user_id)
    .bind(index)
    .execute(tx.conn())
    .await?;
    Ok(())
}
