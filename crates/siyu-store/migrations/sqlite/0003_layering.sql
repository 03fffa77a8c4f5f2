-- Layering: rule tags and tag history, customer attributes, per-customer purchase stats with
-- RFM and lifecycle stage, layering settings, saved segments and their snapshots.

ALTER TABLE tags ADD COLUMN rule TEXT;
-- Tag, segment and snapshot ids come from counters, so a deleted one's id is never reused
-- (SQLite would hand out the largest id again) and a rule naming it cannot change meaning.
INSERT INTO id_counters (name, next_id) SELECT 'tag', COALESCE(MAX(id), 0) + 1 FROM tags;
INSERT INTO id_counters (name, next_id) VALUES ('segment', 1), ('snapshot', 1);
CREATE INDEX customer_tags_tag ON customer_tags (tenant_id, tag_id, customer_id);

CREATE TABLE tag_history (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    tag_id      INTEGER NOT NULL,
    action      TEXT NOT NULL,
    source      TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX tag_history_customer ON tag_history (tenant_id, customer_id, at);

CREATE TABLE customer_attributes (
    tenant_id   INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    num         INTEGER,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, name)
) WITHOUT ROWID;
CREATE INDEX customer_attributes_value ON customer_attributes (tenant_id, name, value);
CREATE INDEX customer_attributes_num ON customer_attributes (tenant_id, name, num);

-- Derived from purchases; recomputed when a customer's orders change and for all once a day.
CREATE TABLE customer_stats (
    tenant_id     INTEGER NOT NULL,
    customer_id   INTEGER NOT NULL,
    first_order_at INTEGER NOT NULL,
    repurchase_at INTEGER,
    last_order_at INTEGER NOT NULL,
    order_count   INTEGER NOT NULL,
    spend         INTEGER NOT NULL,
    window_orders INTEGER NOT NULL,
    window_spend  INTEGER NOT NULL,
    r_score       INTEGER NOT NULL,
    f_score       INTEGER NOT NULL,
    m_score       INTEGER NOT NULL,
    rfm_class     TEXT NOT NULL,
    stage         TEXT NOT NULL,
    computed_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;
CREATE INDEX customer_stats_class ON customer_stats (tenant_id, rfm_class);
CREATE INDEX customer_stats_stage ON customer_stats (tenant_id, stage);

CREATE TABLE layering_settings (
    tenant_id  INTEGER PRIMARY KEY,
    settings   TEXT NOT NULL,
    model      TEXT,
    updated_at INTEGER NOT NULL
);

CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    name        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE segment_snapshots (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    segment_id INTEGER NOT NULL,
    rule       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    members    BLOB NOT NULL,
    taken_by   TEXT NOT NULL,
    taken_at   INTEGER NOT NULL
);
CREATE INDEX segment_snapshots_segment ON segment_snapshots (tenant_id, segment_id, taken_at);

CREATE INDEX events_type ON events (tenant_id, type, occurred_at);
-- "Has an identity of kind K" per customer: with the kind in the index SQLite's planner uses it
-- instead of scanning the tenant's identities by primary key.
DROP INDEX identities_customer;
CREATE INDEX identities_customer ON identities (tenant_id, customer_id, kind);
CREATE INDEX orders_channel_customer ON orders (tenant_id, channel, customer_id);

-- Bulk writes from another process (`siyu import`) ask every server to rebuild the tenant's
-- audience index; servers watch this table.
CREATE TABLE audience_rebuilds (
    tenant_id    INTEGER PRIMARY KEY,
    version      INTEGER NOT NULL,
    requested_at INTEGER NOT NULL
);
