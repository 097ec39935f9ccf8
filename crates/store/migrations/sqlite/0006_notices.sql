-- The notification outbox (sqlite): a notice is written with the change it tells
-- about and deleted never; the worker sends it at least once, each time with the
-- same Message-ID, retrying with backoff until the mail server takes it.
CREATE TABLE notices (
    id              TEXT    PRIMARY KEY,
    message_id      TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      INTEGER  NOT NULL,
    attempts        INTEGER  NOT NULL DEFAULT 0,
    next_attempt_at INTEGER  NOT NULL,
    last_error      TEXT,
    sent_at         INTEGER
);
CREATE INDEX notices_due ON notices (next_attempt_at);
