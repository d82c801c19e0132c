-- Each profile's notification policy (JSON: on/off, preview level, sound, quiet hours, money).
ALTER TABLE profiles ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
-- The account's newest event when the profile was added: events up to it are history and
-- never raise a notification (adding an account must not replay its whole past).
ALTER TABLE profiles ADD COLUMN history_until INTEGER NOT NULL DEFAULT 0;
