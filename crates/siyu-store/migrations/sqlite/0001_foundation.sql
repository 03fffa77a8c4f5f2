-- Foundation: tenants, access, customers and identities (OneID), orders, events.
-- Times are UTC epoch milliseconds; money is integer fen; every row carries tenant_id.

CREATE TABLE id_counters (
    name    TEXT PRIMARY KEY,
    next_id INTEGER NOT NULL
);
INSERT INTO id_counters (name, next_id) VALUES ('customer', 1), ('order', 1), ('event', 1);

CREATE TABLE tenants (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    time_zone  TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL REFERENCES tenants(id),
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, username)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE customers (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    display_name TEXT,
    created_at   INTEGER NOT NULL,
    merged_into  INTEGER
);
CREATE INDEX customers_tenant ON customers (tenant_id, id) WHERE merged_into IS NULL;

-- One row per identity. ikey is "kind:value" with phones as a keyed hash, never the number.
CREATE TABLE identities (
    tenant_id   INTEGER NOT NULL,
    ikey        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    customer_id INTEGER NOT NULL,
    value_enc   TEXT,
    first_seen  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, ikey)
) WITHOUT ROWID;
CREATE INDEX identities_customer ON identities (tenant_id, customer_id);

CREATE TABLE customer_merges (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    kept_id     INTEGER NOT NULL,
    merged_id   INTEGER NOT NULL,
    via_kind    TEXT NOT NULL,
    merged_at   INTEGER NOT NULL
);
CREATE INDEX customer_merges_kept ON customer_merges (tenant_id, kept_id);

CREATE TABLE tags (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    group_name TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, group_name, name)
);

CREATE TABLE customer_tags (
    tenant_id   INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    tag_id      INTEGER NOT NULL,
    source      TEXT NOT NULL,
    tagged_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, tag_id)
) WITHOUT ROWID;

CREATE TABLE orders (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    order_no      TEXT NOT NULL,
    customer_id   INTEGER NOT NULL,
    status        TEXT NOT NULL,
    ordered_at    INTEGER NOT NULL,
    paid_at       INTEGER,
    amount        INTEGER NOT NULL,
    refund_amount INTEGER NOT NULL DEFAULT 0,
    item_count    INTEGER NOT NULL DEFAULT 0,
    store_id      TEXT,
    guide_id      TEXT,
    buyer_name    TEXT,
    phone_hint    TEXT,
    province      TEXT,
    source        TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (tenant_id, channel, order_no)
);
CREATE INDEX orders_customer ON orders (tenant_id, customer_id, ordered_at);

CREATE TABLE order_lines (
    tenant_id INTEGER NOT NULL,
    order_id  INTEGER NOT NULL,
    line_no   INTEGER NOT NULL,
    sku       TEXT,
    title     TEXT,
    category  TEXT,
    quantity  INTEGER NOT NULL,
    price     INTEGER NOT NULL,
    PRIMARY KEY (order_id, line_no)
) WITHOUT ROWID;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    event_key   TEXT NOT NULL,
    customer_id INTEGER,
    type        TEXT NOT NULL,
    channel     TEXT,
    touchpoint  TEXT,
    occurred_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    properties  TEXT NOT NULL,
    UNIQUE (tenant_id, event_key)
);
CREATE INDEX events_customer ON events (tenant_id, customer_id, occurred_at);
