/*
 * bulk.c
 *		CSV in and out (API.md, "Bulk in and out: CSV"): the database's half
 *		of POST /admin/codes/import, GET /admin/codes/export and GET
 *		/admin/logs/export.
 *
 * The shim parses the CSV as it arrives and hands it over in batches, all
 * in one transaction on a connection of its own:
 *
 *	BEGIN
 *	SELECT psk.http_codes_import(token, NULL, query)  -- {"batch_id": ...}
 *	SELECT psk.http_codes_import_rows(token, batch_id, lines, codes,
 *									   countries, notes)	-- per batch
 *	DECLARE psk_import_report NO SCROLL CURSOR WITH HOLD
 *	  FOR SELECT * FROM psk.http_codes_import_report(batch_id)
 *	COMMIT (or ROLLBACK: a malformed file inserts nothing)
 *	FETCH 1000 FROM psk_import_report	-- the reply, in pieces
 *
 * The outcome of each row waits in temporary tables of the session (the
 * shim's connection lives for one import), so that the reply of a million
 * rows is never one value in memory, and so that a code seen earlier in the
 * file, in an earlier batch, is duplicate_in_batch as psk_add_codes would
 * call it.  Each inserted code carries the batch's id (psk.codes.batch_id),
 * and its ADDED audit row says "batch <uuid>".
 *
 * An export is the same, without a batch:
 *
 *	BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
 *	DECLARE psk_export NO SCROLL CURSOR WITH HOLD
 *	  FOR SELECT * FROM psk.http_codes_export(token, NULL, query)
 *	COMMIT
 *	FETCH 1000 FROM psk_export ...
 *
 * psk.http_codes_export and psk.http_logs_export check the caller and the
 * query string as every route does, then give every row from the one
 * snapshot of their statement, with no lock but the AccessShareLock of any
 * reader.  The cursor is held (WITH HOLD): COMMIT writes its rows to a
 * temporary file of the session and ends the transaction, so that the
 * snapshot lasts as long as the database takes to produce the rows, not
 * as long as the client takes to download them.  A snapshot held open
 * keeps VACUUM from the row versions reserves leave behind, and reserves
 * then step over more and more dead entries of the free-code index (a
 * slow download of a streamed cursor halved their throughput within 15 s).
 */
#include "writer.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "bulk.h"
#include "codes.h"
#include "http.h"
#include "lists.h"

PG_FUNCTION_INFO_V1(psk_http_codes_import_rows);
PG_FUNCTION_INFO_V1(psk_http_codes_import_report);
PG_FUNCTION_INFO_V1(psk_http_codes_export);
PG_FUNCTION_INFO_V1(psk_http_logs_export);

/* Bounds on one import: rows per batch, countries of the query string. */
#define PSK_MAX_IMPORT_ROWS		 100000
#define PSK_MAX_IMPORT_COUNTRIES 1000

/* A cursor or an import lives in its transaction: refuse outside one. */
static void
require_transaction_block(const char *what)
{
	if (!IsTransactionBlock())
		ereport(ERROR, (errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
						errmsg("%s must run inside a transaction block (BEGIN)",
							   what)));
}

/*
 * The session's import tables, made on its first import.  They live until
 * the session ends; every row carries its batch_id.
 */
static PskQuery import_tables_exist = {
	"SELECT pg_catalog.to_regclass('pg_temp.psk_import_state') IS NOT NULL",
	0,
	{ InvalidOid }
};

static void
import_tables(bool create)
{
	bool isnull;

	psk_execute(&import_tables_exist, NULL, NULL, true);
	if (DatumGetBool(psk_result(0, 1, &isnull)))
		return;
	if (!create)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("no CSV import was begun in this session")));
	if (SPI_execute(
			"CREATE TEMP TABLE psk_import_state ("
			"  batch_id uuid PRIMARY KEY, pool text NOT NULL,"
			"  countries text[], admin_id bigint NOT NULL,"
			"  inserted bigint NOT NULL DEFAULT 0);"
			"CREATE TEMP TABLE psk_import_failed ("
			"  batch_id uuid, line bigint, code text, reason text NOT NULL,"
			"  PRIMARY KEY (batch_id, line));"
			"CREATE INDEX psk_import_failed_code_idx"
			"  ON pg_temp.psk_import_failed (batch_id, code);"
			"CREATE TEMP TABLE psk_import_unknown ("
			"  batch_id uuid, key text, name text NOT NULL,"
			"  line bigint NOT NULL, ord bigint NOT NULL,"
			"  PRIMARY KEY (batch_id, key))",
			false, 0) < 0)
		elog(ERROR, "psk: cannot create the import tables");
}

