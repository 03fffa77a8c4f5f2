-- A store's return receipt (退货单) names the sale it returns. It is kept as an order of its own,
-- refunded in full, so that its net is zero; the sale's refund is then at least the sum of its
-- returns (computed, never added, so a re-import changes nothing).
ALTER TABLE orders ADD COLUMN refund_of TEXT;
CREATE INDEX orders_returns ON orders (tenant_id, channel, refund_of) WHERE refund_of IS NOT NULL;
