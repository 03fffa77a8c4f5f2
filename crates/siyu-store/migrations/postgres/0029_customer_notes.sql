-- Notes staff write on a customer's page (备注): who wrote what and when; they follow the
-- person through OneID merges.
CREATE TABLE customer_notes (
    id          BIGINT PRIMARY KEY,
    tenant_id   BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    body        TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX customer_notes_customer ON customer_notes (tenant_id, customer_id, created_at);
INSERT INTO id_counters (name, next_id) VALUES ('customer_note', 1);
-- Notes follow the person to the kept customer (see customer_rows).
INSERT INTO customer_rows (table_name, keeps, ordered_by) VALUES ('customer_notes', 'all', NULL);
