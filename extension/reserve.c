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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(psk_reserve);
PG_FUNCTION_INFO_V1(psk_confirm);
PG_FUNCTION_INFO_V1(psk_release);

/*
 * Pick up to $2 free codes of pool $1 (NULL: the pool of the user with
 * e-mail $3, who must be a user, not an admin), least recently used first,
 * and lock them, skipping rows other callers hold locked.  With a country
 * ($4), OSV and HSV codes must be valid in it; COMMON codes need not be.
 *
 * The country test is a scalar subquery so that it stays a probe of
 * code_countries per candidate, never a hash of all codes of a country; the
 * plan (an ordered scan of the free-codes index) is right whatever LIMIT $2
 * is, so it is planned once and kept generic.
 *
 * For several codes, picking and reserving are two statements on purpose
 * (one code goes through reserve_one below).  In one statement
 * the UPDATE reads with the snapshot taken before the pick; when a picked
 * row had been reserved and released by others since, the UPDATE reaches
 * it through EvalPlanQual, which under load loses such rows (about 3% of
 * reservations at 32 clients, seen in a test): the caller was told the
 * pool was empty.  The second statement's snapshot sees the rows as
 * picked, and they are locked.
 */
static PskQuery pick_free = {
	"SELECT ARRAY("
	"  SELECT f.id FROM psk.codes f"
	"   WHERE f.status = 'CAN_BE_USED'"
	"     AND f.pool = COALESCE($1, (SELECT pool FROM psk.users"
	"                                 WHERE email = $3 AND NOT is_admin))"
	"     AND ($4::bigint IS NULL OR f.pool = 'COMMON'"
	"          OR (SELECT true FROM psk.code_countries cc"
	"               WHERE cc.code_id = f.id AND cc.country_id = $4))"
	"   ORDER BY f.freed_at NULLS FIRST, f.id"
	"   LIMIT $2 FOR UPDATE SKIP LOCKED)",
	4, {TEXTOID, INT4OID, TEXTOID, INT8OID}, true
};

/*
 * Reserve the picked codes $1 for the user with e-mail $2 and log them.
 * The user's row is locked as the holder_id foreign key would lock it
 * anyway, but first: a user deleted meanwhile reserves nothing (and is then
 * an unknown user), rather than failing the foreign key.
 */
static PskQuery reserve_picked = {
	"WITH actor AS ("
	"  SELECT id, user_name, email FROM psk.users"
	"   WHERE email = $2 AND NOT is_admin FOR KEY SHARE"
	"), reserved AS ("
	"  UPDATE psk.codes c"
	"     SET status = 'RESERVED', holder_id = a.id,"
	"         tester_name = $3, reserved_at = now(), released_at = NULL,"
	"         expires_at = CASE WHEN $4 > 0 THEN now() + $4 * interval '1 second' END,"
	"         reservation_token = gen_random_uuid()"
	"    FROM actor a"
	"   WHERE c.id = ANY ($1)"
	"  RETURNING c.id, c.code, c.pool, c.reservation_token, c.reserved_at,"
	"            c.expires_at, c.freed_at, a.id AS user_id, a.user_name, a.email"
	"), logged AS ("
	"  INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name,"
	"                             contact_email, tester_name, country, region)"
	"  SELECT 'RESERVED', code, pool, user_id, user_name, email, $3, $5, $6"
	"    FROM reserved ORDER BY freed_at NULLS FIRST, id"
	")"
	"SELECT code, pool, reservation_token, reserved_at, expires_at"
	"  FROM reserved ORDER BY freed_at NULLS FIRST, id",
	6, {INT8ARRAYOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID}, true
};

/*
 * The common case, one code, in one statement: pick as above with LIMIT 1,
 * then reserve it through a join with the picked row.  (Unlike the array
 * hand-over, the join keeps the row when the UPDATE has to follow it to a
 * newer version; test/contention checks this under load.)  With LIMIT 1
 * the planner knows the pick is one row, so the generic plan is a nested
 * loop on the primary key.  $1 pool or NULL, $2 e-mail, $3 tester, $4 TTL,
 * $5 country id, $6 country, $7 region.
 */
