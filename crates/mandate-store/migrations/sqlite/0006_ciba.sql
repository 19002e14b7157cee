-- OpenID CIBA (Client-Initiated Backchannel Authentication): clients' delivery registrations
-- and backchannel requests. See docs/ciba.md.
CREATE TABLE ciba_clients (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL,
    delivery_mode TEXT NOT NULL,
    notification_endpoint TEXT,
    PRIMARY KEY (tenant_id, client_id)
) STRICT;

-- One row per request; `digest` is the keyed digest of the auth_req_id (never stored itself,
-- except in ping_auth_req_id for a ping-mode request until its ping has been sent).
CREATE TABLE ciba_requests (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    digest BLOB NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    authorization_details TEXT NOT NULL,
    resources TEXT NOT NULL,
    binding_message TEXT,
    notification_token TEXT,
    ping_auth_req_id TEXT,
    status TEXT NOT NULL,
    poll_interval INTEGER NOT NULL,
    last_polled_at INTEGER,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    mandate_id TEXT,
    auth_time INTEGER,
    acr TEXT,
    amr TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX ciba_requests_digest ON ciba_requests (tenant_id, digest);
CREATE INDEX ciba_requests_user ON ciba_requests (tenant_id, user_id, status);
