/*
 * http.c
 *		The HTTP layer's hot routes: psk.http_reserve, http_release,
 *		http_confirm, http_me and http_my_codes.
 *
 * The shim answers a request with one call of a route function (see
 * extension/sql/60_http.sql, where the other routes are PL/pgSQL).  These
 * five run on every reservation cycle, so they are C: the session lookup
 * and the engine are called directly, the body is read as jsonb and the
 * reply is written as json_build_object and json_agg would write it, byte
 * for byte.
 *
 * The checks run in the order of the PL/pgSQL routes: the token
 * (unauthorized), the body (22P02 when it is not JSON, invalid_input when
 * it is not an object), the fields' types (invalid_input), the caller's
 * role ("Users only"), then the psk_* function's own checks and rules.
 */
#include "psk.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(psk_http_reserve);
PG_FUNCTION_INFO_V1(psk_http_release);
PG_FUNCTION_INFO_V1(psk_http_confirm);
PG_FUNCTION_INFO_V1(psk_http_me);
PG_FUNCTION_INFO_V1(psk_http_my_codes);

/* The caller of a route: its token is argument 0. */
static void
http_session(FunctionCallInfo fcinfo, PskSession *who)
{
	psk_session_find(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), who);
}

/* The /users routes refuse admins, as the old service did. */
static void
http_require_user(const PskSession *who)
{
	if (who->is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED),
				 errmsg("Users only")));
}

/*
 * The request body (argument 1), a JSON object; NULL stands for the empty
 * object of no body or a blank one.
 */
static Jsonb *
http_body(FunctionCallInfo fcinfo)
{
	text	   *body;
	const char *p;
	const char *end;
	Jsonb	   *b;

	if (PG_ARGISNULL(1))
		return NULL;
	body = PG_GETARG_TEXT_PP(1);
	p = VARDATA_ANY(body);
	end = p + VARSIZE_ANY_EXHDR(body);
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (p == end)
		return NULL;

	/* jsonb_in, as the cast body::jsonb: its errors (22P02) are the same */
	b = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
										   CStringGetDatum(text_to_cstring(body))));
	if (!JB_ROOT_IS_OBJECT(b))
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("request body must be a JSON object")));
	return b;
}

/*
 * A field of the body of JSON type jtype: NULL when absent or null, else
 * invalid_input when of another type.
 */
static JsonbValue *
http_field(Jsonb *b, const char *name, enum jbvType jtype)
{
	JsonbValue *v;

	if (b == NULL)
		return NULL;
	v = getKeyJsonValueFromContainer(&b->root, name, strlen(name), NULL);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jtype)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("\"%s\" must be %s", name,
						jtype == jbvString ? "a string" : "an integer")));
	return v;
}

static char *
http_text(Jsonb *b, const char *name)
{
	JsonbValue *v = http_field(b, name, jbvString);

	return v ? pnstrdup(v->val.string.val, v->val.string.len) : NULL;
}

/*
 * An integer field: a JSON number written (as numeric_out writes it) with
 * at most 18 digits and no fraction, within int4; *given false when
 * absent.
 */
static int32
http_int(Jsonb *b, const char *name, bool *given)
{
	JsonbValue *v = http_field(b, name, jbvNumeric);
	char	   *s;
	const char *p;
	int64		value;

	*given = (v != NULL);
	if (v == NULL)
		return 0;
	s = DatumGetCString(DirectFunctionCall1(numeric_out,
											NumericGetDatum(v->val.numeric)));
	p = s + (*s == '-');
	if (strlen(p) < 1 || strlen(p) > 18 || strspn(p, "0123456789") != strlen(p))
		goto bad;
	value = strtoi64(s, NULL, 10);
	if (value < PG_INT32_MIN || value > PG_INT32_MAX)
		goto bad;
	return (int32) value;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_PSK_INVALID_INPUT),
			 errmsg("\"%s\" must be an integer", name)));
	return 0;					/* not reached */
}

/*
 * A reservation token: NULL, or a UUID as the PL/pgSQL routes accept it,
 * ^\{?[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\}?$, then read
 * by uuid_in (which refuses an unmatched brace: 22P02).
 */
static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		(c >= 'A' && c <= 'F');
}

static pg_uuid_t *
http_uuid(const char *v, const char *name)
{
	static const int groups[] = {8, 4, 4, 4, 12};
	const char *p = v;

	if (v == NULL)
		return NULL;
	if (*p == '{')
		p++;
	for (size_t g = 0; g < lengthof(groups); g++)
	{
		for (int i = 0; i < groups[g]; i++, p++)
			if (!is_hex(*p))
				goto bad;
		if (g < lengthof(groups) - 1 && *p == '-')
			p++;
	}
	if (*p == '}')
		p++;
	if (*p != '\0')
		goto bad;
	return DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(v)));

