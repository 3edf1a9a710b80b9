-- scepd schema version 3: admin API tokens.

-- Bearer tokens for the admin API: shown once, stored as SHA-256 (they carry 160 bits of
-- entropy), revocable, optionally expiring.
CREATE TABLE admin_tokens (
    name       TEXT    NOT NULL PRIMARY KEY,
    scope      TEXT    NOT NULL CHECK (scope IN ('admin', 'read')),
    token_hash BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
) STRICT;
