-- Moves whenever an existing account changes other than through a transfer
-- (its credit limit), so a batcher's in-memory copy of accounts knows it is stale.
INSERT INTO ledger_meta (key, value_int) VALUES ('accounts_version', 0);
