-- CRLs published for every node (issue #14): one publisher at a time holds the
-- `crl-publisher` lease and stores what it signed; every node serves the stored CRL, so CRL
-- numbers never go backwards whichever node a relying party asks.
CREATE TABLE published_crls (
    issuer_id   TEXT    NOT NULL PRIMARY KEY REFERENCES authorities (id),
    number      INTEGER NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    der         BLOB    NOT NULL
) STRICT;

-- Leases: a named job one process does at a time; another takes it over once `expires_at`
-- has passed without renewal (its holder died or lost the database).
CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
