/*
 * confirm.c
 *		A reserved code comes into use: psk_confirm_code (for psk_confirm
 *		and the HTTP layer) and psk_confirm.
 *
 * Below SPI (writer.c): the caller first (a non-admin user), then the
 * arguments, then the code, locked as FOR UPDATE would, checked (holder,
 * status, token, expiry, in that order) and changed.  With
 * psk.in_use_ttl > 0 the code in use is held until now() + psk.in_use_ttl
 * (its holder renews it, or the sweep returns it); else until released.
 */
#include "writer.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(psk_confirm);

void
psk_confirm_code(const PskCaller *caller, const char *code,
				 const pg_uuid_t *token, PskConfirmed *out)
{
	PskWriter  w;
	PskUser	   user;
	bool	   isnull;
	char	  *status;
	Datum	   expires_at;
	pg_uuid_t *held_token;

	psk_writer_begin(&w);
	/* who may call it: a non-admin user */
	psk_require_caller(caller, &user);

	/* then the arguments */
	code = psk_check_text(unconstify(char *, code), "code", true,
						  PSK_MAX_CODE_LEN);
	if (token == NULL)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("reservation_token is required")));

	/* then the code */
	psk_lock_held_code(&w, code, LockTupleExclusive, &user);
	status = psk_slot_cstring(w.code_slot, w.code_att[CODE_STATUS]);
	if (strcmp(status, "RESERVED") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_WRONG_STATE),
				 errmsg("code \"%s\" is %s, not reserved", code, status)));
	held_token = DatumGetUUIDP(
		slot_getattr(w.code_slot, w.code_att[CODE_TOKEN], &isnull));
	if (memcmp(held_token->data, token->data, UUID_LEN) != 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_TOKEN_MISMATCH),
			 errmsg(
				 "reservation_token does not match the reservation of code \"%s\"",
				 code)));
	/*
	 * Lapsed by the statement's clock, not the transaction's: a transaction
	 * begun before the reservation lapsed must not confirm it after.
	 */
	expires_at =
		slot_getattr(w.code_slot, w.code_att[CODE_EXPIRES_AT], &isnull);
	if (!isnull &&
		DatumGetTimestampTz(expires_at) <= GetCurrentStatementStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_PSK_RESERVATION_EXPIRED),
				 errmsg("the reservation of code \"%s\" has expired", code)));

	out->code = psk_slot_cstring(w.code_slot, w.code_att[CODE_CODE]);
	out->status = pstrdup("IN_USE");
	out->confirmed_at = w.now;

	psk_code_change(&w);
	psk_code_set(&w, CODE_STATUS, CStringGetTextDatum("IN_USE"), false);
	psk_code_set(&w, CODE_CONFIRMED_AT, TimestampTzGetDatum(w.now), false);
	if (psk_in_use_ttl > 0)
		psk_code_set(&w, CODE_EXPIRES_AT,
					 TimestampTzGetDatum(TimestampTzPlusMilliseconds(
						 w.now, (int64) psk_in_use_ttl * 1000)),
					 false);
	else
		psk_code_set(&w, CODE_EXPIRES_AT, (Datum) 0, true);
	psk_code_update(&w);

	psk_audit_code(&w, &user);
	psk_audit_append(&w, "CONFIRMED");

	psk_writer_end(&w);
}

/*
 * psk_confirm(user_email, code, reservation_token): RESERVED -> IN_USE.
 */
Datum
psk_confirm(PG_FUNCTION_ARGS)
{
	PskCaller caller = { psk_text_arg(fcinfo, 0, "user_email", true,
									  PSK_MAX_EMAIL_LEN) };
	/* checked after the caller */
	char		  *code = psk_text_arg_capped(fcinfo, 1, PSK_MAX_CODE_LEN);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PskConfirmed   confirmed;
	Datum		   values[3];
	bool		   nulls[3] = { 0 };

	psk_pin_search_path();
	psk_confirm_code(&caller, code,
					 PG_ARGISNULL(2) ? NULL : PG_GETARG_UUID_P(2), &confirmed);
	psk_unpin_search_path();

	psk_materialize(fcinfo);
	values[0] = CStringGetTextDatum(confirmed.code);
	values[1] = CStringGetTextDatum(confirmed.status);
	values[2] = TimestampTzGetDatum(confirmed.confirmed_at);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
