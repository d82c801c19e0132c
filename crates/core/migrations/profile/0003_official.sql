-- Official accounts this profile's account operates, and their customer conversations, as
-- the event log tells them (official.operator_added / _removed, official.message,
-- official.claimed). Kept in the profile's own database like everything else it sees.

CREATE TABLE official_accounts (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- This account's role: owner, admin, editor or support.
    role TEXT NOT NULL
);

CREATE TABLE official_conversations (
    official_id      TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    customer         TEXT NOT NULL,  -- the customer's public ID
    customer_name    TEXT NOT NULL,
    last_body        TEXT NOT NULL,
    last_at          TEXT NOT NULL,
    unanswered       INTEGER NOT NULL,
    claimed_by       TEXT,           -- an operator's public ID
    claim_expires_ms INTEGER,        -- Unix milliseconds
    PRIMARY KEY (official_id, customer)
);
CREATE INDEX official_conversations_recent ON official_conversations (last_at);

CREATE TABLE official_messages (
    id          TEXT PRIMARY KEY,
    official_id TEXT NOT NULL REFERENCES official_accounts (id) ON DELETE CASCADE,
    customer    TEXT NOT NULL,
    -- The customer, or the official account's id for an answer.
    sender      TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    -- Who answered, for an answer: an operator's display name or a key's name.
    responder   TEXT,
    body        TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    seq         INTEGER NOT NULL
);
CREATE INDEX official_messages_by_conversation ON official_messages (official_id, customer, seq);
