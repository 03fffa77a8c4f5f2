-- Nothing to do: PostgreSQL's primary keys are NOT NULL already. SQLite's text keys of
-- id_counters and sessions are made so in the same version.
SELECT 1;
