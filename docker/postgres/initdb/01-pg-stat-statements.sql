-- Runs once, when the postgres container initialises an empty data directory.
-- The manual's slow-query commands read pg_stat_statements, from itsm_db and from the default database
-- (`psql -U postgres -c ...` connects to `postgres`). The library is preloaded by the server's command line.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
\connect postgres
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
