-- The answers to requests that carried an Idempotency-Key, per caller, so a
-- retry gets the first answer instead of running again. Kept at least 24 hours.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status_code BIGINT,
    body TEXT,
    created_at_ms BIGINT NOT NULL,
    locked_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at_ms);
