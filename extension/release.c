/*
 * release.c
 *		Giving a held code back to its pool: psk_release_code (for
 *		psk_release and the HTTP layer) and psk_release.
 *
 * Below SPI (writer.c): the caller first (a non-admin user), then the
 * arguments, then the code.  When the snapshot's version of the code is
 * the caller's and still its newest, unlocked, it is changed at once
 * (psk_code_try_update); otherwise it is locked as FOR NO KEY UPDATE
 * would: a release waits for whoever holds the code's row locked, then
 * acts on its newest version, or refuses.
 */
#include "writer.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(psk_release);

/* The new version of the code in w->code_slot: free again, with the note. */
static void
released_version(PskWriter *w, const char *note)
{
	psk_code_change(w);
	psk_code_free(w, "CAN_BE_USED");
	psk_code_set(w, CODE_RELEASED_AT, TimestampTzGetDatum(w->now), false);
	if (note != NULL)
		psk_code_set(w, CODE_NOTE, CStringGetTextDatum(note), false);
}

void
psk_release_code(const PskCaller *caller, const char *code,
				 const char *clearance, const char *note, PskReleased *out)
{
	PskWriter w;
	PskUser	  user;
	bool	  done = false;

	psk_writer_begin(&w);
	/* who may call it: a non-admin user */
	psk_require_caller(caller, &user);

	/* then the arguments, in their order */
	code = psk_check_text(unconstify(char *, code), "code", true,
						  PSK_MAX_CODE_LEN);
	clearance = psk_check_text(unconstify(char *, clearance), "clearance_id",
							   false, PSK_MAX_NAME_LEN);
	note = psk_check_text(unconstify(char *, note), "note", false,
						  PSK_MAX_TEXT_LEN);

	/* then the code */
	if (psk_find_held_code(&w, code, &user))
	{
		released_version(&w, note);
		done = psk_code_try_update(&w);
	}
	if (!done)
	{
		psk_lock_held_code(&w, code, LockTupleNoKeyExclusive, &user);
		released_version(&w, note);
		psk_code_update(&w);
	}
	out->code = psk_slot_cstring(w.code_slot, w.code_att[CODE_CODE]);
	out->released_at = w.now;

	psk_audit_code(&w, &user);
	if (clearance != NULL || note != NULL)
		psk_audit_set(&w, LOG_NOTE,
					  CStringGetTextDatum(clearance ? clearance : note));
	if (clearance != NULL)
		psk_audit_set(&w, LOG_CLEARANCE, CStringGetTextDatum(clearance));
	psk_audit_append(&w, "RELEASED");

	psk_writer_end(&w);
}

/*
 * psk_release(user_email, code, clearance_id, note): a held code goes back
 * to its pool.  The audit note is the clearance id when given, else the note.
 */
Datum
psk_release(PG_FUNCTION_ARGS)
{
	PskCaller caller = { psk_text_arg(fcinfo, 0, "user_email", true,
									  PSK_MAX_EMAIL_LEN) };
	/* checked after the caller */
	char		  *code = psk_text_arg_capped(fcinfo, 1, PSK_MAX_CODE_LEN);
	char		  *clearance = psk_text_arg_capped(fcinfo, 2, PSK_MAX_NAME_LEN);
	char		  *note = psk_text_arg_capped(fcinfo, 3, PSK_MAX_TEXT_LEN);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PskReleased	   released;
	Datum		   values[2];
	bool		   nulls[2] = { 0 };

	psk_pin_search_path();
	psk_release_code(&caller, code, clearance, note, &released);
	psk_unpin_search_path();

	psk_materialize(fcinfo);
	values[0] = CStringGetTextDatum(released.code);
	values[1] = TimestampTzGetDatum(released.released_at);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
