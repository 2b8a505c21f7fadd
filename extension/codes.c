/*
 * codes.c
 *		Filling the pools and the admin's (and holder's) hand on single
 *		codes: psk_add_codes, psk_mark_non_usable, psk_disassociate,
 *		psk_restore, psk_comment and psk_delete_code.
 *
 * A change to one code locks its row (as FOR UPDATE would) and looks at
 * it, so that a refusal names the real reason; then the change and its
 * audit row are written below SPI (writer.c), as reserve and release are.
 */
#include "writer.h"
#include "codes.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(psk_add_codes);
PG_FUNCTION_INFO_V1(psk_mark_non_usable);
PG_FUNCTION_INFO_V1(psk_disassociate);
PG_FUNCTION_INFO_V1(psk_restore);
PG_FUNCTION_INFO_V1(psk_comment);
PG_FUNCTION_INFO_V1(psk_delete_code);

/* Bounds on one psk_add_codes call. */
#define PSK_MAX_ADD_CODES	  100000
#define PSK_MAX_ADD_COUNTRIES 1000

/*
 * psk_add_codes in one statement, so that 100k codes cost one pass.
 *
 * Every input code is normalised and classified in input order: invalid
 * (the format check of stored codes, and Unicode spaces), a repeat within
 * the batch, or a candidate.  Candidates are inserted in input order, so
 * their ids (the tie-break of the reserve order) follow it; ON CONFLICT
 * turns a code that exists already, or that a concurrent call has just
 * added, into duplicate_in_db.  The known countries go to every inserted
 * code.  Returns each code's outcome, and the note of the ADDED rows (the
 * countries), which psk_add_codes writes for the inserted codes, in their
 * order, which is their ids'.
 *
 * $1 pool, $2 codes, $3 countries, $4 the spaces that [[:space:]] may miss
 * (see below).
 */
static PskQuery add_codes = {
	"WITH input AS ("
	"  SELECT u.n, psk.normalize_code(u.c) AS code"
	"    FROM unnest($2) WITH ORDINALITY AS u(c, n)"
	"), classified AS ("
	"  SELECT n, code,"
	"         CASE WHEN " PSK_CODE_INVALID(
		"code",
		"$4") " THEN 'invalid'"
			  "              WHEN row_number() OVER (PARTITION BY code ORDER BY n) > 1"
			  "              THEN 'duplicate_in_batch'"
			  "         END AS outcome"
			  "    FROM input"
			  "), wanted AS ("
			  "  SELECT DISTINCT ON (lower(name)) name, n"
			  "    FROM (SELECT btrim(w.name) AS name, w.n"
			  "            FROM unnest($3) WITH ORDINALITY AS w(name, n)"
			  "           WHERE w.name IS NOT NULL) w"
			  "   ORDER BY lower(name), n"
			  "), matched AS ("
			  "  SELECT w.name AS wanted, w.n, k.id, k.name"
			  "    FROM wanted w LEFT JOIN psk.countries k"
			  "      ON " PSK_PLACE_NAMED(
				  "k",
				  "w.name") "), inserted AS ("
							"  INSERT INTO psk.codes (code, pool)"
							"  SELECT code, $1 FROM classified WHERE outcome IS NULL ORDER BY n"
							"  ON CONFLICT (code) DO NOTHING"
							"  RETURNING id, code"
							"), attached AS ("
							"  INSERT INTO psk.code_countries (code_id, country_id)"
							"  SELECT i.id, m.id FROM inserted i CROSS JOIN matched m"
							"   WHERE m.id IS NOT NULL"
							")"
							"SELECT code, outcome,"
							"       (SELECT 'countries: ' || string_agg(m.name, ', ' ORDER BY m.name)"
							"          FROM matched m WHERE m.id IS NOT NULL) FROM ("
							"  SELECT 1 AS part, c.n, c.code,"
							"         COALESCE(c.outcome, CASE WHEN i.id IS NULL THEN 'duplicate_in_db'"
							"                                  ELSE 'inserted' END) AS outcome"
							"    FROM classified c"
							"    LEFT JOIN inserted i ON c.outcome IS NULL AND i.code = c.code"
							"  UNION ALL"
							"  SELECT 2, m.n, NULL, 'unknown_country:' || m.wanted"
							"    FROM matched m WHERE m.id IS NULL"
							") r ORDER BY part, n",
	4,
	{ TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID }
};

/*
 * Unicode spaces in UTF-8.  What [[:space:]] matches depends on the
 * database's locale (in "C" only ASCII, and glibc leaves out the no-break
 * spaces), yet a no-break space or a byte order mark pasted from a web page
 * or a spreadsheet is the likeliest stray character in a code.  So these
 * are refused explicitly: U+0085, U+00A0, U+1680, U+2000..U+200B, U+2028,
 * U+2029, U+202F, U+205F, U+3000 and U+FEFF.
 */