/* ?countries=UK,DE: the names, trimmed, empty ones left out. */
static ArrayType *
query_countries(char *list)
{
	ArrayBuildState *names = NULL;
	char			*p = list;

	while (p != NULL)
	{
		char *comma = strchr(p, ',');
		char *name;

		if (comma != NULL)
			*comma = '\0';
		name = psk_trim_space(p);
		if (*name != '\0')
		{
			if (pg_mbstrlen(name) > PSK_MAX_NAME_LEN)
				ereport(
					ERROR,
					(errcode(ERRCODE_PSK_INVALID_INPUT),
					 errmsg("countries: a name is longer than %d characters",
							PSK_MAX_NAME_LEN)));
			names = accumArrayResult(names, CStringGetTextDatum(name), false,
									 TEXTOID, CurrentMemoryContext);
		}
		p = comma ? comma + 1 : NULL;
	}
	if (names == NULL)
		return NULL;
	if (names->nelems > PSK_MAX_IMPORT_COUNTRIES)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("countries: more than %d names",
							   PSK_MAX_IMPORT_COUNTRIES)));
	return DatumGetArrayTypeP(makeArrayResult(names, CurrentMemoryContext));
}

/*
 * POST /admin/codes/import ?code_type&countries: the import begins.  The
 * query string's unknown countries are reported first (line 0).
 */
void
route_codes_import(HttpRequest *req, JsonOut *out)
{
	static PskQuery begin = {
		"INSERT INTO pg_temp.psk_import_state (batch_id, pool, countries,"
		"                                      admin_id)"
		" VALUES (pg_catalog.gen_random_uuid(), $1, $2, $3) RETURNING batch_id",
		3,
		{ TEXTOID, TEXTARRAYOID, INT8OID }
	};
	static PskQuery unknown = {
		"INSERT INTO pg_temp.psk_import_unknown (batch_id, key, name, line, ord)"
		" SELECT DISTINCT ON (lower(w.name)) $1, lower(w.name), w.name, 0, w.o"
		"   FROM (SELECT btrim(x.name) AS name, x.o"
		"           FROM unnest($2::text[]) WITH ORDINALITY AS x(name, o)) w"
		"  WHERE NOT EXISTS (SELECT FROM psk.countries k"
		"                     WHERE " PSK_PLACE_NAMED(
			"k", "w.name") ")"
						   "  ORDER BY lower(w.name), w.o",
		2,
		{ UUIDOID, TEXTARRAYOID }
	};
	const char *pool = psk_pool_name(http_text(req, "code_type"));
	char	   *list = http_text(req, "countries");
	ArrayType  *countries = list ? query_countries(pstrdup(list)) : NULL;
	Datum		values[3];
	bool		nulls[3] = { false, countries == NULL, false };
	bool		isnull;
	Datum		batch_id;

	require_transaction_block("an import");
	values[0] = CStringGetTextDatum(pool);
	values[1] = PointerGetDatum(countries);
	values[2] = Int64GetDatum(req->who.id);

	SPI_connect();
	import_tables(true);
	psk_execute(&begin, values, nulls, false);
	batch_id = SPI_datumTransfer(psk_result(0, 1, &isnull), false, 16);
	if (countries != NULL)
	{
		values[0] = batch_id;
		values[1] = PointerGetDatum(countries);
		psk_execute(&unknown, values, NULL, false);
	}
	SPI_finish();

	json_object_start(out);
	json_key(out, "batch_id");
	json_uuid(out, DatumGetUUIDP(batch_id));
	json_object_end(out);
}

