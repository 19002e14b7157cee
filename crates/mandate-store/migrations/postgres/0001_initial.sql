-- Mandate schema for PostgreSQL. Integers are BIGINT, booleans are 0/1, lists and JSON values are JSON text,
-- timestamps are Unix seconds. Every tenant-scoped table is keyed by tenant_id first.

CREATE TABLE tenants (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secret_key BYTEA NOT NULL,
    access_token_alg TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kid TEXT NOT NULL,
    alg TEXT NOT NULL,
    private_pkcs8 BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    publish_until BIGINT,
    PRIMARY KEY (tenant_id, kid)
);

CREATE TABLE clients (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    client_id TEXT NOT NULL,
    name TEXT NOT NULL,
    secret_digest BYTEA,
    auth_method TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    jwks TEXT,
    id_token_alg TEXT,
    web_origins TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    username TEXT NOT NULL,
    email TEXT,
    email_verified BIGINT NOT NULL,
    name TEXT,
    password_hash TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username)
);

CREATE TABLE sessions (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    digest BYTEA NOT NULL,
    sid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    acr TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, digest)
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id)
);

CREATE TABLE grants (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    sid TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX grants_sid ON grants (tenant_id, sid);

CREATE TABLE auth_codes (
    tenant_id TEXT NOT NULL,
    digest BYTEA NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    sid TEXT,
    auth_time BIGINT NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    PRIMARY KEY (tenant_id, digest),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants (tenant_id, id)
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
    tenant_id TEXT NOT NULL,
    digest BYTEA NOT NULL,
    grant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    sid TEXT,
    auth_time BIGINT NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    spent_at BIGINT,
    PRIMARY KEY (tenant_id, digest),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants (tenant_id, id)
);

-- Which grant an access token came from (revoking the grant revokes the token).
CREATE TABLE access_tokens (
    tenant_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES grants (tenant_id, id)
);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
    tenant_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

-- One-time values (assertion jti…) seen before their expiry.
CREATE TABLE replay_entries (
    tenant_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, entry)
);
CREATE INDEX replay_entries_expires_at ON replay_entries (expires_at);

CREATE TABLE audit_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time BIGINT NOT NULL,
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
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, time);
