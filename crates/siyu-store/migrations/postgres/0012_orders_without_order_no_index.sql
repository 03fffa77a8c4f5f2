-- An order number from any channel is found through the unique (tenant_id, channel, order_no)
-- index, one probe per channel the tenant sells on (a loose scan; `customers::search`), so
-- this second index on order numbers, which every stored order paid for, goes.
DROP INDEX orders_order_no;
