-- Delivery state and the request signer of each certificate (the security audit's replay and
-- CertPoll items).
--
-- delivery: 'released' certificates may be handed out (replay, CertPoll); 'held' ones wait
-- for a delegated validator's confirmation (Intune's successNotification, a webhook) and are
-- never handed out until it succeeds; 'withdrawn' ones were revoked before anybody received
-- them (the confirmation failed, or the CertRep could not be built), so a retry of the same
-- SCEP transaction is not a replay of them and may be issued afresh. Rows from before this
-- migration were all delivered or revoked: 'released'.
ALTER TABLE certificates ADD COLUMN delivery TEXT NOT NULL DEFAULT 'released'
    CHECK (delivery IN ('held', 'released', 'withdrawn'));

-- SHA-256 of the SubjectPublicKeyInfo of the certificate that signed the request (for a
-- PKCSReq usually the device's self-signed one, for a RenewalReq the renewed certificate).
-- CertPoll must be signed by the same key. NULL for rows recorded before this migration;
-- their CertPoll falls back to the certified key.
ALTER TABLE certificates ADD COLUMN signer_key_sha256 BLOB;

-- One live certificate per (platform, transaction): withdrawn ones no longer count.
DROP INDEX certificates_transaction;
CREATE UNIQUE INDEX certificates_transaction ON certificates (platform_id, transaction_id)
    WHERE delivery <> 'withdrawn';

-- One row that /readyz rewrites (a 32 KiB random blob) to learn whether the store can still
-- commit about as much as an enrollment does (store/readiness.rs).
CREATE TABLE readiness_probe (
    id        INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    probed_at INTEGER NOT NULL,
    payload   BLOB    NOT NULL
) STRICT;
