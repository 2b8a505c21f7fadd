/*
 * server.c
 *		The HTTP side: one h2o handler for every path, the checks the
 *		contract puts before the database (route, size, token, body), and
 *		the hand-over of (token, body, query) to the route's statement.
 *
 * Checks run in the contract's order: route (404/405), size (413), token
 * (401), role (403), body (415/400), then the database.  h2o checks the
 * size before any handler runs, so a body over the limit is answered by
 * the error filter below, which checks the route first.  The token is
 * verified by the database, so a media-type or query-string problem found
 * here is held back ("deferred") until the statement of GET /auth/me has
 * checked the token and told whether the caller is an admin, which the
 * route's role is checked against; only then is it answered.
 */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* one request; lives in the request's memory pool */
typedef struct Call
{
	DbJob			job; /* first: the db callback gets &call->job */
	h2o_req_t	   *req;
	Worker		   *worker;
	struct timespec started;
	const Route	   *route;
	HttpError		deferred; /* status 0: nothing held back */
	LoginHold		login;	  /* a login's place (limits.c) */
	Bulk		   *bulk;	  /* a CSV route's transfer (bulk.c) */
} Call;

/* the longest bearer token we look at; psk's tokens are far shorter */
#define MAX_TOKEN_LEN 512

#define MAX_ROUTES 64
static const char *statements[MAX_ROUTES];

/* the route whose statement checks a token and nothing else: GET /auth/me */
static int auth_check_route = -1;

static Worker *
worker_of(h2o_req_t *req)
{
	return H2O_STRUCT_FROM_MEMBER(Worker, ctx, req->conn->ctx);
}

static h2o_iovec_t
path_only(h2o_req_t *req)
{
	return h2o_iovec_init(req->path.base, req->query_at != SIZE_MAX
											  ? req->query_at
											  : req->path.len);
}

static double
millis_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1e3 + (now.tv_nsec - t->tv_nsec) / 1e6;
}

/*
 * Send body as it is, without a copy: it must live as long as the request
 * (the request's pool, a PGresult tied to the pool, or static data).  h2o
 * writes it with writev() straight from there.
 */
static void
send_body(h2o_req_t *req, const char *body, size_t len)
{
	static h2o_generator_t generator = { NULL, NULL };
	h2o_iovec_t			   buf = h2o_iovec_init(body, len);

	h2o_start_response(req, &generator);
	if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
		h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
	else
		h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

/* The reply is decided: the access log and the metrics (metrics.c). */
static void
finished(Call *call, int status)
{
	h2o_req_t *req = call->req;
	double	   millis = millis_since(&call->started);

	access_log(req->method, path_only(req), status, millis);
	metrics_observe(call->worker->id,
					call->route ? (int) (call->route - shim_routes) : -1,
					status, millis);
}

static void
respond(Call *call, int status, const char *body, size_t len,
		const h2o_token_t *header, const char *value)
{
	h2o_req_t *req = call->req;

	finished(call, status);
	req->res.status = status;
	req->res.reason = http_reason(status);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
				   H2O_STRLIT("application/json"));
	/* h2o keeps the pointer: the value must live as long as the request */
	if (header != NULL)
		h2o_add_header(&req->pool, &req->res.headers, header, NULL,
					   h2o_strdup(&req->pool, value, SIZE_MAX).base,
					   strlen(value));
	req->res.content_length = len;
	send_body(req, body, len);
}

