-- The person switched the pay-later line on (0/1); the wallet holds the line.
ALTER TABLE credit_people ADD COLUMN pay_later_on BIGINT NOT NULL DEFAULT 0;

-- Model versions an operator staged (checked, stored by content hash) and
-- activated. With no active row the published model of the build scores.
-- Rows are kept, so every stored score's model can be loaded and explained.
CREATE TABLE credit_models (
    hash TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    body TEXT NOT NULL,
    -- staged, active, retired or withdrawn
    state TEXT NOT NULL,
    staged_at_ms BIGINT NOT NULL,
    activated_at_ms BIGINT
);

-- The batch recomputation counts every person's records in one grouped
-- query per page of people: this index holds every column it reads, so the
-- table itself is not visited.
CREATE INDEX credit_records_tally ON credit_records (user_id, status, occurred_at_ms, kind, outcome, days_late);
