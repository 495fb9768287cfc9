//! Services booked by two people (a marriage registration). One person
//! holds a slot, answers the form and invites the other by login; the slot
//! stays held for both while the partner is asked. Both confirm on their own
//! devices with verified real names (identity level 1 or more): the
//! inviter by sending the invitation, the partner by accepting it. Only then
//! is the place booked, as one appointment for both, and both are told. If
//! the partner declines the place is freed at once; if they do not answer
//! before the hold runs out the booking engine frees it.
//!
//! A partner's confirmation claims the invitation with a conditional
//! `UPDATE … WHERE state = 'waiting'`, so two confirmations at once book
//! once; the place itself was taken by the hold, so a couple never takes
//! two, and nobody else can take theirs.

use crate::{codes, CityHall, Delivery, CAPABILITY};
use serde::Serialize;
use yizhan_core::{Error, Msg, Result};
use yizhan_notify::{Message, Target};

/// The lowest identity level a person needs to confirm: a real name the verifier matched.
pub const MIN_LEVEL: i64 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invitation {
    pub id: String,
    pub service_id: String,
    pub hold_id: String,
    pub inviter_id: String,
    pub inviter_name: String,
    pub partner_id: String,
    pub partner_name: String,
    /// waiting (for the partner), confirming, booked, declined, expired.
    pub state: String,
    pub application_id: Option<String>,
    pub appointment_id: Option<String>,
    /// The slot's start.
    pub start_ms: i64,
    /// The partner must confirm before this (the hold's end).
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    service_id: String,
    hold_id: String,
    inviter_id: String,
    partner_id: String,
    answers: String,
    state: String,
    application_id: String,
    appointment_id: String,
    expires_at_ms: i64,
    created_at_ms: i64,
}

const COLS: &str = "id, service_id, hold_id, inviter_id, partner_id, answers, state, application_id, appointment_id, \
                    expires_at_ms, created_at_ms";

impl CityHall {
    async fn require_verified(&self, person_id: &str) -> Result<()> {
        let p = self.identity.profile(person_id).await?;
        if p.verification_level < MIN_LEVEL || p.real_name.is_none() {
            return Err(Error::new(codes::NOT_VERIFIED, "city.partner.verify_first"));
        }
        Ok(())
    }

    async fn view(&self, r: Row) -> Result<Invitation> {
        let inviter = self.identity.user_ref(&r.inviter_id).await?;
        let partner = self.identity.user_ref(&r.partner_id).await?;
        let hold = self.booking.get_hold(&r.hold_id).await?;
        let start_ms = self.booking.slot(&hold.slot_id).await.map(|s| s.start_ms).unwrap_or(0);
        // A hold that ran out while waiting: the engine freed the place.
        let state =
            if r.state == "waiting" && r.expires_at_ms <= self.ctx.now_ms() { "expired".to_string() } else { r.state };
        Ok(Invitation {
            id: r.id,
            service_id: r.service_id,
            hold_id: r.hold_id,
            inviter_id: r.inviter_id,
            inviter_name: inviter.name,
            partner_id: r.partner_id,
            partner_name: partner.name,
            state,
            application_id: Some(r.application_id).filter(|s| !s.is_empty()),
            appointment_id: Some(r.appointment_id).filter(|s| !s.is_empty()),
            start_ms,
            expires_at_ms: r.expires_at_ms,
            created_at_ms: r.created_at_ms,
        })
    }

