-- Foundation: entities, seal credentials and the audit journal (SQLite).
-- Times are microseconds since the Unix epoch (UTC); hashes are raw 32-byte BLOBs.

CREATE TABLE entities (
    id                      TEXT    PRIMARY KEY,
    legal_name              TEXT    NOT NULL,
    organization_identifier TEXT    NOT NULL UNIQUE,
    country                 TEXT    NOT NULL,
    created_at              INTEGER NOT NULL
);

CREATE TABLE seal_credentials (
    id          TEXT    PRIMARY KEY,
    entity_id   TEXT    NOT NULL REFERENCES entities (id),
    token_role  TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    key_label   TEXT    NOT NULL,
    certificate BLOB,
    status      TEXT    NOT NULL
        CHECK (status IN ('pending', 'active', 'locked', 'revoked', 'expired')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (token_role, key_id)
);
CREATE INDEX seal_credentials_entity ON seal_credentials (entity_id);

-- One row per journal entry; seq is the 0-based leaf index, assigned from journal_head
-- inside the append transaction.
CREATE TABLE journal_entries (
    seq            INTEGER PRIMARY KEY,
    recorded_at    INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    payload        BLOB,
    payload_sha256 BLOB    NOT NULL,
    prev_leaf_hash BLOB    NOT NULL,
    leaf_hash      BLOB    NOT NULL,
    purged_at      INTEGER
);

-- The single row every append locks: the next index and the last leaf hash.
CREATE TABLE journal_head (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq       INTEGER NOT NULL,
    last_leaf_hash BLOB    NOT NULL
);
INSERT INTO journal_head (id, next_seq, last_leaf_hash) VALUES (1, 0, zeroblob(32));

-- Every audit key that ever signed a checkpoint, so old checkpoints stay verifiable.
CREATE TABLE journal_keys (
    key_id     TEXT    PRIMARY KEY,
    algorithm  TEXT    NOT NULL,
    spki       BLOB    NOT NULL,
    added_at   INTEGER NOT NULL
);

CREATE TABLE journal_checkpoints (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tree_size  INTEGER NOT NULL,
    root_hash  BLOB    NOT NULL,
    signed_at  INTEGER NOT NULL,
    key_id     TEXT    NOT NULL REFERENCES journal_keys (key_id),
    signature  BLOB    NOT NULL,
    frontier   BLOB    NOT NULL
);
CREATE INDEX journal_checkpoints_size ON journal_checkpoints (tree_size);
