-- Convert: coupon templates and coupons. A coupon is redeemed at most once; limits hold under
-- concurrent claims because grants run under the tenant's write lock.

INSERT INTO id_counters (name, next_id) VALUES ('coupon_template', 1), ('coupon', 1);

CREATE TABLE coupon_templates (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    value        INTEGER NOT NULL,
    gift         TEXT,
    threshold    INTEGER NOT NULL,
    starts_at    INTEGER,
    ends_at      INTEGER,
    valid_days   INTEGER,
    per_customer INTEGER NOT NULL,
    total        INTEGER NOT NULL,
    issued       INTEGER NOT NULL,
    channels     TEXT,
    stores       TEXT,
    stackable    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE coupons (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    template_id  INTEGER NOT NULL,
    customer_id  INTEGER NOT NULL,
    code         TEXT NOT NULL,
    status       TEXT NOT NULL,
    source       TEXT NOT NULL,
    granted_at   INTEGER NOT NULL,
    valid_from   INTEGER NOT NULL,
    valid_until  INTEGER NOT NULL,
    redeemed_at  INTEGER,
    order_ref    TEXT,
    order_amount INTEGER,
    discount     INTEGER,
    channel      TEXT,
    store_id     TEXT,
    UNIQUE (tenant_id, code)
);
CREATE INDEX coupons_customer ON coupons (tenant_id, customer_id, template_id);
CREATE INDEX coupons_template ON coupons (tenant_id, template_id, status);
