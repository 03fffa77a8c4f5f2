-- Convert, first part: members and the points ledger. A balance is always the sum of entries.

INSERT INTO id_counters (name, next_id) VALUES ('member', 1), ('points', 1);

CREATE TABLE members (
    tenant_id      BIGINT NOT NULL,
    customer_id    BIGINT NOT NULL,
    member_no      TEXT NOT NULL,
    joined_via     TEXT NOT NULL,
    store_id       TEXT,
    birthday_month BIGINT,
    joined_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id),
    UNIQUE (tenant_id, member_no)
);

CREATE TABLE points_entries (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    delta       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    ref         TEXT,
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX points_entries_customer ON points_entries (tenant_id, customer_id, created_at);
-- One earn per order: a repeated push earns nothing twice.
CREATE UNIQUE INDEX points_entries_ref ON points_entries (tenant_id, kind, ref);

CREATE TABLE member_settings (
    tenant_id  BIGINT PRIMARY KEY,
    settings   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
