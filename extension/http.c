/*
 * http.c
 *		The HTTP adapter's core: from a call of psk.http_<name>(token, body,
 *		query) to the handler of the route's row (http_routes.c).
 *
 * Every route runs the same steps, in the contract's order:
 *
 *	1. the token (argument 0): the live session behind it, or unauthorized
 *	   (not for public routes);
 *	2. the role: "Users only" for an admin on a user route, "Permission
 *	   denied" for a user on an admin route (not_allowed);
 *	3. the body (argument 1), read only when the route takes a field from
 *	   it: no body or a blank one is {}, else it must be a JSON object (not
 *	   JSON at all: jsonb_in's own error, 22P02);
 *	4. the fields, in the order of the row: the JSON type in the body, the
 *	   value's form (integer and range, true/false, UUID, ISO 8601 time,
 *	   array of strings), a field given both in the body and in the query
 *	   string (argument 2), then the required ones;
 *	5. the handler, which leaves every other rule to the engine.
 *
 * All of it is invalid_input (PK007) with a message naming the field, but
 * for the two errors named above.
 */
#include "psk.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "http.h"

PG_FUNCTION_INFO_V1(psk_http);

/* The symbols of 0.1.0 to 0.2.1's C routes: sessions of before an update. */
PG_FUNCTION_INFO_V1(psk_http_reserve);
PG_FUNCTION_INFO_V1(psk_http_release);
PG_FUNCTION_INFO_V1(psk_http_confirm);
PG_FUNCTION_INFO_V1(psk_http_me);
PG_FUNCTION_INFO_V1(psk_http_my_codes);

static void
invalid(const char *name, const char *what)
{
	ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
					errmsg("\"%s\" must be %s", name, what)));
}

/*
 * Steps 1 and 2.
 */
static void
http_check_caller(FunctionCallInfo fcinfo, HttpRequest *req)
{
	HttpRole role = req->route->role;

	if (role == HTTP_PUBLIC)
		return;
	req->token = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	psk_session_find(req->token, &req->who);
	req->caller.email = req->who.email;
	req->caller.user = &req->who;

	/* user routes refuse admins and admin routes users, as the old service did
	 */
	if (role == HTTP_USER && req->who.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED), errmsg("Users only")));
	if (role == HTTP_ADMIN && !req->who.is_admin)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("Permission denied")));
}

/*
 * Step 3: the body, or NULL for the empty object.
 */
/*
 * jsonb_in of a request body.  Its errors name the fault (22P02, with a
 * detail such as "The input string ended unexpectedly."), but they also
 * quote the body, in the detail (the bad token) and the context (the text
 * up to the fault), and a login's body holds a password: the caller gets
 * the message and the detail, the server log neither the detail nor the
 * context.
 */
static Jsonb *
parse_body(char *json)
{
	MemoryContext caller = CurrentMemoryContext;
	Jsonb *volatile b = NULL;

	PG_TRY();
	{
		b = DatumGetJsonbP(
			DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	}
	PG_CATCH();
	{
		ErrorData *e;

		MemoryContextSwitchTo(caller);
		e = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(e->sqlerrcode), errmsg_internal("%s", e->message),
				 e->detail ? errdetail_internal("%s", e->detail) : 0,
				 errdetail_log("The request body is not logged.")));
	}
	PG_END_TRY();
	return b;
}

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

	b = parse_body(text_to_cstring(body));
	if (!JB_ROOT_IS_OBJECT(b))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("request body must be a JSON object")));
	return b;
}

static JsonbValue *
json_member(Jsonb *obj, const char *name)
{
	if (obj == NULL)
		return NULL;
	return getKeyJsonValueFromContainer(&obj->root, name, strlen(name), NULL);
}

/*
 * An integer as text (a query value, or the digits numeric_out writes for a
 * JSON number): at most 18 digits, no fraction, within the field's range.
 */
static void
read_int(const HttpField *f, HttpValue *v)
{
	const char *s = v->text;
	const char *p = s + (*s == '-');
	size_t		len = strlen(p);
	int64		min = f->min;
	int64		max = f->max;

	if (min == 0 && max == 0)
		min = PG_INT32_MIN, max = PG_INT32_MAX;
	if (len < 1 || len > 18 || strspn(p, "0123456789") != len)
		invalid(f->name, "an integer");
	v->integer = strtoi64(s, NULL, 10);
	if (v->integer < min || v->integer > max)
		invalid(f->name, "an integer");
}

