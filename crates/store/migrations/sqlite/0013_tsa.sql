-- Time-stamp tokens issued by the TSA (sqlite): the primary key makes each
-- TSTInfo serial number unique across instances; the rest is what an auditor
-- needs to match a token (not the token itself). Times are microseconds.
CREATE TABLE timestamps (
    serial          TEXT    PRIMARY KEY,
    tsu_serial      TEXT    NOT NULL,
    policy          TEXT    NOT NULL,
    hash_algorithm  TEXT    NOT NULL,
    hashed_message  TEXT    NOT NULL,
    gen_time        INTEGER NOT NULL
);
CREATE INDEX timestamps_gen_time ON timestamps (gen_time);
