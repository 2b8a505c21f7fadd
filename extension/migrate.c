/*
 * migrate.c
 *		psk_migrate_legacy(source_schema): the old service's regions,
 *		countries, users, codes and log moved into an empty psk, in the
 *		caller's one transaction (API.md, "Switching from the old service";
 *		the old tables as ../shared/seed/SEED-DATA.md describes them).
 *
 * Everything is checked before anything is written, so a refusal names
 * what is wrong and changes nothing: two old codes (or e-mails) that
 * become one after trimming and case-folding are a conflict; a code,
 * e-mail, name or password hash psk cannot store, or a RESERVED code
 * without its holder, tester, time or token, is invalid_input.  The old
 * tables are locked against writers for the move and left as they were.
 *
 * Rows go in with set-based statements; audit rows through the one audit
 * writer (writer.c), as every audit row does, at their own times: one
 * USER_CREATED per user (at its created_at), then the old log in its
 * order, then, where the old log does not replay to a code's state (codes
 * loaded by script without an ADDED row, say), the rows that bring it
 * there, so that psk's invariant holds from the start: for each code, the
 * log replays to its status and holder.
 *
 * passlib wrote "$2b$" bcrypt hashes, which pgcrypto's crypt() reads as a
 * DES salt; the hash itself is the same as "$2a$", so the prefix is
 * rewritten and every old password logs in.
 */
#include "writer.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(psk_migrate_legacy);

/* audit rows written per batch of the old log */
#define LOG_BATCH 10000

/* the old tables the move reads (SEED-DATA.md) */
static const char *const old_tables[] = { "regions", "countries",	   "users",
										  "codes",	 "code_countries", "logs" };

/*
 * sql with every "@old." replaced by the quoted source schema and a dot.
 * The schema is an identifier, which no statement can take as a parameter.
 */
static char *
old_sql(const char *schema, const char *sql)
{
	const char	  *q = quote_identifier(schema);
	StringInfoData buf;
	const char	  *p = sql;
	const char	  *hit;

	initStringInfo(&buf);
	while ((hit = strstr(p, "@old.")) != NULL)
	{
		appendBinaryStringInfo(&buf, p, hit - p);
		appendStringInfo(&buf, "%s.", q);
		p = hit + 5;
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

static uint64
run(const char *schema, const char *sql, bool read_only)
{
	int rc = SPI_execute(old_sql(schema, sql), read_only, 0);

	if (rc < 0)
		elog(ERROR, "psk: migration statement failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * A check: a query of one text column, NULL when all is well, else what is
 * wrong; then the error errcode with message prefix: that text.
 */
static void
check(const char *schema, const char *sql, int sqlstate, const char *prefix)
{
	bool isnull;

	run(schema, sql, false);
	if (SPI_processed == 0)
		return;
	(void) psk_result(0, 1, &isnull);
	if (isnull)
		return;
	ereport(ERROR, (errcode(sqlstate),
					errmsg("%s: %s", prefix, psk_result_cstring(0, 1)),
					errhint("Correct it in the old tables and run "
							"psk_migrate_legacy again: nothing was moved.")));
}

/* Who may call it, and the source: a schema with the old service's tables. */
static void
check_source(const char *schema)
{
	Oid nsp = get_namespace_oid(schema, true);

	if (strcmp(schema, "psk") == 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("source_schema must be the old service's "
							   "schema, not psk")));
	if (!OidIsValid(nsp))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("schema \"%s\" does not exist", schema)));
	for (size_t i = 0; i < lengthof(old_tables); i++)
	{
		if (!OidIsValid(get_relname_relid(old_tables[i], nsp)))
			ereport(ERROR,
					(errcode(ERRCODE_PSK_INVALID_INPUT),
					 errmsg("schema \"%s\" has no table \"%s\": not the old "
							"service's database?",
							schema, old_tables[i])));
	}
}

/*
 * Nothing in psk yet, and nobody adding to it meanwhile (a second
 * migration waits here, then finds the first one's rows); the old tables
 * held still for the move.
 */
static void
lock_and_check_empty(const char *schema)
{
	run(schema,
		"LOCK TABLE psk.users, psk.codes, psk.regions, psk.countries,"
		" psk.code_countries IN SHARE ROW EXCLUSIVE MODE",
		false);
	/* not read-only: a fresh snapshot, taken after the lock */
	run(schema,
		"SELECT 1 FROM psk.users UNION ALL SELECT 1 FROM psk.codes LIMIT 1",
		false);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_CONFLICT),
				 errmsg("psk already has users or codes: "
						"psk_migrate_legacy moves the old service's data into "
						"an empty psk only, once")));
	run(schema,
		"LOCK TABLE @old.regions, @old.countries, @old.users, @old.codes,"
		" @old.code_countries, @old.logs IN SHARE MODE",
		false);
}

