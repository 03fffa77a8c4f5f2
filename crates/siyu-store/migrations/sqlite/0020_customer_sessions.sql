-- A customer signed out everywhere: tokens issued before revoked_at stop working. Each server
-- keeps these few rows in memory and reads the new ones every few seconds, so checking a token
-- on a flash sale's hot path reads nothing from the store. A row older than the longest token
-- (7 days) has nothing left to stop and is deleted.
CREATE TABLE customer_session_revocations (
    tenant_id   INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
CREATE INDEX customer_session_revocations_by_time ON customer_session_revocations (revoked_at);
