-- Who may claim a red envelope, fixed when it is sent: a group's members at that moment (one
-- who joins later was not there to be given it), a direct envelope's recipient by account (a
-- public ID can change hands). The sender may always look at it.
CREATE TABLE red_envelope_audience (
    envelope_id TEXT NOT NULL REFERENCES red_envelopes (id),
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (envelope_id, account_id)
) WITHOUT ROWID;

-- Envelopes sent before this: their groups' members now (the best record there is) and the
-- holder of the direct target's public ID now.
INSERT INTO red_envelope_audience (envelope_id, account_id)
    SELECT e.id, m.account_id FROM red_envelopes e
        JOIN group_members m ON m.group_id = e.group_id
    UNION
    SELECT e.id, a.id FROM red_envelopes e
        JOIN accounts a ON a.public_id = e.target
        WHERE e.group_id IS NULL;
