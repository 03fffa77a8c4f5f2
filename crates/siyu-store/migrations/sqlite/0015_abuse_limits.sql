-- Counters for what the public may ask of the server: one row per scope (what is limited),
-- subject (a phone's hash, a card, an address, a tenant) and window. tenant_id 0: every tenant.
CREATE TABLE rate_counters (
    tenant_id    INTEGER NOT NULL,
    scope        TEXT NOT NULL,
    subject      TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, subject, window_start)
);

-- The numbers a card has texted a one-time code to.
CREATE TABLE otp_card_numbers (
    tenant_id    INTEGER NOT NULL,
    card_id      INTEGER NOT NULL,
    address_hash TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, card_id, address_hash)
);

-- After too many wrong codes a number is locked: no check and no new code until then.
ALTER TABLE otp_codes ADD COLUMN locked_until INTEGER NOT NULL DEFAULT 0;
