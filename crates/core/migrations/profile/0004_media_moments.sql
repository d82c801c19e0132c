-- Images and Moments (SPEC §2.6), kept inside the profile's own (encrypted) database: the
-- cache is part of the sandbox, unreadable without the keyring, and erased with the profile.

-- Media ids of the images a message carries, as a JSON array.
ALTER TABLE messages ADD COLUMN media TEXT NOT NULL DEFAULT '[]';
-- Local keys (SHA-256) of the images a queued message carries: they are uploaded when it is
-- sent, and their bytes are never evicted while it waits.
ALTER TABLE outbox ADD COLUMN media TEXT NOT NULL DEFAULT '[]';

-- One image by its content: a thumbnail made once, and the full bytes while the cache has
-- room (least recently used first out; a thumbnail outlives its full image).
CREATE TABLE media_cache (
    key        TEXT PRIMARY KEY,       -- hex SHA-256 of the full bytes
    mime       TEXT NOT NULL,
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    thumb      BLOB NOT NULL,
    thumb_mime TEXT NOT NULL,
    full       BLOB,
    used       INTEGER NOT NULL     -- a counter: the higher, the more recently used
);
CREATE INDEX media_cache_by_use ON media_cache (used);

-- The service's ids of cached images (one image uploaded twice has two).
CREATE TABLE media_ids (
    media_id TEXT PRIMARY KEY,
    key      TEXT NOT NULL REFERENCES media_cache (key) ON DELETE CASCADE
);
CREATE INDEX media_ids_by_key ON media_ids (key);

-- The posts this account may see, as the service last told it (the feed works offline).
-- Likes and comments are the ones this account may see, as JSON arrays.
CREATE TABLE moments (
    id          TEXT PRIMARY KEY,
    author      TEXT NOT NULL,
    author_name TEXT NOT NULL,
    text        TEXT NOT NULL,
    media       TEXT NOT NULL,
    at          TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    likes       TEXT NOT NULL DEFAULT '[]',
    comments    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX moments_by_time ON moments (at_ms, id);
