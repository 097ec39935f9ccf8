-- Seal certificates issued under the certificate policies (postgres).
-- Times are microseconds since the Unix epoch (UTC).

-- A row is written before the CA key signs ('reserved'), so the serial number is
-- unique by constraint before any certificate carries it, and completed once the
-- certificate is journaled ('issued'). A key is certified once: renewal always
-- brings a new key.
CREATE TABLE certificates (
    serial         TEXT    PRIMARY KEY,
    state          TEXT    NOT NULL CHECK (state IN ('reserved', 'issued')),
    policy_id      TEXT    NOT NULL,
    request_id     TEXT    NOT NULL,
    entity_id      TEXT    NOT NULL REFERENCES entities (id),
    credential_id  TEXT,
    subject        TEXT    NOT NULL,
    spki_sha256    TEXT    NOT NULL UNIQUE,
    der            BYTEA,
    sha256         TEXT    UNIQUE,
    not_before     BIGINT  NOT NULL,
    not_after      BIGINT  NOT NULL,
    reserved_at    BIGINT  NOT NULL,
    issued_at      BIGINT,
    journal_index  BIGINT,
    CHECK (state = 'reserved' OR (der IS NOT NULL AND sha256 IS NOT NULL AND issued_at IS NOT NULL))
);
CREATE INDEX certificates_entity ON certificates (entity_id);
CREATE INDEX certificates_credential ON certificates (credential_id);