    async fn row(&self, id: &str) -> Result<Row> {
        let r: Option<Row> = sqlx::query_as(&format!("SELECT {COLS} FROM city_invitations WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.ctx.db.pool)
            .await?;
        r.ok_or_else(|| Error::not_found("invitation"))
    }

    /// The inviter (verified) sends the form's answers for their held slot
    /// and invites the partner by login; the slot stays held for both.
    pub async fn invite(
        &self,
        person_id: &str,
        hold_id: &str,
        answers: &serde_json::Value,
        partner_login: &str,
    ) -> Result<Invitation> {
        let hold = self.booking.get_hold(hold_id).await?;
        if hold.person_id != person_id {
            return Err(Error::not_found("booking_hold"));
        }
        let service = self.service_by_booking(&hold.service_id).await?;
        let city = self.identity.city(&service.city_id).await?;
        if !city.services.iter().any(|s| s == CAPABILITY) || service.delivery != Delivery::Appointment {
            return Err(Error::not_found("service"));
        }
        if !service.two_people {
            return Err(Error::field("partner_login", "city.partner.not_asked"));
        }
        let kept = service.parsed_form()?.validate(answers)?;
        let partner_login = partner_login.trim();
        if partner_login.is_empty() {
            return Err(Error::field("partner_login", "city.partner.required"));
        }
        let partner = match self.identity.find_by_login(partner_login).await {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => return Err(Error::field("partner_login", "city.partner.no_such_login")),
        };
        if partner.user_id == person_id {
            return Err(Error::field("partner_login", "city.partner.self"));
        }
        self.require_verified(person_id).await?;
        let now = self.ctx.now_ms();
        if hold.expires_at_ms <= now {
            return Err(Error::new(yizhan_booking::codes::HOLD_EXPIRED, "booking.hold_expired"));
        }
        let id = self.ctx.new_id();
        let mut tx = self.ctx.db.begin().await?;
        let added = sqlx::query(&format!(
            "INSERT INTO city_invitations ({COLS}, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'waiting', '', '', $7, $8, $8) ON CONFLICT (hold_id) DO NOTHING"
        ))
        .bind(&id)
        .bind(&service.id)
        .bind(hold_id)
        .bind(person_id)
        .bind(&partner.user_id)
        .bind(serde_json::to_string(&kept).map_err(Error::internal)?)
        .bind(hold.expires_at_ms)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if added == 0 {
            return Err(Error::new(codes::WRONG_STATUS, "city.invitation.exists"));
        }
        tx.commit().await?;
        let inviter = self.identity.user_ref(person_id).await?;
        self.tell_invite(
            &partner.user_id,
            Msg::new("city.notice.invited")
                .arg("name", yizhan_core::Arg::Text(inviter.name))
                .time("until", hold.expires_at_ms),
            &id,
        )
        .await;
        self.view(self.row(&id).await?).await
    }

    async fn tell_invite(&self, person_id: &str, body: Msg, invitation_id: &str) {
        let msg = Message {
            kind: "city.invitation".to_string(),
            title: Msg::new("city.notice.invitation_title"),
            body,
            target: Some(Target::new("invitation", invitation_id)),
        };
        if let Err(e) = self.notify.send(person_id, None, msg).await {
            tracing::warn!(code = %e.code, error = %e.msg, "invitation notice not stored");
        }
    }

    /// Invitations to me and from me, newest first.
    pub async fn invitations(&self, person_id: &str, limit: i64) -> Result<Vec<Invitation>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLS} FROM city_invitations WHERE partner_id = $1 OR inviter_id = $1 \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2"
        ))
        .bind(person_id)
        .bind(limit.clamp(1, crate::MAX_LISTED))
        .fetch_all(&self.ctx.db.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.view(r).await?);
        }
        Ok(out)
    }

    /// One invitation, for the inviter or the partner.
    pub async fn invitation(&self, person_id: &str, id: &str) -> Result<Invitation> {
        let r = self.row(id).await?;
        if r.inviter_id != person_id && r.partner_id != person_id {
            return Err(Error::not_found("invitation"));
        }
        self.view(r).await
    }

    /// The partner (verified) confirms before the hold runs out: the place
    /// is booked as one appointment for both (the fee, if any, is the
    /// inviter's), the inviter's application is written, and both are told.
    pub async fn confirm_invitation(&self, person_id: &str, id: &str) -> Result<Invitation> {
        let r = self.row(id).await?;
        if r.partner_id != person_id {
            return Err(Error::not_found("invitation"));
        }
        self.require_verified(person_id).await?;
        let now = self.ctx.now_ms();
        let mut tx = self.ctx.db.begin().await?;
        let claimed = sqlx::query(
            "UPDATE city_invitations SET state = 'confirming', updated_at_ms = $2 WHERE id = $1 \
             AND state = 'waiting' AND expires_at_ms > $2",
        )
        .bind(id)
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        if claimed == 0 {
            return Err(self.not_waiting(&r, now));
        }
        let booked = self.booking.book_for(&r.inviter_id, &r.hold_id, std::slice::from_ref(&r.partner_id)).await;
        let appt = match booked {
            Ok(a) => a,
            Err(e) => {
                let back = if e.code == yizhan_booking::codes::HOLD_EXPIRED { "expired" } else { "waiting" };
                self.set_state(id, "confirming", back).await?;
                return Err(e);
            }
        };
        let answers: serde_json::Value = serde_json::from_str(&r.answers).map_err(Error::internal)?;
        let service = self.service(&r.service_id).await?;
        let application_id = self.ctx.new_id();
        let mut tx = self.ctx.db.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO city_applications ({}) \
             VALUES ($1, $2, $3, $4, 'submitted', $5, $6, '', $7, $7, 0, 'none', 0, 'none')",
            crate::APPLICATION_COLS
        ))
        .bind(&application_id)
        .bind(&service.id)
        .bind(&service.org_id)
        .bind(&r.inviter_id)
        .bind(serde_json::to_string(&answers).map_err(Error::internal)?)
        .bind(&appt.id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        crate::insert_event(&mut tx, &self.ctx, &application_id, crate::Status::Submitted, person_id, "").await?;
        sqlx::query(
            "UPDATE city_invitations SET state = 'booked', application_id = $2, appointment_id = $3, updated_at_ms = $4 \
             WHERE id = $1 AND state = 'confirming'",
        )
        .bind(id)
        .bind(&application_id)
        .bind(&appt.id)
        .bind(now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        // The same receipt for both: one appointment, one notice each.
        for who in [&r.inviter_id, &r.partner_id] {
            self.tell_invite(who, Msg::new("city.notice.booked_for_both").time("at", appt.start_ms), id).await;
        }
        self.invitation(person_id, id).await
    }

    /// The partner says no: the place is freed at once and the inviter told.
    pub async fn decline_invitation(&self, person_id: &str, id: &str) -> Result<Invitation> {
        let r = self.row(id).await?;
        if r.partner_id != person_id {
            return Err(Error::not_found("invitation"));
        }
        let now = self.ctx.now_ms();
        if !self.set_state(id, "waiting", "declined").await? {
            return Err(self.not_waiting(&r, now));
        }
        match self.booking.release_hold(&r.inviter_id, &r.hold_id).await {
            Ok(()) => {}
            // The hold had run out or was used meanwhile: nothing left to free.
            Err(e) if e.code == yizhan_core::Code::NotFound => {}
            Err(e) => return Err(e),
        }
        self.tell_invite(&r.inviter_id, Msg::new("city.notice.declined"), id).await;
        self.invitation(person_id, id).await
    }

    fn not_waiting(&self, r: &Row, now: i64) -> Error {
        if r.state == "waiting" && r.expires_at_ms <= now {
            Error::new(codes::INVITATION_EXPIRED, "city.invitation.expired")
        } else {
            Error::new(codes::WRONG_STATUS, "city.invitation.not_waiting")
        }
    }

    async fn set_state(&self, id: &str, from: &str, to: &str) -> Result<bool> {
        let mut tx = self.ctx.db.begin().await?;
        let n = sqlx::query("UPDATE city_invitations SET state = $3, updated_at_ms = $4 WHERE id = $1 AND state = $2")
            .bind(id)
            .bind(from)
            .bind(to)
            .bind(self.ctx.now_ms())
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }
}