static void
read_bool(const HttpField *f, HttpValue *v)
{
	if (strcmp(v->text, "true") == 0)
		v->boolean = true;
	else if (strcmp(v->text, "false") == 0)
		v->boolean = false;
	else
		invalid(f->name, "true or false");
}

/*
 * A UUID as ^(\{UUID\}|UUID)$, UUID [0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}
 * [0-9a-fA-F]{12}, then read by uuid_in, which no longer fails.
 */
static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		   (c >= 'A' && c <= 'F');
}

static void
read_uuid(const HttpField *f, HttpValue *v)
{
	static const int groups[] = { 8, 4, 4, 4, 12 };
	const char		*p = v->text;
	bool			 brace = *p == '{';

	if (brace)
		p++;
	for (size_t g = 0; g < lengthof(groups); g++)
	{
		for (int i = 0; i < groups[g]; i++, p++)
			if (!is_hex(*p))
				invalid(f->name, "a UUID");
		if (g < lengthof(groups) - 1 && *p == '-')
			p++;
	}
	/* braces paired here: uuid_in's own error would quote the value */
	if (brace && *p++ != '}')
		invalid(f->name, "a UUID");
	if (*p != '\0')
		invalid(f->name, "a UUID");
	v->uuid =
		DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(v->text)));
}

static bool
matches(const char *pattern, const char *s)
{
	return RE_compile_and_execute(cstring_to_text(pattern), (char *) s,
								  strlen(s), REG_ADVANCED, C_COLLATION_OID, 0,
								  NULL);
}

bool
http_is_date(const char *value)
{
	return value != NULL && matches("^\\d{4}-\\d{2}-\\d{2}$", value);
}

/*
 * A date or timestamp (ISO 8601; without an offset it is in the session's
 * time zone, UTC for the shim).  A date alone is its midnight, or with
 * HTTP_END_OF_DAY the next one, so that an end date includes its day.
 * Parsed as timestamptz_in does, but a value it would refuse or that is out
 * of range is this field's invalid_input, not a datetime error.
 */
static void
read_time(const HttpField *f, HttpValue *v)
{
	char		 workbuf[MAXDATELEN + MAXDATEFIELDS];
	char		*field[MAXDATEFIELDS];
	int			 ftype[MAXDATEFIELDS];
	int			 nf;
	int			 dtype;
	struct pg_tm tm;
	fsec_t		 fsec;
	int			 tz;
	bool		 date_only = http_is_date(v->text);

	if (!date_only &&
		!matches("^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?"
				 "(Z|[+-]\\d{2}(:?\\d{2})?)?$",
				 v->text))
		goto bad;
	if (ParseDateTime(v->text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz) != 0 ||
		dtype != DTK_DATE)
		goto bad;
	if (date_only && (f->flags & HTTP_END_OF_DAY))
	{
		j2date(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) + 1, &tm.tm_year,
			   &tm.tm_mon, &tm.tm_mday);
		tz = DetermineTimeZoneOffset(&tm, session_timezone);
	}
	if (tm2timestamp(&tm, fsec, &tz, &v->time) != 0)
		goto bad;
	return;

bad:
	invalid(f->name, "an ISO 8601 date or timestamp");
}

/*
 * A PostgreSQL interval ("7 days", "36 hours", "P1DT2H"), as interval_in
 * reads it; a value it refuses (a data exception, class 22) is this
 * field's invalid_input.  That error is caught only to be replaced at once
 * (no subtransaction needed: interval_in holds nothing); any other is
 * raised as it is.
 */
