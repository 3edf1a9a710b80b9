-- Stateless trust-check nonces (the security audit's nonce-exhaustion item).
--
-- A nonce is an HMAC over its expiry and a random value under a key every node shares, so
-- handing one out stores nothing and cannot be exhausted. The key is created once, by
-- whichever node asks first (INSERT OR IGNORE, then read back), and lives here so that all
-- nodes on one database agree on it. It authenticates nonces only: whoever reads it can mint
-- nonces, which lets them do nothing a caller of /trust/v1/challenge cannot.
CREATE TABLE cluster_secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    secret     BLOB    NOT NULL CHECK (length(secret) >= 32),
    created_at INTEGER NOT NULL
) STRICT;

-- Nonces presented to /trust/v1/verify, kept until they expire: a nonce is accepted once
-- (the primary key decides, on every node), expired rows are pruned.
CREATE TABLE used_trust_nonces (
    nonce_id   BLOB    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX used_trust_nonces_expiry ON used_trust_nonces (expires_at);
