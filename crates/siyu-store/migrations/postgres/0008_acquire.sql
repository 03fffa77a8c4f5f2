-- Acquire and the outbox: tracking links and their clicks, SMS recall campaigns with their
-- recipients and A/B variants, package-card batches and cards, one-time codes, and the outbox
-- every outbound message passes through with the contact policy's unsubscribes.

INSERT INTO id_counters (name, next_id) VALUES
    ('outbox', 1), ('sms_reply', 1), ('link', 1), ('click', 1), ('campaign', 1), ('card_batch', 1), ('card', 1);

-- Every outbound message, written before it is sent. `dedupe_key` makes enqueueing idempotent
-- (a campaign launched twice writes each recipient's message once).
CREATE TABLE outbox (
    id              BIGINT PRIMARY KEY,
    tenant_id       BIGINT NOT NULL,
    channel         TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    customer_id     BIGINT,
    address_hash    TEXT NOT NULL,
    address_enc     TEXT NOT NULL,
    content         TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    template_code   TEXT,
    template_params TEXT,
    parts           BIGINT NOT NULL,
    dedupe_key      TEXT NOT NULL,
    campaign_id     BIGINT,
    variant         TEXT,
    status          TEXT NOT NULL,
    reason          TEXT,
    not_before      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    lease_until     BIGINT,
    provider        TEXT,
    provider_ref    TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    delivered_at    BIGINT,
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
    tenant_id    BIGINT NOT NULL,
    channel      TEXT NOT NULL,
    address_hash TEXT NOT NULL,
    source       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, channel, address_hash)
);

-- A tenant's contact policy; a tenant without a row gets the defaults.
CREATE TABLE contact_policies (
    tenant_id          BIGINT PRIMARY KEY,
    marketing_per_week BIGINT NOT NULL,
    quiet_start_minute BIGINT NOT NULL,
    quiet_end_minute   BIGINT NOT NULL,
    dedupe_hours       BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);

-- What the `log` SMS provider "sent": one row per outbox message, so a retry cannot log twice.
CREATE TABLE sms_log (
    outbox_id   BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    content     TEXT NOT NULL,
    logged_at   BIGINT NOT NULL
);

-- Replies received from customers by SMS.
CREATE TABLE sms_replies (
    id           BIGINT PRIMARY KEY,
    tenant_id    BIGINT NOT NULL,
    provider     TEXT NOT NULL,
    address_hash TEXT NOT NULL,
    content      TEXT NOT NULL,
    unsubscribed BIGINT NOT NULL,
    received_at  BIGINT NOT NULL
);

-- Tracking links: /t/{code} answers a redirect to `target` and records the click.
CREATE TABLE links (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    code        TEXT NOT NULL UNIQUE,
    target      TEXT NOT NULL,
    channel     TEXT NOT NULL,
    campaign_id BIGINT,
    batch_id    BIGINT,
    variant     TEXT,
    customer_id BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX links_campaign ON links (tenant_id, campaign_id);

CREATE TABLE clicks (
    id         BIGINT PRIMARY KEY,
    tenant_id  BIGINT NOT NULL,
    link_id    BIGINT NOT NULL,
    visitor    TEXT NOT NULL,
    ip_hash    TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX clicks_link ON clicks (tenant_id, link_id, at);

-- SMS recall campaigns. `variants` is JSON: [{"name","content","weight"}]; a hold-out control
-- group gets nothing and is measured all the same.
CREATE TABLE campaigns (
    id              BIGINT PRIMARY KEY,
    tenant_id       BIGINT NOT NULL,
    name            TEXT NOT NULL,
    snapshot_id     BIGINT NOT NULL,
    variants        TEXT NOT NULL,
    holdout_percent BIGINT NOT NULL,
    seed            TEXT NOT NULL,
    target_url      TEXT,
    template_code   TEXT,
    exclude_list    TEXT,
    cost_per_part   BIGINT NOT NULL,
    window_days     BIGINT NOT NULL,
    status          TEXT NOT NULL,
    scheduled_at    BIGINT NOT NULL,
    launched_at     BIGINT,
    created_at      BIGINT NOT NULL
);

-- Every customer a campaign chose, with their variant (or control) and what became of them.
CREATE TABLE campaign_recipients (
    tenant_id   BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    variant     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, customer_id)
);

-- Package-card batches (包裹卡) and their cards.
CREATE TABLE card_batches (
    id                 BIGINT PRIMARY KEY,
    tenant_id          BIGINT NOT NULL,
    name               TEXT NOT NULL,
    channel            TEXT NOT NULL,
    coupon_template_id BIGINT NOT NULL,
    variants           TEXT NOT NULL,
    size               BIGINT NOT NULL,
    contact_qr_url     TEXT,
    cost_per_card      BIGINT NOT NULL,
    window_days        BIGINT NOT NULL,
    created_at         BIGINT NOT NULL
);

CREATE TABLE cards (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    batch_id    BIGINT NOT NULL,
    code        TEXT NOT NULL UNIQUE,
    variant     TEXT NOT NULL,
    scans       BIGINT NOT NULL DEFAULT 0,
    first_scan  BIGINT,
    customer_id BIGINT,
    claimed_at  BIGINT,
    coupon_id   BIGINT,
    contact_at  BIGINT
);
CREATE INDEX cards_batch ON cards (tenant_id, batch_id);

-- One-time SMS codes for H5 pages: stored as a keyed hash, tried at most five times.
CREATE TABLE otp_codes (
    tenant_id    BIGINT NOT NULL,
    address_hash TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    code_hash    TEXT NOT NULL,
    tries        BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, address_hash, purpose)
);
