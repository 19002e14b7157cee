-- RFC 9449 §5: the thumbprint of the DPoP key a public client's refresh token is bound to;
-- NULL for unbound tokens (confidential clients are bound by their authentication instead).
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
