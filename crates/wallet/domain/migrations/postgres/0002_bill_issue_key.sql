-- A bill is issued once per the issuer's idempotency key: a retried issue
-- (the HTTP answer lost, a double click at the counter) finds the first bill.
ALTER TABLE bills ADD COLUMN issue_key TEXT;
CREATE UNIQUE INDEX bills_org_issue_key ON bills (org_id, issue_key) WHERE issue_key IS NOT NULL;