/* {"error": kind, "message": text}, or "text (detail)": one allocation */
static h2o_iovec_t
error_body(h2o_mem_pool_t *pool, const HttpError *e)
{
	size_t klen = strlen(e->kind);
	size_t mlen = strlen(e->message);
	size_t dlen = e->detail ? strlen(e->detail) : 0;
	size_t cap = sizeof("{\"error\":,\"message\":\" ()\"}") +
				 JSON_QUOTED_MAX(klen) + 6 * (mlen + dlen);
	char  *out = h2o_mem_alloc_pool(pool, cap);
	size_t n;

	memcpy(out, "{\"error\":", 9);
	n = 9;
	n += json_quote(out + n, e->kind, klen);
	memcpy(out + n, ",\"message\":\"", 12);
	n += 12;
	n += json_escape(out + n, e->message, mlen);
	if (dlen > 0)
	{
		memcpy(out + n, " (", 2);
		n += 2;
		n += json_escape(out + n, e->detail, dlen);
		out[n++] = ')';
	}
	memcpy(out + n, "\"}", 2);
	return h2o_iovec_init(out, n + 2);
}

static void respond_error(Call *call, HttpError e, const char *allow);

/* A request bulk.c answers itself, as its Call (the route for metrics) */
static void
bulk_call(Call *call, h2o_req_t *req, const struct timespec *started)
{
	char		allow[64];
	h2o_iovec_t param;
	int			r;

	memset(call, 0, sizeof(*call));
	call->req = req;
	call->worker = worker_of(req);
	call->started = *started;
	if (route_find(req->method, path_only(req), &r, &param, allow,
				   sizeof(allow)) == ROUTE_FOUND)
		call->route = &shim_routes[r];
}

void
server_error_reply(h2o_req_t *req, const struct timespec *started, HttpError e)
{
	Call call;

	bulk_call(&call, req, started);
	respond_error(&call, e, NULL);
}

void
server_reply_started(h2o_req_t *req, const struct timespec *started, int status)
{
	Call call;

	bulk_call(&call, req, started);
	finished(&call, status);
}

static void
respond_error(Call *call, HttpError e, const char *allow)
{
	h2o_iovec_t		   body = error_body(&call->req->pool, &e);
	const h2o_token_t *header = NULL;
	const char		  *value = NULL;
	char			   seconds[16];

	if (e.status == 405)
		header = H2O_TOKEN_ALLOW, value = allow;
	else if (e.status == 429)
	{
		snprintf(seconds, sizeof(seconds), "%d", e.retry_after);
		header = H2O_TOKEN_RETRY_AFTER, value = seconds;
	}
	else if (e.status == 401)
		header = H2O_TOKEN_WWW_AUTHENTICATE, value = "Bearer";
	respond(call, e.status, body.base, body.len, header, value);
}

static HttpError
error(int status, const char *kind, const char *message)
{
	HttpError e = { status, kind, message, NULL, 0 };

	return e;
}

/*
 * A held-back body problem, unless the caller may not call the route at
 * all: the reply of GET /auth/me (compact JSON, written by the database)
 * says whether the caller is an admin.  Inside a JSON string every quote
 * is escaped, so the member cannot be forged by a user or team name.
 */
static HttpError
deferred_or_role(Call *call, const PGresult *res)
{
	const char *me = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	bool		is_admin = strstr(me, "\"is_admin\":true") != NULL;

	if (call->route->auth == AUTH_USER && is_admin)
		return error(403, "not_allowed", "Users only");
	if (call->route->auth == AUTH_ADMIN && !is_admin)
		return error(403, "not_allowed", "Permission denied");
	return call->deferred;
}

static void
clear_result(void *p)
{
	PQclear(*(PGresult **) p);
}

static void
on_db_done(DbJob *job, PGresult *res, const char *unavailable)
{
	Call	  *call = (Call *) job;
	h2o_req_t *req = call->req;

	limits_login_give(&call->login);
	if (res == NULL && unavailable == db_client_gone)
		respond_error(call, error(499, "unavailable", unavailable), NULL);
	else if (res == NULL)
		respond_error(call, error(503, "unavailable", unavailable), NULL);
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		respond_error(call, http_error_from_result(res), NULL);
	else if (call->deferred.status != 0)
		respond_error(call, deferred_or_role(call, res), NULL);
	else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
	{
		/*
		 * The reply is the PGresult's value itself: the result is cleared
		 * with the request's pool, once h2o has written it.
		 */
		PGresult **ref =
			h2o_mem_alloc_shared(&req->pool, sizeof(*ref), clear_result);

		*ref = res;
		respond(call, 200, PQgetvalue(res, 0, 0), PQgetlength(res, 0, 0), NULL,
				NULL);
		return;
	}
	else
	{
		shim_log("statement of %.*s returned no reply",
				 (int) path_only(req).len, path_only(req).base);
		respond_error(call, error(500, "internal", "internal server error"),
					  NULL);
	}
	/* the error body is a copy in the pool */
	PQclear(res);
}