const char psk_unicode_spaces[] = "\xc2\x85"
								  "\xc2\xa0"
								  "\xe1\x9a\x80"
								  "\xe2\x80\x80"
								  "\xe2\x80\x81"
								  "\xe2\x80\x82"
								  "\xe2\x80\x83"
								  "\xe2\x80\x84"
								  "\xe2\x80\x85"
								  "\xe2\x80\x86"
								  "\xe2\x80\x87"
								  "\xe2\x80\x88"
								  "\xe2\x80\x89"
								  "\xe2\x80\x8a"
								  "\xe2\x80\x8b"
								  "\xe2\x80\xa8"
								  "\xe2\x80\xa9"
								  "\xe2\x80\xaf"
								  "\xe2\x81\x9f"
								  "\xe3\x80\x80"
								  "\xef\xbb\xbf";

/* A text[] argument: one dimension, at most maxitems elements. */
static ArrayType *
text_array_arg(FunctionCallInfo fcinfo, int argno, const char *name,
			   bool required, int maxitems)
{
	ArrayType *array;

	if (PG_ARGISNULL(argno))
	{
		if (required)
			ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
							errmsg("%s is required", name)));
		return NULL;
	}
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) == 0)
	{
		if (required)
			ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
							errmsg("%s must not be empty", name)));
		return array;
	}
	if (ARR_NDIM(array) != 1)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("%s must be a one-dimensional array", name)));
	if (ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)) > maxitems)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("%s has more than %d elements", name, maxitems)));
	return array;
}

/*
 * psk_add_codes(admin_email, code_type, codes, countries)
 *
 * Never raises for a bad code: each input code gets its outcome row.  Only
 * the call itself (who, which pool, the shape of the arrays) can be refused.
 */
Datum
psk_add_codes(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	const char *pool;
	ArrayType  *codes;
	ArrayType  *countries;
	PskUser		admin;
	Datum		values[4];
	bool		nulls[4] = { 0 };
	PskWriter	w;
	Datum		pool_datum;
	uint64		n;

	/* who may call it first, then the arguments */
	psk_require_writable("psk_add_codes");
	psk_check_admin(admin_email, psk_lookup_user(admin_email, false, &admin)
									 ? &admin
									 : NULL);
	pool = psk_pool_name(
		psk_text_arg(fcinfo, 1, "code_type", true, PSK_MAX_NAME_LEN));
	codes = text_array_arg(fcinfo, 2, "codes", true, PSK_MAX_ADD_CODES);
	countries =
		text_array_arg(fcinfo, 3, "countries", false, PSK_MAX_ADD_COUNTRIES);
	/* A country name that long cannot exist; do not echo it back. */
	if (countries != NULL && ARR_NDIM(countries) == 1)
	{
		Datum *names;
		bool  *namenulls;
		int	   n;

		deconstruct_array(countries, TEXTOID, -1, false, TYPALIGN_INT, &names,
						  &namenulls, &n);
		for (int i = 0; i < n; i++)
		{
			text *name;

			if (namenulls[i])
				continue;
			name = DatumGetTextPP(names[i]);
			if (pg_mbstrlen_with_len(VARDATA_ANY(name),
									 VARSIZE_ANY_EXHDR(name)) >
				PSK_MAX_NAME_LEN)
				ereport(
					ERROR,
					(errcode(ERRCODE_PSK_INVALID_INPUT),
					 errmsg("countries: a name is longer than %d characters",
							PSK_MAX_NAME_LEN)));
		}
	}

	SPI_connect();

	values[0] = CStringGetTextDatum(pool);
	values[1] = PointerGetDatum(codes);
	nulls[2] = countries == NULL;
	values[2] = PointerGetDatum(countries);
	/* Other encodings cannot hold most of them; [[:space:]] has to do. */
	values[3] = CStringGetTextDatum(
		GetDatabaseEncoding() == PG_UTF8 ? psk_unicode_spaces : "");
	n = psk_execute(&add_codes, values, nulls, false);

	psk_result_set(fcinfo);
	psk_audit_writer_begin(&w);
	pool_datum = CStringGetTextDatum(pool);
	for (uint64 i = 0; i < n; i++)
	{
		Datum row[2];
		bool  rownulls[2];
		text *outcome;
		Datum note;
		bool  nonote;

		row[0] = psk_result(i, 1, &rownulls[0]);
		row[1] = psk_result(i, 2, &rownulls[1]);
		psk_return_row(fcinfo, row, rownulls);
		outcome = DatumGetTextPP(row[1]);
		if (VARSIZE_ANY_EXHDR(outcome) != strlen("inserted") ||
			memcmp(VARDATA_ANY(outcome), "inserted", strlen("inserted")) != 0)
			continue;

		psk_audit_begin(&w);
		psk_audit_set(&w, LOG_CODE, row[0]);
		psk_audit_set(&w, LOG_CODE_TYPE, pool_datum);
		psk_audit_actor(&w, &admin);
		note = psk_result(i, 3, &nonote);
		if (!nonote)
			psk_audit_set(&w, LOG_NOTE, note);
		psk_audit_append(&w, "ADDED");
	}
	psk_writer_end(&w);
	SPI_finish();
	return (Datum) 0;
}

