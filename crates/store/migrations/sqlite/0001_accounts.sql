-- Accounts, SMS codes, sessions, two-factor and sign-in throttling.
-- Times are Unix milliseconds (INTEGER), portable to PostgreSQL BIGINT.

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    phone                TEXT NOT NULL,
    -- 0 = the phone number's primary account, 1.. = secondary ones. UNIQUE(phone, slot) makes
    -- the per-phone limit hold even when two registrations race.
    slot                 INTEGER NOT NULL CHECK (slot >= 0),
    public_id            TEXT NOT NULL,
    public_id_lower      TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    public_id_changed_at INTEGER,
    legal_name           TEXT,
    -- The national ID number is kept only as a hash and a masked form.
    id_number_hash       TEXT,
    id_number_masked     TEXT,
    identity_verified_at INTEGER,
    totp_secret          TEXT,
    totp_pending_secret  TEXT,
    totp_last_step       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (phone, slot)
);

CREATE TABLE totp_recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE sms_codes (
    id          TEXT PRIMARY KEY,
    phone       TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    ip          TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    consumed_at INTEGER
);
CREATE INDEX sms_codes_by_number ON sms_codes (phone, purpose, created_at);
CREATE INDEX sms_codes_by_ip ON sms_codes (ip, created_at);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL UNIQUE,
    device_name  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX sessions_by_account ON sessions (account_id);

CREATE TABLE login_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    throttled_until INTEGER NOT NULL DEFAULT 0,
    locked          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE rate_events (
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX rate_events_by_key ON rate_events (scope, key, at);
