//! The booking engine's own error codes (each with an `error.<name>` text).

use yizhan_core::{Class, Code};

/// Every place of the slot is taken.
pub const FULL: Code = Code::new("slot_full", Class::Conflict);
/// The person already holds or booked this service in the period its rules allow one.
pub const ALREADY_BOOKED: Code = Code::new("already_booked", Class::Conflict);
/// The slot is not released yet.
pub const NOT_RELEASED: Code = Code::new("slot_not_released", Class::Conflict);
/// Booking the slot has closed.
pub const CLOSED: Code = Code::new("booking_closed", Class::Gone);
/// The hold ran out (its place may have gone to someone else).
pub const HOLD_EXPIRED: Code = Code::new("booking_hold_expired", Class::Gone);
/// The cancellation deadline has passed.
pub const CANCEL_TOO_LATE: Code = Code::new("cancel_too_late", Class::Conflict);
/// Too many no-shows: booking this service is blocked for a while.
pub const BLOCKED: Code = Code::new("booking_blocked", Class::Forbidden);
/// The slot is allocated by lottery: request it instead of holding it.
pub const LOTTERY_ONLY: Code = Code::new("lottery_only", Class::Conflict);
/// The lottery's request window is not open (not yet, or no longer).
pub const LOTTERY_NOT_OPEN: Code = Code::new("lottery_not_open", Class::Conflict);
/// The person already asked for this slot in its lottery.
pub const ALREADY_REQUESTED: Code = Code::new("already_requested", Class::Conflict);
/// The slot still has places: hold one instead of waiting.
pub const NOT_FULL: Code = Code::new("slot_not_full", Class::Conflict);
pub const ALREADY_WAITING: Code = Code::new("already_waiting", Class::Conflict);
/// The appointment is not in a status that allows this.
pub const WRONG_STATUS: Code = Code::new("appointment_status", Class::Conflict);
/// Check-in or no-show marking outside its time.
pub const NOT_TODAY: Code = Code::new("appointment_not_now", Class::Conflict);

pub const ALL: &[Code] = &[
    FULL,
    ALREADY_BOOKED,
    NOT_RELEASED,
    CLOSED,
    HOLD_EXPIRED,
    CANCEL_TOO_LATE,
    BLOCKED,
    LOTTERY_ONLY,
    LOTTERY_NOT_OPEN,
    ALREADY_REQUESTED,
    NOT_FULL,
    ALREADY_WAITING,
    WRONG_STATUS,
    NOT_TODAY,
];
