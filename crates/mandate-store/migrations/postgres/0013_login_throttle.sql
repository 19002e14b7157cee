-- Password-guessing counters (issue 12 item 9): one row per account name digest ("u:…") or
-- client address ("ip:…"), shared by every node. Updated by compare-and-swap.
CREATE TABLE login_throttle (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    throttle_key TEXT NOT NULL,
    failures BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, throttle_key)
);
CREATE INDEX login_throttle_expires_at ON login_throttle (expires_at);
