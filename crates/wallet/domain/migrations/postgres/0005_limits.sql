-- Wallet limits per person, by verification level, set by the operator.
-- One row per (level, operation): operation is 'topup', 'payment' (all money a
-- person sends: transfers, QR, pay codes, red packets, bills) or 'withdrawal'.
CREATE TABLE wallet_limits (
    level              BIGINT NOT NULL,
    operation          TEXT NOT NULL,
    per_tx_fen         BIGINT NOT NULL,
    per_day_fen        BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL,
    -- the platform admin who last changed it; NULL for the defaults
    updated_by_user_id TEXT,
    PRIMARY KEY (level, operation)
);
-- Defaults in fen: unverified 200 yuan a time, 500 a day, no withdrawal;
-- real name verified 5,000 / 20,000; verified in person 50,000 / 200,000.
INSERT INTO wallet_limits (level, operation, per_tx_fen, per_day_fen, updated_at_ms) VALUES
    (0, 'topup', 20000, 50000, 0),
    (0, 'payment', 20000, 50000, 0),
    (0, 'withdrawal', 0, 0, 0),
    (1, 'topup', 500000, 2000000, 0),
    (1, 'payment', 500000, 2000000, 0),
    (1, 'withdrawal', 500000, 2000000, 0),
    (2, 'topup', 5000000, 20000000, 0),
    (2, 'payment', 5000000, 20000000, 0),
    (2, 'withdrawal', 5000000, 20000000, 0);

-- Every change an admin made to a limit: who, when, before and after.
CREATE TABLE wallet_limit_changes (
    id                  TEXT PRIMARY KEY,
    level               BIGINT NOT NULL,
    operation           TEXT NOT NULL,
    old_per_tx_fen      BIGINT NOT NULL,
    old_per_day_fen     BIGINT NOT NULL,
    new_per_tx_fen      BIGINT NOT NULL,
    new_per_day_fen     BIGINT NOT NULL,
    changed_by_user_id  TEXT NOT NULL,
    changed_at_ms       BIGINT NOT NULL
);

-- What a person used of a daily limit; day = days since 1970-01-01 in China time.
CREATE TABLE wallet_limit_usage (
    user_id            TEXT NOT NULL,
    operation          TEXT NOT NULL,
    day                BIGINT NOT NULL,
    used_fen           BIGINT NOT NULL,
    PRIMARY KEY (user_id, operation, day)
);

-- Usage counted for one movement of money, keyed by the movement's ledger
-- key, so a retry is counted once and a refused movement gives it back.
CREATE TABLE wallet_limit_reservations (
    reference          TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    operation          TEXT NOT NULL,
    day                BIGINT NOT NULL,
    amount_fen         BIGINT NOT NULL,
    created_at_ms      BIGINT NOT NULL
);