/* Everything that would stop the move, before anything moves. */
static void
check_old_data(const char *schema)
{
	/* codes */
	check(schema,
		  "SELECT string_agg(format('%s become one code \"%s\"', olds, n),"
		  "                  '; ')"
		  "  FROM (SELECT psk.normalize_code(code) AS n,"
		  "               string_agg(format('\"%s\"', code), ' and '"
		  "                          ORDER BY code) AS olds"
		  "          FROM @old.codes GROUP BY 1 HAVING count(*) > 1"
		  "         ORDER BY 1 LIMIT 5) d",
		  ERRCODE_PSK_CONFLICT,
		  "old codes collide after trimming and upper-casing");
	check(
		schema,
		"SELECT string_agg(format('\"%s\"', code), ', ')"
		"  FROM (SELECT code FROM @old.codes"
		"         WHERE NOT (length(psk.normalize_code(code)) BETWEEN 1 AND 128"
		"                AND psk.normalize_code(code) !~ '[[:space:][:cntrl:]]')"
		"         ORDER BY code LIMIT 5) d",
		ERRCODE_PSK_INVALID_INPUT,
		"old codes that are empty, too long or with spaces inside");
	check(
		schema,
		"SELECT string_agg(DISTINCT format('\"%s\" (%s)', code, why), ', ')"
		"  FROM (SELECT code,"
		"               CASE WHEN coalesce(status::text, '')"
		"                         NOT IN ('CAN_BE_USED', 'RESERVED')"
		"                    THEN 'status ' || coalesce(status::text, 'NULL')"
		"                    WHEN coalesce(code_type::text, '')"
		"                         NOT IN ('OSV', 'HSV', 'COMMON')"
		"                    THEN 'code_type ' || coalesce(code_type::text, 'NULL')"
		"                    ELSE 'RESERVED without its holder, tester,"
		" requested_at or token' END AS why"
		"          FROM @old.codes"
		"         WHERE coalesce(status::text, '') NOT IN ('CAN_BE_USED', 'RESERVED')"
		"            OR coalesce(code_type::text, '') NOT IN ('OSV', 'HSV', 'COMMON')"
		"            OR (status::text = 'RESERVED'"
		"                AND (user_id IS NULL OR tester_name IS NULL"
		"                     OR requested_at IS NULL"
		"                     OR reservation_token IS NULL))"
		"         ORDER BY code LIMIT 5) d",
		ERRCODE_PSK_INVALID_INPUT, "old codes psk cannot hold as they are");

	/* users */
	check(schema,
		  "SELECT string_agg(format('%s are one e-mail', olds), '; ')"
		  "  FROM (SELECT string_agg(format('\"%s\"', contact_email), ' and '"
		  "                          ORDER BY contact_email) AS olds"
		  "          FROM @old.users GROUP BY lower(btrim(contact_email))"
		  "        HAVING count(*) > 1 ORDER BY 1 LIMIT 5) d",
		  ERRCODE_PSK_CONFLICT, "old users collide after case-folding");
	check(
		schema,
		"SELECT string_agg(format('\"%s\" (%s)', contact_email, why), ', ')"
		"  FROM (SELECT contact_email,"
		"               CASE WHEN lower(btrim(contact_email))"
		"                         !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'"
		"                      OR length(btrim(contact_email)) NOT BETWEEN 3 AND 254"
		"                    THEN 'not an e-mail psk can store'"
		"                    WHEN length(user_name) NOT BETWEEN 1 AND 128"
		"                    THEN 'user_name empty or over 128 characters'"
		"                    WHEN length(team_name) NOT BETWEEN 1 AND 128"
		"                    THEN 'team_name empty or over 128 characters'"
		"                    ELSE 'password_hash is not bcrypt' END AS why"
		"          FROM @old.users"
		"         WHERE lower(btrim(contact_email))"
		"                   !~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'"
		"            OR length(btrim(contact_email)) NOT BETWEEN 3 AND 254"
		"            OR length(user_name) NOT BETWEEN 1 AND 128"
		"            OR length(team_name) NOT BETWEEN 1 AND 128"
		"            OR password_hash !~ '^\\$2[abxy]\\$[0-9]{2}\\$[./A-Za-z0-9]{53}$'"
		"         ORDER BY contact_email LIMIT 5) d",
		ERRCODE_PSK_INVALID_INPUT, "old users psk cannot store");

	/* places */
	check(schema,
		  "SELECT string_agg(format('\"%s\"', name), ', ')"
		  "  FROM (SELECT name FROM @old.regions"
		  "         WHERE length(btrim(name)) NOT BETWEEN 1 AND 128"
		  "        UNION ALL SELECT name FROM @old.countries"
		  "         WHERE length(btrim(name)) NOT BETWEEN 1 AND 128"
		  "         LIMIT 5) d",
		  ERRCODE_PSK_INVALID_INPUT,
		  "old region or country names that are empty");
	check(
		schema,
		"SELECT string_agg(format('\"%s\" in %s', n, regions), '; ')"
		"  FROM (SELECT lower(btrim(c.name)) AS n,"
		"               string_agg(DISTINCT format('\"%s\"', btrim(r.name)), ' and ')"
		"                 AS regions"
		"          FROM @old.countries c JOIN @old.regions r ON r.id = c.region_id"
		"         GROUP BY 1 HAVING count(DISTINCT lower(btrim(r.name))) > 1"
		"         ORDER BY 1 LIMIT 5) d",
		ERRCODE_PSK_CONFLICT, "one country in two regions");

	/* the log */
	check(schema,
		  "SELECT string_agg(DISTINCT coalesce(action::text, 'NULL'), ', ')"
		  "  FROM @old.logs WHERE coalesce(action::text, '')"
		  "       NOT IN ('ADDED', 'RESERVED', 'RELEASED', 'DELETED')",
		  ERRCODE_PSK_INVALID_INPUT, "old log actions psk does not know");
}

