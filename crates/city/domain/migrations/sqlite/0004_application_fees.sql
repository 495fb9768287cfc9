-- An online application's fee, paid from the wallet when it is submitted
-- (none, charging, paid, refunded) and given back on a rejection. An
-- application that takes money is written first as `pending` (its deposit
-- `holding`, its fee `charging`), then paid, then `submitted`: a crash in
-- between leaves a row its person sees and the sweep finishes.
ALTER TABLE city_applications ADD COLUMN fee_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE city_applications ADD COLUMN fee_state TEXT NOT NULL DEFAULT 'none';
CREATE INDEX city_applications_pending ON city_applications (status, updated_at_ms);
