-- Plain http to a host other than this computer is refused unless the user allowed it for the
-- profile (SPEC §3.1); a profile that has the allowance is marked "not encrypted".
ALTER TABLE profiles ADD COLUMN allow_insecure_http INTEGER NOT NULL DEFAULT 0;

-- Profiles added before the client spoke TLS had no other way to reach their service: those on
-- plain http to another host keep running, now marked "not encrypted", rather than stop dead
-- with their messages locked in. Loopback URLs (127.0.0.0/8, [::1], localhost) need no mark.
UPDATE profiles SET allow_insecure_http = 1
 WHERE lower(server_url) LIKE 'http://%'
   AND NOT (lower(server_url) LIKE 'http://127.%'
            OR lower(server_url) LIKE 'http://[::1]%'
            OR lower(server_url) = 'http://localhost'
            OR lower(server_url) LIKE 'http://localhost:%'
            OR lower(server_url) LIKE 'http://localhost/%');