/* The old user of an old row (o), as moved: its psk row (u). */
#define MOVED_USER                        \
	"LEFT JOIN @old.users o ON o.id = %s" \
	" LEFT JOIN psk.users u ON u.email = lower(btrim(o.contact_email))"

/* One USER_CREATED row per moved user, at the time it was created. */
static void
audit_users(void)
{
	PskWriter w;
	uint64	  n = SPI_processed;
	bool	  isnull;

	psk_audit_writer_begin(&w);
	for (uint64 row = 0; row < n; row++)
	{
		psk_audit_begin(&w);
		psk_audit_set(&w, LOG_SUBJECT, psk_result(row, 1, &isnull));
		psk_audit_set(&w, LOG_NOTE, psk_result(row, 3, &isnull));
		psk_audit_append_at(&w, "USER_CREATED",
							DatumGetTimestampTz(psk_result(row, 2, &isnull)));
	}
	psk_writer_end(&w);
}

/* Set an audit column from column col of row of the current SPI result. */
static void
audit_from(PskWriter *w, int logcol, uint64 row, int col)
{
	bool  isnull;
	Datum v = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
							&isnull);

	if (!isnull)
		psk_audit_set(w, logcol, v);
}

/* The old log, in its order, through the audit writer; returns the rows. */
static uint64
move_log(const char *schema)
{
	char *sql =
		old_sql(schema,
				psprintf("SELECT l.logged_at, l.action::text,"
						 "       psk.normalize_code(l.code), pc.pool, u.id,"
						 "       l.user_name, l.contact_email, l.tester_name,"
						 "       l.country_name, l.region_name, l.note"
						 "  FROM @old.logs l " MOVED_USER
						 "  LEFT JOIN psk.codes pc"
						 "         ON pc.code = psk.normalize_code(l.code)"
						 " ORDER BY l.id",
						 "l.user_id"));
	SPIPlanPtr	  plan = SPI_prepare(sql, 0, NULL);
	Portal		  portal;
	MemoryContext batch_cxt;
	uint64		  moved = 0;

	if (plan == NULL)
		elog(ERROR, "psk: SPI_prepare failed: %s",
			 SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, false);
	batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "psk migrate log",
									  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext oldcxt;
		PskWriter	  w;
		uint64		  n;

		SPI_cursor_fetch(portal, true, LOG_BATCH);
		n = SPI_processed;
		if (n == 0)
			break;
		/* each batch's writer and rows go with the batch */
		oldcxt = MemoryContextSwitchTo(batch_cxt);
		psk_audit_writer_begin(&w);
		for (uint64 row = 0; row < n; row++)
		{
			bool		isnull;
			TimestampTz at = DatumGetTimestampTz(
				SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1,
							  &isnull));
			char *action =
				SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2);

			psk_audit_begin(&w);
			audit_from(&w, LOG_CODE, row, 3);
			audit_from(&w, LOG_CODE_TYPE, row, 4);
			audit_from(&w, LOG_USER_ID, row, 5);
			audit_from(&w, LOG_USER_NAME, row, 6);
			audit_from(&w, LOG_EMAIL, row, 7);
			audit_from(&w, LOG_TESTER, row, 8);
			audit_from(&w, LOG_COUNTRY, row, 9);
			audit_from(&w, LOG_REGION, row, 10);
			audit_from(&w, LOG_NOTE, row, 11);
			psk_audit_append_at(&w, action, at);
		}
		psk_writer_end(&w);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(batch_cxt);
		moved += n;
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch_cxt);
	return moved;
}

