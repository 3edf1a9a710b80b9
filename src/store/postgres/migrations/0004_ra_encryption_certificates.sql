-- Encryption-only RA certificates (issue #22, `[pki] encryption_ra`). Some clients (PyScep,
-- scepreq and tools on the same code) encrypt to the first GetCACert certificate whose
-- keyUsage is keyEncipherment without digitalSignature, and never to a dual-use RA. Each RA may
-- have one such certificate, for a key of its own, issued by the RA's issuer; it follows its
-- RA's lifecycle (active, next, retired) rather than having one, and the RA still signs every
-- CertRep. The key file is named by key_ref, as for authorities.
CREATE TABLE ra_encryption_certificates (
    ra_id      TEXT    NOT NULL PRIMARY KEY REFERENCES authorities (id),
    subject    TEXT    NOT NULL,
    cert_der   BYTEA   NOT NULL,
    key_ref    TEXT    NOT NULL UNIQUE,
    not_before BIGINT  NOT NULL,
    not_after  BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);
