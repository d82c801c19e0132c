-- Contacts, groups, messages and the per-account event log.

-- One ordered log per account. A change and the events it causes commit in one transaction;
-- event_heads hands out each account's next sequence number inside that transaction, so the
-- numbers have no gaps and no two events share one.
CREATE TABLE event_heads (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    last_seq   INTEGER NOT NULL
);

CREATE TABLE events (
    account_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;

CREATE TABLE contact_requests (
    id           TEXT PRIMARY KEY,
    from_account TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    to_account   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    note         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'accepted')),
    created_at   INTEGER NOT NULL,
    decided_at   INTEGER
);
-- At most one pending request from one account to another.
CREATE UNIQUE INDEX contact_requests_pending ON contact_requests (from_account, to_account)
    WHERE status = 'pending';
CREATE INDEX contact_requests_to ON contact_requests (to_account, status);

-- Both directions are stored, so "my contacts" is one index range.
CREATE TABLE contacts (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    since      INTEGER NOT NULL,
    PRIMARY KEY (account_id, contact_id)
) WITHOUT ROWID;

CREATE TABLE groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    owner_id   TEXT NOT NULL REFERENCES accounts (id),
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id   TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    joined_at  INTEGER NOT NULL,
    PRIMARY KEY (group_id, account_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_account ON group_members (account_id);

CREATE TABLE messages (
    id        TEXT PRIMARY KEY,
    sender_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    -- What the sender addressed (a public ID or a group id) and the body, to tell a true
    -- retry from a different message reusing the client id.
    target    TEXT NOT NULL,
    body      TEXT NOT NULL,
    sent_at   INTEGER NOT NULL,
    -- The message as delivered (JSON), returned again on a retry.
    data      TEXT NOT NULL,
    UNIQUE (sender_id, client_id)
);