static void
read_interval(const HttpField *f, HttpValue *v)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile bool bad = false;

	PG_TRY();
	{
		v->interval = DatumGetIntervalP(
			DirectFunctionCall3(interval_in, CStringGetDatum(v->text),
								ObjectIdGetDatum(InvalidOid),
								Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData *e;

		MemoryContextSwitchTo(caller);
		e = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(e->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		bad = true;
	}
	PG_END_TRY();
	if (bad)
		invalid(f->name, "a PostgreSQL interval");
}

/* A list: an array of strings in the body, as text[]. */
static void
read_text_array(const HttpField *f, JsonbValue *jv, HttpValue *v)
{
	JsonbContainer *array;
	int				n;
	Datum		   *elems;

	if (jv->type != jbvBinary || !JsonContainerIsArray(jv->val.binary.data))
		invalid(f->name, "an array of strings");
	array = jv->val.binary.data;
	n = JsonContainerSize(array);
	elems = palloc(Max(n, 1) * sizeof(Datum));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(array, i);

		if (e->type != jbvString)
			invalid(f->name, "an array of strings");
		elems[i] = PointerGetDatum(
			cstring_to_text_with_len(e->val.string.val, e->val.string.len));
	}
	v->array = construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* What a field of the body must be, as its JSON type. */
static enum jbvType
json_type_of(HttpType type, const char **what)
{
	switch (type)
	{
		case HTTP_INT:
			*what = "an integer";
			return jbvNumeric;
		case HTTP_BOOL:
			*what = "true or false";
			return jbvBool;
		default:
			*what = "a string";
			return jbvString;
	}
}

/*
 * One field from the body b (a JSON value of its type; null is absent) or
 * from the query string q (a string; empty is absent).
 */
static void
read_field(const HttpField *f, Jsonb *b, Jsonb *q, HttpValue *v)
{
	JsonbValue *jv = (f->flags & HTTP_BODY) ? json_member(b, f->name) : NULL;

	if (jv != NULL)
	{
		const char *what;

		if ((f->flags & HTTP_QUERY) && json_member(q, f->name) != NULL)
			ereport(
				ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg(
					 "parameter \"%s\" is given both in the body and in the query string",
					 f->name)));
		if (jv->type == jbvNull)
			return;
		if (f->type == HTTP_TEXT_ARRAY)
		{
			read_text_array(f, jv, v);
			v->given = true;
			return;
		}
		if (jv->type != json_type_of(f->type, &what))
			invalid(f->name, what);
		if (jv->type == jbvString)
			v->text = pnstrdup(jv->val.string.val, jv->val.string.len);
		else if (jv->type == jbvNumeric)
			v->text = DatumGetCString(
				DirectFunctionCall1(numeric_out,
									NumericGetDatum(jv->val.numeric)));
		else
			v->text = jv->val.boolean ? "true" : "false";
	}
	else if ((f->flags & (HTTP_QUERY | HTTP_HEADER)) &&
			 f->type != HTTP_TEXT_ARRAY &&
			 (jv = json_member(q, f->name)) != NULL)
	{
		/* the shim sends strings; anything else is taken as ->> would */
		if (jv->type == jbvNull)
			return;
		if (jv->type == jbvString)
			v->text = pnstrdup(jv->val.string.val, jv->val.string.len);
		else if (jv->type == jbvNumeric)
			v->text = DatumGetCString(
				DirectFunctionCall1(numeric_out,
									NumericGetDatum(jv->val.numeric)));
		else if (jv->type == jbvBool)
			v->text = jv->val.boolean ? "true" : "false";
		else
			invalid(f->name, "a string");
		if (v->text[0] == '\0' && !(f->flags & HTTP_HEADER))
			return;
	}
	else
		return;

	switch (f->type)
	{
		case HTTP_TEXT:
			break;
		case HTTP_INT:
			read_int(f, v);
			break;
		case HTTP_BOOL:
			read_bool(f, v);
			break;
		case HTTP_UUID:
			read_uuid(f, v);
			break;
		case HTTP_TIME:
			read_time(f, v);
			break;
		case HTTP_INTERVAL:
			read_interval(f, v);
			break;
		case HTTP_TEXT_ARRAY:
			Assert(false);
			break;
	}
	v->given = true;
}

/*
 * Steps 3 and 4.  The body and the query string are read only when the
 * route takes a field from them: a route without body fields ignores
 * whatever body it gets.
 */
static void
http_read_fields(FunctionCallInfo fcinfo, HttpRequest *req)
{
	const HttpField *fields = req->route->fields;
	int				 from = 0;
	Jsonb			*b = NULL;
	Jsonb			*q = NULL;

	for (int i = 0; i < HTTP_MAX_FIELDS && fields[i].name; i++)
		from |= fields[i].flags;
	if (from & HTTP_BODY)
		b = http_body(fcinfo);
	if ((from & (HTTP_QUERY | HTTP_HEADER)) && !PG_ARGISNULL(2))
		q = PG_GETARG_JSONB_P(2);

	for (int i = 0; i < HTTP_MAX_FIELDS && fields[i].name; i++)
		read_field(&fields[i], b, q, &req->values[i]);
	for (int i = 0; i < HTTP_MAX_FIELDS && fields[i].name; i++)
		if ((fields[i].flags & HTTP_REQUIRED) && !req->values[i].given)
			ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
							errmsg("\"%s\" is required", fields[i].name)));
}

