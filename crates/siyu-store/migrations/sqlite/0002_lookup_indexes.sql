-- Merges re-point customers that were merged into a now-merged customer.
CREATE INDEX customers_merged ON customers (tenant_id, merged_into) WHERE merged_into IS NOT NULL;
-- The console finds customers by an order number from any channel.
CREATE INDEX orders_order_no ON orders (tenant_id, order_no);
