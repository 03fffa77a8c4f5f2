-- Member tiers: the tier a member holds now and since when.

ALTER TABLE members ADD COLUMN tier TEXT;
ALTER TABLE members ADD COLUMN tier_since INTEGER;
CREATE INDEX members_tier ON members (tenant_id, tier);
