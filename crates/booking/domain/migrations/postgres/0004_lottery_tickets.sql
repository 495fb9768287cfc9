-- A lottery's published log names entries by ticket, never by account: each
-- entry gets a random ticket its person is shown, so anyone can re-run the
-- draw and each entrant can find their own ticket, while nobody learns who
-- else asked. Entries made before get a random ticket too.
ALTER TABLE booking_lottery_entries ADD COLUMN ticket TEXT NOT NULL DEFAULT '';
UPDATE booking_lottery_entries SET ticket = md5(random()::text || slot_id || person_id) WHERE ticket = '';
CREATE UNIQUE INDEX booking_lottery_entries_ticket ON booking_lottery_entries (slot_id, ticket);
