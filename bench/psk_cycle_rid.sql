-- The cycle of psk_cycle.sql with a request_id on every reserve (a new one
-- each time, as a client retrying only on failure would send): what
-- remembering it costs.  pgbench client :client_id (from 0) is bench user
-- :client_id + 1.
\set n :client_id + 1
SELECT code FROM psk_reserve('bench' || :n || '@example.com', 'bench', request_id => gen_random_uuid()::text) \gset
SELECT released_at FROM psk_release('bench' || :n || '@example.com', :code);
