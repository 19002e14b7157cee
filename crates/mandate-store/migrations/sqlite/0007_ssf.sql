-- OpenID Shared Signals Framework transmitter (see docs/ssf.md).
--
-- ssf_streams: one row per event stream, owned by the receiver client that created it.
-- authorization_header is the value we send to a push receiver, so it is kept as given
-- (a credential of the receiver's that we must replay, not one we verify).
CREATE TABLE ssf_streams (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    aud TEXT NOT NULL,
    events_requested TEXT NOT NULL,
    method TEXT NOT NULL,
    endpoint_url TEXT,
    authorization_header TEXT,
    description TEXT,
    status TEXT NOT NULL,
    status_reason TEXT,
    start_seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

-- Per tenant: the last audit sequence number turned into SETs. Moved in the same transaction
-- as the SETs are queued, guarded by its old value.
CREATE TABLE ssf_cursors (
    tenant_id TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id),
    seq INTEGER NOT NULL
) STRICT;

-- Signed SETs not yet delivered (push) or acknowledged (poll).
CREATE TABLE ssf_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    set_jwt TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, stream_id, jti),
    FOREIGN KEY (tenant_id, stream_id) REFERENCES ssf_streams (tenant_id, id) ON DELETE CASCADE
) STRICT;
CREATE INDEX ssf_outbox_due ON ssf_outbox (next_attempt_at);
