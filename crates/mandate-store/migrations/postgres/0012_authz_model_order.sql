-- Authorization models and policies get a per-tenant sequence number, taken under the tenant's
-- head row lock: the current model is the last one written, even when two are written in the
-- same second (created_at has whole seconds). The head's config_seq counts model and policy
-- writes, so a node can tell whether its snapshot holds the newest model and policy (a check
-- that names a revision must not be answered from an older model). Models written before this
-- migration keep seq 0 and their old order.
ALTER TABLE authz_heads ADD COLUMN config_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authz_models ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX authz_models_seq ON authz_models (tenant_id, seq);
