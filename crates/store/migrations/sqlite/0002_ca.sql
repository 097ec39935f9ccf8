-- The CA hierarchy made by the key ceremony (SQLite).
-- Times are microseconds since the Unix epoch (UTC).

CREATE TABLE ceremonies (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    file_sha256  TEXT    NOT NULL,
    completed_at INTEGER NOT NULL,
    transcript   BLOB    NOT NULL
);

-- Every CA and service certificate ever issued; `active` marks the ones in use.
-- The serial number is unique by constraint (RFC 5280 §4.1.2.2).
CREATE TABLE ca_certificates (
    serial      TEXT    PRIMARY KEY,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('root', 'issuing', 'ocsp', 'tsa')),
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
CREATE UNIQUE INDEX ca_certificates_one_active ON ca_certificates (purpose) WHERE active = 1;

-- Keys without a certificate of their own (the audit journal's).
CREATE TABLE service_keys (
    token_role  TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    purpose     TEXT    NOT NULL,
    key_label   TEXT    NOT NULL,
    algorithm   TEXT    NOT NULL,
    public_key  BLOB    NOT NULL,
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (token_role, key_id)
);
CREATE UNIQUE INDEX service_keys_one_active ON service_keys (purpose) WHERE active = 1;
