-- A person's counted records (active, newest first, at most MAX_RECORDS) as
-- one compact text, rebuilt from credit_records in the same transaction as
-- every change to them: the batch recompute reads one row a person instead
-- of every record. NULL: not built yet (people from before this version);
-- the batch builds it from the records then.
ALTER TABLE credit_people ADD COLUMN counted TEXT;
