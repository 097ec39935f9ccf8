-- The client-authentication CA is recorded with the other CA certificates
-- (purpose 'client-auth').

ALTER TABLE ca_certificates DROP CONSTRAINT ca_certificates_purpose_check;
ALTER TABLE ca_certificates ADD CONSTRAINT ca_certificates_purpose_check
    CHECK (purpose IN ('root', 'issuing', 'client-auth', 'ocsp', 'tsa'));
