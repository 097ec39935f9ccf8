-- Seal keys destroyed in the HSM once their certificate is revoked or expired
-- (sqlite): when, and the journal entry that records it.
ALTER TABLE seal_credentials ADD COLUMN key_destroyed_at INTEGER;
ALTER TABLE seal_credentials ADD COLUMN key_destroyed_journal_index INTEGER;
