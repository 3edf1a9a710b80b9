-- scepd schema version 4: dynamic one-time challenges.
-- Applied by src/store/mod.rs inside one transaction; PRAGMA user_version is set by the runner.
--
-- Dynamic platforms keep their settings (username, TTL, cache size) in platforms.challenge_settings
-- and the SHA-256 of their challenge-URL password in platforms.challenge_secret_hash; delegated
-- platforms (intune, webhook) keep their settings there too and their client/webhook secret in a
-- 0600 file under <data_dir>/secrets/, never in the database. So platforms needs no change.

-- One-time challenges handed out by a dynamic platform's challenge URL. Only the SHA-256 of a
-- challenge is stored (challenges carry 128 bits of entropy, so a fast hash is enough).
-- A challenge is outstanding while consumed_at IS NULL and expires_at > now. It is consumed in
-- the same transaction that records the certificate it authorised (certificate_serial then
-- names it, with the issuer), or burnt without a certificate when an authentic request was
-- refused by policy (certificate_serial stays NULL).
CREATE TABLE dynamic_challenges (
    id                 INTEGER NOT NULL PRIMARY KEY,
    platform_id        TEXT    NOT NULL REFERENCES platforms (id),
    challenge_sha256   BLOB    NOT NULL UNIQUE CHECK (length(challenge_sha256) = 32),
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    consumed_at        INTEGER,
    issuer_id          TEXT,
    certificate_serial TEXT
) STRICT;

-- Counting a platform's outstanding challenges (the "password cache") and pruning old rows.
CREATE INDEX dynamic_challenges_outstanding
    ON dynamic_challenges (platform_id, expires_at) WHERE consumed_at IS NULL;
CREATE INDEX dynamic_challenges_expiry ON dynamic_challenges (expires_at);
