-- RFC 8707: the resources the person authorized, kept with the code and every refresh token of
-- the grant (JSON list; '[]' = none named, tokens are for the issuer). The token endpoint may
-- only narrow them.
ALTER TABLE auth_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
-- The mandate an agent's code was approved under (consent page); NULL for everyone else's
-- codes. Redeeming it yields tokens with `act` and `mandate`, inside that mandate.
ALTER TABLE auth_codes ADD COLUMN mandate_id TEXT;
