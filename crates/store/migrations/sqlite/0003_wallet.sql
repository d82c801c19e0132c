-- The wallet: a double-entry, append-only ledger.
--
-- Money lives in books: one per account's wallet (`wallet:<account>`), one per red envelope's
-- escrow (`escrow:<envelope>`) and the sandbox funding source (`funding:sandbox`, the only book
-- allowed below zero: it is where topped-up money comes from). Every movement is a journal
-- transaction whose entries sum to zero; entries and journal rows are never updated or
-- deleted (corrections are reversing transactions). `books.balance` caches the sum of a book's
-- entries and is checked by `switchboard-server ledger check`.

CREATE TABLE books (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL CHECK (kind IN ('wallet', 'escrow', 'funding')),
    balance INTEGER NOT NULL DEFAULT 0,
    CHECK (kind = 'funding' OR balance >= 0)
);

CREATE TABLE journal (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    note       TEXT NOT NULL DEFAULT ''
);

CREATE TABLE entries (
    journal_seq  INTEGER NOT NULL REFERENCES journal (seq),
    book         TEXT NOT NULL REFERENCES books (id),
    amount       INTEGER NOT NULL CHECK (amount <> 0),
    -- The account on the other side, for a wallet's history.
    counterparty TEXT,
    PRIMARY KEY (journal_seq, book)
);
CREATE INDEX entries_by_book ON entries (book, journal_seq);

CREATE TRIGGER journal_append_only_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_append_only_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;

-- A request with an idempotency key, its fingerprint and its first answer, stored in the same
-- transaction as the money it moved.
CREATE TABLE idempotency (
    account_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;

CREATE TABLE red_envelopes (
    id          TEXT PRIMARY KEY,
    sender_id   TEXT NOT NULL REFERENCES accounts (id),
    target      TEXT NOT NULL,
    group_id    TEXT,
    total       INTEGER NOT NULL CHECK (total > 0),
    count       INTEGER NOT NULL CHECK (count > 0),
    mode        TEXT NOT NULL,
    greeting    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    refunded_at INTEGER,
    refunded    INTEGER NOT NULL DEFAULT 0,
    data        TEXT NOT NULL
);
CREATE INDEX red_envelopes_due ON red_envelopes (expires_at) WHERE refunded_at IS NULL;

-- Shares are fixed when the envelope is made; a claim takes the next unclaimed one.
CREATE TABLE red_envelope_shares (
    envelope_id TEXT NOT NULL REFERENCES red_envelopes (id),
    idx         INTEGER NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    claimed_by  TEXT,
    claimed_at  INTEGER,
    PRIMARY KEY (envelope_id, idx),
    UNIQUE (envelope_id, claimed_by)
) WITHOUT ROWID;
