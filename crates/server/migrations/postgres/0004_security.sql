-- Abuse and takeover fixes: keyed ID-number hashes, weighted rate budgets.

-- The national ID number was kept as a bare SHA-256, which anyone can recompute for every
-- possible number (an 18-character resident ID has few unknown digits). New rows hold
-- HMAC-SHA256 under the service's `identity.hmac_secret`; a bare hash cannot be turned into
-- a keyed one without the number, so old rows keep theirs, marked as such. What a verified
-- account may do does not depend on the hash, so their verification stands.
ALTER TABLE accounts ADD COLUMN id_number_hash_kind TEXT;
UPDATE accounts SET id_number_hash_kind = 'sha256' WHERE id_number_hash IS NOT NULL;

-- Per-account budgets count units (a message to a group of 300 is 300 deliveries), not rows.
-- Earlier rows (per-address sign-in limits) are one unit each.
ALTER TABLE rate_events ADD COLUMN weight BIGINT NOT NULL DEFAULT 1;
