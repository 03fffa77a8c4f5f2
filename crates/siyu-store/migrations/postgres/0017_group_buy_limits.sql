-- What a group buy may sell: seats in all its teams together (NULL: no limit) and teams one
-- customer may be in. Existing group buys keep no stock limit and get one team per customer.
ALTER TABLE group_buys ADD COLUMN stock BIGINT;
ALTER TABLE group_buys ADD COLUMN per_customer BIGINT NOT NULL DEFAULT 1;