/* A CSV route: the caller checked by GET /auth/me's statement first. */
static void
on_bulk_auth(DbJob *job, PGresult *res, const char *unavailable)
{
	Call	 *call = (Call *) job;
	HttpError e;

	if (res == NULL)
		bulk_fail(call->bulk, error(503, "unavailable", unavailable));
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		bulk_fail(call->bulk, http_error_from_result(res));
	else if ((e = deferred_or_role(call, res)).status != 0)
		bulk_fail(call->bulk, e);
	else
		bulk_run(call->bulk);
	PQclear(res);
}

/* The pool is cleared: the request is over, or its client went away. */
static void
on_call_dispose(void *p)
{
	Call *call = p;

	if (call->job.done != NULL)
		db_cancel(&call->job);
	limits_login_give(&call->login);
	call->worker->inflight--;
}

/*
 * "Authorization: Bearer <token>"; NULL when absent or malformed.  Only the
 * characters of RFC 6750's b64token pass, and never more than MAX_TOKEN_LEN.
 */
static const char *
bearer_token(h2o_req_t *req)
{
	ssize_t		i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
	h2o_iovec_t v;
	size_t		pos = 6;

	if (i < 0)
		return NULL;
	v = req->headers.entries[i].value;
	if (v.len < 7 || !h2o_lcstris(v.base, 6, H2O_STRLIT("bearer")) ||
		v.base[6] != ' ')
		return NULL;
	while (pos < v.len && v.base[pos] == ' ')
		pos++;
	if (v.len - pos == 0 || v.len - pos > MAX_TOKEN_LEN)
		return NULL;
	for (size_t k = pos; k < v.len; k++)
	{
		char c = v.base[k];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("-._~+/=", c) != NULL))
			return NULL;
	}
	return h2o_strdup(&req->pool, v.base + pos, v.len - pos).base;
}

typedef enum MediaType
{
	MEDIA_JSON,
	MEDIA_FORM,
	MEDIA_OTHER
} MediaType;

/* No Content-Type is read as JSON, as the old service did. */
static MediaType
media_type(h2o_req_t *req)
{
	ssize_t		i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
	h2o_iovec_t v;
	size_t		len;

	if (i < 0)
		return MEDIA_JSON;
	v = req->headers.entries[i].value;
	len = v.len;
	for (size_t k = 0; k < v.len; k++)
	{
		if (v.base[k] == ';')
		{
			len = k;
			break;
		}
	}
	while (len > 0 && (v.base[len - 1] == ' ' || v.base[len - 1] == '\t'))
		len--;
	if (h2o_lcstris(v.base, len, H2O_STRLIT("application/json")))
		return MEDIA_JSON;
	if (len > 17 && h2o_lcstris(v.base, 12, H2O_STRLIT("application/")) &&
		h2o_lcstris(v.base + len - 5, 5, H2O_STRLIT("+json")))
		return MEDIA_JSON;
	if (h2o_lcstris(v.base, len,
					H2O_STRLIT("application/x-www-form-urlencoded")))
		return MEDIA_FORM;
	return MEDIA_OTHER;
}

static void
defer(Call *call, int status, const char *kind, const char *message)
{
	if (call->deferred.status == 0)
		call->deferred = error(status, kind, message);
}

/*
 * A CSV import: text/csv, in UTF-8 when a charset is named (or no
 * Content-Type at all).
 */
