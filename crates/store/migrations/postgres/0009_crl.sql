-- Certificate revocation lists: the numbers (one counter per issuing CA purpose,
-- shared by every instance) and each CRL published. The RA fills the
-- invalidity date of a revocation when the subscriber knows it.
-- Times are microseconds since the Unix epoch (UTC).

ALTER TABLE revocations ADD COLUMN invalidity_date BIGINT;

-- The last cRLNumber given out per issuer purpose (root, issuing, client-auth).
CREATE TABLE crl_state (
    issuer  TEXT    PRIMARY KEY,
    number  BIGINT NOT NULL
);

-- Every CRL (or ARL) published; the one served is the highest number.
CREATE TABLE crls (
    issuer        TEXT    NOT NULL,
    number        BIGINT NOT NULL,
    ca_serial     TEXT    NOT NULL,
    der           BYTEA   NOT NULL,
    sha256        TEXT    NOT NULL,
    this_update   BIGINT NOT NULL,
    next_update   BIGINT NOT NULL,
    entries       BIGINT NOT NULL,
    covers        TEXT    NOT NULL,
    published_at  BIGINT NOT NULL,
    PRIMARY KEY (issuer, number)
);
