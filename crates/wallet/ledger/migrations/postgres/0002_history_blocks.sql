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