/*
 * One batch of rows, in the order of the file (run with
 * SPI_execute_with_args, not kept: see below).  The look-ups of earlier
 * rows are scalar subqueries, one index probe per row: as EXISTS, the
 * planner may hash the whole table instead, on every batch.  Each row is
 * classified as psk_add_codes would, in one pass: invalid, a code seen before
 * in the file (in this batch, or an earlier one: inserted by this import, or
 * refused as a duplicate), or a candidate; candidates are inserted in file
 * order (ON CONFLICT: duplicate_in_db), with the countries of the query string
 * and of their row.  Refusals and unknown countries go to the session's tables
 * for the report.  Returns the inserted codes, in file order, with the
 * note of their ADDED rows.
 *
 * $1 pool, $2 lines, $3 codes, $4 each row's countries (';'-separated),
 * $5 notes, $6 the query string's countries, $7 the Unicode spaces,
 * $8 batch_id.
 */
static PskQuery import_rows = {
	"WITH input AS ("
	"  SELECT u.n, u.line, psk.normalize_code(u.c) AS code, u.cs, u.note"
	"    FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])"
	"         WITH ORDINALITY AS u(line, c, cs, note, n)"
	"), classified AS ("
	"  SELECT n, line, code, cs, note,"
	"         CASE WHEN " PSK_CODE_INVALID(
		"code",
		"$7") " THEN 'invalid'"
			  "              WHEN row_number() OVER (PARTITION BY code ORDER BY n) > 1"
			  "                OR (SELECT e.batch_id FROM psk.codes e"
			  "                     WHERE e.code = input.code) = $8"
			  "                OR (SELECT true FROM pg_temp.psk_import_failed f"
			  "                     WHERE f.batch_id = $8 AND f.code = input.code"
			  "                       AND f.reason <> 'invalid' LIMIT 1)"
			  "              THEN 'duplicate_in_batch'"
			  "         END AS outcome"
			  "    FROM input"
			  "), file_countries AS ("
			  "  SELECT DISTINCT k.id, k.name"
			  "    FROM unnest($6::text[]) AS w(name)"
			  "    JOIN psk.countries k ON " PSK_PLACE_NAMED(
				  "k",
				  "w.name") "), row_wanted AS ("
							"  SELECT c.n, c.line, r.o, btrim(r.name) AS name"
							"    FROM classified c,"
							"         unnest(string_to_array(c.cs, ';')) WITH ORDINALITY AS r(name, o)"
							"   WHERE btrim(r.name) <> ''"
							"), row_countries AS ("
							"  SELECT w.n, w.line, w.o, w.name AS wanted, k.id, k.name"
							"    FROM row_wanted w LEFT JOIN psk.countries k"
							"      ON " PSK_PLACE_NAMED(
								"k",
								"w.name") "), inserted AS ("
										  "  INSERT INTO psk.codes (code, pool, note, batch_id)"
										  "  SELECT code, $1, note, $8 FROM classified WHERE outcome IS NULL"
										  "   ORDER BY n"
										  "  ON CONFLICT (code) DO NOTHING"
										  "  RETURNING id, code"
										  "), placed AS ("
										  "  SELECT c.n, i.id AS code_id, f.id, f.name"
										  "    FROM inserted i"
										  "    JOIN classified c ON c.outcome IS NULL AND c.code = i.code"
										  "   CROSS JOIN file_countries f"
										  "  UNION"
										  "  SELECT c.n, i.id, r.id, r.name"
										  "    FROM inserted i"
										  "    JOIN classified c ON c.outcome IS NULL AND c.code = i.code"
										  "    JOIN row_countries r ON r.n = c.n AND r.id IS NOT NULL"
										  "), attached AS ("
										  "  INSERT INTO psk.code_countries (code_id, country_id)"
										  "  SELECT code_id, id FROM placed"
										  "), outcomes AS ("
										  "  SELECT c.n, c.line, c.code, c.note,"
										  "         COALESCE(c.outcome, CASE WHEN i.id IS NULL THEN 'duplicate_in_db'"
										  "                                  ELSE 'inserted' END) AS outcome"
										  "    FROM classified c"
										  "    LEFT JOIN inserted i ON c.outcome IS NULL AND i.code = c.code"
										  "), failed AS ("
										  "  INSERT INTO pg_temp.psk_import_failed (batch_id, line, code, reason)"
										  "  SELECT $8, line, code, outcome FROM outcomes"
										  "   WHERE outcome <> 'inserted'"
										  "), unknown AS ("
										  "  INSERT INTO pg_temp.psk_import_unknown (batch_id, key, name, line, ord)"
										  "  SELECT DISTINCT ON (lower(wanted)) $8, lower(wanted), wanted, line, o"
										  "    FROM row_countries WHERE id IS NULL"
										  "   ORDER BY lower(wanted), line, o"
										  "  ON CONFLICT DO NOTHING"
										  "), counted AS ("
										  "  UPDATE pg_temp.psk_import_state"
										  "     SET inserted = inserted + (SELECT count(*) FROM inserted)"
										  "   WHERE batch_id = $8"
										  ")"
										  "SELECT o.code,"
										  "       'batch ' || $8 || COALESCE('; countries: ' || p.names, '')"
										  "       || COALESCE('; note: ' || o.note, '')"
										  "  FROM outcomes o"
										  "  LEFT JOIN (SELECT n, string_agg(name, ', ' ORDER BY name) AS names"
										  "               FROM placed GROUP BY n) p ON p.n = o.n"
										  " WHERE o.outcome = 'inserted' ORDER BY o.n",
	8,
	{ TEXTOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	  TEXTARRAYOID, TEXTOID, UUIDOID }
};

