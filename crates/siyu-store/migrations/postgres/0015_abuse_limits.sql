-- Counters for what the public may ask of the server: one row per scope (what is limited),
-- subject (a phone's hash, a card, an address, a tenant) and window. tenant_id 0: every tenant.
CREATE TABLE rate_counters (
    tenant_id    BIGINT NOT NULL,
    scope        TEXT NOT NULL,
    subject      TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope, subject, window_start)
);

-- The numbers a card has texted a one-time code to.
CREATE TABLE otp_card_numbers (
    tenant_id    BIGINT NOT NULL,
    card_id      BIGINT NOT NULL,
    address_hash TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, card_id, address_hash)
);

-- After too many wrong codes a number is locked: no check and no new code until then.
ALTER TABLE otp_codes ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
