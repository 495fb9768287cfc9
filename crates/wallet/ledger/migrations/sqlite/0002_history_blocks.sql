-- History indexes keyed by block of 16,384 transfers (seq_block = seq >> 14)
-- first: a batch's index entries then land in the newest block's small
-- subtree instead of dirtying one random page per transfer across an index
-- that grows forever. History and statements walk the blocks newest first.
ALTER TABLE ledger_transfers ADD COLUMN seq_block BIGINT NOT NULL DEFAULT 0;
UPDATE ledger_transfers SET seq_block = seq >> 14;
DROP INDEX ledger_transfers_debit;
DROP INDEX ledger_transfers_credit;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (seq_block, debit_account_id, seq);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (seq_block, credit_account_id, seq);
-- Statements find their blocks by time; rows arrive in time order, so this is an append.
CREATE INDEX ledger_transfers_time ON ledger_transfers (created_at_ms);

-- One b-tree per account instead of the rowid table plus its id index: the
-- batcher reads and writes thousands of accounts per batch.
CREATE TABLE ledger_accounts_new (
    id                 TEXT PRIMARY KEY NOT NULL,
    kind               TEXT NOT NULL,
    currency           TEXT NOT NULL,
    allow_negative     BIGINT NOT NULL DEFAULT 0 CHECK (allow_negative IN (0, 1)),
    credit_limit_fen   BIGINT NOT NULL DEFAULT 0 CHECK (credit_limit_fen >= 0),
    posted_fen         BIGINT NOT NULL DEFAULT 0,
    pending_debit_fen  BIGINT NOT NULL DEFAULT 0 CHECK (pending_debit_fen >= 0),
    pending_credit_fen BIGINT NOT NULL DEFAULT 0 CHECK (pending_credit_fen >= 0),
    created_at_ms      BIGINT NOT NULL,
    CHECK (allow_negative = 1 OR posted_fen - pending_debit_fen >= -credit_limit_fen)
) WITHOUT ROWID;
INSERT INTO ledger_accounts_new SELECT id, kind, currency, allow_negative, credit_limit_fen, posted_fen,
    pending_debit_fen, pending_credit_fen, created_at_ms FROM ledger_accounts;
DROP TABLE ledger_accounts;
ALTER TABLE ledger_accounts_new RENAME TO ledger_accounts;
