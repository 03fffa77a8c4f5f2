-- Lookup hashes keyed per tenant. The re-key of what is stored runs after this script, in the
-- same transaction (platform/lookup_rekey.rs): it needs the secret key. An unsubscribed number
-- is kept encrypted beside its hash from now on, so that any later change of key can re-key it.
ALTER TABLE unsubscribes ADD COLUMN address_enc TEXT;
