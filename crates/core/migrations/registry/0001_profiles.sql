-- The profile registry (profiles.db): what profiles exist and how they look. Never a secret:
-- session tokens live only in the OS keyring.
CREATE TABLE profiles (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    color      TEXT NOT NULL,
    position   INTEGER NOT NULL,
    server_url TEXT NOT NULL,
    account_id TEXT NOT NULL,
    public_id  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (server_url, account_id)
);
