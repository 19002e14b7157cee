-- Per-tenant policy switches (JSON): impersonation, the RFC 9396 authorization_details types
-- the tenant accepts. '{}' is every default.
ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
-- Whether tokens issued under a mandate may come with a refresh token.
ALTER TABLE mandates ADD COLUMN allow_refresh BIGINT NOT NULL DEFAULT 0;
-- A delegated refresh token's act chain, mandate, audiences and authorization_details (JSON);
-- NULL for a person's own refresh tokens.
ALTER TABLE refresh_tokens ADD COLUMN delegation TEXT;
