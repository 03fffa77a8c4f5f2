-- Customers who bought in a channel are found through orders_customer (by customer) or the
-- unique (tenant_id, channel, order_no) index (by channel), so this third index on channels,
-- which every stored order paid for, goes (docs/BENCHMARKS.md, session 15).
DROP INDEX orders_channel_customer;
