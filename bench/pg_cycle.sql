-- pgbench script: the same cycle in SQL (pgbench -M prepared -f bench/pg_cycle.sql)
SELECT code AS c FROM psk_reserve('osv@example.com', 'pgbench') \gset
SELECT FROM psk_release('osv@example.com', :c);
