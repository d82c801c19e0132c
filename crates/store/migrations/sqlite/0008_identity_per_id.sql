-- Verifications are counted per ID number (identity.accounts_per_id): by its hash, indexed.
CREATE INDEX accounts_id_number_hash ON accounts (id_number_hash);
