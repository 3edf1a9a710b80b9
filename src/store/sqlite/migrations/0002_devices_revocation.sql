-- scepd schema version 2: device registry, audit trail, revocation bookkeeping.

-- One device per (platform, device id), created at its first enrollment.
CREATE TABLE devices (
    platform_id TEXT    NOT NULL REFERENCES platforms (id),
    device_id   TEXT    NOT NULL,
    user        TEXT,
    state       TEXT    NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'suspended', 'deactivated', 'deleted')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (platform_id, device_id)
) STRICT;

CREATE INDEX devices_device_id ON devices (device_id);

-- Append-only audit trail of operator and lifecycle actions.
CREATE TABLE audit_events (
    id      INTEGER NOT NULL PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL DEFAULT '{}'
) STRICT;

-- Per-platform regular expression (one capture group) that extracts the device id.
ALTER TABLE platforms ADD COLUMN device_id_pattern TEXT;

-- Last CRL number per issuing CA (monotonic across restarts).
CREATE TABLE crl_numbers (
    issuer_id   TEXT    NOT NULL PRIMARY KEY REFERENCES authorities (id),
    last_number INTEGER NOT NULL
) STRICT;

-- Bumped by every revocation or device state change, so running servers notice changes made
-- by other processes (the CLI) within their polling interval.
CREATE TABLE revocation_generation (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;
INSERT INTO revocation_generation (id, value) VALUES (1, 0);

CREATE INDEX certificates_device_platform ON certificates (platform_id, device_id);
