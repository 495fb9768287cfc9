//! Operations on a whole account that span several rooms: the export of
//! everything held about a person, and deletion. Each domain exports and erases its own part.

use crate::state::AppState;
use serde_json::json;
use yizhan_core::Result;

pub async fn export(s: &AppState, user_id: &str) -> Result<serde_json::Value> {
    let now = s.ctx.now_ms();
    Ok(json!({
        "exported_at_ms": now,
        "user_id": user_id,
        "sections": {
            "profile": {
                "retained_after_deletion": false,
                "data": s.identity.export(user_id).await?,
            },
            "notifications": {
                "retained_after_deletion": false,
                "data": s.notify.export(user_id).await?,
            },
            "credit": {
                "retained_after_deletion": false,
                "data": s.credit.export(user_id).await?,
            },
            "payments": {
                "retained_after_deletion": true,
                "why_retained": "payment records (wallet transactions, bills, red packets) are kept as the law requires",
                "data": s.pay.export(user_id).await?,
            },
            "access_log": {
                "retained_after_deletion": true,
                "why_retained": "the record of who read personal data is kept as the law requires, and cannot be deleted",
                "data": s.audit.export(user_id).await?,
            },
            "appointments": {
                "retained_after_deletion": false,
                "data": s.booking.export_person(user_id).await?,
            },
            "city_applications": {
                "retained_after_deletion": false,
                "data": s.city.export_person(user_id).await?,
            },
        }
    }))
}

pub async fn delete(s: &AppState, user_id: &str) -> Result<serde_json::Value> {
    // A deposit still held for a city service (what was lent not yet
    // returned) refuses the deletion first: it is neither kept nor lost.
    s.city.check_deletable(user_id).await?;
    // The wallet is closed to incoming money first, then checked: refused
    // before anything is erased while money is still in it.
    s.pay.close_for_deletion(user_id).await?;
    let removed_notifications = s.notify.delete_all(user_id).await?;
    let removed_plates = s.identity.erase_vehicles(user_id).await?;
    // Future appointments give their places back before the person's rows go.
    s.booking.delete_person(user_id).await?;
    s.city.delete_person(user_id).await?;
    s.pay.erase_personal(user_id).await?;
    let removed_credit = s.credit.erase(user_id).await?;
    s.identity.delete_account(user_id).await?;
    Ok(json!({
        "deleted": true,
        "erased": ["profile", "login", "password", "real_name", "identity_number", "sessions", "memberships", "notifications", "vehicles", "dispute_evidence", "credit_score", "credit_history", "credit_records", "court_listings", "appointments", "city_applications"],
        "notifications_removed": removed_notifications,
        "vehicles_removed": removed_plates,
        "credit_rows_removed": removed_credit,
        "kept": {
            "access_log": "kept: the law requires a record of who read personal data",
            "payments": "kept: payment records (transactions, bills, red packets) are kept as the law requires",
        }
    }))
}
