-- The audit log becomes a hash chain per tenant (docs/audit.md): every record gets its tenant's
-- next sequence number (1, 2, 3… without gaps), the previous record's hash and its own
-- SHA-256 hash; audit_heads holds each tenant's last (seq, hash) and is the row the writer
-- locks to append.
--
-- Personal data (IP, user agent, username, e-mail) moves out of the chained record into
-- audit_personal, with a random salt; the record keeps only personal_commitment, an HMAC of
-- the data keyed by that salt. Erasing a person deletes their audit_personal rows and the chain
-- still verifies.
--
-- Records written before this migration were never chained, and cannot be chained here (no
-- SHA-256 in portable SQL), so they are dropped: there has been no release, only development
-- databases have them. Every chain starts at seq 1 after this migration.
DROP TABLE audit_events;

CREATE TABLE audit_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    time BIGINT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT,
    subject_type TEXT,
    subject_id TEXT,
    act_chain TEXT NOT NULL,
    client_id TEXT,
    mandate_id TEXT,
    request_id TEXT,
    reason TEXT,
    detail TEXT NOT NULL,
    personal_commitment BYTEA,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    UNIQUE (tenant_id, seq)
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, time);
CREATE INDEX audit_events_tenant_actor ON audit_events (tenant_id, actor_id, seq);
CREATE INDEX audit_events_tenant_subject ON audit_events (tenant_id, subject_id, seq);
CREATE INDEX audit_events_tenant_mandate ON audit_events (tenant_id, mandate_id, seq);

CREATE TABLE audit_heads (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);

-- One row per record that has personal data; deleted on erasure. data_subject is the user the
-- data belongs to (the record's subject, else its actor, when a user).
CREATE TABLE audit_personal (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    salt BYTEA NOT NULL,
    data_subject TEXT,
    ip TEXT,
    user_agent TEXT,
    username TEXT,
    email TEXT,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_personal_subject ON audit_personal (tenant_id, data_subject);
CREATE INDEX audit_personal_username ON audit_personal (tenant_id, username);
