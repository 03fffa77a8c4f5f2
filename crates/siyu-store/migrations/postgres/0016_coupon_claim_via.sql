-- Where a coupon template may be claimed: 'h5' (a customer's own page), 'card' (a package
-- card), 'points' (a gift for points) or 'api' (the brand's systems only, the default).
-- Templates already behind a card batch or a gift say so; nothing becomes claimable on H5.
ALTER TABLE coupon_templates ADD COLUMN claim_via TEXT NOT NULL DEFAULT 'api';
UPDATE coupon_templates SET claim_via = 'points' WHERE EXISTS (SELECT 1 FROM gifts g
    WHERE g.tenant_id = coupon_templates.tenant_id AND g.template_id = coupon_templates.id);
UPDATE coupon_templates SET claim_via = 'card' WHERE EXISTS (SELECT 1 FROM card_batches b
    WHERE b.tenant_id = coupon_templates.tenant_id AND b.coupon_template_id = coupon_templates.id);
