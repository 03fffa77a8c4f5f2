-- A marketplace's after-sales case (售后单: a refund, a return, a part of an order refunded),
-- read from the platform's after-sales API beside its orders. An order's refund is the sum of
-- its cases that went through (or its own refund when larger), computed from these rows, never
-- added, so reading a case again changes nothing.
CREATE TABLE after_sales (
    tenant_id  INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    case_ref   TEXT NOT NULL,
    order_no   TEXT NOT NULL,
    amount     INTEGER NOT NULL,
    succeeded  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel, case_ref)
);
CREATE INDEX after_sales_orders ON after_sales (tenant_id, channel, order_no);
