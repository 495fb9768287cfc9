-- Daily limits are counted by the ledger (ledger_quotas, key
-- "<operation>:<day>:<user id>") with the payments themselves, in the same
-- batch; what was counted so far moves there ("WHERE true": SQLite reads
-- ON CONFLICT after a bare SELECT as a join).
INSERT INTO ledger_quotas (key, used_fen)
SELECT operation || ':' || CAST(day AS TEXT) || ':' || user_id, used_fen FROM wallet_limit_usage WHERE true
ON CONFLICT (key) DO NOTHING;
DROP TABLE wallet_limit_usage;
