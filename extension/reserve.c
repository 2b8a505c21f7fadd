/*
 * reserve.c
 *		The hot path: psk_reserve, psk_confirm and psk_release.
 *
 * Each change and its audit row are one SQL statement (a data-modifying
 * CTE), prepared once per backend.  When a statement changes nothing, a
 * second, read-only look at the code tells the caller why.
 */
#include "psk.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(psk_reserve);
PG_FUNCTION_INFO_V1(psk_confirm);
PG_FUNCTION_INFO_V1(psk_release);

/*
 * Take up to $2 free codes of pool $1, least recently used first, skipping
 * rows other callers hold locked, and reserve them for user $3.
 * The variant with a country keeps only codes valid in country $10.
 *
 * The picked ids go to the UPDATE as an array, not a join: the plan is then
 * right whatever LIMIT $2 is (ordered scan of the free-codes index, then
 * primary-key probes), so it is planned once and kept generic.
 */
#define RESERVE_CTE(country_filter) \
	"WITH reserved AS (" \
	"  UPDATE psk.codes c" \
	"     SET status = 'RESERVED', holder_id = $3, tester_name = $4," \
	"         reserved_at = now(), released_at = NULL," \
	"         expires_at = CASE WHEN $5 > 0 THEN now() + $5 * interval '1 second' END," \
	"         reservation_token = gen_random_uuid()" \
	"   WHERE c.id = ANY (ARRAY(" \
	"         SELECT f.id FROM psk.codes f" \
	"          WHERE f.status = 'CAN_BE_USED' AND f.pool = $1" country_filter \
	"          ORDER BY f.freed_at NULLS FIRST, f.id" \
	"          LIMIT $2 FOR UPDATE SKIP LOCKED))" \
	"  RETURNING c.id, c.code, c.pool, c.reservation_token, c.reserved_at," \
	"            c.expires_at, c.freed_at" \
	"), logged AS (" \
	"  INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name," \
	"                             contact_email, tester_name, country, region)" \
	"  SELECT 'RESERVED', r.code, r.pool, $3, $6, $7, $4, $8, $9" \
	"    FROM reserved r ORDER BY r.freed_at NULLS FIRST, r.id" \
	")" \
	"SELECT code, pool, reservation_token, reserved_at, expires_at" \
	"  FROM reserved ORDER BY freed_at NULLS FIRST, id"

#define RESERVE_ARGTYPES \
	TEXTOID, INT4OID, INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, \
	TEXTOID

static PskQuery reserve_any = {
	RESERVE_CTE(""), 9, {RESERVE_ARGTYPES}, true
};

static PskQuery reserve_in_country = {
	RESERVE_CTE(" AND EXISTS (SELECT 1 FROM psk.code_countries cc"
				" WHERE cc.code_id = f.id AND cc.country_id = $10)"),
	10, {RESERVE_ARGTYPES, INT8OID}, true
};

static PskQuery find_country = {
	"SELECT c.id, c.name, r.name FROM psk.countries c"
	"  JOIN psk.regions r ON r.id = c.region_id"
	" WHERE pg_catalog.lower(c.name) = pg_catalog.lower(pg_catalog.btrim($1))",
	1, {TEXTOID}
};

/* Why a change to a held code did not happen: the code as it is now. */
static PskQuery look_at_code = {
	"SELECT status, holder_id FROM psk.codes"
	" WHERE code = psk.normalize_code($1)",
	1, {TEXTOID}
};

/*
 * Raise the error that explains why user_id could not act on code as its
 * holder: unknown code, a code that is not held, or someone else's.
 */
void
psk_explain_not_held(const char *code, int64 user_id)
{
	Datum		arg = CStringGetTextDatum(code);
	bool		isnull;
	char	   *status;

	if (psk_execute(&look_at_code, &arg, NULL, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_FOUND),
				 errmsg("unknown code \"%s\"", code)));
	status = psk_result_cstring(0, 1);
	psk_result(0, 2, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_WRONG_STATE),
				 errmsg("code \"%s\" is %s, not reserved", code, status)));
	ereport(ERROR,
			(errcode(ERRCODE_PSK_NOT_ALLOWED),
			 errmsg("code \"%s\" is held by another user", code)));
}

/*
 * psk_reserve(user_email, tester_name, country, code_type, how_many)
 */
