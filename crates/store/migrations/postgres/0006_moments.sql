-- Media and Moments (SPEC §1.6).

-- An uploaded image: its bytes live in the blob store under their SHA-256; this row says who
-- uploaded it and what it is.
CREATE TABLE media (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    mime       TEXT NOT NULL,
    size       BIGINT NOT NULL,
    width      BIGINT NOT NULL,
    height     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE moments (
    id              TEXT PRIMARY KEY,
    author_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    text            TEXT NOT NULL,
    -- Media ids, as a JSON array.
    media           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    UNIQUE (author_id, idempotency_key)
);

-- Who may see each post (its author included), decided when it is posted from the author's
-- contacts and its visibility. The feed is one index range of it.
CREATE TABLE moment_audience (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    moment_id  TEXT NOT NULL REFERENCES moments (id) ON DELETE CASCADE,
    author_id  TEXT NOT NULL,
    PRIMARY KEY (account_id, created_at, moment_id)
);
CREATE UNIQUE INDEX moment_audience_by_moment ON moment_audience (moment_id, account_id);

-- Which posts use which media (who may fetch an image follows from who may see a post).
CREATE TABLE moment_media (
    media_id  TEXT NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    moment_id TEXT NOT NULL REFERENCES moments (id) ON DELETE CASCADE,
    PRIMARY KEY (media_id, moment_id)
);

CREATE TABLE moment_likes (
    moment_id TEXT NOT NULL REFERENCES moments (id) ON DELETE CASCADE,
    author_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    at        BIGINT NOT NULL,
    PRIMARY KEY (moment_id, author_id)
);

CREATE TABLE moment_comments (
    id        TEXT PRIMARY KEY,
    moment_id TEXT NOT NULL REFERENCES moments (id) ON DELETE CASCADE,
    author_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    text      TEXT NOT NULL,
    reply_to  TEXT,
    at        BIGINT NOT NULL
);
CREATE INDEX moment_comments_by_moment ON moment_comments (moment_id, at);
