-- E-mail (issue 14): the one-time secrets mailed to people (password reset links, e-mail
-- verification links, sign-in codes), as keyed digests; one per person and purpose.
CREATE TABLE account_tokens (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    digest BLOB NOT NULL,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, purpose)
) STRICT;
CREATE UNIQUE INDEX account_tokens_digest ON account_tokens (tenant_id, purpose, digest);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);
