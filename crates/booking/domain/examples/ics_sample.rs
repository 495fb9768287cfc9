//! Writes calendar files the engine makes, for checking them with other
//! parsers (tests/ics/run.sh): one appointment, and a feed of three, with
//! texts that need escaping and folding (commas, semicolons, backslashes,
//! new lines, long Chinese lines). Usage: `ics_sample DIR`.

use yizhan_booking::{ics, Appointment, AppointmentStatus};

fn appointment(id: &str, start_ms: i64, status: AppointmentStatus) -> Appointment {
    Appointment {
        id: id.to_string(),
        slot_id: format!("slot-{id}"),
        service_id: "service-1".to_string(),
        resource_id: "counter-1".to_string(),
        person_id: "person-1".to_string(),
        status,
        start_ms,
        end_ms: start_ms + 30 * 60_000,
        queue_no: 0,
        fee_fen: 900,
        fee_state: "paid".to_string(),
        created_at_ms: start_ms - 7 * 86_400_000,
        updated_at_ms: start_ms - 7 * 86_400_000,
    }
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".to_string());
    std::fs::create_dir_all(&dir)?;
    // 2026-11-30 01:00 UTC, 09:00 in Beijing.
    let t = 1_795_996_800_000 + 3_600_000;
    let now = t - 86_400_000;
    let one = appointment("0190a1b2c3d4e5f6", t, AppointmentStatus::Booked);
    let long =
        "结婚登记（杭州市民政局婚姻登记处，第一窗口；请携带双方身份证、户口簿，以及三张两寸近期半身免冠合影照片）";
    let place = "Hangzhou, Civil Affairs; Window 1 \\ north\nGround floor";
    std::fs::write(format!("{dir}/appointment.ics"), ics::appointment(&one, long, place, "yizhan", now))?;
    write_expected(&dir, "appointment", &[(&one, long, place)])?;
    let events = vec![
        (one, "预约".to_string(), "详见服务页面".to_string()),
        (
            appointment("0190a1b2c3d4e5f7", t + 86_400_000, AppointmentStatus::Arrived),
            "Library card, first time; bring your ID".to_string(),
            long.to_string(),
        ),
        (
            appointment("0190a1b2c3d4e5f8", t + 2 * 86_400_000, AppointmentStatus::Pending),
            "x".repeat(200),
            "Window 3".to_string(),
        ),
    ];
    std::fs::write(format!("{dir}/feed.ics"), ics::feed(&events, "My appointments 我的预约", "yizhan", now))?;
    let listed: Vec<(&Appointment, &str, &str)> = events.iter().map(|(a, s, l)| (a, s.as_str(), l.as_str())).collect();
    write_expected(&dir, "feed", &listed)?;
    std::fs::write(format!("{dir}/empty-feed.ics"), ics::feed(&[], "My appointments", "yizhan", now))?;
    write_expected(&dir, "empty-feed", &[])?;
    Ok(())
}

/// What a parser should read back from `NAME.ics`, as `NAME.json`: the
/// instants in epoch ms (the checker turns them into dates itself) and the
/// status RFC 5545 names for each of ours.
fn write_expected(dir: &str, name: &str, events: &[(&Appointment, &str, &str)]) -> std::io::Result<()> {
    let list: Vec<serde_json::Value> = events
        .iter()
        .map(|(a, summary, location)| {
            let status = match a.status {
                AppointmentStatus::Pending => "TENTATIVE",
                AppointmentStatus::Cancelled | AppointmentStatus::Noshow => "CANCELLED",
                _ => "CONFIRMED",
            };
            serde_json::json!({"uid": format!("{}@yizhan", a.id), "start_ms": a.start_ms, "end_ms": a.end_ms,
                "summary": summary, "location": location, "status": status})
        })
        .collect();
    std::fs::write(format!("{dir}/{name}.json"), serde_json::to_vec_pretty(&list)?)
}
