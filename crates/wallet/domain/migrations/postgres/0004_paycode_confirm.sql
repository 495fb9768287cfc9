-- A pay code's opaque id, for its owner's status requests: the digits are a
-- bearer credential and never go in a URL or a log line.
ALTER TABLE paycodes ADD COLUMN public_id TEXT;
-- Above the operator's threshold a charge waits for the customer:
-- 'awaiting' until confirm_expires_at_ms, then 'confirmed', 'declined' or
-- 'failed' (the money could not move; failure_code says why). NULL: no
-- confirmation was asked for.
ALTER TABLE paycodes ADD COLUMN confirm_state TEXT;
ALTER TABLE paycodes ADD COLUMN confirm_expires_at_ms BIGINT;
ALTER TABLE paycodes ADD COLUMN decided_at_ms BIGINT;
ALTER TABLE paycodes ADD COLUMN failure_code TEXT;
ALTER TABLE paycodes ADD COLUMN paid_at_ms BIGINT;
CREATE UNIQUE INDEX paycodes_public_id ON paycodes (public_id);

-- A person's payment PIN: an Argon2id hash of a keyed MAC of the PIN (so a
-- copy of the database alone cannot try the million PINs).
CREATE TABLE payment_pins (
    user_id   TEXT PRIMARY KEY NOT NULL,
    pin_hash  TEXT NOT NULL,
    set_at_ms BIGINT NOT NULL
);

-- Wrong PINs (and wrong passwords when setting one), counted per person in a
-- window that starts with the first failure, shared by every server process.
CREATE TABLE pin_limits (
    limit_key       TEXT PRIMARY KEY NOT NULL,
    window_start_ms BIGINT NOT NULL,
    failures        BIGINT NOT NULL
);
CREATE INDEX pin_limits_window ON pin_limits (window_start_ms);