static PskQuery reserve_one = {
	"WITH actor AS ("
	"  SELECT id, user_name, email, pool FROM psk.users"
	"   WHERE email = $2 AND NOT is_admin FOR KEY SHARE"
	"), picked AS ("
	"  SELECT f.id FROM psk.codes f"
	"   WHERE f.status = 'CAN_BE_USED'"
	"     AND f.pool = COALESCE($1, (SELECT pool FROM actor))"
	"     AND EXISTS (SELECT FROM actor)"
	"     AND ($5::bigint IS NULL OR f.pool = 'COMMON'"
	"          OR (SELECT true FROM psk.code_countries cc"
	"               WHERE cc.code_id = f.id AND cc.country_id = $5))"
	"   ORDER BY f.freed_at NULLS FIRST, f.id"
	"   LIMIT 1 FOR UPDATE SKIP LOCKED"
	"), reserved AS ("
	"  UPDATE psk.codes c"
	"     SET status = 'RESERVED', holder_id = a.id,"
	"         tester_name = $3, reserved_at = now(), released_at = NULL,"
	"         expires_at = CASE WHEN $4 > 0 THEN now() + $4 * interval '1 second' END,"
	"         reservation_token = gen_random_uuid()"
	"    FROM picked p, actor a"
	"   WHERE c.id = p.id"
	"  RETURNING c.code, c.pool, c.reservation_token, c.reserved_at,"
	"            c.expires_at, a.id AS user_id, a.user_name, a.email"
	"), logged AS ("
	"  INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name,"
	"                             contact_email, tester_name, country, region)"
	"  SELECT 'RESERVED', code, pool, user_id, user_name, email, $3, $6, $7"
	"    FROM reserved"
	")"
	"SELECT code, pool, reservation_token, reserved_at, expires_at FROM reserved",
	7, {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID, TEXTOID, TEXTOID}, true
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

/* What one psk_reserve call asks for, the same for every pool it tries. */
typedef struct ReserveRequest
{
	Datum		email;			/* lower-cased */
	Datum		tester;
	bool		no_country;
	Datum		country_id;
	Datum		country_name;
	Datum		region_name;
} ReserveRequest;

/* Copy the rows of the last reserve statement to out[] (outside SPI). */
static void
collect_reserved(PskReserved *out)
{
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		PskReserved *r = &out[row];
		bool		isnull;

		r->code = psk_result_cstring(row, 1);
		r->pool = psk_pool_name(psk_result_cstring(row, 2));
		memcpy(&r->token, DatumGetUUIDP(psk_result(row, 3, &isnull)),
			   sizeof(pg_uuid_t));
		r->reserved_at = DatumGetTimestampTz(psk_result(row, 4, &isnull));
		r->expires_at = DatumGetTimestampTz(psk_result(row, 5, &isnull));
		r->expires = !isnull;
	}
}

/*
 * Pick and reserve up to how_many codes of pool (NULL: the user's own);
 * returns how many, stored in out[].
 */
static uint64
reserve_from(const ReserveRequest *req, const char *pool, int32 how_many,
			 PskReserved *out)
{
	Datum		pick[4];
	bool		pick_nulls[4] = {0};
	Datum		values[6];
	bool		nulls[6] = {0};
	ArrayType  *ids;
	bool		isnull;
	uint64		got;

	if (how_many == 1)
	{
		Datum		one[7];
		bool		one_nulls[7] = {0};

		one_nulls[0] = pool == NULL;
		one[0] = pool ? CStringGetTextDatum(pool) : (Datum) 0;
		one[1] = req->email;
		one[2] = req->tester;
		one[3] = Int32GetDatum(psk_reservation_ttl);
		one[4] = req->country_id;
		one[5] = req->country_name;
		one[6] = req->region_name;
		one_nulls[4] = one_nulls[5] = one_nulls[6] = req->no_country;
		got = psk_execute(&reserve_one, one, one_nulls, false);
	}
	else
	{
		pick_nulls[0] = pool == NULL;
		pick[0] = pool ? CStringGetTextDatum(pool) : (Datum) 0;
		pick[1] = Int32GetDatum(how_many);
		pick[2] = req->email;
		pick[3] = req->country_id;
		pick_nulls[3] = req->no_country;
		psk_execute(&pick_free, pick, pick_nulls, false);
		ids = DatumGetArrayTypeP(psk_result(0, 1, &isnull));
		if (ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids)) == 0)
			return 0;

		values[0] = PointerGetDatum(ids);
		values[1] = req->email;
		values[2] = req->tester;
		values[3] = Int32GetDatum(psk_reservation_ttl);
		values[4] = req->country_name;
		values[5] = req->region_name;
		nulls[4] = nulls[5] = req->no_country;
		got = psk_execute(&reserve_picked, values, nulls, false);
	}

	collect_reserved(out);
	return got;
}

