/*
 * http_routes.c
 *		The HTTP routes: one row each (name, role, fields, handler), and the
 *		handlers.
 *
 * A handler runs once the adapter (http.c) has checked the caller and read
 * the fields; it calls the engine and writes the reply.  The hot routes,
 * run on every reservation cycle (reserve, confirm, renew, release, me,
 * my_codes), call the engine's C API; the others call the psk_* SQL functions
 *through kept plans (http_spi), which check their arguments themselves.
 */
#include "psk.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "bulk.h"
#include "http.h"
#include "lists.h"

#define TEXT_BODY(name)            \
	{                              \
		name, HTTP_TEXT, HTTP_BODY \
	}
#define TEXT_QUERY(name)            \
	{                               \
		name, HTTP_TEXT, HTTP_QUERY \
	}
/* admin routes take scalars from the body or the query string */
#define TEXT_EITHER(name)                       \
	{                                           \
		name, HTTP_TEXT, HTTP_BODY | HTTP_QUERY \
	}
#define BOOL_EITHER(name)                       \
	{                                           \
		name, HTTP_BOOL, HTTP_BODY | HTTP_QUERY \
	}
#define INT_QUERY(name)            \
	{                              \
		name, HTTP_INT, HTTP_QUERY \
	}
#define USER_ID                                                    \
	{                                                              \
		"id", HTTP_INT, HTTP_BODY | HTTP_QUERY | HTTP_REQUIRED, 1, \
			PG_INT64_MAX                                           \
	}

/* Run a statement and write its rows as an array of objects. */
static void
write_rows(JsonOut *out, PskQuery *query, HttpArgs *args,
		   const char *const *keys)
{
	uint64 n = http_spi(query, args);

	json_array_start(out);
	for (uint64 row = 0; row < n; row++)
		json_spi_row(out, row, keys);
	json_array_end(out);
}

/* Run a statement of one row and write it as an object. */
static void
write_row(JsonOut *out, PskQuery *query, HttpArgs *args,
		  const char *const *keys)
{
	if (http_spi(query, args) == 0)
		json_null(out);
	else
		json_spi_row(out, 0, keys);
}

static void
write_message(JsonOut *out, const char *key, const char *message)
{
	json_object_start(out);
	json_key(out, key);
	json_string(out, message);
	json_object_end(out);
}

/*
 * POST /auth/login {username, password}, from JSON or the OAuth2 form.
 * locked_out says "try again in N seconds"; the shim sends N as Retry-After.
 */
static void
route_login(HttpRequest *req, JsonOut *out)
{
	static PskQuery login = { "SELECT access_token, token_type, expires_in"
							  "  FROM @extschema@.psk_login($1, $2)",
							  2,
							  { TEXTOID, TEXTOID } };
	static const char *const keys[] = { "access_token", "token_type",
										"expires_in", NULL };
	HttpArgs				 args = { 0 };

	http_arg_text(&args, http_text(req, "username"));
	http_arg_text(&args, http_text(req, "password"));
	SPI_connect();
	write_row(out, &login, &args, keys);
	SPI_finish();
}

/* GET or POST /auth/me, for any live session (admins too). */
static void
route_me(HttpRequest *req, JsonOut *out)
{
	json_object_start(out);
	json_key(out, "id");
	json_int64(out, req->who.id);
	json_key(out, "user_name");
	json_string(out, req->who.user_name);
	json_key(out, "team_name");
	json_string(out, req->who.team_name);
	json_key(out, "contact_email");
	json_string(out, req->who.email);
	json_key(out, "is_admin");
	json_bool(out, req->who.is_admin);
	json_key(out, "pool");
	json_string(out, req->who.pool);
	json_object_end(out);
}

/* POST /auth/logout */
static void
route_logout(HttpRequest *req, JsonOut *out)
{
	static PskQuery logout = { "SELECT FROM @extschema@.psk_logout($1)",
							   1,
							   { TEXTOID } };
	HttpArgs		args = { 0 };

	http_arg_text(&args, text_to_cstring(req->token));
	SPI_connect();
	http_spi(&logout, &args);
	SPI_finish();
	write_message(out, "msg", "logged out");
}

static void
write_reserved(JsonOut *out, const PskReserved *r)
{
	json_object_start(out);
	json_key(out, "code");
	json_string(out, r->code);
	json_key(out, "code_type");
	json_string(out, r->pool);
	json_key(out, "reservation_token");
	json_uuid(out, &r->token);
	json_key(out, "reserved_at");
	json_timestamptz(out, r->reserved_at);
	json_key(out, "expires_at");
	if (r->expires)
		json_timestamptz(out, r->expires_at);
	else
		json_null(out);
	json_object_end(out);
}

