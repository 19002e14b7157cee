-- Cheaper audit appends (docs/benchmarks.md, "Audit trail"): indexes that most records have
-- nothing for become partial. Most records name no mandate, and most personal data has no
-- username or e-mail. A query for a value still uses them (`x = value` implies `x IS NOT NULL`).
-- The e-mail index is new: erasure looks people up by it.
DROP INDEX audit_events_tenant_subject;
DROP INDEX audit_events_tenant_mandate;
CREATE INDEX audit_events_tenant_subject ON audit_events (tenant_id, subject_id, seq)
    WHERE subject_id IS NOT NULL;
CREATE INDEX audit_events_tenant_mandate ON audit_events (tenant_id, mandate_id, seq)
    WHERE mandate_id IS NOT NULL;
DROP INDEX audit_personal_subject;
DROP INDEX audit_personal_username;
CREATE INDEX audit_personal_subject ON audit_personal (tenant_id, data_subject)
    WHERE data_subject IS NOT NULL;
CREATE INDEX audit_personal_username ON audit_personal (tenant_id, username)
    WHERE username IS NOT NULL;
CREATE INDEX audit_personal_email ON audit_personal (tenant_id, email) WHERE email IS NOT NULL;