/*
 * Where the moved log does not replay to a code's status and holder, the
 * rows that bring it there, now; returns how many.  The replay: RESERVED
 * holds the code for its actor, ADDED and RELEASED free it, DELETED ends
 * it, and a code with no row does not exist.
 */
static uint64
bridge_log(void)
{
	static const char *const sql =
		"WITH last AS ("
		"  SELECT DISTINCT ON (code COLLATE \"C\") code, action, user_id"
		"    FROM psk.audit_log"
		"   WHERE code IS NOT NULL AND action <> 'COMMENTED'"
		"   ORDER BY code COLLATE \"C\", id DESC"
		"), replay AS ("
		"  SELECT code,"
		"         CASE action WHEN 'DELETED' THEN NULL"
		"                     WHEN 'RESERVED' THEN 'RESERVED'"
		"                     WHEN 'CONFIRMED' THEN 'IN_USE'"
		"                     WHEN 'MARKED_NON_USABLE' THEN 'NON_USABLE'"
		"                     ELSE 'CAN_BE_USED' END AS status,"
		"         CASE WHEN action IN ('RESERVED', 'CONFIRMED') THEN user_id"
		"         END AS holder"
		"    FROM last"
		")"
		"SELECT coalesce(c.code, r.code), c.pool, c.status, r.status,"
		"       (r.holder IS DISTINCT FROM c.holder_id), u.id, u.user_name,"
		"       u.email, c.tester_name"
		"  FROM psk.codes c FULL JOIN replay r ON r.code = c.code"
		"  LEFT JOIN psk.users u ON u.id = c.holder_id"
		" WHERE r.status IS DISTINCT FROM c.status"
		"    OR r.holder IS DISTINCT FROM c.holder_id"
		" ORDER BY 1";
	PskWriter w;
	uint64	  n;
	uint64	  written = 0;

	/* not read-only: it must see the rows written above */
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "psk: migration replay check failed");
	n = SPI_processed;
	if (n == 0)
		return 0;
	psk_audit_writer_begin(&w);
	for (uint64 row = 0; row < n; row++)
	{
		char *code = psk_result_cstring(row, 1);
		char *status =
			SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 3);
		char *replayed =
			SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 4);
		bool isnull;

