-- Acquire and the outbox: tracking links and their clicks, SMS recall campaigns with their
-- recipients and A/B variants, package-card batches and cards, one-time codes, and the outbox
-- every outbound message passes through with the contact policy's unsubscribes.

INSERT INTO id_counters (name, next_id) VALUES
    ('outbox', 1), ('sms_reply', 1), ('link', 1), ('click', 1), ('campaign', 1), ('card_batch', 1), ('card', 1);

-- Every outbound message, written before it is sent. `dedupe_key` makes enqueueing idempotent
-- (a campaign launched twice writes each recipient's message once).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL,
    channel         TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    customer_id     INTEGER,
    address_hash    TEXT NOT NULL,
    address_enc     TEXT NOT NULL,
    content         TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    template_code   TEXT,
    template_params TEXT,
    parts           INTEGER NOT NULL,
    dedupe_key      TEXT NOT NULL,
    campaign_id     INTEGER,
    variant         TEXT,
    status          TEXT NOT NULL,
    reason          TEXT,
    not_before      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    provider        TEXT,
    provider_ref    TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    delivered_at    INTEGER,
    delivery        TEXT,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX outbox_due ON outbox (status, not_before);
CREATE INDEX outbox_customer ON outbox (tenant_id, customer_id, sent_at);
CREATE INDEX outbox_address ON outbox (tenant_id, address_hash, sent_at);
CREATE INDEX outbox_ref ON outbox (provider_ref);
CREATE INDEX outbox_campaign ON outbox (tenant_id, campaign_id);

-- Who asked not to be contacted on a channel, and how (a reply of R/TD/退订, the API, an import).
CREATE TABLE unsubscribes (
    tenant_id    INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    address_hash TEXT NOT NULL,
    source       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel, address_hash)
);

-- A tenant's contact policy; a tenant without a row gets the defaults.
CREATE TABLE contact_policies (
    tenant_id          INTEGER PRIMARY KEY,
    marketing_per_week INTEGER NOT NULL,
    quiet_start_minute INTEGER NOT NULL,
    quiet_end_minute   INTEGER NOT NULL,
    dedupe_hours       INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

-- What the `log` SMS provider "sent": one row per outbox message, so a retry cannot log twice.
CREATE TABLE sms_log (
    outbox_id   INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    content     TEXT NOT NULL,
    logged_at   INTEGER NOT NULL
);

-- Replies received from customers by SMS.
CREATE TABLE sms_replies (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL,
    provider     TEXT NOT NULL,
    address_hash TEXT NOT NULL,
    content      TEXT NOT NULL,
    unsubscribed INTEGER NOT NULL,
    received_at  INTEGER NOT NULL
);

-- Tracking links: /t/{code} answers a redirect to `target` and records the click.
CREATE TABLE links (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    code        TEXT NOT NULL UNIQUE,
    target      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    campaign_id INTEGER,
    batch_id    INTEGER,
    variant     TEXT,
    customer_id INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX links_campaign ON links (tenant_id, campaign_id);

CREATE TABLE clicks (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    link_id    INTEGER NOT NULL,
    visitor    TEXT NOT NULL,
    ip_hash    TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX clicks_link ON clicks (tenant_id, link_id, at);

-- SMS recall campaigns. `variants` is JSON: [{"name","content","weight"}]; a hold-out control
-- group gets nothing and is measured all the same.
CREATE TABLE campaigns (
    id              INTEGER PRIMARY KEY,
    tenant_id       INTEGER NOT NULL,
    name            TEXT NOT NULL,
    snapshot_id     INTEGER NOT NULL,
    variants        TEXT NOT NULL,
    holdout_percent INTEGER NOT NULL,
    seed            TEXT NOT NULL,
    target_url      TEXT,
    template_code   TEXT,
    exclude_list    TEXT,
    cost_per_part   INTEGER NOT NULL,
    window_days     INTEGER NOT NULL,
    status          TEXT NOT NULL,
    scheduled_at    INTEGER NOT NULL,
    launched_at     INTEGER,
    created_at      INTEGER NOT NULL
);

-- Every customer a campaign chose, with their variant (or control) and what became of them.
CREATE TABLE campaign_recipients (
    tenant_id   INTEGER NOT NULL,
    campaign_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    variant     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, customer_id)
);

-- Package-card batches (包裹卡) and their cards.
CREATE TABLE card_batches (
    id                 INTEGER PRIMARY KEY,
    tenant_id          INTEGER NOT NULL,
    name               TEXT NOT NULL,
    channel            TEXT NOT NULL,
    coupon_template_id INTEGER NOT NULL,
    variants           TEXT NOT NULL,
    size               INTEGER NOT NULL,
    contact_qr_url     TEXT,
    cost_per_card      INTEGER NOT NULL,
    window_days        INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);

CREATE TABLE cards (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL,
    batch_id    INTEGER NOT NULL,
    code        TEXT NOT NULL UNIQUE,
    variant     TEXT NOT NULL,
    scans       INTEGER NOT NULL DEFAULT 0,
    first_scan  INTEGER,
    customer_id INTEGER,
    claimed_at  INTEGER,
    coupon_id   INTEGER,
    contact_at  INTEGER
);
CREATE INDEX cards_batch ON cards (tenant_id, batch_id);

-- One-time SMS codes for H5 pages: stored as a keyed hash, tried at most five times.
CREATE TABLE otp_codes (
    tenant_id    INTEGER NOT NULL,
    address_hash TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    code_hash    TEXT NOT NULL,
    tries        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, address_hash, purpose)
);
