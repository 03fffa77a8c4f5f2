-- The dispatcher claims the next batch in (not_before, id) order. With the id in the index the
-- batch is read off the index in that order; without it PostgreSQL read and sorted every queued
-- message for each batch of 2,000 (SQLite's index ended in the rowid already).
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, not_before, id);