Datum
psk_reserve(PG_FUNCTION_ARGS)
{
	char	   *email = psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	char	   *tester = psk_text_arg(fcinfo, 1, "tester_name", true, PSK_MAX_NAME_LEN);
	char	   *country = psk_text_arg(fcinfo, 2, "country", false, PSK_MAX_NAME_LEN);
	const char *pool = psk_pool_name(psk_text_arg(fcinfo, 3, "code_type", false, PSK_MAX_NAME_LEN));
	int32		how_many = psk_int_arg(fcinfo, 4, "how_many", 1, 1, PSK_MAX_HOW_MANY);
	PskUser		user;
	Datum		values[10];
	bool		nulls[10] = {0};
	int64		country_id = 0;
	uint64		got;
	ReturnSetInfo *rsinfo;
	Tuplestorestate *store = NULL;
	TupleDesc	tupdesc = NULL;

	SPI_connect();
	psk_require_user(email, &user);
	if (pool == NULL)
		pool = user.pool;

	values[5] = CStringGetTextDatum(user.user_name);
	values[6] = CStringGetTextDatum(user.email);
	nulls[7] = nulls[8] = true;
	if (country != NULL)
	{
		Datum		arg = CStringGetTextDatum(country);
		bool		isnull;

		if (psk_execute(&find_country, &arg, NULL, false) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_PSK_INVALID_INPUT),
					 errmsg("unknown country \"%s\"", country)));
		country_id = DatumGetInt64(psk_result(0, 1, &isnull));
		values[7] = CStringGetTextDatum(psk_result_cstring(0, 2));
		values[8] = CStringGetTextDatum(psk_result_cstring(0, 3));
		nulls[7] = nulls[8] = false;
	}

	values[1] = Int32GetDatum(how_many);
	values[2] = Int64GetDatum(user.id);
	values[3] = CStringGetTextDatum(tester);
	values[4] = Int32GetDatum(psk_reservation_ttl);
	values[9] = Int64GetDatum(country_id);

	/* The requested pool first (with the country, unless it is COMMON) ... */
	values[0] = CStringGetTextDatum(pool);
	if (country != NULL && strcmp(pool, "COMMON") != 0)
		got = psk_execute(&reserve_in_country, values, nulls, false);
	else
		got = psk_execute(&reserve_any, values, nulls, false);

	if (got > 0)
	{
		psk_return_tuptable(fcinfo);
		rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
		store = rsinfo->setResult;
		tupdesc = rsinfo->setDesc;
	}

	/* ... then what it could not supply from COMMON, ignoring the country. */
	if (got < (uint64) how_many && strcmp(pool, "COMMON") != 0)
	{
		uint64		more;

		values[0] = CStringGetTextDatum("COMMON");
		values[1] = Int32GetDatum(how_many - (int32) got);
		more = psk_execute(&reserve_any, values, nulls, false);
		if (store == NULL)
			psk_return_tuptable(fcinfo);
		else
		{
			Datum		row[5];
			bool		rownulls[5];

			for (uint64 i = 0; i < more; i++)
			{
				heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  row, rownulls);
				tuplestore_putvalues(store, tupdesc, row, rownulls);
			}
		}
		got += more;
	}

	/* All or none: the error rolls back what was taken. */
	if (got < (uint64) how_many)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NO_CODES_AVAILABLE),
				 how_many == 1 ?
				 errmsg("no codes available in pool %s", pool) :
				 errmsg("only %llu of %d codes available in pool %s and COMMON",
						(unsigned long long) got, how_many, pool)));

	SPI_finish();
	return (Datum) 0;
}

/*
 * psk_confirm(user_email, code, reservation_token): RESERVED -> IN_USE.
 */
static PskQuery lock_for_confirm = {
	"SELECT id, status, holder_id, reservation_token,"
	"       expires_at IS NOT NULL AND expires_at <= now()"
	"  FROM psk.codes WHERE code = psk.normalize_code($1) FOR UPDATE",
	1, {TEXTOID}, true
};

static PskQuery confirm_code = {
	"WITH confirmed AS ("
	"  UPDATE psk.codes SET status = 'IN_USE', confirmed_at = now(), expires_at = NULL"
	"   WHERE id = $1"
	"  RETURNING code, pool, status, confirmed_at, tester_name"
	"), logged AS ("
	"  INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name,"
	"                             contact_email, tester_name)"
	"  SELECT 'CONFIRMED', code, pool, $2, $3, $4, tester_name FROM confirmed"
	")"
	"SELECT code, status, confirmed_at FROM confirmed",
	4, {INT8OID, INT8OID, TEXTOID, TEXTOID}
};

