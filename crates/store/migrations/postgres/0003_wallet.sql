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
    balance BIGINT NOT NULL DEFAULT 0,
    CHECK (kind = 'funding' OR balance >= 0)
);

CREATE TABLE journal (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    note       TEXT NOT NULL DEFAULT ''
);

CREATE TABLE entries (
    journal_seq  BIGINT NOT NULL REFERENCES journal (seq),
    book         TEXT NOT NULL REFERENCES books (id),
    amount       BIGINT NOT NULL CHECK (amount <> 0),
    -- The account on the other side, for a wallet's history.
    counterparty TEXT,
    PRIMARY KEY (journal_seq, book)
);
CREATE INDEX entries_by_book ON entries (book, journal_seq);

CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only';
END;
$$;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON journal
    FOR EACH ROW EXECUTE FUNCTION journal_append_only();

CREATE FUNCTION entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only';
END;
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_append_only();

-- A request with an idempotency key, its fingerprint and its first answer, stored in the same
-- transaction as the money it moved.
CREATE TABLE idempotency (
    account_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      BIGINT NOT NULL,
    response    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE red_envelopes (
    id          TEXT PRIMARY KEY,
    sender_id   TEXT NOT NULL REFERENCES accounts (id),
    target      TEXT NOT NULL,
    group_id    TEXT,
    total       BIGINT NOT NULL CHECK (total > 0),
    count       BIGINT NOT NULL CHECK (count > 0),
    mode        TEXT NOT NULL,
    greeting    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    refunded_at BIGINT,
    refunded    BIGINT NOT NULL DEFAULT 0,
    data        TEXT NOT NULL
);
CREATE INDEX red_envelopes_due ON red_envelopes (expires_at) WHERE refunded_at IS NULL;

-- Shares are fixed when the envelope is made; a claim takes the next unclaimed one.
CREATE TABLE red_envelope_shares (
    envelope_id TEXT NOT NULL REFERENCES red_envelopes (id),
    idx         BIGINT NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount > 0),
    claimed_by  TEXT,
    claimed_at  BIGINT,
    PRIMARY KEY (envelope_id, idx),
    UNIQUE (envelope_id, claimed_by)
);
