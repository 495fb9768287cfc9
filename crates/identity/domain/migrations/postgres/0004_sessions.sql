-- What a person sees of their sessions: an opaque id (neither the token nor
-- its hash), the device named from its User-Agent, the address it was opened
-- from, and when it was last used (updated at most every few minutes).
ALTER TABLE sessions ADD COLUMN id TEXT;
ALTER TABLE sessions ADD COLUMN device TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_seen_ms BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET id = md5(random()::text || token_hash), last_seen_ms = created_at_ms WHERE id IS NULL;
CREATE UNIQUE INDEX sessions_id ON sessions (id);
