-- The client-authentication CA is recorded with the other CA certificates
-- (purpose 'client-auth'). SQLite cannot change a CHECK constraint in place:
-- the table is rebuilt with the same columns, rows and indexes.

CREATE TABLE ca_certificates_new (
    serial      TEXT    PRIMARY KEY,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('root', 'issuing', 'client-auth', 'ocsp', 'tsa')),
    token_role  TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    key_label   TEXT    NOT NULL,
    der         BLOB    NOT NULL,
    sha256      TEXT    NOT NULL UNIQUE,
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at  INTEGER NOT NULL
);
INSERT INTO ca_certificates_new (serial, purpose, token_role, key_id, key_label, der, sha256,
                                 not_before, not_after, active, created_at)
    SELECT serial, purpose, token_role, key_id, key_label, der, sha256,
           not_before, not_after, active, created_at
    FROM ca_certificates;
DROP TABLE ca_certificates;
ALTER TABLE ca_certificates_new RENAME TO ca_certificates;
CREATE UNIQUE INDEX ca_certificates_one_active ON ca_certificates (purpose) WHERE active = 1;
