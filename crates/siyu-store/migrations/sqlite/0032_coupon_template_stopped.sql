-- When a template stopped issuing (停止发放): no claim, issue or card hands out another; its
-- own window (ends_at or valid_days) stays what it was, as do the coupons granted.
ALTER TABLE coupon_templates ADD COLUMN stopped_at INTEGER;
