-- The double-entry ledger. Balances are credits minus debits, in fen.
-- Only the ledger's batcher writes these tables (see crates/ledger).

CREATE TABLE ledger_accounts (
    id                 TEXT PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL,
    currency           TEXT NOT NULL,
    allow_negative     BIGINT NOT NULL DEFAULT 0 CHECK (allow_negative IN (0, 1)),
    credit_limit_fen   BIGINT NOT NULL DEFAULT 0 CHECK (credit_limit_fen >= 0),
    posted_fen         BIGINT NOT NULL DEFAULT 0,
    pending_debit_fen  BIGINT NOT NULL DEFAULT 0 CHECK (pending_debit_fen >= 0),
    pending_credit_fen BIGINT NOT NULL DEFAULT 0 CHECK (pending_credit_fen >= 0),
    created_at_ms      BIGINT NOT NULL,
    -- Last line of defence: the batcher already refuses every overdraft.
    CHECK (allow_negative = 1 OR posted_fen - pending_debit_fen >= -credit_limit_fen)
);

-- Immutable: rows are only ever inserted. `seq` orders them (cursor pagination,
-- the check); it is handed out by ledger_meta so it grows in commit order.
CREATE TABLE ledger_transfers (
    seq               BIGINT PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL,
    debit_account_id  TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_fen        BIGINT NOT NULL CHECK (amount_fen > 0),
    currency          TEXT NOT NULL,
    category          TEXT NOT NULL,
    memo              TEXT NOT NULL,
    pending_id        TEXT,
    expires_at_ms     BIGINT,
    refers_to         TEXT,
    linked_group      TEXT,
    idempotency_key   TEXT,
    created_at_ms     BIGINT NOT NULL,
    CHECK (debit_account_id <> credit_account_id)
);
CREATE UNIQUE INDEX ledger_transfers_idempotency ON ledger_transfers (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- A pending transfer is resolved by at most one row.
CREATE UNIQUE INDEX ledger_transfers_resolution ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, seq);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, seq);

-- The state of each pending transfer, so resolution and the expiry sweep do
-- not have to search the transfer rows.
CREATE TABLE ledger_pending (
    pending_id        TEXT PRIMARY KEY NOT NULL,
    debit_account_id  TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_fen        BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    category          TEXT NOT NULL,
    expires_at_ms     BIGINT,
    state             TEXT NOT NULL,
    resolved_by       TEXT,
    resolved_at_ms    BIGINT,
    created_at_ms     BIGINT NOT NULL
);
CREATE INDEX ledger_pending_due ON ledger_pending (expires_at_ms) WHERE state = 'pending';

CREATE TABLE ledger_meta (
    key       TEXT PRIMARY KEY NOT NULL,
    value_int BIGINT NOT NULL
);
INSERT INTO ledger_meta (key, value_int) VALUES ('transfer_seq', 0);
