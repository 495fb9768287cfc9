-- Who read whose data. Append-only: each subject's entries form a hash chain
-- (seq 1, 2, 3 … with prev_hash), so an altered or removed entry shows.
CREATE TABLE access_log (
    id TEXT PRIMARY KEY,
    subject_user_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    actor_user_id TEXT NOT NULL,
    actor_label TEXT NOT NULL,
    org_id TEXT,
    org_label TEXT,
    what TEXT NOT NULL,
    why TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (subject_user_id, seq)
);

-- The newest seq and hash of each subject, written in the same transaction as
-- the entry, so removing the newest entries (which leaves no gap) still shows.
CREATE TABLE access_log_heads (
    subject_user_id TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);

CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only');
END;

CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only');
END;