/*
 * POST /users/reserve {tester_name, country?, code_type?, how_many?}, with
 * the header Idempotency-Key as psk_reserve's request_id.  Without how_many
 * the reply is the code; with it, even 1, {"codes": [...]}.
 */
static void
route_reserve(HttpRequest *req, JsonOut *out)
{
	PskReserveArgs args;
	int64		   how_many;
	bool		   many = http_int(req, "how_many", &how_many);
	char		  *key = http_text(req, "Idempotency-Key");
	PskReserved	  *got;
	int			   n;

	args.tester = http_text(req, "tester_name");
	args.country = http_text(req, "country");
	args.code_type = http_text(req, "code_type");
	args.how_many = many ? how_many : 1;
	args.request_id = key;
	args.request_id_name = "Idempotency-Key"; /* its errors name the header */
	n = psk_reserve_codes(&req->caller, &args, &got);

	if (!many)
	{
		write_reserved(out, &got[0]);
		return;
	}
	json_object_start(out);
	json_key(out, "codes");
	json_array_start(out);
	for (int i = 0; i < n; i++)
		write_reserved(out, &got[i]);
	json_array_end(out);
	json_object_end(out);
}

/* POST /users/confirm {code, reservation_token} */
static void
route_confirm(HttpRequest *req, JsonOut *out)
{
	char		*code;
	pg_uuid_t	*token = http_uuid(req, "reservation_token");
	PskConfirmed confirmed;

	/* psk_confirm's own argument checks, in its order */
	code =
		psk_check_text(http_text(req, "code"), "code", true, PSK_MAX_CODE_LEN);
	if (token == NULL)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("reservation_token is required")));
	psk_confirm_code(&req->caller, code, token, &confirmed);

	json_object_start(out);
	json_key(out, "code");
	json_string(out, confirmed.code);
	json_key(out, "status");
	json_string(out, confirmed.status);
	json_object_end(out);
}

/* POST /users/renew {code, reservation_token}: the holder's heartbeat */
static void
route_renew(HttpRequest *req, JsonOut *out)
{
	PskRenewed renewed;

	psk_renew_code(&req->caller, http_text(req, "code"),
				   http_uuid(req, "reservation_token"), &renewed);
	json_object_start(out);
	json_key(out, "code");
	json_string(out, renewed.code);
	json_key(out, "status");
	json_string(out, renewed.status);
	json_key(out, "expires_at");
	if (renewed.expires)
		json_timestamptz(out, renewed.expires_at);
	else
		json_null(out);
	json_object_end(out);
}

/*
 * POST /users/release {code, clearance_id?, note?}.  The reply echoes the
 * code and the clearance id as sent.
 */
static void
route_release(HttpRequest *req, JsonOut *out)
{
	char	   *code = http_text(req, "code");
	char	   *clearance = http_text(req, "clearance_id");
	char	   *checked_code;
	char	   *checked_clearance;
	char	   *note;
	PskReleased released;

	/*
	 * psk_release's argument checks after the caller, in its order (one
	 * statement each: C leaves the order of a call's arguments open).
	 */
	checked_code = psk_check_text(code, "code", true, PSK_MAX_CODE_LEN);
	checked_clearance =
		psk_check_text(clearance, "clearance_id", false, PSK_MAX_NAME_LEN);
	note =
		psk_check_text(http_text(req, "note"), "note", false, PSK_MAX_TEXT_LEN);
	psk_release_code(&req->caller, checked_code, checked_clearance, note,
					 &released);

	json_object_start(out);
	json_key(out, "released");
	json_string(out, released.code);
	json_key(out, "requested");
	json_string(out, code);
	json_key(out, "clearance_id");
	json_string(out, clearance);
	json_object_end(out);
}

/*
 * POST /users/mark-non-usable and POST /admin/codes/mark-non-usable
 * {code, reason}: the holder, or an admin for any code.
 */
static void
route_mark_non_usable(HttpRequest *req, JsonOut *out)
{
	static PskQuery mark = {
		"SELECT code, status FROM @extschema@.psk_mark_non_usable($1, $2, $3)",
		3,
		{ TEXTOID, TEXTOID, TEXTOID }
	};
	static const char *const keys[] = { "code", "status", NULL };
	HttpArgs				 args = { 0 };

	http_arg_text(&args, req->who.email);
	http_arg_text(&args, http_text(req, "code"));
	http_arg_text(&args, http_text(req, "reason"));
	SPI_connect();
	write_row(out, &mark, &args, keys);
	SPI_finish();
}

