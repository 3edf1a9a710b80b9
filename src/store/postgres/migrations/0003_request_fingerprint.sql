-- Replays are recognised by the whole request, not by its transactionID alone (issue #22).
-- strongSwan, micromdm scepclient and certmonger derive the transactionID from the key, so a
-- same-key renewal reuses the original one; it must get a new certificate, not the old one.
--
-- request_sha256: SHA-256 over the message type, the signer certificate and the CSR
-- (scepd_pki::scep::request_fingerprint). A request with the same fingerprint as a live
-- certificate of its transaction is a replay and gets that certificate. NULL for rows from
-- before this migration: no resend matches them, so a client that resends an old request is
-- authorised afresh, never handed a certificate on a weaker match.
ALTER TABLE certificates ADD COLUMN request_sha256 BYTEA;

-- superseded_at: when a later request of the same transaction (same key) was issued a
-- certificate. The current certificate of a transaction (CertPoll's answer) is the live one
-- that is not superseded; a superseded one still answers replays of its own request.
ALTER TABLE certificates ADD COLUMN superseded_at BIGINT;

-- One current certificate per (platform, transaction). Superseded rows are few and found
-- through their own partial index, which new rows (never superseded) do not enter.
DROP INDEX certificates_transaction;
CREATE UNIQUE INDEX certificates_transaction ON certificates (platform_id, transaction_id)
    WHERE delivery <> 'withdrawn' AND superseded_at IS NULL;
CREATE INDEX certificates_superseded ON certificates (platform_id, transaction_id)
    WHERE superseded_at IS NOT NULL;
