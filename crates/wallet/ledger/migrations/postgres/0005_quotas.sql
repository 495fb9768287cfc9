-- Running totals counted with the transfers in the same batch (a person's
-- daily payment limit): a transfer with a quota passes only while
-- used_fen + amount <= its cap. See yizhan_ledger::Quota.
CREATE TABLE ledger_quotas (
    key TEXT PRIMARY KEY,
    used_fen BIGINT NOT NULL CHECK (used_fen >= 0)
);
