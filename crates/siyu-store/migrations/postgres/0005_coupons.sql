-- Convert: coupon templates and coupons. A coupon is redeemed at most once; limits hold under
-- concurrent claims because grants run under the tenant's write lock.

INSERT INTO id_counters (name, next_id) VALUES ('coupon_template', 1), ('coupon', 1);

CREATE TABLE coupon_templates (
    id           BIGINT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    value        BIGINT NOT NULL,
    gift         TEXT,
    threshold    BIGINT NOT NULL,
    starts_at    BIGINT,
    ends_at      BIGINT,
    valid_days   BIGINT,
    per_customer BIGINT NOT NULL,
    total        BIGINT NOT NULL,
    issued       BIGINT NOT NULL,
    channels     TEXT,
    stores       TEXT,
    stackable    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE coupons (
    id           BIGINT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    template_id  BIGINT NOT NULL,
    customer_id  BIGINT NOT NULL,
    code         TEXT NOT NULL,
    status       TEXT NOT NULL,
    source       TEXT NOT NULL,
    granted_at   BIGINT NOT NULL,
    valid_from   BIGINT NOT NULL,
    valid_until  BIGINT NOT NULL,
    redeemed_at  BIGINT,
    order_ref    TEXT,
    order_amount BIGINT,
    discount     BIGINT,
    channel      TEXT,
    store_id     TEXT,
    UNIQUE (tenant_id, code)
);
CREATE INDEX coupons_customer ON coupons (tenant_id, customer_id, template_id);
CREATE INDEX coupons_template ON coupons (tenant_id, template_id, status);