static PskQuery import_state = {
	"SELECT pool, countries, admin_id FROM pg_temp.psk_import_state"
	" WHERE batch_id = $1",
	1,
	{ UUIDOID }
};

/* A text[] or bigint[] argument of n elements (n: the first one's). */
static ArrayType *
rows_arg(FunctionCallInfo fcinfo, int argno, const char *name, int *n)
{
	ArrayType *a;
	int		   len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("%s is required", name)));
	a = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("%s must be a one-dimensional array", name)));
	len = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (*n < 0)
		*n = len;
	if (len != *n)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("lines, codes, countries and notes must have "
							   "as many elements")));
	return a;
}

/*
 * The per-row values that cannot be stored, refused as psk_add_codes and
 * psk_comment refuse them (invalid_input, the whole import), naming the
 * line: a note over PSK_MAX_TEXT_LEN, a country name over PSK_MAX_NAME_LEN.
 */
static void
check_rows(ArrayType *lines, ArrayType *countries, ArrayType *notes, int n)
{
	Datum *line_v, *country_v, *note_v;
	bool  *line_n, *country_n, *note_n;
	int	   k;

	deconstruct_array(lines, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &line_v, &line_n, &k);
	deconstruct_array(countries, TEXTOID, -1, false, TYPALIGN_INT, &country_v,
					  &country_n, &k);
	deconstruct_array(notes, TEXTOID, -1, false, TYPALIGN_INT, &note_v, &note_n,
					  &k);
	for (int i = 0; i < n; i++)
	{
		int64 line;

		if (line_n[i])
			ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
							errmsg("lines must not hold NULL")));
		line = DatumGetInt64(line_v[i]);
		if (!note_n[i])
		{
			text *note = DatumGetTextPP(note_v[i]);

			if (pg_mbstrlen_with_len(VARDATA_ANY(note),
									 VARSIZE_ANY_EXHDR(note)) >
				PSK_MAX_TEXT_LEN)
				ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
								errmsg("line " INT64_FORMAT
									   ": note is longer than %d characters",
									   line, PSK_MAX_TEXT_LEN)));
		}
		if (!country_n[i])
		{
			char *list = TextDatumGetCString(country_v[i]);
			char *p = list;

			while (p != NULL)
			{
				char *semi = strchr(p, ';');

				if (semi != NULL)
					*semi = '\0';
				if (pg_mbstrlen(psk_trim_space(p)) > PSK_MAX_NAME_LEN)
					ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
									errmsg("line " INT64_FORMAT
										   ": a country name is longer than %d "
										   "characters",
										   line, PSK_MAX_NAME_LEN)));
				p = semi ? semi + 1 : NULL;
			}
			pfree(list);
		}
	}
}

/*
 * psk.http_codes_import_rows(token, batch_id, lines, codes, countries,
 * notes) -> the number of codes inserted.  The caller is checked on every
 * batch, as on every route: a live session of an admin, the one who began
 * the import.
 */
