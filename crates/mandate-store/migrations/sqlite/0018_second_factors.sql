-- Second factors (issue 14): a person's TOTP authenticator (the shared secret encrypted with
-- AES-256-GCM under a key derived from the tenant's secret key; the last time step accepted, so
-- a code works once) and their recovery codes (keyed digests only; a used code is deleted).
CREATE TABLE totp_credentials (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    pending_until INTEGER,
    last_step INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
) STRICT;
CREATE INDEX totp_credentials_pending_until ON totp_credentials (pending_until);

CREATE TABLE recovery_codes (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    digest BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, digest)
) STRICT;
