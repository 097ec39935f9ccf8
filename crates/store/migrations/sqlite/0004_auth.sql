-- Strong authentication and activation (sqlite): activation credentials, the
-- SAD ledger, lockout counters, identity providers and role assignments.
-- Times are microseconds since the Unix epoch (UTC).

-- What may activate a seal credential: a registered TLS client certificate (by
-- SHA-256 of its DER) or an OIDC identity (issuer + subject or client id).
CREATE TABLE activation_credentials (
    id                 TEXT    PRIMARY KEY,
    seal_credential_id TEXT    NOT NULL REFERENCES seal_credentials (id),
    entity_id          TEXT    NOT NULL REFERENCES entities (id),
    kind               TEXT    NOT NULL CHECK (kind IN ('client_certificate', 'oidc')),
    certificate_sha256 TEXT,
    oidc_issuer        TEXT,
    oidc_subject       TEXT,
    status             TEXT    NOT NULL CHECK (status IN ('active', 'revoked')),
    created_by         TEXT    NOT NULL,
    created_at         INTEGER  NOT NULL,
    revoked_at         INTEGER,
    CHECK ((kind = 'client_certificate' AND certificate_sha256 IS NOT NULL)
        OR (kind = 'oidc' AND oidc_issuer IS NOT NULL AND oidc_subject IS NOT NULL))
);
CREATE INDEX activation_credentials_by_credential ON activation_credentials (seal_credential_id);
CREATE INDEX activation_credentials_by_certificate ON activation_credentials (certificate_sha256);
CREATE INDEX activation_credentials_by_oidc ON activation_credentials (oidc_issuer, oidc_subject);

-- Consecutive counted activation failures; the credential locks at the limit.
ALTER TABLE seal_credentials ADD COLUMN failed_activations INTEGER NOT NULL DEFAULT 0;

-- Signature activation data: a random token (only its SHA-256 is kept), bound to
-- a principal and a credential, spent once per signature up to its count. At
-- SCAL2 it is bound to the exact digests too, each spent once.
CREATE TABLE sads (
    sad_sha256    TEXT    PRIMARY KEY,
    credential_id TEXT    NOT NULL REFERENCES seal_credentials (id),
    principal_id  TEXT    NOT NULL,
    scal          INTEGER NOT NULL CHECK (scal IN (1, 2)),
    remaining     INTEGER NOT NULL CHECK (remaining >= 0),
    expires_at    INTEGER  NOT NULL,
    created_at    INTEGER  NOT NULL
);
CREATE TABLE sad_digests (
    sad_sha256 TEXT    NOT NULL REFERENCES sads (sad_sha256),
    digest     TEXT    NOT NULL,
    spent_at   INTEGER,
    PRIMARY KEY (sad_sha256, digest)
);

-- The identity providers an organisation registered, and who they vouch for.
CREATE TABLE identity_providers (
    id         TEXT    PRIMARY KEY,
    entity_id  TEXT    NOT NULL REFERENCES entities (id),
    issuer     TEXT    NOT NULL,
    audience   TEXT    NOT NULL,
    callers    TEXT    NOT NULL CHECK (callers IN ('people', 'servers')),
    allowed    TEXT    NOT NULL,
    acr_values TEXT    NOT NULL,
    created_at INTEGER  NOT NULL,
    UNIQUE (entity_id, issuer, callers)
);

-- Roles given to OIDC identities; entity_id is '' for the trust service's staff.
CREATE TABLE role_assignments (
    issuer     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    entity_id  TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER  NOT NULL,
    PRIMARY KEY (issuer, subject, role, entity_id)
);