static Datum
http_run(FunctionCallInfo fcinfo, const HttpRoute *route)
{
	HttpRequest req;
	JsonOut		out;

	psk_pin_search_path();
	memset(&req, 0, sizeof(req));
	req.route = route;
	http_check_caller(fcinfo, &req);
	http_read_fields(fcinfo, &req);

	json_init(&out);
	route->handler(&req, &out);
	psk_unpin_search_path();
	PG_RETURN_TEXT_P(json_result(&out));
}

static const HttpRoute *
http_route(const char *name)
{
	for (const HttpRoute *r = http_routes; r->name != NULL; r++)
		if (strcmp(r->name, name) == 0)
			return r;
	ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION),
					errmsg("psk: no HTTP route \"%s\"", name)));
	return NULL; /* not reached */
}

void
http_request(FunctionCallInfo fcinfo, const char *name, HttpRequest *req)
{
	memset(req, 0, sizeof(*req));
	req->route = http_route(name);
	http_check_caller(fcinfo, req);
	http_read_fields(fcinfo, req);
}

/*
 * psk.http_<name>(token text, body text, query jsonb) RETURNS json: every
 * route function, dispatched on its own name.  The route is looked up once
 * per call site (fn_extra points into the static table).
 */
Datum
psk_http(PG_FUNCTION_ARGS)
{
	const HttpRoute *route = fcinfo->flinfo->fn_extra;

	if (route == NULL)
	{
		char *proname = get_func_name(fcinfo->flinfo->fn_oid);

		if (proname == NULL || strncmp(proname, "http_", 5) != 0)
			elog(ERROR, "psk: psk_http called as \"%s\"",
				 proname ? proname : "?");
		route = http_route(proname + 5);
		fcinfo->flinfo->fn_extra = unconstify(HttpRoute *, route);
	}
	return http_run(fcinfo, route);
}

Datum
psk_http_reserve(PG_FUNCTION_ARGS)
{
	return http_run(fcinfo, http_route("reserve"));
}

Datum
psk_http_release(PG_FUNCTION_ARGS)
{
	return http_run(fcinfo, http_route("release"));
}

Datum
psk_http_confirm(PG_FUNCTION_ARGS)
{
	return http_run(fcinfo, http_route("confirm"));
}

Datum
psk_http_me(PG_FUNCTION_ARGS)
{
	return http_run(fcinfo, http_route("me"));
}

Datum
psk_http_my_codes(PG_FUNCTION_ARGS)
{
	return http_run(fcinfo, http_route("my_codes"));
}

/*
 * The fields, for the handlers.
 */
static HttpValue *
http_value(HttpRequest *req, const char *name, HttpType type)
{
	const HttpField *fields = req->route->fields;

	for (int i = 0; i < HTTP_MAX_FIELDS && fields[i].name; i++)
		if (strcmp(fields[i].name, name) == 0)
		{
			Assert(fields[i].type == type || type == HTTP_TEXT);
			return &req->values[i];
		}
	elog(ERROR, "psk: route \"%s\" has no field \"%s\"", req->route->name,
		 name);
	return NULL; /* not reached */
}

char *
http_text(HttpRequest *req, const char *name)
{
	HttpValue *v = http_value(req, name, HTTP_TEXT);

	return v->given ? v->text : NULL;
}

bool
http_int(HttpRequest *req, const char *name, int64 *value)
{
	HttpValue *v = http_value(req, name, HTTP_INT);

	*value = v->integer;
	return v->given;
}

