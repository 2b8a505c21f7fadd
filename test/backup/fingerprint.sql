-- One line per table and sequence of schema psk: its name, its row count
-- and an md5 of its rows in text order (a sequence: its position).  Equal
-- lines, equal contents.  Taken from the catalog, so a table added later
-- is compared too; but psk.login_key, the one table a restore makes anew
-- (a random key, not dumped: extension/sql/05_accounts_schema.sql).
\set ON_ERROR_STOP 1
SELECT CASE c.relkind
       WHEN 'S' THEN pg_catalog.format(
           'SELECT %L || '' '' || last_value || '' '' || is_called FROM %s',
           c.oid::regclass, c.oid::regclass)
       ELSE pg_catalog.format(
           'SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, E''\n'' ORDER BY t::text)), ''-'') FROM %s t',
           c.oid::regclass, c.oid::regclass)
       END
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'psk'::regnamespace AND c.relkind IN ('r', 'p', 'S')
   AND c.relname <> 'login_key'
 ORDER BY c.relname \gexec
