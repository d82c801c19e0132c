-- Abuse and takeover fixes: keyed ID-number hashes, weighted rate budgets.

-- The national ID number was kept as a bare SHA-256, which anyone can recompute for every
-- possible number (an 18-character resident ID has few unknown digits). New rows hold
-- HMAC-SHA256 under the service's `identity.hmac_secret`; a bare hash cannot be turned into
-- a keyed one without the number, so old rows keep theirs, marked as such. What a verified
-- account may do does not depend on the hash, so their verification stands.
ALTER TABLE accounts ADD COLUMN id_number_hash_kind TEXT;
UPDATE accounts SET id_number_hash_kind = 'sha256' WHERE id_number_hash IS NOT NULL;

-- Per-account budgets (messages, contact requests, group fan-out) count units (a message to a
-- group of 300 is 300 deliveries), summed per slice of the window (a twentieth): a budget is
-- decided by a sum over at most ~21 rows, however busy the account, where one row per request
-- made every message read hundreds. A slice counts until its newest unit leaves the window, so
-- the limit is never passed (at worst a slice's units are held a twentieth of a window longer).
CREATE TABLE rate_budgets (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    slice BIGINT NOT NULL,
    units BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key, slice)
);
