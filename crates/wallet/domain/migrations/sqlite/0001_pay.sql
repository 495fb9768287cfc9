-- Payments on top of the ledger. Money itself lives in the ledger; these
-- tables hold what the ledger does not know: codes, packets, bills, plates.

-- Customer-presented one-time pay codes. Only a keyed hash of the code is kept.
CREATE TABLE paycodes (
    code_hash        TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    expires_at_ms    BIGINT NOT NULL,
    -- set when a merchant takes the code; cleared again if the charge fails
    used_at_ms       BIGINT,
    used_by_org_id   TEXT,
    -- the merchant's idempotency key (scoped), so its retry gets the same receipt
    charge_key       TEXT,
    amount_fen       BIGINT,
    transfer_id      TEXT
);
CREATE INDEX paycodes_user ON paycodes (user_id, created_at_ms);

CREATE TABLE red_packets (
    id                  TEXT PRIMARY KEY NOT NULL,
    sender_user_id      TEXT NOT NULL,
    -- set for a packet to one person
    to_user_id          TEXT,
    mode                TEXT NOT NULL,
    share_count         BIGINT NOT NULL CHECK (share_count >= 1),
    total_fen           BIGINT NOT NULL CHECK (total_fen > 0),
    greeting            TEXT NOT NULL,
    -- funding (row written, money not yet in escrow) / open / failed / refunded
    status              TEXT NOT NULL,
    idempotency_key     TEXT NOT NULL,
    funding_transfer_id TEXT,
    refund_transfer_id  TEXT,
    refunded_fen        BIGINT NOT NULL DEFAULT 0,
    created_at_ms       BIGINT NOT NULL,
    expires_at_ms       BIGINT NOT NULL,
    UNIQUE (sender_user_id, idempotency_key)
);
CREATE INDEX red_packets_due ON red_packets (expires_at_ms) WHERE status = 'open';
CREATE INDEX red_packets_sender ON red_packets (sender_user_id, created_at_ms);

-- The shares, drawn when the packet is made; claimers take them in seq order.
CREATE TABLE red_packet_shares (
    packet_id     TEXT NOT NULL REFERENCES red_packets (id),
    seq           BIGINT NOT NULL,
    amount_fen    BIGINT NOT NULL CHECK (amount_fen > 0),
    claimed_by    TEXT,
    claimed_at_ms BIGINT,
    transfer_id   TEXT,
    -- 1 once the expiry sweep returned this share to the sender
    refunded      BIGINT NOT NULL DEFAULT 0 CHECK (refunded IN (0, 1)),
    PRIMARY KEY (packet_id, seq),
    -- each person takes at most one share of a packet
    UNIQUE (packet_id, claimed_by)
);
CREATE INDEX red_packet_shares_claimer ON red_packet_shares (claimed_by);

-- Bills and fines an organisation issues to a person.
CREATE TABLE bills (
    id                   TEXT PRIMARY KEY NOT NULL,
    org_id               TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    amount_fen           BIGINT NOT NULL CHECK (amount_fen > 0),
    description          TEXT NOT NULL,
    -- the car plate a fine was issued against, if any
    plate                TEXT,
    due_at_ms            BIGINT NOT NULL,
    issued_by_user_id    TEXT NOT NULL,
    issued_at_ms         BIGINT NOT NULL,
    -- unpaid / paid
    status               TEXT NOT NULL,
    paid_at_ms           BIGINT,
    transfer_id          TEXT,
    paid_idempotency_key TEXT
);
CREATE INDEX bills_user ON bills (user_id, issued_at_ms);
CREATE INDEX bills_org_user ON bills (org_id, user_id);

-- Which person a car plate belongs to, so fines can be issued by plate.
CREATE TABLE vehicles (
    plate            TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL,
    registered_at_ms BIGINT NOT NULL
);
CREATE INDEX vehicles_user ON vehicles (user_id);

-- Every gateway notification taken, by the gateway's id: a replay finds its row and changes nothing.
CREATE TABLE gateway_notifications (
    gateway        TEXT NOT NULL,
    id             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    reference      TEXT NOT NULL,
    amount_fen     BIGINT NOT NULL,
    gateway_ref    TEXT NOT NULL,
    -- what the platform did with it
    outcome        TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (gateway, id)
);
