-- Agents (non-human principals, each backed by the OAuth client with the same id) and mandates
-- (user → agent delegations). See docs/agents.md.
CREATE TABLE agents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    owner_user_id TEXT,
    provider TEXT,
    model TEXT,
    version TEXT,
    scope_ceiling TEXT NOT NULL,
    require_dpop BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE mandates (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    authorization_details TEXT NOT NULL,
    resources TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_token_lifetime BIGINT NOT NULL,
    max_delegation_depth BIGINT NOT NULL,
    approval_required TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX mandates_user_agent ON mandates (tenant_id, user_id, agent_id);
CREATE INDEX mandates_agent ON mandates (tenant_id, agent_id);
