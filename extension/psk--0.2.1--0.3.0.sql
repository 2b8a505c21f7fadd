-- psk 0.2.1 -> 0.3.0 (in development)
--
-- Every change to the install script (extension/sql/*.sql) since 0.2.1 has
-- its counterpart here, so that an updated database equals a fresh one
-- (sql/upgrade.sql checks it).
\echo Use "ALTER EXTENSION psk UPDATE TO '0.3.0'" to load this file. \quit