static bool
media_is_csv(h2o_req_t *req)
{
	ssize_t		i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
	h2o_iovec_t v;
	const char *p, *end;

	if (i < 0)
		return true;
	v = req->headers.entries[i].value;
	p = v.base;
	end = v.base + v.len;
	while (p < end && *p != ';')
		p++;
	{
		size_t len = p - v.base;

		while (len > 0 && (v.base[len - 1] == ' ' || v.base[len - 1] == '\t'))
			len--;
		if (!h2o_lcstris(v.base, len, H2O_STRLIT("text/csv")))
			return false;
	}
	/* parameters: only charset matters */
	while (p < end)
	{
		const char *name, *val;
		size_t		nlen, vlen;

		p++;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		name = p;
		while (p < end && *p != '=' && *p != ';')
			p++;
		nlen = p - name;
		while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
			nlen--;
		if (p == end || *p == ';')
			continue;
		val = ++p;
		while (p < end && *p != ';')
			p++;
		vlen = p - val;
		while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
			vlen--;
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"')
			val++, vlen -= 2;
		if (h2o_lcstris(name, nlen, H2O_STRLIT("charset")) &&
			!h2o_lcstris(val, vlen, H2O_STRLIT("utf-8")) &&
			!h2o_lcstris(val, vlen, H2O_STRLIT("utf8")))
			return false;
	}
	return true;
}

/* The request body as the route's statement takes it, or NULL. */
static const char *
request_body(Call *call, const Route *route)
{
	h2o_req_t  *req = call->req;
	h2o_iovec_t body = req->entity;

	/* bulk.c reads a CSV body itself */
	if (route->body == BODY_CSV)
	{
		if (!media_is_csv(req))
			defer(call, 415, "unsupported_media_type", "send text/csv (UTF-8)");
		return NULL;
	}
	if (route->body == BODY_NONE || body.base == NULL || body.len == 0)
		return NULL;
	switch (media_type(req))
	{
		case MEDIA_JSON:
			if (!utf8_valid(body.base, body.len))
			{
				defer(call, 400, "invalid_input",
					  "request body is not valid UTF-8 text");
				return NULL;
			}
			return h2o_strdup(&req->pool, body.base, body.len).base;
		case MEDIA_FORM:
			if (route->body == BODY_LOGIN)
			{
				FormResult f = form_to_json(&req->pool, "form", body, NULL,
											h2o_iovec_init(NULL, 0));

				if (f.json == NULL)
					defer(call, 400, "invalid_input", f.error);
				return f.json;
			}
			/* FALLTHROUGH */
		case MEDIA_OTHER:
		default:
			break;
	}
	defer(call, 415, "unsupported_media_type",
		  route->body == BODY_LOGIN
			  ? "send application/json or application/x-www-form-urlencoded"
			  : "send application/json");
	return NULL;
}

/*
 * The request header a route takes (route_header), added to the query
 * object under its name, as sent (an empty value too).  The query string
 * may not use that name: only the header sets it.
 */
static const char *
add_header(Call *call, const char *name, const char *json)
{
	h2o_req_t		   *req = call->req;
	size_t				nlen = strlen(name);
	size_t				len = strlen(json);
	const h2o_header_t *found = NULL;
	char				key[64];
	char			   *out;
	size_t				o;

	/* inside a JSON string every quote is escaped: only a key matches */
	snprintf(key, sizeof(key), "\"%s\":", name);
	if (strstr(json, key) != NULL)
	{
		defer(call, 400, "invalid_input",
			  "query string: this parameter is a request header here");
		return json;
	}
	for (size_t i = 0; i < req->headers.size; i++)
	{
		const h2o_header_t *h = &req->headers.entries[i];

		if (h->name->len != nlen || strncasecmp(h->name->base, name, nlen) != 0)
			continue;
		if (found != NULL)
		{
			defer(call, 400, "invalid_input",
				  "a request header is given more than once");
			return json;
		}
		found = h;
	}
	if (found == NULL)
		return json;
	if (!utf8_valid(found->value.base, found->value.len))
	{
		defer(call, 400, "invalid_input",
			  "a request header is not valid UTF-8 text");
		return json;
	}
	out = h2o_mem_alloc_pool(&req->pool, len + JSON_QUOTED_MAX(nlen) +
											 JSON_QUOTED_MAX(found->value.len) +
											 4);
	o = len - 1; /* without the closing brace */
	memcpy(out, json, o);
	if (o > 1)
		out[o++] = ',';
	o += json_quote(out + o, name, nlen);
	out[o++] = ':';
	o += json_quote(out + o, found->value.base, found->value.len);
	out[o++] = '}';
	out[o] = '\0';
	return out;
}

