-- One profile's own database (profiles/<id>/profile.db).

-- The last event applied; advanced in the same transaction as the event itself, so a crash
-- can never apply an event twice or skip one.
CREATE TABLE cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO cursor (id, seq) VALUES (1, 0);

CREATE TABLE events (
    seq  INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    at   TEXT NOT NULL,
    data TEXT NOT NULL
);

CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,   -- the other account's public ID, or a group id
    kind            TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    title           TEXT NOT NULL,
    last_message_at TEXT,
    last_body       TEXT,
    unread          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    client_id       TEXT NOT NULL,
    sender          TEXT NOT NULL,
    sender_name     TEXT NOT NULL,
    body            TEXT NOT NULL,
    sent_at         TEXT NOT NULL,
    seq             INTEGER NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);

CREATE VIRTUAL TABLE messages_fts USING fts5(body, content = 'messages', content_rowid = 'rowid');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.rowid, new.body);
END;

-- Messages written while offline, sent in order once connected; each keeps its client id so a
-- retry after a lost answer never sends twice.
CREATE TABLE outbox (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id  TEXT NOT NULL UNIQUE,
    to_id      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