bad:
	ereport(ERROR,
			(errcode(ERRCODE_PSK_INVALID_INPUT),
			 errmsg("\"%s\" must be a UUID", name)));
	return NULL;				/* not reached */
}

/*
 * Writing replies as json_build_object writes them: {"key" : value, ...};
 * json_agg separates elements with ", ", arrays of text use ",".
 */
static void
json_key(StringInfo buf, const char *key, bool first)
{
	if (!first)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, " : ");
}

static void
json_text(StringInfo buf, const char *key, bool first, const char *value)
{
	json_key(buf, key, first);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

static void
json_time(StringInfo buf, const char *key, TimestampTz value, bool isnull)
{
	char		out[MAXDATELEN + 1];

	json_key(buf, key, false);
	if (isnull)
		appendStringInfoString(buf, "null");
	else
		appendStringInfo(buf, "\"%s\"",
						 JsonEncodeDateTime(out, TimestampTzGetDatum(value),
											TIMESTAMPTZOID, NULL));
}

static void
json_uuid(StringInfo buf, const char *key, pg_uuid_t *value)
{
	json_text(buf, key, false,
			  value ? DatumGetCString(DirectFunctionCall1(uuid_out,
														  UUIDPGetDatum(value)))
			  : NULL);
}

static void
json_text_array(StringInfo buf, const char *key, Datum value, bool isnull)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	json_key(buf, key, false);
	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	deconstruct_array(DatumGetArrayTypeP(value), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		if (nulls[i])
			appendStringInfoString(buf, "null");
		else
			escape_json(buf, TextDatumGetCString(elems[i]));
	}
	appendStringInfoChar(buf, ']');
}

static Datum
json_result(StringInfo buf)
{
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf->data, buf->len));
}

/*
 * psk.http_reserve: POST /users/reserve {tester_name, country?, code_type?,
 * how_many?}.  Without how_many the reply is the code; with it, even 1,
 * {"codes": [...]}.
 */
Datum
psk_http_reserve(PG_FUNCTION_ARGS)
{
	PskSession	who;
	Jsonb	   *b;
	char	   *tester;
	char	   *country;
	char	   *code_type;
	const char *pool;
	int32		how_many;
	bool		many;
	char	   *email;
	PskReserved *got;
	StringInfoData buf;

	http_session(fcinfo, &who);
	b = http_body(fcinfo);
	tester = http_text(b, "tester_name");
	country = http_text(b, "country");
	code_type = http_text(b, "code_type");
	how_many = http_int(b, "how_many", &many);
	http_require_user(&who);

	/* psk_reserve's argument checks, in its order and with its names */
	email = psk_check_text(who.email, "user_email", true, PSK_MAX_EMAIL_LEN);
	tester = psk_check_text(tester, "tester_name", true, PSK_MAX_NAME_LEN);
	country = psk_check_text(country, "country", false, PSK_MAX_NAME_LEN);
	pool = psk_pool_name(psk_check_text(code_type, "code_type", false,
										PSK_MAX_NAME_LEN));
	if (!many)
		how_many = 1;
	else if (how_many < 1 || how_many > PSK_MAX_HOW_MANY)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("how_many must be between %d and %d", 1,
						PSK_MAX_HOW_MANY)));

	got = palloc(how_many * sizeof(PskReserved));
	psk_reserve_codes(email, tester, country, pool, how_many, got);

	initStringInfo(&buf);
	if (many)
		appendStringInfoString(&buf, "{\"codes\" : [");
	for (int i = 0; i < how_many; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoChar(&buf, '{');
		json_text(&buf, "code", true, got[i].code);
		json_text(&buf, "code_type", false, got[i].pool);
		json_uuid(&buf, "reservation_token", &got[i].token);
		json_time(&buf, "reserved_at", got[i].reserved_at, false);
		json_time(&buf, "expires_at", got[i].expires_at, !got[i].expires);
		appendStringInfoChar(&buf, '}');
	}
	if (many)
		appendStringInfoString(&buf, "]}");
	return json_result(&buf);
}

/*
 * psk.http_release: POST /users/release {code, clearance_id?, note?}.  The
 * reply echoes the code and the clearance id as sent.
 */
