-- Seals (postgres): an index of the journal's seal.created entries by credential,
-- for seal transparency (the journal entry is the record; this finds it), and
-- the Idempotency-Key of seal calls with the answer they got.
-- Times are microseconds since the Unix epoch (UTC).
CREATE TABLE seals (
    journal_index    BIGINT PRIMARY KEY,
    credential_id    TEXT    NOT NULL,
    principal        TEXT    NOT NULL,
    format           TEXT    NOT NULL,
    level            TEXT    NOT NULL,
    document_sha256  TEXT    NOT NULL,
    seal_sha256      TEXT    NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX seals_credential ON seals (credential_id, journal_index);

-- One row per (caller, key): 'pending' while the seal is made, 'done' with the
-- answer to replay. A different request under the same key is refused.
CREATE TABLE seal_idempotency (
    principal        TEXT    NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    request_sha256   TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'done')),
    media_type       TEXT,
    response         BYTEA,
    journal_index    BIGINT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
