-- Who holds an in-progress key: a random token the request that claimed it
-- got back. After a stale takeover only the new holder may store or release.
ALTER TABLE idempotency_keys ADD COLUMN holder TEXT;
