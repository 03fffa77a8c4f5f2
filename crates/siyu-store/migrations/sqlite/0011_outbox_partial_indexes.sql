-- Each outbox index holds only the rows its readers ask for. A message used to enter all seven
-- of the outbox's B-trees when it was queued and move in four of them on each of its two state
-- changes, though the claim reads only queued messages, the lease check only sending ones, and
-- the contact policy, the reply lookup and delivery receipts only sent ones. Now a queued
-- message enters four, the claim moves it from the queue to the leases, and the send adds it to
-- the indexes of sent messages (docs/BENCHMARKS.md, "Outbox indexes of what their readers read").
DROP INDEX outbox_due;
CREATE INDEX outbox_queued ON outbox (not_before, id) WHERE status = 'queued';
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
DROP INDEX outbox_customer;
CREATE INDEX outbox_customer ON outbox (tenant_id, customer_id, sent_at) WHERE sent_at IS NOT NULL;
DROP INDEX outbox_address;
CREATE INDEX outbox_address ON outbox (tenant_id, address_hash, sent_at) WHERE sent_at IS NOT NULL;
DROP INDEX outbox_ref;
CREATE INDEX outbox_ref ON outbox (provider_ref) WHERE provider_ref IS NOT NULL;
