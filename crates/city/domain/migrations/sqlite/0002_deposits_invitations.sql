-- A service may ask a deposit (held in the applicant's wallet until the
-- card or thing lent is returned), waived for residents whose credit grants
-- the named perk. An application records where its deposit stands:
-- none, waived, held, returned.
ALTER TABLE city_services ADD COLUMN deposit_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE city_services ADD COLUMN deposit_perk TEXT NOT NULL DEFAULT '';
ALTER TABLE city_applications ADD COLUMN deposit_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE city_applications ADD COLUMN deposit_state TEXT NOT NULL DEFAULT 'none';

-- A service booked by two people (a marriage registration): one holds the
-- slot and invites the other by login; the place is booked when both have
-- confirmed with verified real names, before the hold runs out.
ALTER TABLE city_services ADD COLUMN two_people BIGINT NOT NULL DEFAULT 0;
CREATE TABLE city_invitations (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    hold_id TEXT NOT NULL UNIQUE,
    inviter_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    answers TEXT NOT NULL,
    -- waiting (for the partner), confirming (the partner's confirmation is
    -- booking it), booked, declined, expired
    state TEXT NOT NULL,
    application_id TEXT NOT NULL,
    appointment_id TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX city_invitations_partner ON city_invitations (partner_id, created_at_ms);
CREATE INDEX city_invitations_inviter ON city_invitations (inviter_id, created_at_ms);
