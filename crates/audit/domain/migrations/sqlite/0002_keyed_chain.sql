-- The chain becomes keyed (HMAC-SHA256 with a key outside the database).
-- Entries written before keep their plain SHA-256 hash and say so; each
-- subject's head gets a MAC (sealed at start for the heads written before).
ALTER TABLE access_log ADD COLUMN chain_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE access_log_heads ADD COLUMN head_mac TEXT;
