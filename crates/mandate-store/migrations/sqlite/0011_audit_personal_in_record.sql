-- A record's personal data (and the salt its commitment is keyed by) moves from its own table
-- into the record's row, in columns the hash does not cover, as before: the chain holds only
-- personal_commitment. The second table cost every record with personal data one more row, one
-- more primary-key entry, one more index entry and one more write-ahead record
-- (docs/benchmarks.md). Erasure now sets these six columns to NULL instead of
-- deleting the row; a record whose salt is NULL was erased, as a record without a personal row
-- was before.
ALTER TABLE audit_events ADD COLUMN salt BLOB;
ALTER TABLE audit_events ADD COLUMN data_subject TEXT;
ALTER TABLE audit_events ADD COLUMN ip TEXT;
ALTER TABLE audit_events ADD COLUMN user_agent TEXT;
ALTER TABLE audit_events ADD COLUMN username TEXT;
ALTER TABLE audit_events ADD COLUMN email TEXT;
UPDATE audit_events SET salt = p.salt, data_subject = p.data_subject, ip = p.ip,
    user_agent = p.user_agent, username = p.username, email = p.email
    FROM audit_personal p
    WHERE p.tenant_id = audit_events.tenant_id AND p.seq = audit_events.seq;
DROP TABLE audit_personal;
-- Erasure finds a person's records by these, and by the actor and subject indexes (a
-- record's data subject is its subject or its actor); most records have no username or e-mail.
CREATE INDEX audit_events_username ON audit_events (tenant_id, username)
    WHERE username IS NOT NULL;
CREATE INDEX audit_events_email ON audit_events (tenant_id, email) WHERE email IS NOT NULL;
