-- Foundation: entities, seal credentials and the audit journal (PostgreSQL).
-- Times are microseconds since the Unix epoch (UTC); hashes are raw 32-byte bytea.

CREATE TABLE entities (
    id                      TEXT   PRIMARY KEY,
    legal_name              TEXT   NOT NULL,
    organization_identifier TEXT   NOT NULL UNIQUE,
    country                 TEXT   NOT NULL,
    created_at              BIGINT NOT NULL
);

CREATE TABLE seal_credentials (
    id          TEXT   PRIMARY KEY,
    entity_id   TEXT   NOT NULL REFERENCES entities (id),
    token_role  TEXT   NOT NULL,
    key_id      TEXT   NOT NULL,
    key_label   TEXT   NOT NULL,
    certificate BYTEA,
    status      TEXT   NOT NULL
        CHECK (status IN ('pending', 'active', 'locked', 'revoked', 'expired')),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (token_role, key_id)
);
CREATE INDEX seal_credentials_entity ON seal_credentials (entity_id);

-- One row per journal entry; seq is the 0-based leaf index, assigned from journal_head
-- (locked FOR UPDATE) inside the append transaction, so instances never fork the log.
CREATE TABLE journal_entries (
    seq            BIGINT PRIMARY KEY,
    recorded_at    BIGINT NOT NULL,
    kind           TEXT   NOT NULL,
    payload        BYTEA,
    payload_sha256 BYTEA  NOT NULL,
    prev_leaf_hash BYTEA  NOT NULL,
    leaf_hash      BYTEA  NOT NULL,
    purged_at      BIGINT
);

CREATE TABLE journal_head (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq       BIGINT  NOT NULL,
    last_leaf_hash BYTEA   NOT NULL
);
INSERT INTO journal_head (id, next_seq, last_leaf_hash)
    VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE journal_keys (
    key_id     TEXT   PRIMARY KEY,
    algorithm  TEXT   NOT NULL,
    spki       BYTEA  NOT NULL,
    added_at   BIGINT NOT NULL
);

CREATE TABLE journal_checkpoints (
    id         BIGSERIAL PRIMARY KEY,
    tree_size  BIGINT NOT NULL,
    root_hash  BYTEA  NOT NULL,
    signed_at  BIGINT NOT NULL,
    key_id     TEXT   NOT NULL REFERENCES journal_keys (key_id),
    signature  BYTEA  NOT NULL,
    frontier   BYTEA  NOT NULL
);
CREATE INDEX journal_checkpoints_size ON journal_checkpoints (tree_size);
