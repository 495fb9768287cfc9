-- Car plates moved to the identity room (identity_vehicles), where a plate is
-- bound to a person only with proof (a vehicle registration checked by the
-- verifier, or by traffic-police staff at a counter). The plates here were
-- first come, first served, with no proof: they are not carried over, and
-- their owners bind them again with their registration certificate.
DROP TABLE vehicles;