Datum
psk_http_codes_import_rows(PG_FUNCTION_ARGS)
{
	PskUser		session;
	PskUser		admin;
	int			n = -1;
	ArrayType  *lines, *codes, *countries, *notes;
	Datum		batch_id;
	Datum		values[8];
	bool		isnull;
	const char *pool;
	Datum		pool_datum;
	uint64		inserted;
	PskWriter	w;

	psk_session_find(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), &session);
	if (!session.is_admin)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("Permission denied")));
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("batch_id is required")));
	batch_id = PG_GETARG_DATUM(1);
	lines = rows_arg(fcinfo, 2, "lines", &n);
	codes = rows_arg(fcinfo, 3, "codes", &n);
	countries = rows_arg(fcinfo, 4, "countries", &n);
	notes = rows_arg(fcinfo, 5, "notes", &n);
	if (n > PSK_MAX_IMPORT_ROWS)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("more than %d rows in one batch",
							   PSK_MAX_IMPORT_ROWS)));
	check_rows(lines, countries, notes, n);

	admin.id = session.id;
	admin.is_admin = true;
	admin.email = session.email;
	admin.user_name = session.user_name;
	admin.pool = session.pool;
	admin.team_name = session.team_name;

	SPI_connect();
	import_tables(false);
	if (psk_execute(&import_state, &batch_id, NULL, true) != 1)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("no CSV import with this batch_id in this "
							   "session")));
	if (DatumGetInt64(psk_result(0, 3, &isnull)) != session.id)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("the import was begun by another user")));
	pool = psk_result_cstring(0, 1);
	values[0] = CStringGetTextDatum(pool);
	values[1] = PointerGetDatum(lines);
	values[2] = PointerGetDatum(codes);
	values[3] = PointerGetDatum(countries);
	values[4] = PointerGetDatum(notes);
	values[5] = psk_result(0, 2, &isnull);
	if (isnull)
		values[5] = PointerGetDatum(construct_empty_array(TEXTOID));
	values[6] = CStringGetTextDatum(
		GetDatabaseEncoding() == PG_UTF8 ? psk_unicode_spaces : "");
	values[7] = batch_id;
	/*
	 * Planned for each batch with its values: a kept plan would turn
	 * generic after five batches, and a generic plan takes unnest() of the
	 * arrays for 10 rows, and joins thousands by nested loops.
	 */
	if (SPI_execute_with_args(import_rows.sql, import_rows.nargs,
							  import_rows.argtypes, values, NULL, false,
							  0) != SPI_OK_SELECT)
		elog(ERROR, "psk: the import's batch failed");
	inserted = SPI_processed;

	/* one ADDED row per inserted code, in file order (their ids' order) */
	psk_audit_writer_begin(&w);
	pool_datum = CStringGetTextDatum(pool);
	for (uint64 i = 0; i < inserted; i++)
	{
		psk_audit_begin(&w);
		psk_audit_set(&w, LOG_CODE, psk_result(i, 1, &isnull));
		psk_audit_set(&w, LOG_CODE_TYPE, pool_datum);
		psk_audit_actor(&w, &admin);
		psk_audit_set(&w, LOG_NOTE, psk_result(i, 2, &isnull));
		psk_audit_append(&w, "ADDED");
	}
	psk_writer_end(&w);
	SPI_finish();
	PG_RETURN_INT32((int32) inserted);
}

/*
 * psk.http_codes_import_report(batch_id) -> SETOF text: the reply of POST
 * /admin/codes/import in pieces of JSON, which the shim sends one after
 * the other: {"batch_id":...,"inserted":n,"failed":[[line,code,reason]...],
 * "unknown_countries":[name...]}.  It reads only the session's own tables.
 */
/*
 * The rows of portal, fetched in parts into the function's result (a
 * tuplestore, on disk past work_mem), and the portal closed: the backend
 * never holds more than a part in memory.
 */
static void
return_cursor(FunctionCallInfo fcinfo, Portal portal)
{
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		psk_return_tuptable(fcinfo);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
}