/* POST /users/comment {code, comment} */
static void
route_comment(HttpRequest *req, JsonOut *out)
{
	static PskQuery comment = {
		"SELECT code, note FROM @extschema@.psk_comment($1, $2, $3)",
		3,
		{ TEXTOID, TEXTOID, TEXTOID }
	};
	HttpArgs args = { 0 };

	http_arg_text(&args, req->who.email);
	http_arg_text(&args, http_text(req, "code"));
	http_arg_text(&args, http_text(req, "comment"));
	SPI_connect();
	http_spi(&comment, &args);
	json_object_start(out);
	json_key(out, "code");
	json_string(out,
				SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	json_key(out, "comment");
	json_string(out,
				SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	json_key(out, "message");
	json_string(out, "comment saved");
	json_object_end(out);
	SPI_finish();
}

/* GET /users/my: the caller's held codes, as psk_my_codes lists them. */
static void
route_my_codes(HttpRequest *req, JsonOut *out)
{
	static const char *const keys[] = { "code",
										"code_type",
										"status",
										"tester_name",
										"requested_at",
										"expires_at",
										"reservation_token",
										"note",
										"countries",
										"regions",
										NULL };
	static const Oid		 types[HELD_NCOLS] = {
				TEXTOID,		TEXTOID, TEXTOID, TEXTOID,		TIMESTAMPTZOID,
				TIMESTAMPTZOID, UUIDOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID
	};
	PskHeldCode *held;
	int			 n = psk_held_codes(req->who.id, &held);

	json_array_start(out);
	for (int i = 0; i < n; i++)
	{
		json_object_start(out);
		for (int col = 0; col < HELD_NCOLS; col++)
		{
			json_key(out, keys[col]);
			json_datum(out, held[i].values[col], types[col],
					   held[i].nulls[col]);
		}
		json_object_end(out);
	}
	json_array_end(out);
}

/*
 * A log item's logged_at as the old service's pages showed it,
 * "06-12-2026 09:41:07 AM", in the zone of psk.display_timezone.
 */
#define LOGGED_AT_STR                                      \
	"pg_catalog.to_char(logged_at AT TIME ZONE"            \
	" pg_catalog.current_setting('psk.display_timezone')," \
	" 'DD-MM-YYYY HH12:MI:SS AM')"

/* GET /users/logs: the caller's last 20 audit rows. */
static void
route_user_logs(HttpRequest *req, JsonOut *out)
{
	static PskQuery			 user_log = { "SELECT id, logged_at, " LOGGED_AT_STR
										  ", action, code, tester_name,"
												   "       country, region, note"
												   "  FROM @extschema@.psk_user_log($1, 20)",
										  1,
										  { TEXTOID } };
	static const char *const keys[] = { "id",	   "logged_at", "logged_at_str",
										"action",  "code",		"tester_name",
										"country", "region",	"note",
										NULL };
	HttpArgs				 args = { 0 };

	http_arg_text(&args, req->who.email);
	SPI_connect();
	json_object_start(out);
	json_key(out, "logs");
	write_rows(out, &user_log, &args, keys);
	json_object_end(out);
	SPI_finish();
}

/* GET /users/recent-releases ?n=5&code_type= */
static void
route_recent_releases(HttpRequest *req, JsonOut *out)
{
	static PskQuery recent = {
		"SELECT code, code_type, released_at, released_by, note"
		"  FROM @extschema@.psk_recent_releases($1, $2)",
		2,
		{ INT4OID, TEXTOID }
	};
	static const char *const keys[] = { "code",		   "code_type",
										"released_at", "released_by",
										"note",		   NULL };
	HttpArgs				 args = { 0 };
	int64					 n;

	/* the query-string check kept n within int4 */
	http_arg_int4(&args, http_int(req, "n", &n) ? (int32) n : 5);
	http_arg_text(&args, http_text(req, "code_type"));
	SPI_connect();
	write_rows(out, &recent, &args, keys);
	SPI_finish();
}

/* GET /users/countries and GET /admin/countries */
static void
route_countries(HttpRequest *req, JsonOut *out)
{
	static PskQuery countries = {
		"SELECT id, country, region FROM @extschema@.psk_countries()", 0
	};
	static const char *const keys[] = { "id", "country", "region", NULL };
	HttpArgs				 args = { 0 };

	SPI_connect();
	write_rows(out, &countries, &args, keys);
	SPI_finish();
}

/*
 * GET /admin/count: the totals by status, then the same by pool; pools and
 * statuses as lists.h has them, a status's key its name in lower case.
 */
static char *
status_key(const char *status)
{
	char *key = pstrdup(status);

	for (char *c = key; *c; c++)
		*c = pg_ascii_tolower((unsigned char) *c);
	return key;
}

static void
write_counts(JsonOut *out, const int64 *n)
{
	int64 total = 0;

	for (int s = 0; s < psk_statuses.n; s++)
		total += n[s];
	json_key(out, "total");
	json_int64(out, total);
	for (int s = 0; s < psk_statuses.n; s++)
	{
		json_key(out, status_key(psk_statuses.names[s]));
		json_int64(out, n[s]);
	}
}

static void
route_count(HttpRequest *req, JsonOut *out)
{
	static PskQuery counts = {
		"SELECT code_type, status, n FROM @extschema@.psk_counts()", 0
	};
	HttpArgs args = { 0 };
	int		 nstatuses = psk_statuses.n;
	int64	*n = palloc0(sizeof(int64) * psk_pools.n * nstatuses);
	int64	*all = palloc0(sizeof(int64) * nstatuses);
	uint64	 rows;

	SPI_connect();
	rows = http_spi(&counts, &args);
	for (uint64 row = 0; row < rows; row++)
	{
		char *pool = psk_result_cstring(row, 1);
		char *status = psk_result_cstring(row, 2);
		bool  isnull;
		int64 count = DatumGetInt64(psk_result(row, 3, &isnull));

		for (int p = 0; p < psk_pools.n; p++)
			for (int s = 0; s < nstatuses; s++)
				if (strcmp(pool, psk_pools.names[p]) == 0 &&
					strcmp(status, psk_statuses.names[s]) == 0)
				{
					n[p * nstatuses + s] += count;
					all[s] += count;
				}
	}
	SPI_finish();

	json_object_start(out);
	write_counts(out, all);
	json_key(out, "by_pool");
	json_object_start(out);
	for (int p = 0; p < psk_pools.n; p++)
	{
		json_key(out, psk_pools.names[p]);
		json_object_start(out);
		write_counts(out, n + p * nstatuses);
		json_object_end(out);
	}
	json_object_end(out);
	json_object_end(out);
}

/* One user as create and update return it; inside SPI. */
static void
write_user(JsonOut *out, int64 id)
{
	static PskQuery user = {
		"SELECT id, user_name, team_name, contact_email, is_admin, pool"
		"  FROM @extschema@.psk_users() WHERE id = $1",
		1,
		{ INT8OID }
	};
	static const char *const keys[] = { "id",		 "user_name",
										"team_name", "contact_email",
										"is_admin",	 "pool",
										NULL };
	HttpArgs				 args = { 0 };

	http_arg_int8(&args, id);
	write_row(out, &user, &args, keys);
}

/* POST /admin/users/create {team_name, user_name, contact_email, password,
 * is_admin?, pool?} */
static void
route_create_user(HttpRequest *req, JsonOut *out)
{
	static PskQuery create = {
		"SELECT id FROM @extschema@.psk_create_user($1, $2, $3, $4, $5, $6, $7)",
		7,
		{ TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID }
	};
	HttpArgs args = { 0 };
	bool	 is_admin;
	bool	 isnull;
	int64	 id;

	http_arg_text(&args, req->who.email);
	http_arg_text(&args, http_text(req, "team_name"));
	http_arg_text(&args, http_text(req, "user_name"));
	http_arg_text(&args, http_text(req, "contact_email"));
	http_arg_text(&args, http_text(req, "password"));
	http_arg_bool(&args, http_bool(req, "is_admin", &is_admin) && is_admin);
	http_arg_text(&args, http_text(req, "pool"));
	SPI_connect();
	http_spi(&create, &args);
	id = DatumGetInt64(psk_result(0, 1, &isnull));
	write_user(out, id);
	SPI_finish();
}

/* GET /admin/users/get-users */
static void
route_users(HttpRequest *req, JsonOut *out)
{
	static PskQuery users = {
		"SELECT id, user_name, team_name, contact_email, is_admin, pool,"
		"       reserved_count, coalesce(reserved_codes, '{}')"
		"  FROM @extschema@.psk_users()",
		0
	};
	static const char *const keys[] = {
		"id",		"user_name", "team_name",	   "contact_email",
		"is_admin", "pool",		 "reserved_count", "reserved_codes",
		NULL
	};
	HttpArgs args = { 0 };

	SPI_connect();
	write_rows(out, &users, &args, keys);
	SPI_finish();
}

/*
 * PATCH /admin/users/update {id, and any of team_name, user_name,
 * contact_email, password, is_admin, pool}: absent is unchanged.
 */
static void
route_update_user(HttpRequest *req, JsonOut *out)
{
	static PskQuery update = {
		"SELECT id FROM @extschema@.psk_update_user($1, $2, $3, $4, $5, $6, $7, $8)",
		8,
		{ TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID,
		  TEXTOID }
	};
	HttpArgs args = { 0 };
	int64	 id;
	bool	 is_admin;
	bool	 isnull;

	http_arg_text(&args, req->who.email);
	http_int(req, "id", &id);
	http_arg_int8(&args, id);
	http_arg_text(&args, http_text(req, "team_name"));
	http_arg_text(&args, http_text(req, "user_name"));
	http_arg_text(&args, http_text(req, "contact_email"));
	http_arg_text(&args, http_text(req, "password"));
	if (http_bool(req, "is_admin", &is_admin))
		http_arg_bool(&args, is_admin);
	else
		http_arg_null(&args);
	http_arg_text(&args, http_text(req, "pool"));
	SPI_connect();
	http_spi(&update, &args);
	id = DatumGetInt64(psk_result(0, 1, &isnull));
	write_user(out, id);
	SPI_finish();
}

/* DELETE /admin/users/delete {id} or ?id= */
static void
route_delete_user(HttpRequest *req, JsonOut *out)
{
	static PskQuery delete = {
		"SELECT id FROM @extschema@.psk_delete_user($1, $2)",
		2,
		{ TEXTOID, INT8OID }
	};
	HttpArgs args = { 0 };
	int64	 id;
	bool	 isnull;

	http_arg_text(&args, req->who.email);
	http_int(req, "id", &id);
	http_arg_int8(&args, id);
	SPI_connect();
	http_spi(&delete, &args);
	id = DatumGetInt64(psk_result(0, 1, &isnull));
	SPI_finish();
	write_message(out, "message",
				  psprintf("user " INT64_FORMAT " deleted", id));
}

/*
 * POST /admin/codes/add {code_type, countries?, codes}: psk_add_codes'
 * outcomes, in its order, sorted into three lists.
 */
static void
route_add_codes(HttpRequest *req, JsonOut *out)
{
	static PskQuery add = {
		"SELECT code, outcome FROM @extschema@.psk_add_codes($1, $2, $3, $4)",
		4,
		{ TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID }
	};
	static const char unknown[] = "unknown_country:";
	HttpArgs		  args = { 0 };
	uint64			  n;

	http_arg_text(&args, req->who.email);
	http_arg_text(&args, http_text(req, "code_type"));
	http_arg_array(&args, http_text_array(req, "codes"));
	http_arg_array(&args, http_text_array(req, "countries"));
	SPI_connect();
	n = http_spi(&add, &args);

	json_object_start(out);
	json_key(out, "inserted");
	json_array_start(out);
	for (uint64 row = 0; row < n; row++)
	{
		char *code = psk_result_cstring(row, 1);

		if (code != NULL && strcmp(psk_result_cstring(row, 2), "inserted") == 0)
			json_string(out, code);
	}
	json_array_end(out);

	json_key(out, "failed");
	json_array_start(out);
	for (uint64 row = 0; row < n; row++)
	{
		char *code = psk_result_cstring(row, 1);
		char *outcome = psk_result_cstring(row, 2);

		if (code != NULL && strcmp(outcome, "inserted") != 0)
		{
			json_array_start(out);
			json_string(out, code);
			json_string(out, outcome);
			json_array_end(out);
		}
	}
	json_array_end(out);

	json_key(out, "unknown_countries");
	json_array_start(out);
	for (uint64 row = 0; row < n; row++)
	{
		char *outcome = psk_result_cstring(row, 2);

		if (psk_result_cstring(row, 1) == NULL &&
			strncmp(outcome, unknown, strlen(unknown)) == 0)
			json_string(out, outcome + strlen(unknown));
	}
	json_array_end(out);
	json_object_end(out);
	SPI_finish();
}

/*
 * GET /admin/codes/all: every code, by pool and status, in code order.
 * psk_codes pages by code (keyset); 10000 is its largest page.
 */
#define CODES_PAGE 10000

static void
route_codes_all(HttpRequest *req, JsonOut *out)
{
	static PskQuery page = {
		"SELECT code, code_type, status FROM @extschema@.psk_codes(NULL, NULL, $1, 10000)",
		1,
		{ TEXTOID }
	};
	/* the order of the reply's lists (the contract's), in each pool */
	static const char *const listed[] = { "RESERVED", "IN_USE", "CAN_BE_USED",
										  "NON_USABLE" };
	JsonOut(*lists)[lengthof(listed)] = palloc(sizeof(*lists) * psk_pools.n);
	char  *after = NULL;
	uint64 n;

	SPI_connect();
	for (int p = 0; p < psk_pools.n; p++)
		for (size_t s = 0; s < lengthof(listed); s++)
		{
			json_init(&lists[p][s]);
			json_array_start(&lists[p][s]);
		}
	do
	{
		HttpArgs args = { 0 };

		http_arg_text(&args, after);
		n = http_spi(&page, &args);
		for (uint64 row = 0; row < n; row++)
		{
			char *code = psk_result_cstring(row, 1);
			char *pool = psk_result_cstring(row, 2);
			char *status = psk_result_cstring(row, 3);

			for (int p = 0; p < psk_pools.n; p++)
				for (size_t s = 0; s < lengthof(listed); s++)
					if (strcmp(pool, psk_pools.names[p]) == 0 &&
						strcmp(status, listed[s]) == 0)
						json_string(&lists[p][s], code);
			after = code;
		}
		SPI_freetuptable(SPI_tuptable);
	} while (n == CODES_PAGE);

	json_object_start(out);
	for (int p = 0; p < psk_pools.n; p++)
	{
		json_key(out, psk_pools.names[p]);
		json_object_start(out);
		for (size_t s = 0; s < lengthof(listed); s++)
		{
			json_key(out, status_key(listed[s]));
			json_array_end(&lists[p][s]);
			json_raw(out, lists[p][s].buf.data, lists[p][s].buf.len);
		}
		json_object_end(out);
	}
	json_object_end(out);
	SPI_finish();
}

/*
 * GET /admin/codes ?code_type&status&after&page_size: a page, and the code
 * to ask for the next one after, when another code follows.
 */
static void
route_codes(HttpRequest *req, JsonOut *out)
{
	static PskQuery codes = {
		"SELECT code, code_type, status, holder, tester_name, reserved_at,"
		"       expires_at, released_at, note, countries"
		"  FROM @extschema@.psk_codes($1, $2, $3, $4)",
		4,
		{ TEXTOID, TEXTOID, TEXTOID, INT4OID }
	};
	static PskQuery more = { "SELECT FROM @extschema@.psk_codes($1, $2, $3, 1)",
							 3,
							 { TEXTOID, TEXTOID, TEXTOID } };
	static const char *const keys[] = {
		"code",		   "code_type",	  "status",		"holder",
		"tester_name", "reserved_at", "expires_at", "released_at",
		"note",		   "countries",	  NULL
	};
	HttpArgs args = { 0 };
	int64	 size;
	uint64	 n;
	char	*last = NULL;

	http_arg_text(&args, http_text(req, "code_type"));
	http_arg_text(&args, http_text(req, "status"));
	http_arg_text(&args, http_text(req, "after"));
	/* 1000: psk_codes' default page; the check kept size within int4 */
	http_arg_int4(&args,
				  http_int(req, "page_size", &size) ? (int32) size : 1000);

	SPI_connect();
	n = http_spi(&codes, &args);
	json_object_start(out);
	json_key(out, "codes");
	json_array_start(out);
	for (uint64 row = 0; row < n; row++)
		json_spi_row(out, row, keys);
	json_array_end(out);
	if (n > 0)
	{
		HttpArgs next = { 0 };

		last = psk_result_cstring(n - 1, 1);
		http_arg_text(&next, http_text(req, "code_type"));
		http_arg_text(&next, http_text(req, "status"));
		http_arg_text(&next, last);
		if (http_spi(&more, &next) == 0)
			last = NULL;
	}
	json_key(out, "next_after");
	json_string(out, last);
	json_object_end(out);
	SPI_finish();
}

/*
 * GET /admin/codes/overdue ?older_than (a PostgreSQL interval, default
 * 7 days)&code_type: the long holds, longest first.
 */
static void
route_overdue(HttpRequest *req, JsonOut *out)
{
	static PskQuery overdue = {
		"SELECT code, code_type, status, holder, tester_name, reserved_at,"
		"       expires_at, held_for"
		"  FROM @extschema@.psk_overdue(coalesce($1, interval '7 days'), $2)",
		2,
		{ INTERVALOID, TEXTOID }
	};
	static const char *const keys[] = {
		"code",		   "code_type",	 "status",	 "holder", "tester_name",
		"reserved_at", "expires_at", "held_for", NULL
	};
	HttpArgs args = { 0 };

	http_arg_interval(&args, http_interval(req, "older_than"));
	http_arg_text(&args, http_text(req, "code_type"));
	SPI_connect();
	json_object_start(out);
	json_key(out, "codes");
	write_rows(out, &overdue, &args, keys);
	json_object_end(out);
	SPI_finish();
}

/* DELETE /admin/codes/{code} */
static void
route_delete_code(HttpRequest *req, JsonOut *out)
{
	static PskQuery delete = {
		"SELECT code FROM @extschema@.psk_delete_code($1, $2)",
		2,
		{ TEXTOID, TEXTOID }
	};
	HttpArgs args = { 0 };
	char	*code;

	http_arg_text(&args, req->who.email);
	http_arg_text(&args, http_text(req, "code"));
	SPI_connect();
	http_spi(&delete, &args);
	code = psk_result_cstring(0, 1);
	SPI_finish();
	write_message(out, "message", psprintf("code %s deleted", code));
}

/* POST /admin/codes/disassociate {code, note?} */
static void
route_disassociate(HttpRequest *req, JsonOut *out)
{
	static PskQuery disassociate = {
		"SELECT code, previous_holder FROM @extschema@.psk_disassociate($1, $2, $3)",
		3,
		{ TEXTOID, TEXTOID, TEXTOID }
	};
	static const char *const keys[] = { "code", "previous_holder", NULL };
	HttpArgs				 args = { 0 };

	http_arg_text(&args, req->who.email);
	http_arg_text(&args, http_text(req, "code"));
	http_arg_text(&args, http_text(req, "note"));
	SPI_connect();
	write_row(out, &disassociate, &args, keys);
	SPI_finish();
}

/* POST /admin/codes/restore {code} */
static void
route_restore(HttpRequest *req, JsonOut *out)
{
	static PskQuery restore = {
		"SELECT code, status FROM @extschema@.psk_restore($1, $2)",
		2,
		{ TEXTOID, TEXTOID }
	};
	static const char *const keys[] = { "code", "status", NULL };
	HttpArgs				 args = { 0 };

	http_arg_text(&args, req->who.email);
	http_arg_text(&args, http_text(req, "code"));
	SPI_connect();
	write_row(out, &restore, &args, keys);
	SPI_finish();
}

/*
 * GET /admin/logs ?page&page_size&code&user_name&action&start_date&end_date:
 * a page of psk_log and the count of every matching row.
 */
static void
route_logs(HttpRequest *req, JsonOut *out)
{
	static PskQuery log = {
		"SELECT id, logged_at, " LOGGED_AT_STR ", action, code, user_name,"
		"       contact_email, tester_name, country, region, note, total_count,"
		"       total_is_estimate"
		"  FROM @extschema@.psk_log($1, $2, $3, $4, $5, $6, $7)",
		7,
		{ INT4OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
		  TIMESTAMPTZOID }
	};
	static const char *const keys[] = {
		"id",	   "logged_at", "logged_at_str", "action",
		"code",	   "user_name", "contact_email", "tester_name",
		"country", "region",	"note",			 NULL
	};
	HttpArgs	args = { 0 };
	int64		page;
	int64		size;
	TimestampTz since;
	TimestampTz until;
	bool		has_since = http_time(req, "start_date", &since);
	bool		has_until = http_time(req, "end_date", &until);
	int64		total = 0;
	bool		estimate = false;
	uint64		n;
	bool		isnull;

	/* a date alone as the end means that whole day: until is the next midnight
	 */
	if (has_since && has_until &&
		(since > until ||
		 (since == until && http_is_date(http_text(req, "end_date")))))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("start_date is after end_date")));

	/* the query-string checks kept page and size within int4 */
	http_arg_int4(&args, http_int(req, "page", &page) ? (int32) page : 1);
	http_arg_int4(&args, http_int(req, "page_size", &size) ? (int32) size : 20);
	http_arg_text(&args, http_text(req, "code"));
	http_arg_text(&args, http_text(req, "user_name"));
	http_arg_text(&args, http_text(req, "action"));
	http_arg_time(&args, since, has_since);
	http_arg_time(&args, until, has_until);

	SPI_connect();
	n = http_spi(&log, &args);
	if (n > 0)
	{
		total = DatumGetInt64(psk_result(0, 12, &isnull));
		estimate = DatumGetBool(psk_result(0, 13, &isnull));
	}
	json_object_start(out);
	json_key(out, "total_count");
	if (n == 0)
	{
		/* a page past the end is empty; the total still counts */
		args.values[0] = Int32GetDatum(1);
		args.values[1] = Int32GetDatum(1);
		if (http_spi(&log, &args) > 0)
		{
			total = DatumGetInt64(psk_result(0, 12, &isnull));
			estimate = DatumGetBool(psk_result(0, 13, &isnull));
		}
		n = 0;
	}
	json_int64(out, total);
	json_key(out, "total_is_estimate");
	json_bool(out, estimate);
	json_key(out, "logs");
	json_array_start(out);
	for (uint64 row = 0; row < n; row++)
		json_spi_row(out, row, keys);
	json_array_end(out);
	json_object_end(out);
	SPI_finish();
}