Datum
psk_confirm(PG_FUNCTION_ARGS)
{
	char	   *email = psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	char	   *code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	pg_uuid_t  *token;
	PskUser		user;
	Datum		arg;
	Datum		values[4];
	bool		isnull;
	int64		code_id;
	char	   *status;
	Datum		holder;
	pg_uuid_t  *held_token;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("reservation_token is required")));
	token = PG_GETARG_UUID_P(2);

	SPI_connect();
	psk_require_user(email, &user);

	arg = CStringGetTextDatum(code);
	if (psk_execute(&lock_for_confirm, &arg, NULL, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_FOUND),
				 errmsg("unknown code \"%s\"", code)));
	code_id = DatumGetInt64(psk_result(0, 1, &isnull));
	status = psk_result_cstring(0, 2);
	holder = psk_result(0, 3, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_WRONG_STATE),
				 errmsg("code \"%s\" is %s, not reserved", code, status)));
	if (DatumGetInt64(holder) != user.id)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED),
				 errmsg("code \"%s\" is held by another user", code)));
	if (strcmp(status, "RESERVED") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_WRONG_STATE),
				 errmsg("code \"%s\" is %s, not reserved", code, status)));
	held_token = DatumGetUUIDP(psk_result(0, 4, &isnull));
	if (memcmp(held_token->data, token->data, UUID_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_TOKEN_MISMATCH),
				 errmsg("reservation_token does not match the reservation of code \"%s\"", code)));
	if (DatumGetBool(psk_result(0, 5, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_PSK_RESERVATION_EXPIRED),
				 errmsg("the reservation of code \"%s\" has expired", code)));

	values[0] = Int64GetDatum(code_id);
	values[1] = Int64GetDatum(user.id);
	values[2] = CStringGetTextDatum(user.user_name);
	values[3] = CStringGetTextDatum(user.email);
	psk_execute(&confirm_code, values, NULL, false);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * psk_release(user_email, code, clearance_id, note): a held code goes back
 * to its pool.  The audit note is the clearance id when given, else the note.
 */
static PskQuery release_code = {
	"WITH held AS ("
	"  SELECT id, holder_id, tester_name FROM psk.codes"
	"   WHERE code = psk.normalize_code($1) FOR UPDATE"
	"), released AS ("
	"  UPDATE psk.codes c"
	"     SET status = 'CAN_BE_USED', holder_id = NULL, tester_name = NULL,"
	"         reserved_at = NULL, expires_at = NULL, confirmed_at = NULL,"
	"         reservation_token = NULL, released_at = now(), freed_at = now(),"
	"         note = COALESCE($6, c.note)"
	"    FROM held WHERE c.id = held.id AND held.holder_id = $2"
	"  RETURNING c.code, c.pool, c.released_at, held.tester_name"
	"), logged AS ("
	"  INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name,"
	"                             contact_email, tester_name, note, clearance_id)"
	"  SELECT 'RELEASED', code, pool, $2, $3, $4, tester_name, COALESCE($5, $6), $5"
	"    FROM released"
	")"
	"SELECT code, released_at FROM released",
	6, {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}, true
};

Datum
psk_release(PG_FUNCTION_ARGS)
{
	char	   *email = psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	char	   *code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	char	   *clearance = psk_text_arg(fcinfo, 2, "clearance_id", false, PSK_MAX_NAME_LEN);
	char	   *note = psk_text_arg(fcinfo, 3, "note", false, PSK_MAX_TEXT_LEN);
	PskUser		user;
	Datum		values[6];
	bool		nulls[6] = {0};

	SPI_connect();
	psk_require_user(email, &user);

	values[0] = CStringGetTextDatum(code);
	values[1] = Int64GetDatum(user.id);
	values[2] = CStringGetTextDatum(user.user_name);
	values[3] = CStringGetTextDatum(user.email);
	nulls[4] = clearance == NULL;
	values[4] = nulls[4] ? (Datum) 0 : CStringGetTextDatum(clearance);
	nulls[5] = note == NULL;
	values[5] = nulls[5] ? (Datum) 0 : CStringGetTextDatum(note);

	if (psk_execute(&release_code, values, nulls, false) == 0)
		psk_explain_not_held(code, user.id);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}
