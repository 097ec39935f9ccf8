-- Certificate revocation lists: the numbers (one counter per issuing CA purpose,
-- shared by every instance) and each CRL published. The RA fills the
-- invalidity date of a revocation when the subscriber knows it.
-- Times are microseconds since the Unix epoch (UTC).

ALTER TABLE revocations ADD COLUMN invalidity_date INTEGER;

-- The last cRLNumber given out per issuer purpose (root, issuing, client-auth).
CREATE TABLE crl_state (
    issuer  TEXT    PRIMARY KEY,
    number  INTEGER NOT NULL
);

-- Every CRL (or ARL) published; the one served is the highest number.
CREATE TABLE crls (
    issuer        TEXT    NOT NULL,
    number        INTEGER NOT NULL,
    ca_serial     TEXT    NOT NULL,
    der           BLOB    NOT NULL,
    sha256        TEXT    NOT NULL,
    this_update   INTEGER NOT NULL,
    next_update   INTEGER NOT NULL,
    entries       INTEGER NOT NULL,
    covers        TEXT    NOT NULL,
    published_at  INTEGER NOT NULL,
    PRIMARY KEY (issuer, number)
);
