-- The portal's sign-ins under way and its sessions (postgres). Both are shared by
-- every instance, so a browser may reach any of them. Keys are the SHA-256
-- of the cookie values: the database never holds a value that would let its
-- reader act as a browser. A sign-in under way keeps the nonce and the PKCE
-- verifier the provider's answer is checked against (minutes at most; taken
-- once).
CREATE TABLE portal_sign_ins (
    browser_sha256 TEXT   PRIMARY KEY,
    provider       TEXT   NOT NULL,
    state          TEXT   NOT NULL,
    nonce          TEXT   NOT NULL,
    pkce_verifier  TEXT   NOT NULL,
    assurance      TEXT   NOT NULL,
    return_to      TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX portal_sign_ins_age ON portal_sign_ins (created_at);

CREATE TABLE portal_sessions (
    id_sha256    TEXT   PRIMARY KEY,
    provider     TEXT   NOT NULL,
    -- The ID token's claims sceau reads (issuer, subject, acr, amr, roles),
    -- from which each request's principal is made again.
    person       TEXT   NOT NULL,
    assurance    TEXT   NOT NULL,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_seen ON portal_sessions (last_seen_at);
