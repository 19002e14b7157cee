-- Risk engine (issue 14 item 6): what its signals remember. Every row expires (purged with
-- the rest) and a person's rows go when the person is erased.

-- A person's successful sign-ins: when, from where (address, place rounded to 0.1°), and the
-- keyed digest of the browser's device cookie.
CREATE TABLE risk_sign_ins (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    address TEXT,
    lat_tenths BIGINT,
    lon_tenths BIGINT,
    device BYTEA,
    expires_at BIGINT NOT NULL
);
CREATE INDEX risk_sign_ins_user ON risk_sign_ins (tenant_id, user_id, at);
CREATE INDEX risk_sign_ins_expires_at ON risk_sign_ins (expires_at);

-- Failed sign-ins by address, with the keyed digest of the account name typed (stuffing:
-- one address failing across many names).
CREATE TABLE risk_failures (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    address TEXT NOT NULL,
    account TEXT NOT NULL,
    user_id TEXT,
    at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX risk_failures_address ON risk_failures (tenant_id, address, at);
CREATE INDEX risk_failures_account ON risk_failures (tenant_id, account, at);
CREATE INDEX risk_failures_user ON risk_failures (tenant_id, user_id);
CREATE INDEX risk_failures_expires_at ON risk_failures (expires_at);

-- The tokens agents asked for people (velocity, resources used, usual hours).
CREATE TABLE risk_agent_requests (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    agent_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    mandate_id TEXT NOT NULL,
    resources TEXT NOT NULL,
    allowed BIGINT NOT NULL,
    at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX risk_agent_requests_agent ON risk_agent_requests (tenant_id, agent_id, user_id, at);
CREATE INDEX risk_agent_requests_user ON risk_agent_requests (tenant_id, user_id);
CREATE INDEX risk_agent_requests_expires_at ON risk_agent_requests (expires_at);

-- Why the risk policy suspended an agent (shown to people); what a sign-in's risk decision
-- asks of its session (a second factor or a passkey, as an acr).
ALTER TABLE agents ADD COLUMN status_reason TEXT;
ALTER TABLE sessions ADD COLUMN risk_acr TEXT;
