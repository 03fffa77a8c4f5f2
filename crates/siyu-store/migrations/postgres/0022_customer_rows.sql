-- What becomes of a capability's rows when OneID finds two customers to be one person, as each
-- capability declares it here rather than in OneID's code: 'all' moves every row to the kept
-- customer; 'first' keeps one row per person (the kept customer's own, else the one of those
-- merged into it that comes first by 'ordered_by'); 'stays' leaves the rows where they are (a
-- record of what happened to that customer id). Know's own tables (identities, orders, events,
-- tags, attributes) are moved by OneID itself. A test holds every table with a customer_id
-- column to being named either here or there.
CREATE TABLE customer_rows (
    -- Lower-case letters and underscores only: OneID puts the names into statements, and checks.
    table_name TEXT NOT NULL PRIMARY KEY,
    keeps TEXT NOT NULL CHECK (keeps IN ('all', 'first', 'stays')),
    ordered_by TEXT,
    CHECK ((keeps = 'first') = (ordered_by IS NOT NULL))
);

-- Convert: the points ledger (a balance is the sum of its entries, so the survivor's is both),
-- coupons, flash-sale orders, payments and gift redemptions follow the person; a membership is
-- one per person, the earliest joined.
INSERT INTO customer_rows (table_name, keeps, ordered_by) VALUES
    ('points_entries', 'all', NULL),
    ('coupons', 'all', NULL),
    ('flash_orders', 'all', NULL),
    ('payments', 'all', NULL),
    ('gift_redemptions', 'all', NULL),
    ('members', 'first', 'joined_at'),
    -- Records of what was done with the customer id at the time, kept as they were.
    ('team_members', 'stays', NULL),
    ('bargains', 'stays', NULL),
    ('outbox', 'stays', NULL),
    ('campaign_recipients', 'stays', NULL),
    ('mass_recipients', 'stays', NULL),
    ('links', 'stays', NULL),
    ('cards', 'stays', NULL),
    ('tag_history', 'stays', NULL),
    ('wecom_contacts', 'stays', NULL),
    ('customer_session_revocations', 'stays', NULL),
    -- Recomputed from the orders after every merge.
    ('customer_stats', 'stays', NULL);
