-- A second factor (TOTP, RFC 6238): the secret sealed with the vault key
-- (context "totp:USER"), pending until a first code confirms it
-- (enabled_at_ms NULL), and the last 30-second step a code was accepted
-- for, so no code works twice.
CREATE TABLE identity_totp (
    user_id TEXT PRIMARY KEY NOT NULL,
    secret_cipher TEXT NOT NULL,
    enabled_at_ms BIGINT,
    last_step BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

-- One-time recovery codes: only their hashes.
CREATE TABLE identity_totp_recovery (
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at_ms BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
