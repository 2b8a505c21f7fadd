-- The same cycle through the extension: psk_reserve + psk_release.  pgbench
-- client :client_id (from 0) is bench user :client_id + 1.
\set n :client_id + 1
SELECT code FROM psk_reserve('bench' || :n || '@example.com', 'bench') \gset
SELECT released_at FROM psk_release('bench' || :n || '@example.com', :code);
