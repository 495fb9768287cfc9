-- Real-name verification with proof, vehicles bound with proof, disputes.
--
-- Until now a real name was a claim: whoever typed an identity number first
-- held it (at level 1) and received that person's bills. Those bindings had no
-- proof and are not carried over: they are cleared here, and their owners
-- verify again through the verifier or at a counter.
UPDATE users SET verification_level = 0, real_name = NULL, id_cipher = NULL, id_index = NULL, id_masked = NULL
WHERE verification_level > 0;

-- How the real name was verified: 'verifier:<name>' or 'counter:<org id>'.
ALTER TABLE users ADD COLUMN verified_by TEXT;
ALTER TABLE users ADD COLUMN verified_at_ms BIGINT;

-- Car plates, bound to a person only with proof: the verifier matched the
-- vehicle registration certificate against the person's verified identity, or
-- staff of a city department (the traffic police) saw it at a counter.
CREATE TABLE identity_vehicles (
    plate TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    -- keyed hash of the registration certificate number, and its last 4 digits to show
    certificate_index TEXT NOT NULL,
    certificate_last4 TEXT NOT NULL,
    -- 'verifier:<name>' or 'counter:<org id>'
    verified_by TEXT NOT NULL,
    verified_at_ms BIGINT NOT NULL
);
CREATE INDEX identity_vehicles_user ON identity_vehicles (user_id);

-- A claim to an identity number or a plate that is bound to another account.
-- The claimant passed the verifier for it; city-department staff uphold (the
-- binding moves) or reject it.
CREATE TABLE identity_disputes (
    id TEXT PRIMARY KEY,
    -- 'id_number' or 'plate'
    kind TEXT NOT NULL,
    -- the identity number's blind index, or the plate
    subject_key TEXT NOT NULL,
    claimant_user_id TEXT NOT NULL,
    holder_user_id TEXT NOT NULL,
    -- the claimant's evidence: the real name the verifier matched, the number
    -- sealed for the claimant's account (never in clear), or the certificate
    claimant_name TEXT,
    id_cipher TEXT,
    id_masked TEXT,
    certificate_index TEXT,
    certificate_last4 TEXT,
    -- 'verifier:<name>'
    evidence TEXT NOT NULL,
    -- 'open', 'upheld', 'rejected', 'withdrawn'
    status TEXT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    resolved_by_user_id TEXT,
    resolved_org_id TEXT
);
-- One open dispute per claimant and subject.
CREATE UNIQUE INDEX identity_disputes_one_open ON identity_disputes (kind, subject_key, claimant_user_id)
    WHERE status = 'open';
CREATE INDEX identity_disputes_status ON identity_disputes (status, opened_at_ms, id);
CREATE INDEX identity_disputes_claimant ON identity_disputes (claimant_user_id);
CREATE INDEX identity_disputes_holder ON identity_disputes (holder_user_id);
