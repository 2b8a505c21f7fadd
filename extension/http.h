/*
 * http.h
 *		The HTTP adapter: the route table (http_routes.c) and what its
 *		handlers get from the adapter core (http.c).
 *
 * The shim calls one SQL function per route, psk.http_<name>(token text,
 * body text, query jsonb) RETURNS json.  Each is a row of http_routes[]:
 * the role the caller needs, the fields the route takes and the handler
 * that does the work.  The core checks, in the contract's order, the token
 * (unauthorized), the role (not_allowed), the body and the fields
 * (invalid_input), and only then calls the handler, which leaves the rest
 * to the engine and writes the reply with json_out.h.
 */
#ifndef PSK_HTTP_H
#define PSK_HTTP_H

#include "psk.h"

#include "json_out.h"

typedef enum HttpRole
{
	HTTP_PUBLIC,  /* no token: login, health */
	HTTP_SESSION, /* any live session */
	HTTP_USER,	  /* a non-admin user ("Users only") */
	HTTP_ADMIN	  /* an admin ("Permission denied") */
} HttpRole;

/* A field's type; its JSON type in the body is in parentheses. */
typedef enum HttpType
{
	HTTP_TEXT,		/* (string) */
	HTTP_INT,		/* (number) an integer within [min, max] */
	HTTP_BOOL,		/* (true or false) */
	HTTP_UUID,		/* (string) a UUID */
	HTTP_TIME,		/* (string) an ISO 8601 date or timestamp */
	HTTP_INTERVAL,	/* (string) a PostgreSQL interval, query only */
	HTTP_TEXT_ARRAY /* (array of strings), body only */
} HttpType;

/* Where a field may come from, and what else holds for it (flags). */
#define HTTP_BODY		0x01 /* the JSON body */
#define HTTP_QUERY		0x02 /* the query string (or a path parameter) */
#define HTTP_REQUIRED	0x04 /* absent: "name" is required */
#define HTTP_END_OF_DAY 0x08 /* HTTP_TIME: a date is its next midnight */
/*
 * A request header, which the shim passes in the query object under the
 * header's name (and refuses as a query-string parameter); unlike a query
 * value, an empty one is given.
 */
#define HTTP_HEADER 0x10

typedef struct HttpField
{
	const char *name;
	HttpType	type;
	int			flags;
	int64		min; /* HTTP_INT; both 0: the range of int4 */
	int64		max;
} HttpField;

#define HTTP_MAX_FIELDS 8

/* A field as the request gave it. */
typedef struct HttpValue
{
	bool		given; /* false: absent, null or an empty query value */
	char	   *text;  /* as sent (a string, or a number's digits) */
	int64		integer;
	bool		boolean;
	pg_uuid_t  *uuid;
	TimestampTz time;
	Interval   *interval;
	ArrayType  *array;
} HttpValue;

typedef struct HttpRoute HttpRoute;

typedef struct HttpRequest
{
	const HttpRoute *route;
	text			*token;	 /* NULL for a public route */
	PskUser			 who;	 /* the caller; unset for a public route */
	PskCaller		 caller; /* who, for the engine's functions */
	HttpValue		 values[HTTP_MAX_FIELDS];
} HttpRequest;

typedef void (*HttpHandler)(HttpRequest *req, JsonOut *out);

struct HttpRoute
{
	const char *name; /* psk.http_<name> */
	HttpRole	role;
	HttpHandler handler;
	HttpField	fields[HTTP_MAX_FIELDS]; /* ends at the first without name */
};

extern const HttpRoute http_routes[];

/*
 * Steps 1 to 4 (caller, role, body, fields) of the route name's row, for a
 * function of its own with the routes' first three arguments (token, body,
 * query) that is not the JSON adapter: the CSV exports (bulk.c).
 */
extern void http_request(FunctionCallInfo fcinfo, const char *name,
						 HttpRequest *req);

/*
 * A field of the request, by its name in the route's row: NULL or false
 * when absent.
 */
extern char		 *http_text(HttpRequest *req, const char *name);
extern bool		  http_int(HttpRequest *req, const char *name, int64 *value);
extern bool		  http_bool(HttpRequest *req, const char *name, bool *value);
extern pg_uuid_t *http_uuid(HttpRequest *req, const char *name);
extern bool http_time(HttpRequest *req, const char *name, TimestampTz *value);
extern Interval	 *http_interval(HttpRequest *req, const char *name);
extern ArrayType *http_text_array(HttpRequest *req, const char *name);

/* An ISO 8601 date alone (YYYY-MM-DD), as HTTP_TIME reads it. */
extern bool http_is_date(const char *value);

/*
 * Calling the psk_* SQL functions: arguments collected in an HttpArgs, the
 * statement a PskQuery whose SQL names the functions' schema as
 * @extschema@.  Call between SPI_connect and SPI_finish; the rows are left
 * in SPI_tuptable.
 */
typedef struct HttpArgs
{
	int	  n;
	Datum values[PSK_MAX_ARGS];
	bool  nulls[PSK_MAX_ARGS];
} HttpArgs;

extern void	  http_arg_text(HttpArgs *args, const char *value);
extern void	  http_arg_int4(HttpArgs *args, int32 value);
extern void	  http_arg_int8(HttpArgs *args, int64 value);
extern void	  http_arg_bool(HttpArgs *args, bool value);
extern void	  http_arg_time(HttpArgs *args, TimestampTz value, bool given);
extern void	  http_arg_interval(HttpArgs *args, Interval *value);
extern void	  http_arg_array(HttpArgs *args, ArrayType *value);
extern void	  http_arg_null(HttpArgs *args);
extern uint64 http_spi(PskQuery *query, HttpArgs *args);

#endif /* PSK_HTTP_H */
