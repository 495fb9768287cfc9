//! An appointment as an iCalendar file (RFC 5545): CRLF line ends, lines
//! folded at 75 octets, text escaped, UID and DTSTAMP present, times in UTC.

use crate::{Appointment, AppointmentStatus};

/// `YYYYMMDDTHHMMSSZ` of an instant.
pub fn utc_stamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = yizhan_core::time::civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// TEXT value escaping (RFC 5545 3.3.11).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded so no physical line exceeds 75 octets (never
/// inside a character), ended with CRLF.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        // A continuation line starts with a space, which counts.
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
    out
}

/// The content lines of one appointment's VEVENT.
fn vevent(a: &Appointment, summary: &str, location: &str, host: &str, now_ms: i64) -> Vec<String> {
    let status = match a.status {
        AppointmentStatus::Cancelled | AppointmentStatus::Noshow => "CANCELLED",
        AppointmentStatus::Pending => "TENTATIVE",
        _ => "CONFIRMED",
    };
    vec![
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}@{}", a.id, escape(host)),
        format!("DTSTAMP:{}", utc_stamp(now_ms)),
        format!("DTSTART:{}", utc_stamp(a.start_ms)),
        format!("DTEND:{}", utc_stamp(a.end_ms)),
        format!("SUMMARY:{}", escape(summary)),
        format!("LOCATION:{}", escape(location)),
        format!("STATUS:{status}"),
        "END:VEVENT".to_string(),
    ]
}

fn calendar(extra: &[String], events: Vec<Vec<String>>) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//yizhan//booking//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
    ];
    lines.extend(extra.iter().cloned());
    for e in events {
        lines.extend(e);
    }
    lines.push("END:VCALENDAR".to_string());
    lines.iter().map(|l| fold(l)).collect()
}

/// The calendar file of one appointment. `summary` and `location` are in
/// the reader's language already.
pub fn appointment(a: &Appointment, summary: &str, location: &str, host: &str, now_ms: i64) -> String {
    calendar(&[], vec![vevent(a, summary, location, host, now_ms)])
}

/// A person's calendar feed: one VEVENT per appointment (`summary` and
/// `location` for each, in the reader's language), named `name`, with a hint
/// to calendar apps to fetch it again every hour.
pub fn feed(events: &[(Appointment, String, String)], name: &str, host: &str, now_ms: i64) -> String {
    let extra = [format!("X-WR-CALNAME:{}", escape(name)), "X-PUBLISHED-TTL:PT1H".to_string()];
    calendar(&extra, events.iter().map(|(a, summary, location)| vevent(a, summary, location, host, now_ms)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_escapes_and_folds() {
        // 2026-11-29 00:00 UTC
        assert_eq!(utc_stamp(1_795_910_400_000), "20261129T000000Z");
        assert_eq!(utc_stamp(1_795_910_400_000 + 3_723_000), "20261129T010203Z");
        assert_eq!(escape("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
        let long = format!("SUMMARY:{}", "结婚登记".repeat(20));
        let folded = fold(&long);
        assert!(folded.ends_with("\r\n"));
        for physical in folded.trim_end_matches("\r\n").split("\r\n") {
            assert!(physical.len() <= 75, "{} octets", physical.len());
        }
        // Unfolding gives the line back.
        assert_eq!(folded.trim_end_matches("\r\n").replace("\r\n ", ""), long);
        assert_eq!(fold("SHORT:x"), "SHORT:x\r\n");
    }

    fn sample(id: &str, start_ms: i64, status: AppointmentStatus) -> Appointment {
        Appointment {
            id: id.into(),
            slot_id: "s".into(),
            service_id: "b".into(),
            resource_id: "r".into(),
            person_id: "p".into(),
            status,
            start_ms,
            end_ms: start_ms + 1_800_000,
            queue_no: 0,
            fee_fen: 0,
            fee_state: "none".into(),
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn a_feed_is_one_calendar_with_an_event_per_appointment() {
        let t = 1_795_910_400_000;
        let events = vec![
            (sample("a1", t, AppointmentStatus::Booked), "预约".to_string(), "详见, 服务页面".to_string()),
            (sample("a2", t + 86_400_000, AppointmentStatus::Arrived), "Appointment".to_string(), "x;y".to_string()),
        ];
        let body = feed(&events, "My appointments", "yizhan", t);
        assert!(body.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(body.ends_with("END:VCALENDAR\r\n"));
        assert_eq!(body.matches("BEGIN:VEVENT\r\n").count(), 2);
        assert_eq!(body.matches("END:VEVENT\r\n").count(), 2);
        assert!(body.contains("UID:a1@yizhan\r\n") && body.contains("UID:a2@yizhan\r\n"));
        assert!(body.contains("X-WR-CALNAME:My appointments\r\n"));
        assert!(body.contains("LOCATION:详见\\, 服务页面\r\n") && body.contains("LOCATION:x\\;y\r\n"));
        assert!(body.contains("DTSTART:20261130T000000Z\r\n"));
        // An empty feed is still a calendar.
        let empty = feed(&[], "My appointments", "yizhan", t);
        assert!(!empty.contains("VEVENT") && empty.contains("BEGIN:VCALENDAR"));
    }
}