/*
 * The query string, a {parameter} of the path and the request header the
 * route takes, as a JSON object.
 */
static const char *
request_query(Call *call, const Route *route, h2o_iovec_t param)
{
	h2o_req_t  *req = call->req;
	h2o_iovec_t query = h2o_iovec_init(NULL, 0);
	char		name[32] = "";
	FormResult	f;

	if (req->query_at != SIZE_MAX)
		query = h2o_iovec_init(req->path.base + req->query_at + 1,
							   req->path.len - req->query_at - 1);
	if (param.len > 0)
	{
		const char *brace = strchr(route->path, '{');

		snprintf(name, sizeof(name), "%.*s", (int) strcspn(brace + 1, "}"),
				 brace + 1);
	}
	f = form_to_json(&req->pool, "query string", query, param.len ? name : NULL,
					 param);
	if (f.json == NULL)
	{
		defer(call, 400, "invalid_input", f.error);
		return "{}";
	}
	if (route_header(route) != NULL)
		return add_header(call, route_header(route), f.json);
	return f.json;
}

/*
 * For the metrics of a preflight or a 405: a route of the path (the one
 * of the first method in allow), NULL if none.
 */
static const Route *
route_of_path(h2o_req_t *req, const char *allow)
{
	h2o_iovec_t param;
	int			r;

	if (route_find(h2o_iovec_init(allow, strcspn(allow, ",")), path_only(req),
				   &r, &param, (char[64]){ 0 }, 64) != ROUTE_FOUND)
		return NULL;
	return &shim_routes[r];
}

/*
 * A preflight on a route: 204 with the CORS headers (cors.c), the route's
 * methods as Allow-Methods.  false for a path that is no route: that is
 * answered 404 as usual.
 */
static bool
answer_preflight(Call *call)
{
	h2o_req_t  *req = call->req;
	char		allow[64];
	h2o_iovec_t param;
	int			r;

	if (route_find(h2o_iovec_init(H2O_STRLIT("OPTIONS")), path_only(req), &r,
				   &param, allow, sizeof(allow)) != ROUTE_NO_METHOD)
		return false;
	call->route = route_of_path(req, allow);
	finished(call, 204);
	cors_preflight_headers(req, allow);
	req->res.status = 204;
	req->res.reason = "No Content";
	/* unknown length: h2o then sends no Content-Length, as 204 must not */
	req->res.content_length = SIZE_MAX;
	send_body(req, NULL, 0);
	return true;
}

/* GET /docs and its files (docs.c), gzipped once when the client takes it */
static void
respond_doc(Call *call, const DocFile *f)
{
	h2o_req_t *req = call->req;
	bool	   gz;

	if (f == NULL)
	{
		respond_error(call, error(404, "not_found", "no such path"), NULL);
		return;
	}
	if (f->body.base == NULL)
	{
		respond_error(call,
					  error(503, "unavailable",
							"the interactive docs are not installed: run "
							"scripts/deps.sh (swagger-ui-dist)"),
					  NULL);
		return;
	}
	gz = f->gzipped.base != NULL && compress_accepts_gzip(req);
	finished(call, 200);
	req->res.status = 200;
	req->res.reason = http_reason(200);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
				   f->content_type, strlen(f->content_type));
	h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY,
						 H2O_STRLIT("Accept-Encoding"));
	if (gz)
		h2o_add_header(&req->pool, &req->res.headers,
					   H2O_TOKEN_CONTENT_ENCODING, NULL, H2O_STRLIT("gzip"));
	req->res.content_length = gz ? f->gzipped.len : f->body.len;
	send_body(req, gz ? f->gzipped.base : f->body.base,
			  req->res.content_length);
}