/*
 * One code, locked for the caller's change (as FOR UPDATE would) and left
 * in w->code_slot.
 */
typedef struct LockedCode
{
	char *code;
	char *status;
	bool  held;
	int64 holder_id;
} LockedCode;

static void
state_of(PskWriter *w, LockedCode *c)
{
	bool isnull;

	c->code = psk_slot_cstring(w->code_slot, w->code_att[CODE_CODE]);
	c->status = psk_slot_cstring(w->code_slot, w->code_att[CODE_STATUS]);
	c->holder_id =
		psk_slot_int8(w->code_slot, w->code_att[CODE_HOLDER], &isnull);
	c->held = !isnull;
}

/* Lock the row of code, or raise not_found. */
static void
lock_code(PskWriter *w, const char *code, LockedCode *locked)
{
	if (!psk_lock_code(w, code, LockTupleExclusive))
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_FOUND),
						errmsg("unknown code \"%s\"", code)));
	state_of(w, locked);
}

/*
 * Start an admin's change of code: the admin (or not_allowed), before the
 * other arguments are checked; the code is locked (lock_code) after them.
 */
static void
begin_admin_change(PskWriter *w, const char *admin_email, PskUser *admin)
{
	psk_writer_begin(w);
	psk_check_admin(admin_email,
					psk_lookup_user(admin_email, false, admin) ? admin : NULL);
}

/* subject_user_id of the audit row: the holder of the code as it was. */
static void
audit_holder(PskWriter *w)
{
	bool  isnull;
	Datum holder =
		slot_getattr(w->code_slot, w->code_att[CODE_HOLDER], &isnull);

	if (!isnull)
		psk_audit_set(w, LOG_SUBJECT, holder);
}

/* The function's one result row: n text columns, NULL for a NULL value. */
static Datum
return_row(FunctionCallInfo fcinfo, int n, const char *const *columns)
{
	Datum values[2];
	bool  nulls[2];

	Assert(n <= lengthof(values));
	for (int i = 0; i < n; i++)
	{
		nulls[i] = columns[i] == NULL;
		values[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(columns[i]);
	}
	psk_return_row(fcinfo, values, nulls);
	return (Datum) 0;
}

/*
 * psk_mark_non_usable(user_email, code, reason): the holder, or an admin for
 * any code.  The hold ends; the previous tester goes into the audit row and
 * the previous holder into its subject_user_id.
 */
Datum
psk_mark_non_usable(PG_FUNCTION_ARGS)
{
	char *email =
		psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	char	  *code;
	char	  *reason;
	PskWriter  w;
	PskUser	   actor;
	LockedCode locked;

	psk_writer_begin(&w);
	/*
	 * Who, before anything about the arguments or the code: a stranger
	 * learns nothing.
	 */
	if (!psk_lookup_user(email, false, &actor))
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("unknown user \"%s\"", email)));
	code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	reason = psk_text_arg(fcinfo, 2, "reason", true, PSK_MAX_TEXT_LEN);

	lock_code(&w, code, &locked);
	if (strcmp(locked.status, "NON_USABLE") == 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_WRONG_STATE),
						errmsg("code \"%s\" is NON_USABLE already", code)));
	if (!actor.is_admin && !(locked.held && locked.holder_id == actor.id))
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("code \"%s\" is not held by \"%s\"", code,
							   actor.email)));

	psk_code_change(&w);
	psk_code_free(&w, "NON_USABLE");
	psk_code_set(&w, CODE_NOTE, CStringGetTextDatum(reason), false);
	psk_code_update(&w);

	psk_audit_code(&w, &actor);
	audit_holder(&w);
	psk_audit_set(&w, LOG_NOTE, CStringGetTextDatum(reason));
	psk_audit_append(&w, "MARKED_NON_USABLE");
	psk_writer_end(&w);

	return return_row(fcinfo, 2, (const char *[]){ locked.code, "NON_USABLE" });
}

/*
 * psk_disassociate(admin_email, code, note): an admin takes a held code
 * back into its pool.  A new note replaces the code's note; the audit row
 * keeps the tester and, as subject_user_id, the holder.
 */
