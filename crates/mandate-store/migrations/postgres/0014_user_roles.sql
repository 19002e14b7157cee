-- Roles a person holds in a tenant. A person's token reaches the admin API only with a role
-- here (`admin`: everything; `auditor`: reading the audit log), whatever the client's scopes.
CREATE TABLE user_roles (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    granted_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role)
);
-- Withdrawing consent revokes a person's grants for one client.
CREATE INDEX grants_user_client ON grants (tenant_id, user_id, client_id);
