//! The booking engine's events delivered as notifications: the engine knows
//! no inbox, the app joins the two.

use yizhan_booking::{Event, Events};
use yizhan_core::Msg;
use yizhan_notify::{Message, Notify};

pub(crate) struct Notices(pub Notify);

impl Events for Notices {
    fn emit(&self, event: Event) {
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
            Event::Blocked { person_id, until_ms, .. } => (
                person_id,
                Msg::new("booking.notice.blocked.title"),
                Msg::new("booking.notice.blocked").time("until", until_ms),
            ),
        };
        let notify = self.0.clone();
        // Events come after the engine's commit; the notice follows on its own.
        tokio::spawn(async move {
            let msg = Message { kind: "booking".to_string(), title, body, target: None };
            if let Err(e) = notify.send(&person_id, None, msg).await {
                tracing::warn!(code = %e.code, error = %e.msg, "booking notice not stored");
            }
        });
    }
}
