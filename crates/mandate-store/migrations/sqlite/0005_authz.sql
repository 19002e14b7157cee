-- Fine-grained authorization (docs/authorization.md): versioned authorization models, relationship
-- tuples with a per-tenant revision and their change log (so every node's in-memory snapshot
-- catches up to a revision), and the tenant's Cedar policy set.
CREATE TABLE authz_models (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX authz_models_created ON authz_models (tenant_id, created_at);

CREATE TABLE authz_heads (
    tenant_id TEXT NOT NULL PRIMARY KEY,
    revision INTEGER NOT NULL
) STRICT;

CREATE TABLE authz_tuples (
    tenant_id TEXT NOT NULL,
    object TEXT NOT NULL,
    relation TEXT NOT NULL,
    subject TEXT NOT NULL,
    condition TEXT,
    revision INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, object, relation, subject)
) STRICT;

CREATE TABLE authz_changes (
    tenant_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    op TEXT NOT NULL,
    object TEXT NOT NULL,
    relation TEXT NOT NULL,
    subject TEXT NOT NULL,
    condition TEXT,
    PRIMARY KEY (tenant_id, revision, idx)
) STRICT;

CREATE TABLE authz_policies (
    tenant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    policies TEXT NOT NULL,
    schema_text TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version)
) STRICT;
