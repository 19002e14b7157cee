-- Per-tenant policy switches (JSON): impersonation, the RFC 9396 authorization_details types
-- the tenant accepts. '{}' is every default.
ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
