-- Fewer b-trees per issuance. Every index an INSERT touches is at least one more page in the
-- WAL at each commit and in each checkpoint; the issuance path touched seven b-trees, now five.
-- Kept: certificates_transaction (replay check), certificates_serial (lookups, uniqueness),
-- certificates_platform (per-platform listings, newest first: the index ends in the rowid).

-- Two device indexes become one: equality on both columns (device revocation, a device's
-- certificates) and on device_id alone (the admin API's device filter) both use it.
DROP INDEX certificates_device;
DROP INDEX certificates_device_platform;
CREATE INDEX certificates_by_device ON certificates (device_id, platform_id);
-- Every issued row went into the status index; the CRL only wants the revoked rows of one
-- issuer.
DROP INDEX certificates_status;
CREATE INDEX certificates_revoked ON certificates (issuer_id) WHERE status = 'revoked';
