-- The scepd schema on PostgreSQL, equal to SQLite schema 8 (src/store/sqlite/migrations):
-- the same tables, keys and partial unique indexes, so both backends enforce the same
-- invariants in the database itself. PostgreSQL versions are numbered on their own from here.
--
-- Times are unix seconds (BIGINT), hashes and DER are BYTEA, JSON settings are TEXT (parsed
-- by scepd, never queried). "user" is quoted: it is a reserved word in PostgreSQL.

CREATE TABLE platforms (
    id                    TEXT    NOT NULL PRIMARY KEY,
    name                  TEXT    NOT NULL UNIQUE,
    challenge_kind        TEXT    NOT NULL,
    challenge_settings    TEXT    NOT NULL DEFAULT '{}',
    challenge_secret_hash BYTEA,
    allow_des             BOOLEAN NOT NULL,
    created_at            BIGINT  NOT NULL,
    device_id_pattern     TEXT
);
-- A dynamic platform's challenge URL user name is unique across nodes (SQLite checks it in
-- its single writer; here the index decides).
CREATE UNIQUE INDEX platforms_dynamic_username
    ON platforms (((challenge_settings::json) ->> 'username')) WHERE challenge_kind = 'dynamic';

CREATE TABLE authorities (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          TEXT   NOT NULL PRIMARY KEY,
    role        TEXT   NOT NULL CHECK (role IN ('root', 'intermediate', 'ra')),
    state       TEXT   NOT NULL CHECK (state IN ('active', 'next', 'retired')),
    subject     TEXT   NOT NULL,
    cert_der    BYTEA  NOT NULL,
    key_ref     TEXT   NOT NULL,
    issuer_id   TEXT   REFERENCES authorities (id) DEFERRABLE INITIALLY DEFERRED,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    activate_at BIGINT
);
CREATE UNIQUE INDEX authorities_one_active_per_role ON authorities (role) WHERE state = 'active';
-- At most one staged successor per role (SQLite checks it in its single writer).
CREATE UNIQUE INDEX authorities_one_next_per_role ON authorities (role) WHERE state = 'next';

CREATE TABLE certificates (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuer_id         TEXT   NOT NULL REFERENCES authorities (id),
    serial            TEXT   NOT NULL,
    platform_id       TEXT   NOT NULL REFERENCES platforms (id),
    transaction_id    TEXT   NOT NULL,
    public_key_sha256 BYTEA  NOT NULL,
    subject           TEXT   NOT NULL,
    sans              TEXT   NOT NULL DEFAULT '[]',
    device_id         TEXT,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    der               BYTEA  NOT NULL,
    requested_at      BIGINT NOT NULL,
    status            TEXT   NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    revoked_at        BIGINT,
    revocation_reason TEXT,
    delivery          TEXT   NOT NULL DEFAULT 'released'
                      CHECK (delivery IN ('held', 'released', 'withdrawn')),
    signer_key_sha256 BYTEA
);
-- Serials are unique per issuer across every node: a colliding insert fails and is retried
-- with a fresh serial, never stored twice.
CREATE UNIQUE INDEX certificates_serial ON certificates (issuer_id, serial);
-- One live certificate per SCEP transaction, whichever node got it.
CREATE UNIQUE INDEX certificates_transaction ON certificates (platform_id, transaction_id)
    WHERE delivery <> 'withdrawn';
CREATE INDEX certificates_platform ON certificates (platform_id);
CREATE INDEX certificates_by_device ON certificates (device_id, platform_id);
CREATE INDEX certificates_revoked ON certificates (issuer_id) WHERE status = 'revoked';

CREATE TABLE devices (
    platform_id TEXT   NOT NULL REFERENCES platforms (id),
    device_id   TEXT   NOT NULL,
    "user"      TEXT,
    state       TEXT   NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'suspended', 'deactivated', 'deleted')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (platform_id, device_id)
);
CREATE INDEX devices_device_id ON devices (device_id);

CREATE TABLE audit_events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    subject TEXT   NOT NULL,
    detail  TEXT   NOT NULL DEFAULT '{}'
);

CREATE TABLE crl_numbers (
    issuer_id   TEXT   NOT NULL PRIMARY KEY REFERENCES authorities (id),
    last_number BIGINT NOT NULL
);

CREATE TABLE revocation_generation (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value BIGINT  NOT NULL
);
INSERT INTO revocation_generation (id, value) VALUES (1, 0);

CREATE TABLE admin_tokens (
    name       TEXT   NOT NULL PRIMARY KEY,
    scope      TEXT   NOT NULL CHECK (scope IN ('admin', 'read')),
    token_hash BYTEA  NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE dynamic_challenges (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform_id        TEXT   NOT NULL REFERENCES platforms (id),
    challenge_sha256   BYTEA  NOT NULL UNIQUE CHECK (length(challenge_sha256) = 32),
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    consumed_at        BIGINT,
    issuer_id          TEXT,
    certificate_serial TEXT
);
CREATE INDEX dynamic_challenges_outstanding
    ON dynamic_challenges (platform_id, expires_at) WHERE consumed_at IS NULL;
CREATE INDEX dynamic_challenges_expiry ON dynamic_challenges (expires_at);

CREATE TABLE readiness_probe (
    id        INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    probed_at BIGINT  NOT NULL,
    payload   BYTEA   NOT NULL
);

CREATE TABLE cluster_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    secret     BYTEA  NOT NULL CHECK (length(secret) >= 32),
    created_at BIGINT NOT NULL
);

CREATE TABLE used_trust_nonces (
    nonce_id   BYTEA  NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_trust_nonces_expiry ON used_trust_nonces (expires_at);
