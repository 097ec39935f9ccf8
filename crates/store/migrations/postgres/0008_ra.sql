-- The registration back office (postgres): the organisations' registry details, the
-- persons attached to them, certificate requests and their history, evidence
-- documents (encrypted), revocations and renewal reminders.
-- Times are microseconds since the Unix epoch (UTC).

-- An organisation as registered with INSEE (NULL for rows made before the RA).
ALTER TABLE entities ADD COLUMN siren TEXT;
ALTER TABLE entities ADD COLUMN siret TEXT;
ALTER TABLE entities ADD COLUMN legal_form TEXT;
ALTER TABLE entities ADD COLUMN street TEXT;
ALTER TABLE entities ADD COLUMN postal_code TEXT;
ALTER TABLE entities ADD COLUMN city TEXT;
CREATE UNIQUE INDEX entities_siren ON entities (siren);

-- RCCS, legal representatives and certification agents of an organisation. The
-- OIDC identity is bound at application (RCCS) or by the enrolment link (the
-- others); only the link's SHA-256 is kept.
CREATE TABLE persons (
    id                   TEXT    PRIMARY KEY,
    entity_id            TEXT    NOT NULL REFERENCES entities (id),
    role                 TEXT    NOT NULL CHECK (role IN ('rccs', 'legal_representative', 'agent')),
    given_name           TEXT    NOT NULL,
    family_name          TEXT    NOT NULL,
    email                TEXT    NOT NULL,
    phone                TEXT,
    language             TEXT    NOT NULL CHECK (language IN ('fr', 'en')),
    oidc_issuer          TEXT,
    oidc_subject         TEXT,
    enrolment_sha256     TEXT    UNIQUE,
    enrolment_expires_at BIGINT,
    created_at           BIGINT  NOT NULL
);
CREATE INDEX persons_entity ON persons (entity_id);

-- A certificate request. `file` is the request's JSON dossier (persons, identity
-- verification, terms acceptance, approvals, CSR); `version` guards every update
-- so two operators cannot both move the same state.
CREATE TABLE registration_requests (
    id                 TEXT    PRIMARY KEY,
    entity_id          TEXT    NOT NULL REFERENCES entities (id),
    kind               TEXT    NOT NULL CHECK (kind IN ('initial', 'renewal')),
    policy_id          TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    version            BIGINT  NOT NULL,
    file               TEXT    NOT NULL,
    renews_serial      TEXT,
    certificate_serial TEXT,
    credential_id      TEXT,
    created_by         TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);
CREATE INDEX registration_requests_entity ON registration_requests (entity_id);
CREATE INDEX registration_requests_state ON registration_requests (state);
CREATE INDEX registration_requests_renews ON registration_requests (renews_serial);

-- Each move of a request: who, from where to where, and the journal entry.
CREATE TABLE request_events (
    request_id    TEXT    NOT NULL REFERENCES registration_requests (id),
    seq           BIGINT  NOT NULL,
    action        TEXT    NOT NULL,
    from_state    TEXT    NOT NULL,
    to_state      TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    message       TEXT,
    journal_index BIGINT,
    at            BIGINT  NOT NULL,
    PRIMARY KEY (request_id, seq)
);

-- Evidence documents: the content under a data key wrapped in the HSM; purged
-- (content and wrapped key erased, the row and its SHA-256 kept) after retention.
CREATE TABLE evidence_documents (
    id            TEXT    PRIMARY KEY,
    request_id    TEXT    NOT NULL REFERENCES registration_requests (id),
    kind          TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    sha256        TEXT    NOT NULL,
    kek_label     TEXT    NOT NULL,
    wrapped_key   BYTEA,
    ciphertext    BYTEA,
    uploaded_by   TEXT    NOT NULL,
    uploaded_at   BIGINT  NOT NULL,
    retain_until  BIGINT  NOT NULL,
    purged_at     BIGINT,
    journal_index BIGINT
);
CREATE INDEX evidence_documents_request ON evidence_documents (request_id);
CREATE INDEX evidence_documents_retention ON evidence_documents (retain_until);

-- The RCCS's acceptance of an issued certificate (seed 000 §8).
ALTER TABLE certificates ADD COLUMN accepted_at BIGINT;

-- Revocations: immediate and irreversible, one per certificate.
CREATE TABLE revocations (
    serial        TEXT    PRIMARY KEY REFERENCES certificates (serial),
    reason        TEXT    NOT NULL,
    reason_code   BIGINT,
    revoked_at    BIGINT  NOT NULL,
    requested_by  TEXT    NOT NULL,
    requester_role TEXT   NOT NULL,
    comment       TEXT,
    journal_index BIGINT  NOT NULL
);

-- Renewal reminders sent (or skipped, when the clock passed several thresholds at once).
CREATE TABLE renewal_reminders (
    serial      TEXT    NOT NULL REFERENCES certificates (serial),
    days_before BIGINT  NOT NULL,
    sent_at     BIGINT  NOT NULL,
    PRIMARY KEY (serial, days_before)
);
