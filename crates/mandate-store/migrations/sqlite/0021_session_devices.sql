-- Signed-in devices on the account page (issue 14): when and from which browser and address
-- each session began. NULL for sessions started before this migration.
ALTER TABLE sessions ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
