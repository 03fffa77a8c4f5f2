-- What a group buy may sell: seats in all its teams together (NULL: no limit) and teams one
-- customer may be in. Existing group buys keep no stock limit and get one team per customer.
ALTER TABLE group_buys ADD COLUMN stock INTEGER;
ALTER TABLE group_buys ADD COLUMN per_customer INTEGER NOT NULL DEFAULT 1;
