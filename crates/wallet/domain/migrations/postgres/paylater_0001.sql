-- The pay-later line (its limit is the ledger's credit limit on the wallet
-- account; this row says whether the person switched it on and what the
-- credit room allows), its monthly statements, and which overdue bills were
-- told to the credit room.
CREATE TABLE paylater_lines (
    user_id TEXT PRIMARY KEY,
    line_on BIGINT NOT NULL,
    limit_fen BIGINT NOT NULL,
    -- The last China month ("2026-11") closed for this line.
    closed_through TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX paylater_lines_closed ON paylater_lines (closed_through, user_id);

CREATE TABLE paylater_statements (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    period TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    closed_at_ms BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    -- open or paid
    status TEXT NOT NULL,
    paid_at_ms BIGINT,
    overdue_told BIGINT NOT NULL DEFAULT 0,
    UNIQUE (user_id, period)
);
CREATE INDEX paylater_statements_open ON paylater_statements (status, closed_at_ms);

CREATE TABLE paylater_bill_overdue (
    bill_id TEXT PRIMARY KEY,
    told_days BIGINT NOT NULL,
    told_at_ms BIGINT NOT NULL
);
