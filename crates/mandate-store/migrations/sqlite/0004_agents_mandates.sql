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
    require_dpop INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE TABLE mandates (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    authorization_details TEXT NOT NULL,
    resources TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    max_token_lifetime INTEGER NOT NULL,
    max_delegation_depth INTEGER NOT NULL,
    approval_required TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX mandates_user_agent ON mandates (tenant_id, user_id, agent_id);
CREATE INDEX mandates_agent ON mandates (tenant_id, agent_id);
