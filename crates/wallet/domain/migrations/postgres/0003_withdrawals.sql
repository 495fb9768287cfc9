-- Every withdrawal, so a hold whose payout has no answer (a timeout, a crash
-- between the hold and the gateway's answer) is found and settled by the
-- reconciliation sweep instead of holding the person's money forever.
CREATE TABLE withdrawals (
    -- the scoped idempotency key: the hold's ledger key and the gateway's reference
    reference          TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    amount_fen         BIGINT NOT NULL,
    -- the ledger's pending transfer, once it exists
    hold_id            TEXT,
    -- 'pending', 'paid', 'failed', 'given_up' (voided, the gateway never knew), 'no_hold'
    status             TEXT NOT NULL,
    gateway_ref        TEXT,
    created_at_ms      BIGINT NOT NULL,
    -- when the sweep asks the gateway next
    next_check_at_ms   BIGINT NOT NULL,
    settled_at_ms      BIGINT
);
CREATE INDEX withdrawals_due ON withdrawals (status, next_check_at_ms);
