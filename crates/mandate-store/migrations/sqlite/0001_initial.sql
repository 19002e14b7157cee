-- Mandate schema for SQLite. Booleans are 0/1 integers, lists and JSON values are JSON text,
-- timestamps are Unix seconds. Every tenant-scoped table is keyed by tenant_id first.

CREATE TABLE tenants (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_key BLOB NOT NULL,
    access_token_alg TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kid TEXT NOT NULL,
    alg TEXT NOT NULL,
    private_pkcs8 BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    publish_until INTEGER,
    PRIMARY KEY (tenant_id, kid)
) STRICT;

CREATE TABLE clients (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_digest BLOB,
    auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    jwks TEXT,
    id_token_alg TEXT,
    web_origins TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
) STRICT;

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    username TEXT NOT NULL,
    email TEXT,
    email_verified INTEGER NOT NULL,
    name TEXT,
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username)
) STRICT;

CREATE TABLE sessions (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    digest BLOB NOT NULL,
    sid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, digest)
) STRICT;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id)
) STRICT;

CREATE TABLE grants (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sid TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX grants_sid ON grants (tenant_id, sid);

CREATE TABLE auth_codes (
    tenant_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    sid TEXT,
    auth_time INTEGER NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER,
    PRIMARY KEY (tenant_id, digest),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants (tenant_id, id)
) STRICT;
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
    tenant_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    sid TEXT,
    auth_time INTEGER NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    spent_at INTEGER,
    PRIMARY KEY (tenant_id, digest),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants (tenant_id, id)
) STRICT;

-- Which grant an access token came from (revoking the grant revokes the token).
CREATE TABLE access_tokens (
    tenant_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, jti),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants (tenant_id, id)
) STRICT;
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
    tenant_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, jti)
) STRICT;
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

-- One-time values (assertion jti…) seen before their expiry.
CREATE TABLE replay_entries (
    tenant_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, entry)
) STRICT;
CREATE INDEX replay_entries_expires_at ON replay_entries (expires_at);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT,
    act_chain TEXT NOT NULL,
    client_id TEXT,
    mandate_id TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    reason TEXT,
    detail TEXT NOT NULL
) STRICT;
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, time);
