-- Official accounts (SPEC §1.5): operators with roles, followers, articles, customer
-- conversations with claims, and API keys.

CREATE TABLE official_accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    color       TEXT NOT NULL,
    owner_id    TEXT NOT NULL REFERENCES accounts (id),
    created_at  INTEGER NOT NULL
);

-- The owner is an operator too (role 'owner'), so "who operates it" is one table.
CREATE TABLE official_operators (
    official_id TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'support')),
    added_at    INTEGER NOT NULL,
    PRIMARY KEY (official_id, account_id)
) WITHOUT ROWID;
CREATE INDEX official_operators_by_account ON official_operators (account_id);

CREATE TABLE official_followers (
    official_id TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    since       INTEGER NOT NULL,
    PRIMARY KEY (official_id, account_id)
) WITHOUT ROWID;
CREATE INDEX official_followers_by_account ON official_followers (account_id);

CREATE TABLE official_articles (
    id              TEXT PRIMARY KEY,
    official_id     TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    -- Who published it: an operator's account id or `key:<key id>`. Never shown to followers.
    author          TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    published_at    INTEGER NOT NULL,
    -- The article as announced (JSON).
    data            TEXT NOT NULL,
    UNIQUE (official_id, idempotency_key)
);
CREATE INDEX official_articles_newest ON official_articles (official_id, published_at, id);

-- One conversation per official account and customer; it belongs to the official account.
CREATE TABLE official_conversations (
    official_id      TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    customer_id      TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    last_message     TEXT NOT NULL,
    last_at          INTEGER NOT NULL,
    unanswered       INTEGER NOT NULL,
    claimed_by       TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    claim_expires_at INTEGER,
    PRIMARY KEY (official_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX official_conversations_recent ON official_conversations (official_id, last_at);

-- Messages to and from official accounts. `actor` is who sent it: the customer's account id,
-- an operator's, or `key:<key id>`; a retried client_id of one actor is one message.
CREATE TABLE official_messages (
    id          TEXT PRIMARY KEY,
    official_id TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    customer_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    actor       TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    body        TEXT NOT NULL,
    sent_at     INTEGER NOT NULL,
    data        TEXT NOT NULL,
    UNIQUE (actor, client_id)
);

-- A key is shown once; only its SHA-256 is kept (it is 256 random bits, so no slow hash).
CREATE TABLE official_api_keys (
    id          TEXT PRIMARY KEY,
    official_id TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    key_hash    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'support')),
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX official_api_keys_by_official ON official_api_keys (official_id);
