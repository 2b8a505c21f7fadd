-- CSV in and out (bulk.c): POST /admin/codes/import, GET /admin/codes/export
-- and GET /admin/logs/export.  The shim runs each in transactions on a
-- connection of its own (API.md, "Bulk in and out: CSV"; README, "CSV in
-- and out").

-- POST /admin/codes/import ?code_type&countries: begins an import,
-- {"batch_id": uuid}
CREATE FUNCTION psk.http_codes_import(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER;  -- (pinned in C, 60_http.sql)

-- a batch of the file's rows: the number of codes inserted
CREATE FUNCTION psk.http_codes_import_rows(token text, batch_id uuid,
                                           lines bigint[], codes text[],
                                           countries text[], notes text[])
RETURNS int
AS 'MODULE_PATHNAME', 'psk_http_codes_import_rows'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- the reply, in pieces of JSON: the shim DECLAREs its cursor on it WITH HOLD,
-- before the import's COMMIT
CREATE FUNCTION psk.http_codes_import_report(batch_id uuid) RETURNS SETOF text
AS 'MODULE_PATHNAME', 'psk_http_codes_import_report'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/codes/export ?code_type&status: psk_codes' rows, every column as
-- the CSV has it (the shim DECLAREs its cursor on it WITH HOLD)
CREATE FUNCTION psk.http_codes_export(token text, body text, query jsonb)
RETURNS TABLE (code text, code_type text, status text, holder text,
               tester_name text, reserved_at text, expires_at text,
               released_at text, note text, countries text)
AS 'MODULE_PATHNAME', 'psk_http_codes_export'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/logs/export ?code&user_name&action&start_date&end_date: psk_log's
-- rows, without total_count, oldest first
CREATE FUNCTION psk.http_logs_export(token text, body text, query jsonb)
RETURNS TABLE (id bigint, logged_at text, action text, code text,
               user_name text, contact_email text, tester_name text,
               country text, region text, note text)
AS 'MODULE_PATHNAME', 'psk_http_logs_export'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
