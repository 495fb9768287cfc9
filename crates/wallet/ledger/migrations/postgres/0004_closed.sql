-- A closed account takes no more money (a person's wallet while their account
-- is deleted: closed first, then checked empty, so nothing lands afterwards).
ALTER TABLE ledger_accounts ADD COLUMN closed BIGINT NOT NULL DEFAULT 0;
