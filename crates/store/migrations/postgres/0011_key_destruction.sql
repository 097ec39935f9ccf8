-- Seal keys destroyed in the HSM once their certificate is revoked or expired
-- (postgres): when, and the journal entry that records it.
ALTER TABLE seal_credentials ADD COLUMN key_destroyed_at BIGINT;
ALTER TABLE seal_credentials ADD COLUMN key_destroyed_journal_index BIGINT;