static PskQuery report = {
	"SELECT piece FROM ("
	"  SELECT 0 AS part, 0::bigint AS line, 0::bigint AS ord,"
	"         '{\"batch_id\":' || to_json(s.batch_id::text)"
	"         || ',\"inserted\":' || s.inserted || ',\"failed\":[' AS piece"
	"    FROM pg_temp.psk_import_state s WHERE s.batch_id = $1"
	"  UNION ALL"
	"  SELECT 1, f.line, 0,"
	"         CASE WHEN row_number() OVER (ORDER BY f.line) > 1 THEN ','"
	"              ELSE '' END"
	"         || '[' || f.line || ',' || COALESCE(to_json(f.code)::text, 'null')"
	"         || ',' || to_json(f.reason) || ']'"
	"    FROM pg_temp.psk_import_failed f WHERE f.batch_id = $1"
	"  UNION ALL"
	"  SELECT 2, 0, 0, '],\"unknown_countries\":['"
	"  UNION ALL"
	"  SELECT 3, u.line, u.ord,"
	"         CASE WHEN row_number() OVER (ORDER BY u.line, u.ord) > 1"
	"              THEN ',' ELSE '' END || to_json(u.name)"
	"    FROM pg_temp.psk_import_unknown u WHERE u.batch_id = $1"
	"  UNION ALL"
	"  SELECT 4, 0, 0, ']}'"
	") r ORDER BY part, line, ord",
	1,
	{ UUIDOID }
};

Datum
psk_http_codes_import_report(PG_FUNCTION_ARGS)
{
	Datum  batch_id;
	Portal portal;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("batch_id is required")));
	batch_id = PG_GETARG_DATUM(0);
	psk_result_set(fcinfo);
	SPI_connect();
	import_tables(false);
	if (psk_execute(&import_state, &batch_id, NULL, true) != 1)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("no CSV import with this batch_id in this "
							   "session")));
	portal = psk_open_cursor(&report, NULL, &batch_id, NULL);
	return_cursor(fcinfo, portal);
	SPI_finish();
	return (Datum) 0;
}

/*
 * The export routes' rows come from these functions (the shim DECLAREs its
 * cursor on them), not from the JSON adapter.
 */
static void
route_rows_only(HttpRequest *req, JsonOut *out)
{
	ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("psk.http_%s returns rows", req->route->name)));
}

void
route_codes_export(HttpRequest *req, JsonOut *out)
{
	route_rows_only(req, out);
}

void
route_logs_export(HttpRequest *req, JsonOut *out)
{
	route_rows_only(req, out);
}

/*
 * psk.http_codes_export(token, body, query) -> psk_codes' rows as text
 * (GET /admin/codes/export ?code_type&status), all of them, in code order.
 */
Datum
psk_http_codes_export(PG_FUNCTION_ARGS)
{
	HttpRequest req;
	const char *pool;
	const char *status;

	http_request(fcinfo, "codes_export", &req);
	pool = psk_pool_name(psk_check_text(http_text(&req, "code_type"),
										"code_type", false, PSK_MAX_NAME_LEN));
	status = psk_list_name(&psk_statuses,
						   psk_check_text(http_text(&req, "status"), "status",
										  false, PSK_MAX_NAME_LEN));
	psk_result_set(fcinfo);
	SPI_connect();
	return_cursor(fcinfo, psk_open_codes_cursor(pool, status));
	SPI_finish();
	return (Datum) 0;
}

/*
 * psk.http_logs_export(token, body, query) -> psk_log's rows (without
 * total_count), oldest first, matching the filters of GET /admin/logs
 * (?code&user_name&action&start_date&end_date).
 */
Datum
psk_http_logs_export(PG_FUNCTION_ARGS)
{
	HttpRequest req;
	char	   *code;
	char	   *user_name;
	const char *action;
	TimestampTz since;
	TimestampTz until;
	bool		has_since;
	bool		has_until;

	http_request(fcinfo, "logs_export", &req);
	code = psk_check_text(http_text(&req, "code"), "code", false,
						  PSK_MAX_CODE_LEN);
	user_name = psk_check_text(http_text(&req, "user_name"), "user_name", false,
							   PSK_MAX_NAME_LEN);
	action = psk_list_name(&psk_actions,
						   psk_check_text(http_text(&req, "action"), "action",
										  false, PSK_MAX_NAME_LEN));
	has_since = http_time(&req, "start_date", &since);
	has_until = http_time(&req, "end_date", &until);
	/* as GET /admin/logs: a date alone as the end is that whole day */
	if (has_since && has_until &&
		(since > until ||
		 (since == until && http_is_date(http_text(&req, "end_date")))))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("start_date is after end_date")));
	psk_result_set(fcinfo);
	SPI_connect();
	return_cursor(fcinfo, psk_open_log_cursor(code, user_name, action,
											  has_since ? &since : NULL,
											  has_until ? &until : NULL));
	SPI_finish();
	return (Datum) 0;
}
