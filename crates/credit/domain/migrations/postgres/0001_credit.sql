-- The credit room's tables. Nothing here is kept for a person who has not
-- opted in, except a court's listing (the court's data, kept so that opting
-- out and in again does not erase it).
CREATE TABLE credit_people (
    user_id TEXT PRIMARY KEY,
    opted_in_at_ms BIGINT NOT NULL,
    -- Optional sources, each used only with its own consent (0/1).
    address_consent BIGINT NOT NULL DEFAULT 0,
    education_consent BIGINT NOT NULL DEFAULT 0
);

-- Every score computed, with the inputs and the model's content hash, so any
-- past score is recomputed and explained exactly.
CREATE TABLE credit_scores (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    -- 1, 2, … per person: the order the scores were computed in.
    seq BIGINT NOT NULL,
    score BIGINT NOT NULL,
    band TEXT NOT NULL,
    model_version TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    inputs TEXT NOT NULL,
    cause TEXT NOT NULL,
    computed_at_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX credit_scores_user ON credit_scores (user_id, seq);

-- What the score is computed from: a person's records, each from a source
-- (a room, an organisation) with the source's own reference.
CREATE TABLE credit_records (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    days_late BIGINT NOT NULL DEFAULT 0,
    occurred_at_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    source_org_id TEXT,
    source_ref TEXT NOT NULL,
    -- active, contested (frozen: not counted) or removed
    status TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    UNIQUE (user_id, source, source_ref)
);
CREATE INDEX credit_records_user ON credit_records (user_id, occurred_at_ms);

-- A person contests a record; the organisation that produced it decides.
CREATE TABLE credit_contests (
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    -- open, kept, corrected or removed
    status TEXT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    decided_at_ms BIGINT,
    decided_by_user_id TEXT,
    decided_by_label TEXT
);
CREATE INDEX credit_contests_org ON credit_contests (org_id, status, opened_at_ms);
CREATE INDEX credit_contests_user ON credit_contests (user_id, opened_at_ms);

-- A court's current list of judgement defaulters, matched to accounts
-- through the identity room's blind index: no identity number is kept.
CREATE TABLE credit_defaulters (
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    case_ref TEXT NOT NULL,
    listed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id, case_ref)
);
CREATE INDEX credit_defaulters_user ON credit_defaulters (user_id);
