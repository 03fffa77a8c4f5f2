-- The overview reads a date range: orders by time, covering what its figures sum and count so
-- that a month at a million customers is read from the index alone; first purchases (new
-- customers) and WeCom adds and deletions by day.
CREATE INDEX orders_time ON orders (tenant_id, ordered_at, status, channel, customer_id, buyer_unlinked, amount, refund_amount);
CREATE INDEX customer_stats_first_order ON customer_stats (tenant_id, first_order_at);
CREATE INDEX wecom_contacts_added ON wecom_contacts (tenant_id, added_at);
CREATE INDEX wecom_contacts_deleted ON wecom_contacts (tenant_id, deleted_at) WHERE deleted_at IS NOT NULL;
