-- A status an export wrote that Siyu does not know (kept as 'unknown'), or one the tenant's
-- status map read: the text as written, so that a later map re-reads the order.
ALTER TABLE orders ADD COLUMN status_text TEXT;
-- 1 while the order's buyer is not identified (a masked phone and no buyer id): the order has a
-- customer of its own, merged into the real one when an identity for it appears.
ALTER TABLE orders ADD COLUMN buyer_unlinked INTEGER NOT NULL DEFAULT 0;
-- The texts waiting for the tenant's reading (the console's overview asks on every load).
CREATE INDEX orders_with_unknown_status ON orders (tenant_id, status_text) WHERE status = 'unknown';

-- A tenant's settings by name (e.g. import.status_map), each a JSON document.
CREATE TABLE tenant_settings (
    tenant_id  INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- The receipt of one import or sync run: what came in, what was kept and why rows were not.
CREATE TABLE import_runs (
    id                INTEGER PRIMARY KEY,
    tenant_id         INTEGER NOT NULL,
    source            TEXT NOT NULL,
    name              TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER NOT NULL,
    read_rows         INTEGER NOT NULL,
    imported          INTEGER NOT NULL,
    updated           INTEGER NOT NULL,
    unknown_status    INTEGER NOT NULL,
    unlinked          INTEGER NOT NULL,
    rejected          INTEGER NOT NULL,
    customers_created INTEGER NOT NULL,
    customers_merged  INTEGER NOT NULL,
    unknown_texts     TEXT NOT NULL,
    errors            TEXT NOT NULL,
    rejected_csv      TEXT
);
CREATE INDEX import_runs_by_tenant ON import_runs (tenant_id, id);

-- A marketplace shop whose orders Siyu syncs from the platform's open API. Secrets and tokens
-- are encrypted; `sync_cursor` is the modification time up to which every change is stored.
CREATE TABLE shops (
    id               INTEGER PRIMARY KEY,
    tenant_id        INTEGER NOT NULL,
    platform         TEXT NOT NULL,
    shop_ref         TEXT NOT NULL,
    name             TEXT NOT NULL,
    app_key          TEXT NOT NULL,
    app_secret_enc   TEXT NOT NULL,
    access_token_enc TEXT,
    refresh_token_enc TEXT,
    token_expires_at INTEGER,
    api_base         TEXT,
    sync_cursor      INTEGER NOT NULL,
    last_success_at  INTEGER,
    last_error       TEXT,
    last_error_at    INTEGER,
    orders_synced    INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    disconnected_at  INTEGER,
    -- A server syncing the shop holds it until then, so two servers never sync one shop at once.
    sync_lease_until INTEGER,
    UNIQUE (tenant_id, platform, shop_ref)
);