/* GET /healthz: the database answers */
static void
route_healthz(HttpRequest *req, JsonOut *out)
{
	write_message(out, "status", "ok");
}

/*
 * The routes, by the name of their SQL function (psk.http_<name>); the
 * shim's table (shim/routes.c) maps methods and paths to them.
 */
const HttpRoute http_routes[] = {
	{ "login",
	  HTTP_PUBLIC,
	  route_login,
	  { { "username", HTTP_TEXT, HTTP_BODY | HTTP_REQUIRED },
		{ "password", HTTP_TEXT, HTTP_BODY | HTTP_REQUIRED } } },
	{ "me", HTTP_SESSION, route_me },
	{ "logout", HTTP_SESSION, route_logout },

	{ "reserve",
	  HTTP_USER,
	  route_reserve,
	  { TEXT_BODY("tester_name"),
		TEXT_BODY("country"),
		TEXT_BODY("code_type"),
		{ "how_many", HTTP_INT, HTTP_BODY },
		{ "Idempotency-Key", HTTP_TEXT, HTTP_HEADER } } },
	{ "renew",
	  HTTP_USER,
	  route_renew,
	  { TEXT_BODY("code"), { "reservation_token", HTTP_UUID, HTTP_BODY } } },
	{ "confirm",
	  HTTP_USER,
	  route_confirm,
	  { TEXT_BODY("code"), { "reservation_token", HTTP_UUID, HTTP_BODY } } },
	{ "release",
	  HTTP_USER,
	  route_release,
	  { TEXT_BODY("code"), TEXT_BODY("clearance_id"), TEXT_BODY("note") } },
	{ "mark_non_usable",
	  HTTP_USER,
	  route_mark_non_usable,
	  { TEXT_BODY("code"), TEXT_BODY("reason") } },
	{ "comment",
	  HTTP_USER,
	  route_comment,
	  { TEXT_BODY("code"), TEXT_BODY("comment") } },
	{ "my_codes", HTTP_USER, route_my_codes },
	{ "user_logs", HTTP_USER, route_user_logs },
	{ "recent_releases",
	  HTTP_USER,
	  route_recent_releases,
	  { INT_QUERY("n"), TEXT_QUERY("code_type") } },
	{ "user_countries", HTTP_USER, route_countries },

	{ "admin_countries", HTTP_ADMIN, route_countries },
	{ "count", HTTP_ADMIN, route_count },
	{ "create_user",
	  HTTP_ADMIN,
	  route_create_user,
	  { TEXT_EITHER("team_name"), TEXT_EITHER("user_name"),
		TEXT_EITHER("contact_email"), TEXT_EITHER("password"),
		BOOL_EITHER("is_admin"), TEXT_EITHER("pool") } },
	{ "users", HTTP_ADMIN, route_users },
	{ "update_user",
	  HTTP_ADMIN,
	  route_update_user,
	  { USER_ID, TEXT_EITHER("team_name"), TEXT_EITHER("user_name"),
		TEXT_EITHER("contact_email"), TEXT_EITHER("password"),
		BOOL_EITHER("is_admin"), TEXT_EITHER("pool") } },
	{ "delete_user", HTTP_ADMIN, route_delete_user, { USER_ID } },
	{ "add_codes",
	  HTTP_ADMIN,
	  route_add_codes,
	  { TEXT_EITHER("code_type"),
		{ "codes", HTTP_TEXT_ARRAY, HTTP_BODY },
		{ "countries", HTTP_TEXT_ARRAY, HTTP_BODY } } },
	{ "codes_all", HTTP_ADMIN, route_codes_all },
	{ "codes",
	  HTTP_ADMIN,
	  route_codes,
	  { TEXT_QUERY("code_type"), TEXT_QUERY("status"), TEXT_QUERY("after"),
		INT_QUERY("page_size") } },
	{ "overdue",
	  HTTP_ADMIN,
	  route_overdue,
	  { { "older_than", HTTP_INTERVAL, HTTP_QUERY },
		TEXT_QUERY("code_type") } },
	{ "delete_code", HTTP_ADMIN, route_delete_code, { TEXT_QUERY("code") } },
	{ "disassociate",
	  HTTP_ADMIN,
	  route_disassociate,
	  { TEXT_EITHER("code"), TEXT_EITHER("note") } },
	{ "admin_mark_non_usable",
	  HTTP_ADMIN,
	  route_mark_non_usable,
	  { TEXT_EITHER("code"), TEXT_EITHER("reason") } },
	{ "restore", HTTP_ADMIN, route_restore, { TEXT_EITHER("code") } },
	{ "logs",
	  HTTP_ADMIN,
	  route_logs,
	  { INT_QUERY("page"),
		INT_QUERY("page_size"),
		TEXT_QUERY("code"),
		TEXT_QUERY("user_name"),
		TEXT_QUERY("action"),
		{ "start_date", HTTP_TIME, HTTP_QUERY },
		{ "end_date", HTTP_TIME, HTTP_QUERY | HTTP_END_OF_DAY } } },

	{ "healthz", HTTP_PUBLIC, route_healthz },

	/* CSV in and out (bulk.c): the shim runs them in transactions */
	{ "codes_import",
	  HTTP_ADMIN,
	  route_codes_import,
	  { { "code_type", HTTP_TEXT, HTTP_QUERY | HTTP_REQUIRED },
		TEXT_QUERY("countries") } },
	{ "codes_export",
	  HTTP_ADMIN,
	  route_codes_export,
	  { TEXT_QUERY("code_type"), TEXT_QUERY("status") } },
	{ "logs_export",
	  HTTP_ADMIN,
	  route_logs_export,
	  { TEXT_QUERY("code"),
		TEXT_QUERY("user_name"),
		TEXT_QUERY("action"),
		{ "start_date", HTTP_TIME, HTTP_QUERY },
		{ "end_date", HTTP_TIME, HTTP_QUERY | HTTP_END_OF_DAY } } },
	{ NULL }
};
