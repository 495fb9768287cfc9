-- The first start's setup link: while no platform administrator exists,
-- `yizhan serve` prints a one-time link whose token opens the page that
-- creates the first administrator and the first city. Only the token's
-- SHA-256 is kept; a link works once (used_at_ms) and until expires_at_ms.
CREATE TABLE identity_setup_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT
);
