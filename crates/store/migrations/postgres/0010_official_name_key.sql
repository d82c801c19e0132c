-- Names of official accounts are unique by what they look like (Unicode TS #39's confusable
-- skeleton, computed by the service): "Аcme Coffee" with a Cyrillic А is "Acme Coffee".
-- Official accounts made before this get their key when the service starts (the store's
-- `official_name_keys_backfill`); the older of two lookalikes keeps it, the later stays
-- without one (NULLs are not compared) and is named in the log.
ALTER TABLE official_accounts ADD COLUMN name_key TEXT;
CREATE UNIQUE INDEX official_accounts_name_key ON official_accounts (name_key);