void
psk_reserve_codes(const char *email, const char *tester, const char *country,
				  const char *pool, int how_many, PskReserved *out)
{
	ReserveRequest req = {.no_country = true};
	PskUser		user;
	uint64		got;

	Assert(how_many >= 1 && how_many <= PSK_MAX_HOW_MANY);
	SPI_connect();

	if (country != NULL)
	{
		Datum		arg = CStringGetTextDatum(country);
		bool		isnull;

		if (psk_execute(&find_country, &arg, NULL, false) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_PSK_INVALID_INPUT),
					 errmsg("unknown country \"%s\"", country)));
		req.no_country = false;
		req.country_id = psk_result(0, 1, &isnull);
		req.country_name = CStringGetTextDatum(psk_result_cstring(0, 2));
		req.region_name = CStringGetTextDatum(psk_result_cstring(0, 3));
	}
	req.email = CStringGetTextDatum(psk_lower(email));
	req.tester = CStringGetTextDatum(tester);

	/* The requested pool first: that is all when it can supply them all. */
	got = reserve_from(&req, pool, how_many, out);

	if (got < (uint64) how_many)
	{
		/* Short: is the caller a user at all, and which pool was it? */
		psk_require_user(email, &user);
		if (pool == NULL)
			pool = user.pool;

		/* What the pool could not supply comes from COMMON. */
		if (strcmp(pool, "COMMON") != 0)
			got += reserve_from(&req, "COMMON", how_many - (int32) got,
								out + got);
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
	PskReserved *got = palloc(how_many * sizeof(PskReserved));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	psk_reserve_codes(email, tester, country, pool, how_many, got);

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < how_many; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {0};

		values[0] = CStringGetTextDatum(got[i].code);
		values[1] = CStringGetTextDatum(got[i].pool);
		values[2] = UUIDPGetDatum(&got[i].token);
		values[3] = TimestampTzGetDatum(got[i].reserved_at);
		values[4] = TimestampTzGetDatum(got[i].expires_at);
		nulls[4] = !got[i].expires;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
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
/*
 * One statement: find the code, check the holder, free it, log it.  "held"
 * is the row as it was, for the tester's name in the audit row.  The holder
 * test is IS NOT DISTINCT FROM on purpose: the code's unique index must
 * find the row, and a plain "=" lets the planner walk the index of all held
 * codes instead (it looks cheap while few are held).
 */
static PskQuery release_code = {
	"WITH actor AS ("
	"  SELECT id, user_name, email FROM psk.users"
	"   WHERE email = $2 AND NOT is_admin"
	"), released AS ("
	"  UPDATE psk.codes c"
	"     SET status = 'CAN_BE_USED', holder_id = NULL, tester_name = NULL,"
	"         reserved_at = NULL, expires_at = NULL, confirmed_at = NULL,"
	"         reservation_token = NULL, released_at = now(), freed_at = now(),"
	"         note = COALESCE($4, c.note)"
	"    FROM psk.codes held, actor a"
	"   WHERE c.code = psk.normalize_code($1) AND held.id = c.id"
	"     AND c.holder_id IS NOT DISTINCT FROM a.id"
	"  RETURNING c.code, c.pool, c.released_at, held.tester_name,"
	"            a.id AS user_id, a.user_name, a.email"
	"), logged AS ("
	"  INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name,"
	"                             contact_email, tester_name, note, clearance_id)"
	"  SELECT 'RELEASED', code, pool, user_id, user_name, email, tester_name,"
	"         COALESCE($3, $4), $3"
	"    FROM released"
	")"
	"SELECT code, released_at FROM released",
	4, {TEXTOID, TEXTOID, TEXTOID, TEXTOID}, true
};

void
psk_release_code(const char *email, const char *code, const char *clearance,
				 const char *note, PskReleased *out)
{
	Datum		values[4];
	bool		nulls[4] = {0};
	bool		isnull;

	SPI_connect();

	values[0] = CStringGetTextDatum(code);
	values[1] = CStringGetTextDatum(psk_lower(email));
	nulls[2] = clearance == NULL;
	values[2] = nulls[2] ? (Datum) 0 : CStringGetTextDatum(clearance);
	nulls[3] = note == NULL;
	values[3] = nulls[3] ? (Datum) 0 : CStringGetTextDatum(note);

	if (psk_execute(&release_code, values, nulls, false) == 0)
	{
		PskUser		user;

		psk_require_user(email, &user);
		psk_explain_not_held(code, user.id);
	}
	out->code = psk_result_cstring(0, 1);
	out->released_at = DatumGetTimestampTz(psk_result(0, 2, &isnull));
	SPI_finish();
}

Datum
psk_release(PG_FUNCTION_ARGS)
{
	char	   *email = psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	char	   *code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	char	   *clearance = psk_text_arg(fcinfo, 2, "clearance_id", false, PSK_MAX_NAME_LEN);
	char	   *note = psk_text_arg(fcinfo, 3, "note", false, PSK_MAX_TEXT_LEN);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PskReleased released;
	Datum		values[2];
	bool		nulls[2] = {0};

	psk_release_code(email, code, clearance, note, &released);

	InitMaterializedSRF(fcinfo, 0);
	values[0] = CStringGetTextDatum(released.code);
	values[1] = TimestampTzGetDatum(released.released_at);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
