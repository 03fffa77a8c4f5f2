-- Convert: marketing activities. Flash sales (秒杀) with their reservations, payments through a
-- provider adapter, group buys (拼团) with teams, bargains (砍价) with assists, and gifts redeemed
-- for points. Every stock count here moves in the same transaction as the rows that explain it.

INSERT INTO id_counters (name, next_id) VALUES
    ('flash_sale', 1), ('flash_order', 1), ('payment', 1), ('group_buy', 1), ('team', 1),
    ('bargain_item', 1), ('bargain', 1), ('gift', 1), ('gift_redemption', 1);

CREATE TABLE flash_sales (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL,
    name           TEXT NOT NULL,
    sku            TEXT NOT NULL,
    title          TEXT NOT NULL,
    price          INTEGER NOT NULL,
    original_price INTEGER NOT NULL,
    stock          INTEGER NOT NULL,
    sold           INTEGER NOT NULL,
    per_customer   INTEGER NOT NULL,
    starts_at      INTEGER NOT NULL,
    ends_at        INTEGER NOT NULL,
    pay_minutes    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    CHECK (sold >= 0 AND sold <= stock)
);

CREATE TABLE flash_orders (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    sale_id     INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    quantity    INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    paid_at     INTEGER,
    payment_id  INTEGER,
    order_no    TEXT
);
CREATE INDEX flash_orders_sale ON flash_orders (tenant_id, sale_id, customer_id);
CREATE INDEX flash_orders_due ON flash_orders (expires_at) WHERE status IN ('pending', 'paying');
CREATE INDEX flash_orders_payment ON flash_orders (tenant_id, payment_id);

CREATE TABLE payments (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    customer_id  INTEGER NOT NULL,
    provider     TEXT NOT NULL,
    provider_ref TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    status       TEXT NOT NULL,
    refund_ref   TEXT,
    created_at   INTEGER NOT NULL,
    refunded_at  INTEGER
);
CREATE INDEX payments_customer ON payments (tenant_id, customer_id);
-- The sweep looks for paid payments that bought nothing.
CREATE INDEX payments_paid ON payments (created_at) WHERE status = 'paid';

CREATE TABLE group_buys (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL,
    name           TEXT NOT NULL,
    sku            TEXT NOT NULL,
    title          TEXT NOT NULL,
    price          INTEGER NOT NULL,
    original_price INTEGER NOT NULL,
    team_size      INTEGER NOT NULL,
    team_minutes   INTEGER NOT NULL,
    starts_at      INTEGER NOT NULL,
    ends_at        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE teams (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    group_buy_id INTEGER NOT NULL,
    leader_id    INTEGER NOT NULL,
    team_size    INTEGER NOT NULL,
    members      INTEGER NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    closed_at    INTEGER,
    CHECK (members >= 0 AND members <= team_size)
);
CREATE INDEX teams_buy ON teams (tenant_id, group_buy_id, status);
CREATE INDEX teams_due ON teams (expires_at) WHERE status = 'open';

CREATE TABLE team_members (
    tenant_id   INTEGER NOT NULL,
    team_id     INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    payment_id  INTEGER NOT NULL,
    joined_at   INTEGER NOT NULL,
    order_no    TEXT,
    PRIMARY KEY (team_id, customer_id)
);
CREATE INDEX team_members_payment ON team_members (tenant_id, payment_id);

CREATE TABLE bargain_items (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL,
    name           TEXT NOT NULL,
    sku            TEXT NOT NULL,
    title          TEXT NOT NULL,
    price          INTEGER NOT NULL,
    floor_price    INTEGER NOT NULL,
    assists        INTEGER NOT NULL,
    bargain_hours  INTEGER NOT NULL,
    stock          INTEGER NOT NULL,
    sold           INTEGER NOT NULL,
    starts_at      INTEGER NOT NULL,
    ends_at        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    CHECK (sold >= 0 AND sold <= stock)
);

CREATE TABLE bargains (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    item_id     INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    price_now   INTEGER NOT NULL,
    assists     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    order_no    TEXT,
    payment_id  INTEGER,
    UNIQUE (tenant_id, item_id, customer_id)
);
CREATE INDEX bargains_payment ON bargains (tenant_id, payment_id);
CREATE INDEX bargains_due ON bargains (expires_at) WHERE status IN ('open', 'reached');

CREATE TABLE bargain_assists (
    tenant_id   INTEGER NOT NULL,
    bargain_id  INTEGER NOT NULL,
    helper_id   INTEGER NOT NULL,
    cut         INTEGER NOT NULL,
    assisted_at INTEGER NOT NULL,
    PRIMARY KEY (bargain_id, helper_id)
);

CREATE TABLE gifts (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    template_id  INTEGER,
    points       INTEGER NOT NULL,
    stock        INTEGER NOT NULL,
    redeemed     INTEGER NOT NULL,
    per_customer INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    CHECK (redeemed >= 0 AND redeemed <= stock)
);

CREATE TABLE gift_redemptions (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    gift_id     INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    points      INTEGER NOT NULL,
    coupon_code TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX gift_redemptions_customer ON gift_redemptions (tenant_id, gift_id, customer_id);

-- Where a member came from when an activity brought them (e.g. bargain:12 for a helper).
ALTER TABLE members ADD COLUMN source TEXT;
