-- An agent's requests the person approved since (CIBA) no longer count for its velocity.
ALTER TABLE risk_agent_requests ADD COLUMN approved INTEGER NOT NULL DEFAULT 0;
