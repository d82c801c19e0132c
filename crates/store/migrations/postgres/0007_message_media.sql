-- Images in messages (SPEC §1.6): who may fetch an image because a message carrying it
-- reached them. Written in the message's own transaction, for its sender and every recipient
-- as they were when it was sent.
CREATE TABLE media_grants (
    media_id   TEXT NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (media_id, account_id)
);
