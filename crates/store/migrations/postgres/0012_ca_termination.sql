-- The end of a CA (postgres): the administrators' approvals, the termination's
-- progress, revoked CA and service certificates (the ARL and the final CRL),
-- and the last OCSP responses, signed by the CA key before it was destroyed.
-- Times are microseconds since the Unix epoch (UTC).

-- One row per administrator: the primary key refuses the same one twice.
CREATE TABLE ca_termination_approvals (
    ca_serial      TEXT    NOT NULL REFERENCES ca_certificates (serial),
    approver       TEXT    NOT NULL,
    auth_method    TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    approved_at    BIGINT NOT NULL,
    journal_index  BIGINT NOT NULL,
    PRIMARY KEY (ca_serial, approver)
);

-- Started before the first step; each later step is recorded as it ends, so
-- an interrupted termination resumes where it stopped.
CREATE TABLE ca_terminations (
    ca_serial            TEXT    PRIMARY KEY REFERENCES ca_certificates (serial),
    purpose              TEXT    NOT NULL,
    started_at           BIGINT NOT NULL,
    certificates_revoked BIGINT,
    final_crl_number     BIGINT,
    final_ocsp_responses BIGINT,
    arl_number           BIGINT,
    key_destroyed_at     BIGINT,
    completed_at         BIGINT
);

-- CA and service certificates revoked by their issuer (`root` for sub-CAs,
-- `issuing` for the OCSP responder and TSU certificates).
CREATE TABLE ca_revocations (
    serial       TEXT    PRIMARY KEY REFERENCES ca_certificates (serial),
    issuer       TEXT    NOT NULL,
    reason_code  BIGINT,
    revoked_at   BIGINT NOT NULL
);

-- Keyed by the CertID's hash algorithm too: a client matches the CertID it sent.
CREATE TABLE final_ocsp_responses (
    serial          TEXT    NOT NULL,
    hash_algorithm  TEXT    NOT NULL CHECK (hash_algorithm IN ('sha1', 'sha256')),
    ca_serial       TEXT    NOT NULL REFERENCES ca_certificates (serial),
    der             BYTEA    NOT NULL,
    produced_at     BIGINT NOT NULL,
    PRIMARY KEY (serial, hash_algorithm)
);
