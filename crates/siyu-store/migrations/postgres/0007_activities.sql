-- Convert: marketing activities. Flash sales (秒杀) with their reservations, payments through a
-- provider adapter, group buys (拼团) with teams, bargains (砍价) with assists, and gifts redeemed
-- for points. Every stock count here moves in the same transaction as the rows that explain it.

INSERT INTO id_counters (name, next_id) VALUES
    ('flash_sale', 1), ('flash_order', 1), ('payment', 1), ('group_buy', 1), ('team', 1),
    ('bargain_item', 1), ('bargain', 1), ('gift', 1), ('gift_redemption', 1);

CREATE TABLE flash_sales (
    id             BIGINT PRIMARY KEY,
    tenant_id      BIGINT NOT NULL,
    name           TEXT NOT NULL,
    sku            TEXT NOT NULL,
    title          TEXT NOT NULL,
    price          BIGINT NOT NULL,
    original_price BIGINT NOT NULL,
    stock          BIGINT NOT NULL,
    sold           BIGINT NOT NULL,
    per_customer   BIGINT NOT NULL,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT NOT NULL,
    pay_minutes    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    CHECK (sold >= 0 AND sold <= stock)
);

CREATE TABLE flash_orders (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    sale_id     BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    quantity    BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    paid_at     BIGINT,
    payment_id  BIGINT,
    order_no    TEXT
);
CREATE INDEX flash_orders_sale ON flash_orders (tenant_id, sale_id, customer_id);
CREATE INDEX flash_orders_due ON flash_orders (expires_at) WHERE status IN ('pending', 'paying');
CREATE INDEX flash_orders_payment ON flash_orders (tenant_id, payment_id);

CREATE TABLE payments (
    id           BIGINT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    customer_id  BIGINT NOT NULL,
    provider     TEXT NOT NULL,
    provider_ref TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    amount       BIGINT NOT NULL,
    status       TEXT NOT NULL,
    refund_ref   TEXT,
    created_at   BIGINT NOT NULL,
    refunded_at  BIGINT
);
CREATE INDEX payments_customer ON payments (tenant_id, customer_id);
-- The sweep looks for paid payments that bought nothing.
CREATE INDEX payments_paid ON payments (created_at) WHERE status = 'paid';

CREATE TABLE group_buys (
    id             BIGINT PRIMARY KEY,
    tenant_id      BIGINT NOT NULL,
    name           TEXT NOT NULL,
    sku            TEXT NOT NULL,
    title          TEXT NOT NULL,
    price          BIGINT NOT NULL,
    original_price BIGINT NOT NULL,
    team_size      BIGINT NOT NULL,
    team_minutes   BIGINT NOT NULL,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE teams (
    id           BIGINT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    group_buy_id BIGINT NOT NULL,
    leader_id    BIGINT NOT NULL,
    team_size    BIGINT NOT NULL,
    members      BIGINT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    closed_at    BIGINT,
    CHECK (members >= 0 AND members <= team_size)
);
CREATE INDEX teams_buy ON teams (tenant_id, group_buy_id, status);
CREATE INDEX teams_due ON teams (expires_at) WHERE status = 'open';

CREATE TABLE team_members (
    tenant_id   BIGINT NOT NULL,
    team_id     BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    payment_id  BIGINT NOT NULL,
    joined_at   BIGINT NOT NULL,
    order_no    TEXT,
    PRIMARY KEY (team_id, customer_id)
);
CREATE INDEX team_members_payment ON team_members (tenant_id, payment_id);

CREATE TABLE bargain_items (
    id             BIGINT PRIMARY KEY,
    tenant_id      BIGINT NOT NULL,
    name           TEXT NOT NULL,
    sku            TEXT NOT NULL,
    title          TEXT NOT NULL,
    price          BIGINT NOT NULL,
    floor_price    BIGINT NOT NULL,
    assists        BIGINT NOT NULL,
    bargain_hours  BIGINT NOT NULL,
    stock          BIGINT NOT NULL,
    sold           BIGINT NOT NULL,
    starts_at      BIGINT NOT NULL,
    ends_at        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    CHECK (sold >= 0 AND sold <= stock)
);

CREATE TABLE bargains (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    item_id     BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    price_now   BIGINT NOT NULL,
    assists     BIGINT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    order_no    TEXT,
    payment_id  BIGINT,
    UNIQUE (tenant_id, item_id, customer_id)
);
CREATE INDEX bargains_payment ON bargains (tenant_id, payment_id);
CREATE INDEX bargains_due ON bargains (expires_at) WHERE status IN ('open', 'reached');

CREATE TABLE bargain_assists (
    tenant_id   BIGINT NOT NULL,
    bargain_id  BIGINT NOT NULL,
    helper_id   BIGINT NOT NULL,
    cut         BIGINT NOT NULL,
    assisted_at BIGINT NOT NULL,
    PRIMARY KEY (bargain_id, helper_id)
);

CREATE TABLE gifts (
    id           BIGINT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    template_id  BIGINT,
    points       BIGINT NOT NULL,
    stock        BIGINT NOT NULL,
    redeemed     BIGINT NOT NULL,
    per_customer BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    CHECK (redeemed >= 0 AND redeemed <= stock)
);

CREATE TABLE gift_redemptions (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    gift_id     BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    points      BIGINT NOT NULL,
    coupon_code TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX gift_redemptions_customer ON gift_redemptions (tenant_id, gift_id, customer_id);

-- Where a member came from when an activity brought them (e.g. bargain:12 for a helper).
ALTER TABLE members ADD COLUMN source TEXT;
