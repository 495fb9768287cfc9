-- The fingerprint (a keyed hash) of the vault key this database was first
-- used with; one row. A process with another key is refused at start.
CREATE TABLE vault_fingerprint (
    id BIGINT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
