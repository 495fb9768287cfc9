-- A login (phone number or e-mail address) is owned only once it is proved
-- by a one-time code sent to it. Until then the account keeps its claim in
-- pending_login and `login` holds 'unproved:<id>', so the UNIQUE index on
-- `login` holds proved logins only: many may claim a number, the first to
-- prove it owns it. Accounts from before this step are proved.
ALTER TABLE users ADD COLUMN pending_login TEXT;
ALTER TABLE users ADD COLUMN login_verified_at_ms BIGINT;
UPDATE users SET login_verified_at_ms = created_at_ms WHERE login NOT LIKE 'deleted:%';
CREATE INDEX users_pending_login ON users (pending_login);

-- One-time codes sent to a login: to prove it at registration ('register'),
-- to set a new password ('reset'), to make it the account's new login
-- ('change'). Only a keyed hash of the code is kept (HMAC with the vault's
-- key, over the row id and the code); one live code per account and purpose.
CREATE TABLE identity_login_codes (
    id TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- the destination: a normalized mobile number or a lowercased e-mail address
    login TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT,
    UNIQUE (purpose, user_id)
);
CREATE INDEX identity_login_codes_login ON identity_login_codes (purpose, login);
CREATE INDEX identity_login_codes_expiry ON identity_login_codes (expires_at_ms);
