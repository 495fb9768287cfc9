-- People. A deleted account keeps its row (money and the access log point at
-- it) with every personal field erased and deleted_at_ms set.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    -- normalized mobile number or lowercased e-mail; "deleted:<id>" after deletion
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_admin BIGINT NOT NULL DEFAULT 0,
    -- 0 = registered, 1 = real-name verified
    verification_level BIGINT NOT NULL DEFAULT 0,
    real_name TEXT,
    -- the identity number, encrypted with the vault key (never stored in clear)
    id_cipher TEXT,
    -- keyed hash of the identity number, to find it and keep it on one account
    id_index TEXT UNIQUE,
    id_masked TEXT,
    home_city_id TEXT,
    created_at_ms BIGINT NOT NULL,
    deleted_at_ms BIGINT
);

-- Only the SHA-256 of a session token is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE cities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- JSON array of capability keys the city offers
    services TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    city_id TEXT NOT NULL REFERENCES cities (id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (city_id, name)
);

CREATE TABLE org_members (
    org_id TEXT NOT NULL REFERENCES orgs (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);