Datum
psk_disassociate(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	char	  *code;
	char	  *note;
	PskWriter  w;
	PskUser	   admin;
	PskUser	   holder;
	LockedCode locked;

	begin_admin_change(&w, admin_email, &admin);
	code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	note = psk_text_arg(fcinfo, 2, "note", false, PSK_MAX_TEXT_LEN);
	lock_code(&w, code, &locked);
	if (!locked.held)
		ereport(ERROR, (errcode(ERRCODE_PSK_WRONG_STATE),
						errmsg("code \"%s\" is %s, not reserved or in use",
							   code, locked.status)));
	if (!psk_lookup_user_id(locked.holder_id, &holder))
		elog(ERROR, "psk: the holder of code \"%s\" is missing", code);

	psk_code_change(&w);
	psk_code_free(&w, "CAN_BE_USED");
	if (note != NULL)
		psk_code_set(&w, CODE_NOTE, CStringGetTextDatum(note), false);
	psk_code_update(&w);

	psk_audit_code(&w, &admin);
	audit_holder(&w);
	if (note != NULL)
		psk_audit_set(&w, LOG_NOTE, CStringGetTextDatum(note));
	psk_audit_append(&w, "DISASSOCIATED");
	psk_writer_end(&w);

	return return_row(fcinfo, 2, (const char *[]){ locked.code, holder.email });
}

/*
 * psk_restore(admin_email, code): NON_USABLE back to CAN_BE_USED, at the
 * end of the least-recently-used order.
 */
Datum
psk_restore(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	char	  *code;
	PskWriter  w;
	PskUser	   admin;
	LockedCode locked;

	begin_admin_change(&w, admin_email, &admin);
	code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	lock_code(&w, code, &locked);
	if (strcmp(locked.status, "NON_USABLE") != 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_WRONG_STATE),
						errmsg("code \"%s\" is %s, not NON_USABLE", code,
							   locked.status)));

	psk_code_change(&w);
	psk_code_free(&w, "CAN_BE_USED");
	psk_code_update(&w);

	psk_audit_code(&w, &admin);
	psk_audit_append(&w, "RESTORED");
	psk_writer_end(&w);

	return return_row(fcinfo, 2,
					  (const char *[]){ locked.code, "CAN_BE_USED" });
}

/*
 * psk_comment(user_email, code, comment): the holder notes something on
 * the code.  No state changes, but the comment is logged.  Only a code the
 * caller holds is locked (as FOR UPDATE of the caller's held code would).
 */
Datum
psk_comment(PG_FUNCTION_ARGS)
{
	PskCaller  caller = { psk_text_arg(fcinfo, 0, "user_email", true,
									   PSK_MAX_EMAIL_LEN) };
	char	  *code;
	char	  *comment;
	PskWriter  w;
	PskUser	   user;
	LockedCode held;
	bool	   found;

	psk_writer_begin(&w);
	/* who may call it first, then the arguments, then the code */
	psk_require_caller(&caller, &user);
	code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	comment = psk_text_arg(fcinfo, 2, "comment", true, PSK_MAX_TEXT_LEN);

	found = psk_find_code(&w, code);
	if (found)
		state_of(&w, &held);
	if (found && held.held && held.holder_id == user.id)
	{
		found = psk_lock_row(w.codes->ri_RelationDesc, w.code_slot,
							 LockTupleExclusive, true);
		if (found)
			state_of(&w, &held);
	}
	if (!found || !held.held || held.holder_id != user.id)
		psk_check_holder(code, found ? held.status : NULL, found && held.held,
						 found ? held.holder_id : 0, user.id);

	psk_code_change(&w);
	psk_code_set(&w, CODE_NOTE, CStringGetTextDatum(comment), false);
	psk_code_update(&w);

	psk_audit_code(&w, &user);
	psk_audit_set(&w, LOG_NOTE, CStringGetTextDatum(comment));
	psk_audit_append(&w, "COMMENTED");
	psk_writer_end(&w);

	return return_row(fcinfo, 2, (const char *[]){ held.code, comment });
}

/*
 * psk_delete_code(admin_email, code): a code nobody holds is removed; its
 * countries go with it, its audit trail stays.
 */
Datum
psk_delete_code(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	char	  *code;
	PskWriter  w;
	PskUser	   admin;
	LockedCode locked;

	begin_admin_change(&w, admin_email, &admin);
	code = psk_text_arg(fcinfo, 1, "code", true, PSK_MAX_CODE_LEN);
	lock_code(&w, code, &locked);
	if (locked.held)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_WRONG_STATE),
			 errmsg(
				 "code \"%s\" is %s: only a free or non-usable code can be deleted",
				 code, locked.status)));

	psk_code_delete(&w);

	psk_audit_code(&w, &admin);
	psk_audit_set(&w, LOG_NOTE,
				  CStringGetTextDatum(psprintf("was %s", locked.status)));
	psk_audit_append(&w, "DELETED");
	psk_writer_end(&w);

	return return_row(fcinfo, 1, (const char *[]){ locked.code });
}