Datum
psk_http_release(PG_FUNCTION_ARGS)
{
	PskSession	who;
	Jsonb	   *b;
	char	   *code;
	char	   *clearance;
	char	   *note;
	char	   *email;
	char	   *checked_code;
	char	   *checked_clearance;
	PskReleased released;
	StringInfoData buf;

	http_session(fcinfo, &who);
	b = http_body(fcinfo);
	code = http_text(b, "code");
	clearance = http_text(b, "clearance_id");
	note = http_text(b, "note");
	http_require_user(&who);

	/*
	 * psk_release's argument checks, in its order (one statement each: C
	 * leaves the order of a call's arguments open); the reply echoes the
	 * values as sent.
	 */
	email = psk_check_text(who.email, "user_email", true, PSK_MAX_EMAIL_LEN);
	checked_code = psk_check_text(code, "code", true, PSK_MAX_CODE_LEN);
	checked_clearance = psk_check_text(clearance, "clearance_id", false,
									   PSK_MAX_NAME_LEN);
	note = psk_check_text(note, "note", false, PSK_MAX_TEXT_LEN);
	psk_release_code(email, checked_code, checked_clearance, note, &released);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_text(&buf, "released", true, released.code);
	json_text(&buf, "requested", false, code);
	json_text(&buf, "clearance_id", false, clearance);
	appendStringInfoChar(&buf, '}');
	return json_result(&buf);
}

/*
 * psk.http_confirm: POST /users/confirm {code, reservation_token}
 */
Datum
psk_http_confirm(PG_FUNCTION_ARGS)
{
	PskSession	who;
	Jsonb	   *b;
	char	   *code;
	pg_uuid_t  *token;
	PskConfirmed confirmed;
	StringInfoData buf;

	http_session(fcinfo, &who);
	b = http_body(fcinfo);
	code = http_text(b, "code");
	token = http_uuid(http_text(b, "reservation_token"), "reservation_token");
	http_require_user(&who);

	/* psk_confirm's own argument checks, in its order */
	code = psk_check_text(code, "code", true, PSK_MAX_CODE_LEN);
	if (token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("reservation_token is required")));
	psk_confirm_code(who.email, code, token, &confirmed);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_text(&buf, "code", true, confirmed.code);
	json_text(&buf, "status", false, confirmed.status);
	appendStringInfoChar(&buf, '}');
	return json_result(&buf);
}

/*
 * psk.http_me: GET or POST /auth/me, for any live session (admins too);
 * body and query are not read.
 */
Datum
psk_http_me(PG_FUNCTION_ARGS)
{
	PskSession	who;
	StringInfoData buf;

	http_session(fcinfo, &who);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"id\" : " INT64_FORMAT, who.id);
	json_text(&buf, "user_name", false, who.user_name);
	json_text(&buf, "team_name", false, who.team_name);
	json_text(&buf, "contact_email", false, who.email);
	json_key(&buf, "is_admin", false);
	appendStringInfoString(&buf, who.is_admin ? "true" : "false");
	json_text(&buf, "pool", false, who.pool);
	appendStringInfoChar(&buf, '}');
	return json_result(&buf);
}

/*
 * psk.http_my_codes: GET /users/my, the caller's held codes as psk_my_codes
 * lists them; body and query are not read.
 */
Datum
psk_http_my_codes(PG_FUNCTION_ARGS)
{
	PskSession	who;
	StringInfoData buf;
	uint64		n;

	http_session(fcinfo, &who);
	http_require_user(&who);

	initStringInfo(&buf);
	SPI_connect();
	n = psk_select_my_codes(who.id);
	appendStringInfoChar(&buf, '[');
	for (uint64 row = 0; row < n; row++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		value;

		if (row > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoChar(&buf, '{');
		json_text(&buf, "code", true, SPI_getvalue(tuple, desc, 1));
		json_text(&buf, "code_type", false, SPI_getvalue(tuple, desc, 2));
		json_text(&buf, "status", false, SPI_getvalue(tuple, desc, 3));
		json_text(&buf, "tester_name", false, SPI_getvalue(tuple, desc, 4));
		value = SPI_getbinval(tuple, desc, 5, &isnull);
		json_time(&buf, "requested_at", DatumGetTimestampTz(value), isnull);
		value = SPI_getbinval(tuple, desc, 6, &isnull);
		json_time(&buf, "expires_at", DatumGetTimestampTz(value), isnull);
		value = SPI_getbinval(tuple, desc, 7, &isnull);
		json_uuid(&buf, "reservation_token",
				  isnull ? NULL : DatumGetUUIDP(value));
		json_text(&buf, "note", false, SPI_getvalue(tuple, desc, 8));
		value = SPI_getbinval(tuple, desc, 9, &isnull);
		json_text_array(&buf, "countries", value, isnull);
		value = SPI_getbinval(tuple, desc, 10, &isnull);
		json_text_array(&buf, "regions", value, isnull);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, ']');
	SPI_finish();
	return json_result(&buf);
}
