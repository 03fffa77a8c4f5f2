-- A customer's WeCom contacts are how guides and mass messages reach the person: when OneID
-- merges two records of one person, the contacts move to the record that is kept, as orders
-- do, instead of staying with a record nobody selects any more.
UPDATE customer_rows SET keeps = 'all' WHERE table_name = 'wecom_contacts';
-- Contacts of records merged before now follow them too.
UPDATE wecom_contacts SET customer_id = (
    SELECT c.merged_into FROM customers c
     WHERE c.tenant_id = wecom_contacts.tenant_id AND c.id = wecom_contacts.customer_id)
 WHERE EXISTS (SELECT 1 FROM customers c
                WHERE c.tenant_id = wecom_contacts.tenant_id AND c.id = wecom_contacts.customer_id
                  AND c.merged_into IS NOT NULL);