static int
on_req(h2o_handler_t *self, h2o_req_t *req)
{
	Worker *w = worker_of(req);
	Call   *call =
		h2o_mem_alloc_shared(&req->pool, sizeof(Call), on_call_dispose);
	char		 allow[64];
	h2o_iovec_t	 param;
	const Route *route;
	int			 r;

	(void) self;
	memset(call, 0, sizeof(*call));
	call->req = req;
	call->worker = w;
	clock_gettime(CLOCK_MONOTONIC, &call->started);
	w->inflight++;
	limits_on_request(req);
	call->job.client_fd = limits_client_fd(req);
	call->job.eof_is_gone = false;

	/* a CORS preflight from a listed origin: before any other check */
	if (cors_is_preflight(req) && answer_preflight(call))
		return 0;

	switch (route_find(req->method, path_only(req), &r, &param, allow,
					   sizeof(allow)))
	{
		case ROUTE_NO_PATH:
			respond_error(call, error(404, "not_found", "no such path"), NULL);
			return 0;
		case ROUTE_NO_METHOD:
			call->route = route_of_path(req, allow);
			respond_error(call,
						  error(405, "method_not_allowed",
								"method not allowed on this path"),
						  allow);
			return 0;
		case ROUTE_FOUND:
			break;
	}
	route = &shim_routes[r];
	call->route = route;

	/*
	 * Size: h2o refuses a body over the limit (max_request_entity_size)
	 * before this handler runs; on_setup_error_stream answers it, after the
	 * route check.  An import whose body h2o has not read (gate.c) is
	 * checked against --import-limit here.
	 */
	{
		HttpError too_large;

		if (bulk_size_error(req, route, &too_large))
		{
			respond_error(call, too_large, NULL);
			return 0;
		}
	}

	if (route->auth != AUTH_NONE)
	{
		call->job.params[0] = bearer_token(req);
		if (call->job.params[0] == NULL)
		{
			bool absent =
				h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1) < 0;

			respond_error(call,
						  error(401, "unauthorized",
								absent ? "missing bearer token"
									   : "malformed bearer token"),
						  NULL);
			return 0;
		}
	}

	if (route->function == NULL)
	{
		if (strncmp(route->path, "/docs", 5) == 0)
			respond_doc(call, docs_find(param));
		else
			respond(call, 200, shim_openapi_json,
					shim_openapi_json_end - shim_openapi_json, NULL, NULL);
		return 0;
	}

	call->job.params[1] = request_body(call, route);
	call->job.params[2] = request_query(call, route, param);
	call->job.statement = r;
	/* CSV in and out: on a connection of their own, streamed (bulk.c) */
	if (call->deferred.status == 0 && bulk_kind(route) != BULK_NONE)
	{
		call->bulk = bulk_prepare(req, route, call->job.params[0],
								  call->job.params[2], &call->started);
		call->job.statement = auth_check_route;
		call->job.params[1] = NULL;
		call->job.params[2] = "{}";
		call->job.done = on_bulk_auth;
		db_submit(w->db, &call->job);
		return 0;
	}
	if (call->deferred.status != 0)
	{
		if (route->auth == AUTH_NONE)
		{
			respond_error(call, call->deferred, NULL);
			return 0;
		}
		/* token and role first: 401 or 403 whatever the body */
		call->job.statement = auth_check_route;
		call->job.params[1] = NULL;
		call->job.params[2] = "{}";
	}
	else if (route->body == BODY_LOGIN)
	{
		HttpError e = error(429, "locked_out",
							"login refused: too many logins in progress, try "
							"again in a second");

		if (!limits_login_take(req, &call->login, &e.retry_after))
		{
			respond_error(call, e, NULL);
			return 0;
		}
		call->job.eof_is_gone = true;
	}
	call->job.done = on_db_done;
	db_submit(w->db, &call->job);
	return 0;
}

