-- Fewer b-trees per issuance. Every index an INSERT touches is at least one more page in the
-- WAL at each commit and in each checkpoint; the issuance path touched seven b-trees.
-- Kept: certificates_transaction (replay check; its platform_id prefix serves per-platform
-- queries), certificates_serial (lookups, uniqueness), certificates_device_platform (device
-- revocation).

-- A prefix of certificates_transaction and certificates_device_platform.
DROP INDEX certificates_platform;
-- No query looks certificates up by device id alone (always with the platform).
DROP INDEX certificates_device;
-- Every issued row went into it; the CRL only ever wants the revoked rows of one issuer.
DROP INDEX certificates_status;
CREATE INDEX certificates_revoked ON certificates (issuer_id) WHERE status = 'revoked';
