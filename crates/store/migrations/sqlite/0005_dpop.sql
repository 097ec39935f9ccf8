-- DPoP proofs seen (RFC 9449 §11.1): a proof's jti is accepted once, on any
-- instance, until the proof would be too old anyway (sqlite).
CREATE TABLE dpop_proofs (
    jti_sha256 TEXT    PRIMARY KEY,
    expires_at INTEGER  NOT NULL
);
CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);
