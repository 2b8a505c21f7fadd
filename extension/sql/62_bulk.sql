-- CSV in and out (bulk.c): POST /admin/codes/import, GET /admin/codes/export
-- and GET /admin/logs/export.  The shim runs each in transactions on a
-- connection of its own (API.md, "Bulk in and out: CSV"; README, "CSV in
-- and out").

-- POST /admin/codes/import ?code_type&countries: begins an import,
-- {"batch_id": uuid}
CREATE FUNCTION psk.http_codes_import(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- a batch of the file's rows: the number of codes inserted
CREATE FUNCTION psk.http_codes_import_rows(token text, batch_id uuid,
                                           lines bigint[], codes text[],
                                           countries text[], notes text[])
RETURNS int
AS 'MODULE_PATHNAME', 'psk_http_codes_import_rows'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- after the import's COMMIT: the reply, as the cursor psk_import_report
CREATE FUNCTION psk.http_codes_import_report(batch_id uuid) RETURNS void
AS 'MODULE_PATHNAME', 'psk_http_codes_import_report'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/codes/export ?code_type&status: the cursor psk_export
CREATE FUNCTION psk.http_codes_export(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- GET /admin/logs/export ?code&user_name&action&start_date&end_date: the
-- cursor psk_export
CREATE FUNCTION psk.http_logs_export(token text, body text, query jsonb) RETURNS json
AS 'MODULE_PATHNAME', 'psk_http'
LANGUAGE C VOLATILE CALLED ON NULL INPUT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
