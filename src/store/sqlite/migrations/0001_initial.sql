-- scepd schema version 1.
-- Applied by src/store/mod.rs inside one transaction; PRAGMA user_version is set by the runner.
-- Times are INTEGER unix seconds. Serials are lowercase hex without separators.

-- Enrollment platforms (an MDM, a fleet, ...). The challenge is described by its kind plus
-- kind-specific JSON settings and an optional secret hash, so new kinds need no schema change.
CREATE TABLE platforms (
    id                    TEXT    NOT NULL PRIMARY KEY,
    name                  TEXT    NOT NULL UNIQUE,
    challenge_kind        TEXT    NOT NULL,
    challenge_settings    TEXT    NOT NULL DEFAULT '{}',
    challenge_secret_hash BLOB,
    allow_des             INTEGER NOT NULL CHECK (allow_des IN (0, 1)),
    created_at            INTEGER NOT NULL
) STRICT;

-- Root, intermediate and RA certificates. key_ref names a keystore entry; the store never
-- reads keys. The issuer reference is deferred so a bootstrap batch may come in any order.
CREATE TABLE authorities (
    id         TEXT    NOT NULL PRIMARY KEY,
    role       TEXT    NOT NULL CHECK (role IN ('root', 'intermediate', 'ra')),
    state      TEXT    NOT NULL CHECK (state IN ('active', 'next', 'retired')),
    subject    TEXT    NOT NULL,
    cert_der   BLOB    NOT NULL,
    key_ref    TEXT    NOT NULL,
    issuer_id  TEXT    REFERENCES authorities (id) DEFERRABLE INITIALLY DEFERRED,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- At most one active authority per role.
CREATE UNIQUE INDEX authorities_one_active_per_role ON authorities (role) WHERE state = 'active';

-- Every certificate issued, with the SCEP transaction that asked for it.
CREATE TABLE certificates (
    id                INTEGER NOT NULL PRIMARY KEY,
    issuer_id         TEXT    NOT NULL REFERENCES authorities (id),
    serial            TEXT    NOT NULL,
    platform_id       TEXT    NOT NULL REFERENCES platforms (id),
    transaction_id    TEXT    NOT NULL,
    public_key_sha256 BLOB    NOT NULL,
    subject           TEXT    NOT NULL,
    sans              TEXT    NOT NULL DEFAULT '[]',
    device_id         TEXT,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    der               BLOB    NOT NULL,
    requested_at      INTEGER NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    revoked_at        INTEGER,
    revocation_reason TEXT
) STRICT;

CREATE UNIQUE INDEX certificates_transaction ON certificates (platform_id, transaction_id);
CREATE UNIQUE INDEX certificates_serial ON certificates (issuer_id, serial);
CREATE INDEX certificates_device ON certificates (device_id);
CREATE INDEX certificates_platform ON certificates (platform_id);
CREATE INDEX certificates_status ON certificates (status);
