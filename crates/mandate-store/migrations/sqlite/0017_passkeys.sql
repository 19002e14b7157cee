-- Passkeys (issue 14): the WebAuthn credentials people registered, and the ceremonies in
-- flight (kept here so that any node finishes a ceremony another started).
CREATE TABLE passkeys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_handle TEXT NOT NULL,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    backup_eligible INTEGER NOT NULL,
    backup_state INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX passkeys_user ON passkeys (tenant_id, user_id);

CREATE TABLE webauthn_ceremonies (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    -- The client address that started it (throttle key form), to bound ceremonies per address.
    address TEXT,
    state TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX webauthn_ceremonies_expires_at ON webauthn_ceremonies (expires_at);
