-- An organisation's identity provider registration can be disabled without
-- being deleted: while disabled_at is set, its tokens authenticate no one.
ALTER TABLE identity_providers ADD COLUMN disabled_at INTEGER;
