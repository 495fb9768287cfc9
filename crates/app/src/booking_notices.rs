//! The booking engine's events delivered as notifications: the engine knows
//! no inbox, the app joins the two.

use yizhan_booking::{Event, Events, ReminderKind};
use yizhan_core::Msg;
use yizhan_identity::Identity;
use yizhan_notify::{Message, Notify, Target};

pub(crate) struct Notices {
    pub notify: Notify,
    pub identity: Identity,
}

impl Events for Notices {
    fn emit(&self, event: Event) {
        let mut target = None;
        let mut mail = false;
        let (person_id, title, body) = match event {
            Event::Offered { person_id, expires_at_ms, .. } => (
                person_id,
                Msg::new("booking.notice.offered.title"),
                Msg::new("booking.notice.offered").time("until", expires_at_ms),
            ),
            Event::Drawn { person_id, .. } => {
                (person_id, Msg::new("booking.notice.drawn.title"), Msg::new("booking.notice.drawn"))
            }
            Event::NotDrawn { person_id, .. } => {
                (person_id, Msg::new("booking.notice.drawn.title"), Msg::new("booking.notice.not_drawn"))
            }
            Event::DrawnUnpaid { person_id, .. } => {
                (person_id, Msg::new("booking.notice.drawn.title"), Msg::new("booking.notice.drawn_unpaid"))
            }
            Event::Blocked { person_id, until_ms, .. } => (
                person_id,
                Msg::new("booking.notice.blocked.title"),
                Msg::new("booking.notice.blocked").time("until", until_ms),
            ),
            Event::Reminder { person_id, appointment_id, start_ms, kind, .. } => {
                target = Some(Target::new("appointment", &appointment_id));
                mail = true;
                let body = match kind {
                    ReminderKind::Day => "booking.notice.reminder.day",
                    ReminderKind::Hour => "booking.notice.reminder.hour",
                };
                (person_id, Msg::new("booking.notice.reminder.title"), Msg::new(body).time("at", start_ms))
            }
        };
        let (notify, identity) = (self.notify.clone(), self.identity.clone());
        // Events come after the engine's commit; the notice follows on its own.
        tokio::spawn(async move {
            // Reminders are mailed too when a mailer is configured and the login is an address.
            let email = match (mail, notify.mailer_name()) {
                (true, Some(_)) => match identity.profile(&person_id).await {
                    Ok(p) if p.login.contains('@') => Some(p.login),
                    _ => None,
                },
                _ => None,
            };
            let msg = Message { kind: "booking".to_string(), title, body, target };
            if let Err(e) = notify.send(&person_id, email.as_deref(), msg).await {
                tracing::warn!(code = %e.code, error = %e.msg, "booking notice not stored");
            }
        });
    }
}
