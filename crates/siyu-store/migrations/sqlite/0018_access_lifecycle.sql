-- A disabled user cannot sign in, and their sessions end.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- Who changed access, and when: keys created and revoked, users created, disabled, given a new
-- password. Admins read it.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL
);
CREATE INDEX audit_log_by_tenant ON audit_log (tenant_id, at);