bool
http_bool(HttpRequest *req, const char *name, bool *value)
{
	HttpValue *v = http_value(req, name, HTTP_BOOL);

	*value = v->boolean;
	return v->given;
}

pg_uuid_t *
http_uuid(HttpRequest *req, const char *name)
{
	HttpValue *v = http_value(req, name, HTTP_UUID);

	return v->given ? v->uuid : NULL;
}

bool
http_time(HttpRequest *req, const char *name, TimestampTz *value)
{
	HttpValue *v = http_value(req, name, HTTP_TIME);

	*value = v->time;
	return v->given;
}

Interval *
http_interval(HttpRequest *req, const char *name)
{
	HttpValue *v = http_value(req, name, HTTP_INTERVAL);

	return v->given ? v->interval : NULL;
}

ArrayType *
http_text_array(HttpRequest *req, const char *name)
{
	HttpValue *v = http_value(req, name, HTTP_TEXT_ARRAY);

	return v->given ? v->array : NULL;
}

/*
 * Arguments of the psk_* SQL functions.
 */
static int
next_arg(HttpArgs *args, bool isnull)
{
	if (args->n >= PSK_MAX_ARGS)
		elog(ERROR, "psk: too many arguments");
	args->nulls[args->n] = isnull;
	args->values[args->n] = (Datum) 0;
	return args->n++;
}

void
http_arg_text(HttpArgs *args, const char *value)
{
	int i = next_arg(args, value == NULL);

	if (value != NULL)
		args->values[i] = CStringGetTextDatum(value);
}

void
http_arg_int4(HttpArgs *args, int32 value)
{
	args->values[next_arg(args, false)] = Int32GetDatum(value);
}

void
http_arg_int8(HttpArgs *args, int64 value)
{
	args->values[next_arg(args, false)] = Int64GetDatum(value);
}

void
http_arg_bool(HttpArgs *args, bool value)
{
	args->values[next_arg(args, false)] = BoolGetDatum(value);
}

void
http_arg_time(HttpArgs *args, TimestampTz value, bool given)
{
	int i = next_arg(args, !given);

	if (given)
		args->values[i] = TimestampTzGetDatum(value);
}

void
http_arg_interval(HttpArgs *args, Interval *value)
{
	int i = next_arg(args, value == NULL);

	if (value != NULL)
		args->values[i] = IntervalPGetDatum(value);
}

void
http_arg_array(HttpArgs *args, ArrayType *value)
{
	int i = next_arg(args, value == NULL);

	if (value != NULL)
		args->values[i] = PointerGetDatum(value);
}

void
http_arg_null(HttpArgs *args)
{
	next_arg(args, true);
}

/*
 * The schema of the psk_* functions (CREATE EXTENSION's target), quoted;
 * looked up once per backend.
 */
static const char *
psk_function_schema(void)
{
	static char	   *schema = NULL;
	static PskQuery find_schema = {
		"SELECT pg_catalog.quote_ident(n.nspname)"
		" FROM pg_catalog.pg_extension e"
		" JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
		" WHERE e.extname = 'psk'",
		0,
		{ InvalidOid },
		false
	};

	if (schema == NULL)
	{
		char *name;

		if (psk_execute(&find_schema, NULL, NULL, true) != 1)
			elog(ERROR, "psk: extension psk is not installed");
		name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		schema = MemoryContextStrdup(TopMemoryContext, name);
	}
	return schema;
}

uint64
http_spi(PskQuery *query, HttpArgs *args)
{
	/* the first call puts the schema into the statement, which is kept */
	if (query->plan == NULL && strstr(query->sql, "@extschema@") != NULL)
	{
		const char	  *schema = psk_function_schema();
		StringInfoData sql;
		const char	  *p = query->sql;
		const char	  *at;

		initStringInfo(&sql);
		while ((at = strstr(p, "@extschema@")) != NULL)
		{
			appendBinaryStringInfo(&sql, p, at - p);
			appendStringInfoString(&sql, schema);
			p = at + strlen("@extschema@");
		}
		appendStringInfoString(&sql, p);
		query->sql = MemoryContextStrdup(TopMemoryContext, sql.data);
		pfree(sql.data);
	}
	Assert(args->n == query->nargs);
	return psk_execute(query, args->values, args->nulls, false);
}