#define BRIDGE(action, note)                                             \
	do                                                                   \
	{                                                                    \
		psk_audit_begin(&w);                                             \
		psk_audit_set(&w, LOG_CODE, CStringGetTextDatum(code));          \
		audit_from(&w, LOG_CODE_TYPE, row, 2);                           \
		psk_audit_set(&w, LOG_NOTE,                                      \
					  CStringGetTextDatum("psk_migrate_legacy: " note)); \
		if (strcmp(action, "RESERVED") == 0)                             \
		{                                                                \
			audit_from(&w, LOG_USER_ID, row, 6);                         \
			audit_from(&w, LOG_USER_NAME, row, 7);                       \
			audit_from(&w, LOG_EMAIL, row, 8);                           \
			audit_from(&w, LOG_TESTER, row, 9);                          \
		}                                                                \
		psk_audit_append(&w, action);                                    \
		written++;                                                       \
	} while (0)

		if (status == NULL)
			BRIDGE("DELETED", "gone from the old service's codes without a "
							  "DELETED row in its log");
		else
		{
			/* from whatever the log says to free, then to held */
			if (replayed == NULL)
				BRIDGE("ADDED", "in the old service's codes without an ADDED "
								"row in its log");
			else if (strcmp(replayed, "CAN_BE_USED") != 0 &&
					 (strcmp(status, "CAN_BE_USED") == 0 ||
					  DatumGetBool(psk_result(row, 5, &isnull))))
				BRIDGE("RELEASED", "free in the old service's codes, or held "
								   "by another, without a RELEASED row in its "
								   "log");
			if (strcmp(status, "RESERVED") == 0 &&
				(replayed == NULL || strcmp(replayed, "RESERVED") != 0 ||
				 DatumGetBool(psk_result(row, 5, &isnull))))
				BRIDGE("RESERVED", "reserved in the old service's codes "
								   "without a RESERVED row in its log");
		}
#undef BRIDGE
	}
	psk_writer_end(&w);
	return written;
}

static void
result_row(FunctionCallInfo fcinfo, const char *item, uint64 n)
{
	Datum values[2];
	bool  nulls[2] = { false, false };

	values[0] = CStringGetTextDatum(item);
	values[1] = Int64GetDatum((int64) n);
	psk_return_row(fcinfo, values, nulls);
}

/*
 * psk_migrate_legacy(source_schema text DEFAULT 'public')
 *		-> TABLE(item text, n bigint)
 */