/*
 * Errors h2o answers itself, before any handler runs (a body over the
 * limit, a broken chunked encoding), come as text; rewrite them as the
 * contract's JSON.  An oversized body on an unknown path or with a wrong
 * method is still 404 or 405: the route is checked first.
 */
typedef struct JsonErrorStream
{
	h2o_ostream_t super;
	h2o_iovec_t	  body;
} JsonErrorStream;

static void
json_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
				size_t bufcnt, h2o_send_state_t state)
{
	JsonErrorStream *s = (JsonErrorStream *) self;
	h2o_iovec_t		 body = s->body;

	(void) bufs;
	(void) bufcnt;
	s->body = h2o_iovec_init(NULL, 0);
	h2o_ostream_send_next(self, req, &body, body.len ? 1 : 0, state);
}

static void
on_setup_error_stream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	(void) self;
	if (req->res.status >= 400)
	{
		char			 allow[64] = "";
		char			 message[160];
		h2o_iovec_t		 param;
		int				 r;
		HttpError		 e;
		JsonErrorStream *s;
		struct timeval	 now;
		double			 millis;

		switch (req->res.status)
		{
			case 413:
				switch (route_find(req->method, path_only(req), &r, &param,
								   allow, sizeof(allow)))
				{
					case ROUTE_NO_PATH:
						e = error(404, "not_found", "no such path");
						break;
					case ROUTE_NO_METHOD:
						e = error(405, "method_not_allowed",
								  "method not allowed on this path");
						break;
					default:
						/* an import not first on its connection (gate.c) */
						snprintf(message, sizeof(message),
								 bulk_kind(&shim_routes[r]) == BULK_IMPORT
									 ? "request body is larger than %zu "
									   "bytes: send an import larger than "
									   "that as the first request of a new "
									   "connection"
									 : "request body is larger than %zu bytes",
								 shim_config.body_limit);
						e = error(413, "payload_too_large",
								  h2o_strdup(&req->pool, message, SIZE_MAX)
									  .base);
				}
				break;
			case 400:
				e = error(400, "invalid_input", "malformed HTTP request");
				break;
			case 503:
				e = error(503, "unavailable", "the server is unavailable");
				break;
			default:
				e = error(req->res.status, "internal",
						  "the server could not answer this request");
		}
		s = (JsonErrorStream *) h2o_add_ostream(req, sizeof(JsonErrorStream),
												slot);
		s->super.do_send = json_error_send;
		s->body = error_body(&req->pool, &e);
		slot = &s->super.next;

		req->res.status = e.status;
		req->res.reason = http_reason(e.status);
		req->res.content_length = s->body.len;
		h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
					   H2O_STRLIT("application/json"), 1);
		if (e.status == 405)
			h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW,
						   h2o_strdup(&req->pool, allow, SIZE_MAX).base,
						   strlen(allow), 1);
		gettimeofday(&now, NULL);
		millis = (now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1e3 +
				 (now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1e3;
		access_log(req->method, path_only(req), e.status, millis);
		metrics_observe(worker_of(req)->id,
						route_find(req->method, path_only(req), &r, &param,
								   allow, sizeof(allow)) == ROUTE_FOUND
							? r
							: -1,
						e.status, millis);
	}
	h2o_setup_next_ostream(req, slot);
}

