-- Reminders sent (one row per appointment and kind: 'day' the day before,
-- 'hour' an hour before). The primary key is what keeps a reminder from
-- being sent twice, by a restarted process or by two processes at once.
CREATE TABLE booking_reminders (
    appointment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    sent_at_ms BIGINT NOT NULL,
    PRIMARY KEY (appointment_id, kind)
);

-- The sweep looks for booked appointments starting soon.
CREATE INDEX booking_appointments_start ON booking_appointments (status, start_ms);

-- A person's calendar feed: the secret token is kept only as its keyed hash
-- (the vault's MAC), one live token per person; revoking deletes the row.
CREATE TABLE booking_feeds (
    person_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);
