/*
 * reserve.c
 *		The SQL functions of the hot path: psk_reserve, psk_confirm and
 *		psk_release.
 *
 * Reserve and release do their work in engine.c (below SPI); confirm is one
 * SQL statement (a data-modifying CTE) after a locked look at the code.
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

/* Why a change to a held code did not happen: the code as it is now. */
static PskQuery look_at_code = {
	"SELECT status, holder_id FROM psk.codes"
	" WHERE code = psk.normalize_code($1)",
	1, {TEXTOID}
};

/*
 * Refuse unless user_id holds code: unknown code (status NULL), a code that
 * is not held, or someone else's.  user_id 0 is nobody (ids start at 1).
 */
void
psk_check_holder(const char *code, const char *status, bool held,
				 int64 holder_id, int64 user_id)
{
	if (status == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_FOUND),
				 errmsg("unknown code \"%s\"", code)));
	if (!held)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_WRONG_STATE),
				 errmsg("code \"%s\" is %s, not reserved", code, status)));
	if (holder_id != user_id)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED),
				 errmsg("code \"%s\" is held by another user", code)));
}

/*
 * Raise the error that explains why a change to code as its holder did not
 * happen, from the code as it is now.
 */
void
psk_explain_not_held(const char *code)
{
	Datum		arg = CStringGetTextDatum(code);
	bool		isnull = true;
	char	   *status = NULL;
	int64		holder = 0;

	if (psk_execute(&look_at_code, &arg, NULL, false) > 0)
	{
		status = psk_result_cstring(0, 1);
		holder = DatumGetInt64(psk_result(0, 2, &isnull));
	}
	psk_check_holder(code, status, !isnull, holder, 0);
	elog(ERROR, "psk: code \"%s\" is held, yet the change did not happen", code);
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

/* Confirm: the code locked, and what decides whether it may be confirmed. */
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

void
psk_confirm_code(const char *email, const char *code, const pg_uuid_t *token,
				 PskConfirmed *out)
{
	PskUser		user;
	Datum		arg;
	Datum		values[4];
	bool		isnull;
	int64		code_id;
	char	   *status;
	Datum		holder;
	pg_uuid_t  *held_token;

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
	out->code = psk_result_cstring(0, 1);
	out->status = psk_result_cstring(0, 2);
	out->confirmed_at = DatumGetTimestampTz(psk_result(0, 3, &isnull));
	SPI_finish();
}

/*
 * psk_confirm(user_email, code, reservation_token): RESERVED -> IN_USE.
 */
Datum
psk_confirm(PG_FUNCTION_ARGS)
{
	char	   *email = psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	char	   *code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PskConfirmed confirmed;
	Datum		values[3];
	bool		nulls[3] = {0};

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("reservation_token is required")));
	psk_confirm_code(email, code, PG_GETARG_UUID_P(2), &confirmed);

	InitMaterializedSRF(fcinfo, 0);
	values[0] = CStringGetTextDatum(confirmed.code);
	values[1] = CStringGetTextDatum(confirmed.status);
	values[2] = TimestampTzGetDatum(confirmed.confirmed_at);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*
 * psk_release(user_email, code, clearance_id, note): a held code goes back
 * to its pool.  The audit note is the clearance id when given, else the note.
 */
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
