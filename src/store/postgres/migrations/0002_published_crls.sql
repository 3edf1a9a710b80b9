-- CRLs published for every node: one publisher at a time holds the `crl-publisher` lease and
-- stores what it signed; every node serves the stored CRL, so CRL numbers never go backwards
-- whichever node a relying party asks.
CREATE TABLE published_crls (
    issuer_id   TEXT   NOT NULL PRIMARY KEY REFERENCES authorities (id),
    number      BIGINT NOT NULL,
    this_update BIGINT NOT NULL,
    next_update BIGINT NOT NULL,
    generation  BIGINT NOT NULL,
    der         BYTEA  NOT NULL
);

-- Leases: a named job one node does at a time; another takes it over once `expires_at` has
-- passed without renewal (its holder died or lost the database).
CREATE TABLE leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
