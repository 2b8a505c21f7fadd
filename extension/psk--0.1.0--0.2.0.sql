-- psk 0.1.0 -> 0.2.0
--
-- psk_reserve and psk_release do their work below SPI (engine.c) and the
-- hot HTTP routes are C (http.c): the same signatures and behaviour, so
-- only the routes' definitions (and psk.normalize_code's) change here.  psk.codes is vacuumed on a
-- fixed threshold, with index cleanup always (README, Settings: Vacuum).
\echo Use "ALTER EXTENSION psk UPDATE TO '0.2.0'" to load this file. \quit

-- The same rule, now in C, so that engine.c and SQL share one definition.
CREATE OR REPLACE FUNCTION psk.normalize_code(text) RETURNS text
AS 'MODULE_PATHNAME', 'normalize_code'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

ALTER TABLE psk.codes SET (autovacuum_vacuum_scale_factor = 0,
                           autovacuum_vacuum_threshold = 5000,
                           autovacuum_vacuum_cost_delay = 0,
                           autovacuum_analyze_scale_factor = 0.05,
                           vacuum_index_cleanup = on);

-- PL/pgSQL before; CREATE OR REPLACE keeps their grants (to psk_shim).
CREATE OR REPLACE FUNCTION psk.http_me(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_me'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION psk.http_reserve(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_reserve'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION psk.http_confirm(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_confirm'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION psk.http_release(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_release'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION psk.http_my_codes(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http_my_codes'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
