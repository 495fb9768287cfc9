-- What a person sees of their sessions: an opaque id (neither the token nor
-- its hash), the device named from its User-Agent, the address it was opened
-- from, and when it was last used (updated at most every few minutes).
ALTER TABLE sessions ADD COLUMN id TEXT;
ALTER TABLE sessions ADD COLUMN device TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_seen_ms BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET id = md5(random()::text || token_hash), last_seen_ms = created_at_ms WHERE id IS NULL;
CREATE UNIQUE INDEX sessions_id ON sessions (id);

-- The devices (label and network) a person signed in from, so a sign-in from
-- a new one can be told to them.
CREATE TABLE identity_known_devices (
    user_id TEXT NOT NULL,
    device TEXT NOT NULL,
    network TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, device, network)
);
