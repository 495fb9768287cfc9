-- Failed log-in counting, shared by every server process: a counter per key
-- (a login and address pair, an address, a login from addresses it was never
-- used from) over a window that starts with its first failure. Keys are keyed
-- hashes: no login or address is stored here.
CREATE TABLE login_limits (
    limit_key TEXT PRIMARY KEY NOT NULL,
    window_start_ms BIGINT NOT NULL,
    failures BIGINT NOT NULL
);
CREATE INDEX login_limits_window ON login_limits (window_start_ms);

-- Addresses a login succeeded from: the owner's known places, which a
-- distributed guesser's failures do not lock.
CREATE TABLE login_known_addresses (
    login_key TEXT NOT NULL,
    addr_key TEXT NOT NULL,
    last_ok_ms BIGINT NOT NULL,
    PRIMARY KEY (login_key, addr_key)
);