Datum
psk_migrate_legacy(PG_FUNCTION_ARGS)
{
	char  *schema;
	uint64 regions, countries, users, codes, code_countries, logs, bridged;

	/* who first, then the argument */
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED),
				 errmsg("psk_migrate_legacy must be run by a superuser")));
	schema = psk_text_arg(fcinfo, 0, "source_schema", true, NAMEDATALEN);
	check_source(schema);
	SPI_connect();
	lock_and_check_empty(schema);
	check_old_data(schema);

	regions = run(schema,
				  "INSERT INTO psk.regions (name)"
				  " SELECT DISTINCT ON (lower(btrim(name))) btrim(name)"
				  "   FROM @old.regions ORDER BY lower(btrim(name)), id"
				  " ON CONFLICT ((lower(name))) DO NOTHING",
				  false);
	countries =
		run(schema,
			"INSERT INTO psk.countries (name, region_id)"
			" SELECT DISTINCT ON (lower(btrim(c.name))) btrim(c.name), r.id"
			"   FROM @old.countries c"
			"   JOIN @old.regions o ON o.id = c.region_id"
			"   JOIN psk.regions r ON lower(r.name) = lower(btrim(o.name))"
			"  ORDER BY lower(btrim(c.name)), c.id"
			" ON CONFLICT ((lower(name))) DO NOTHING",
			false);

	/* passlib's $2b$ (and $2y$) are bcrypt as pgcrypto's $2a$ */
	users = run(
		schema,
		"INSERT INTO psk.users (team_name, user_name, email, password_hash,"
		"                       is_admin, pool, created_at)"
		" SELECT team_name, user_name, lower(btrim(contact_email)),"
		"        CASE WHEN password_hash ~ '^\\$2[by]\\$'"
		"             THEN '$2a$' || substr(password_hash, 5)"
		"             ELSE password_hash END,"
		"        is_admin, psk.pool_for_team(team_name),"
		"        coalesce(created_at, now())"
		"   FROM @old.users ORDER BY id"
		" RETURNING id, created_at,"
		"   format('created %s (team %s, pool %s%s), moved from the old service',"
		"          email, team_name, pool,"
		"          CASE WHEN is_admin THEN ', admin' ELSE '' END)",
		false);
	audit_users();

	/*
	 * Codes in the order they came (their first log row), so that reserve's
	 * ties fall as they did; a held code keeps holder, tester, token and
	 * requested_at, with no expiry (the old service had none); a free one
	 * became free when it was last released (never: first in line).
	 */
	codes = run(
		schema,
		("INSERT INTO psk.codes (code, pool, status, holder_id, tester_name,"
		 "                       reserved_at, reservation_token, released_at,"
		 "                       freed_at, note)"
		 " SELECT psk.normalize_code(c.code), c.code_type::text,"
		 "        c.status::text, u.id,"
		 "        CASE WHEN held THEN c.tester_name END,"
		 "        CASE WHEN held THEN c.requested_at END,"
		 "        CASE WHEN held THEN c.reservation_token END,"
		 "        c.released_at, CASE WHEN NOT held THEN c.released_at END,"
		 "        c.note"
		 "   FROM (SELECT *, status::text = 'RESERVED' AS held"
		 "           FROM @old.codes) c"
		 "   LEFT JOIN @old.users o ON o.id = c.user_id AND c.held"
		 "   LEFT JOIN psk.users u ON u.email = lower(btrim(o.contact_email))"
		 "   LEFT JOIN (SELECT code, min(id) AS first_log FROM @old.logs"
		 "               GROUP BY code) f ON f.code = c.code"
		 "  ORDER BY f.first_log NULLS LAST, c.code"),
		false);
	code_countries =
		run(schema,
			"INSERT INTO psk.code_countries (code_id, country_id)"
			" SELECT DISTINCT pc.id, k.id"
			"   FROM @old.code_countries cc"
			"   JOIN @old.countries oc ON oc.id = cc.country_id"
			"   JOIN psk.countries k ON lower(k.name) = lower(btrim(oc.name))"
			"   JOIN psk.codes pc ON pc.code = psk.normalize_code(cc.code)",
			false);

	logs = move_log(schema);
	bridged = bridge_log();
	/*
	 * The old log names codes without an ADDED row and users by names they
	 * no longer have: remember every one, for psk_log's filters.
	 */
	run(schema,
		"INSERT INTO psk.audit_codes (code)"
		" SELECT DISTINCT code FROM psk.audit_log WHERE code IS NOT NULL"
		" ON CONFLICT DO NOTHING",
		false);
	run(schema,
		"INSERT INTO psk.audit_names (user_id, user_name)"
		" SELECT DISTINCT coalesce(user_id, 0), user_name FROM psk.audit_log"
		"  WHERE user_name IS NOT NULL"
		" ON CONFLICT DO NOTHING",
		false);
	if (bridged > 0)
		ereport(NOTICE,
				(errmsg("%llu audit rows added where the old log did not "
						"replay to a code's state",
						(unsigned long long) bridged),
				 errdetail("Their notes start with \"psk_migrate_legacy:\".")));
	SPI_finish();

	result_row(fcinfo, "regions", regions);
	result_row(fcinfo, "countries", countries);
	result_row(fcinfo, "users", users);
	result_row(fcinfo, "codes", codes);
	result_row(fcinfo, "code_countries", code_countries);
	result_row(fcinfo, "logs", logs);
	return (Datum) 0;
}
