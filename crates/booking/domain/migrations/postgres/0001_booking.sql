-- The booking engine: bookable services (rules), resources with weekly hours
-- and closures, slots with a capacity and the places that remain, holds,
-- appointments, waiting lists and lottery draws. No domain word of any user
-- of the engine (a city counter, a doctor, a tour) appears here.
CREATE TABLE booking_services (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    hold_ms BIGINT NOT NULL,
    per_person TEXT NOT NULL,
    release_days_ahead BIGINT NOT NULL,
    release_minute BIGINT NOT NULL,
    close_before_ms BIGINT NOT NULL,
    cancel_before_ms BIGINT NOT NULL,
    noshow_limit BIGINT NOT NULL,
    noshow_window_ms BIGINT NOT NULL,
    noshow_block_ms BIGINT NOT NULL,
    walkin_places BIGINT NOT NULL,
    fee_fen BIGINT NOT NULL,
    allocation TEXT NOT NULL,
    lottery_window_ms BIGINT NOT NULL,
    offer_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX booking_services_owner ON booking_services (owner_id);

CREATE TABLE booking_resources (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX booking_resources_service ON booking_resources (service_id);

-- Weekly opening hours: weekday 0 = Monday, minutes after local midnight (China time).
CREATE TABLE booking_hours (
    resource_id TEXT NOT NULL,
    weekday BIGINT NOT NULL,
    start_minute BIGINT NOT NULL,
    end_minute BIGINT NOT NULL,
    slot_minutes BIGINT NOT NULL,
    capacity BIGINT NOT NULL
);
CREATE INDEX booking_hours_resource ON booking_hours (resource_id);

-- Exceptions: a holiday (the whole day) or a closed afternoon. day = days since 1970-01-01, China time.
CREATE TABLE booking_closures (
    resource_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    start_minute BIGINT NOT NULL,
    end_minute BIGINT NOT NULL
);
CREATE INDEX booking_closures_resource ON booking_closures (resource_id, day);

CREATE TABLE booking_slots (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    capacity BIGINT NOT NULL,
    online_capacity BIGINT NOT NULL,
    remaining BIGINT NOT NULL,
    release_at_ms BIGINT NOT NULL,
    lottery_seed TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (resource_id, start_ms)
);
CREATE INDEX booking_slots_service_start ON booking_slots (service_id, start_ms);

CREATE TABLE booking_holds (
    id TEXT PRIMARY KEY,
    slot_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    period_key TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX booking_holds_slot ON booking_holds (slot_id, state, expires_at_ms);
CREATE INDEX booking_holds_expiry ON booking_holds (state, expires_at_ms);

-- One row per person, service and period (a day, a week, or a slot): what
-- makes "one booking per person per day" hold under any concurrency.
CREATE TABLE booking_claims (
    service_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    period_key TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    PRIMARY KEY (service_id, person_id, period_key)
);

CREATE TABLE booking_appointments (
    id TEXT PRIMARY KEY,
    slot_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    status TEXT NOT NULL,
    period_key TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    queue_no BIGINT NOT NULL,
    fee_fen BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX booking_appointments_person ON booking_appointments (person_id, start_ms);
CREATE INDEX booking_appointments_slot ON booking_appointments (slot_id);
CREATE INDEX booking_appointments_service_start ON booking_appointments (service_id, start_ms);

CREATE TABLE booking_blocks (
    service_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (service_id, person_id)
);

CREATE TABLE booking_waitlist (
    id TEXT PRIMARY KEY,
    slot_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    state TEXT NOT NULL,
    hold_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (slot_id, person_id)
);
CREATE INDEX booking_waitlist_slot ON booking_waitlist (slot_id, state, created_at_ms);

CREATE TABLE booking_queue_numbers (
    resource_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    last_no BIGINT NOT NULL,
    PRIMARY KEY (resource_id, day)
);

CREATE TABLE booking_lottery_entries (
    slot_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (slot_id, person_id)
);

CREATE TABLE booking_lottery_draws (
    slot_id TEXT PRIMARY KEY,
    log TEXT NOT NULL,
    drawn_at_ms BIGINT NOT NULL
);
