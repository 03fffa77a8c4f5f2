-- SQLite lets a text PRIMARY KEY of an ordinary table hold NULL (kept for compatibility);
-- PostgreSQL refuses it. Both tables are rebuilt with NOT NULL so the two backends agree.
CREATE TABLE id_counters_new (
    name    TEXT PRIMARY KEY NOT NULL,
    next_id INTEGER NOT NULL
);
INSERT INTO id_counters_new (name, next_id) SELECT name, next_id FROM id_counters WHERE name IS NOT NULL;
DROP TABLE id_counters;
ALTER TABLE id_counters_new RENAME TO id_counters;

CREATE TABLE sessions_new (
    token_hash TEXT PRIMARY KEY NOT NULL,
    tenant_id  INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO sessions_new (token_hash, tenant_id, user_id, created_at, expires_at)
    SELECT token_hash, tenant_id, user_id, created_at, expires_at FROM sessions WHERE token_hash IS NOT NULL;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
