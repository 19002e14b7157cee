-- Optional per-client grace period for refresh token rotation (decision in the conformance
-- checklist): the immediately previous refresh token may be presented once more within it.
ALTER TABLE clients ADD COLUMN refresh_grace_seconds BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN grace_used_at BIGINT;
