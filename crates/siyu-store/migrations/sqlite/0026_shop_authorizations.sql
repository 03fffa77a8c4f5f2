-- A seller's authorisation under way (授权): begun in the console, finished when the platform
-- sends the seller's browser back with a code. The state sent to the platform is kept only as its
-- SHA-256; the row is taken (deleted) by the one callback that may finish it, within 10 minutes.
CREATE TABLE shop_authorizations (
    state_hash     TEXT NOT NULL PRIMARY KEY,
    tenant_id      INTEGER NOT NULL,
    platform       TEXT NOT NULL,
    name           TEXT NOT NULL,
    app_key        TEXT NOT NULL,
    app_secret_enc TEXT NOT NULL,
    service_id     TEXT,
    api_base       TEXT,
    sync_from      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX shop_authorizations_expiry ON shop_authorizations (expires_at);
