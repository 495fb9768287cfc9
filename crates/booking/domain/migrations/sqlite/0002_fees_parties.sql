-- Fees taken through a seam the app wires (the wallet): a hold is marked
-- 'charged' before its fee is taken (so a hold that runs out has it refunded),
-- an appointment keeps the reference its fee was paid under and where the
-- refund stands: none (no fee taken), paid, refund_due (cancelled in time,
-- refund not yet confirmed), refunded.
ALTER TABLE booking_holds ADD COLUMN fee_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE booking_appointments ADD COLUMN fee_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE booking_appointments ADD COLUMN fee_ref TEXT NOT NULL DEFAULT '';
CREATE INDEX booking_appointments_fee_due ON booking_appointments (fee_state);

-- Others an appointment is for besides the person who booked it (a couple
-- registering a marriage): each sees it among their appointments.
CREATE TABLE booking_parties (
    appointment_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    PRIMARY KEY (appointment_id, person_id)
);
CREATE INDEX booking_parties_person ON booking_parties (person_id);