void
server_setup(h2o_globalconf_t *conf)
{
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	h2o_handler_t  *handler;
	h2o_filter_t   *filter;

	h2o_config_init(conf);
	conf->server_name = h2o_iovec_init(H2O_STRLIT("psk-shim"));
	conf->max_request_entity_size = shim_config.body_limit;
	conf->http1.upgrade_to_http2 = 0;
	limits_configure(conf);
	host = h2o_config_register_host(conf, h2o_iovec_init(H2O_STRLIT("default")),
									65535);
	path = h2o_config_register_path(host, "/", 0);
	handler = h2o_create_handler(path, sizeof(*handler));
	handler->on_req = on_req;
	/*
	 * Filters run newest first: on the replies h2o makes itself
	 * (fallback_path) the JSON error first, then CORS, then gzip.
	 */
	compress_register(path);
	cors_register(path);
	compress_register(&host->fallback_path);
	cors_register(&host->fallback_path);
	filter = h2o_create_filter(&host->fallback_path, sizeof(*filter));
	filter->on_setup_ostream = on_setup_error_stream;
	docs_load(shim_config.docs_dir);

	/* one statement per route, prepared once on every connection */
	if (shim_nroutes > MAX_ROUTES)
	{
		fprintf(stderr, "psk-shim: more than %d routes\n", MAX_ROUTES);
		exit(1);
	}
	for (int i = 0; i < shim_nroutes; i++)
	{
		const char *fn = shim_routes[i].function;

		if (fn != NULL && strcmp(fn, "psk.http_me") == 0 &&
			strcmp(shim_routes[i].method, "GET") == 0)
			auth_check_route = i;

		if (fn != NULL)
		{
			size_t size = strlen(fn) + 32;
			char  *sql = malloc(size);

			snprintf(sql, size, "SELECT %s($1, $2, $3)", fn);
			statements[i] = sql;
		}
	}
}

static void
on_accept(h2o_socket_t *listener, const char *err)
{
	if (err == NULL)
		limits_accept(listener->data, listener);
}

static void
on_drain_timeout(h2o_timeout_entry_t *entry)
{
	Worker *w = H2O_STRUCT_FROM_MEMBER(Worker, drain_entry, entry);

	if (w->inflight > 0)
		shim_log(
			"thread %d: %d requests still in flight after the shutdown timeout",
			w->id, w->inflight);
	w->drain_expired = true;
}

/* In the worker's thread: stop accepting, let in-flight requests finish. */
static void
on_stop_wake(Wake *wake)
{
	Worker *w = wake->data;

	if (w->stopping)
		return;
	w->stopping = true;
	limits_worker_stop(w);
	h2o_socket_read_stop(w->listener);
	h2o_socket_close(w->listener);
	w->listener = NULL;
	gate_close_all(w);
	h2o_context_request_shutdown(&w->ctx);
	h2o_timeout_link(w->ctx.loop, &w->drain_timeout, &w->drain_entry);
}

/* Build the worker's loop, context, listener and pool (in the main thread). */
void
worker_init(Worker *w, h2o_globalconf_t *conf, int listen_fd)
{
	h2o_evloop_t *loop = h2o_evloop_create();

	h2o_context_init(&w->ctx, loop, conf);
	w->accept_ctx.ctx = &w->ctx;
	w->accept_ctx.hosts = conf->hosts;
	w->listener =
		h2o_evloop_socket_create(loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
	w->listener->data = w;
	h2o_socket_read_start(w->listener, on_accept);
	w->limits = limits_worker_init(w, loop, on_accept);
	wake_init(&w->stop_wake, loop, on_stop_wake, w);
	h2o_timeout_init(loop, &w->drain_timeout, shim_config.shutdown_timeout_ms);
	w->drain_entry.cb = on_drain_timeout;
	w->db = db_pool_create(loop, statements, shim_nroutes);
	w->bulk = bulk_ctx_create(w);
}

void *
worker_main(void *arg)
{
	Worker *w = arg;

	while (!w->stopping || (w->inflight > 0 && !w->drain_expired))
		h2o_evloop_run(w->ctx.loop, INT32_MAX);
	db_pool_close(w->db);
	return NULL;
}

/* From the main thread. */
void
worker_request_stop(Worker *w)
{
	wake_send(&w->stop_wake);
}
