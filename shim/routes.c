/*
 * routes.c
 *		The route table: every endpoint of the contract, one row each.
 *
 * A row names the method, the path, the one SQL function the route calls
 * (psk.http_<name>(token, body, query), which checks the caller, validates
 * and builds the reply) and who may call it.  The database enforces "who";
 * the shim uses it only to know whether a bearer token is required.
 * shim/openapi.json lists the same paths; test/http checks they agree.
 */
#include "shim.h"

#include <stdio.h>
#include <string.h>

const Route shim_routes[] = {
	{ "POST", "/auth/login", "psk.http_login", AUTH_NONE, BODY_LOGIN },
	{ "GET", "/auth/me", "psk.http_me", AUTH_SESSION, BODY_NONE },
	{ "POST", "/auth/me", "psk.http_me", AUTH_SESSION, BODY_NONE },
	{ "POST", "/auth/logout", "psk.http_logout", AUTH_SESSION, BODY_NONE },

	{ "POST", "/users/reserve", "psk.http_reserve", AUTH_USER, BODY_JSON },
	{ "POST", "/users/confirm", "psk.http_confirm", AUTH_USER, BODY_JSON },
	{ "POST", "/users/renew", "psk.http_renew", AUTH_USER, BODY_JSON },
	{ "POST", "/users/release", "psk.http_release", AUTH_USER, BODY_JSON },
	{ "POST", "/users/mark-non-usable", "psk.http_mark_non_usable", AUTH_USER,
	  BODY_JSON },
	{ "POST", "/users/comment", "psk.http_comment", AUTH_USER, BODY_JSON },
	{ "GET", "/users/my", "psk.http_my_codes", AUTH_USER, BODY_NONE },
	{ "GET", "/users/logs", "psk.http_user_logs", AUTH_USER, BODY_NONE },
	{ "GET", "/users/recent-releases", "psk.http_recent_releases", AUTH_USER,
	  BODY_NONE },
	{ "GET", "/users/countries", "psk.http_user_countries", AUTH_USER,
	  BODY_NONE },

	{ "GET", "/admin/countries", "psk.http_admin_countries", AUTH_ADMIN,
	  BODY_NONE },
	{ "GET", "/admin/count", "psk.http_count", AUTH_ADMIN, BODY_NONE },
	{ "POST", "/admin/users/create", "psk.http_create_user", AUTH_ADMIN,
	  BODY_JSON },
	{ "GET", "/admin/users/get-users", "psk.http_users", AUTH_ADMIN,
	  BODY_NONE },
	{ "PATCH", "/admin/users/update", "psk.http_update_user", AUTH_ADMIN,
	  BODY_JSON },
	{ "DELETE", "/admin/users/delete", "psk.http_delete_user", AUTH_ADMIN,
	  BODY_JSON },
	{ "POST", "/admin/codes/add", "psk.http_add_codes", AUTH_ADMIN, BODY_JSON },
	{ "GET", "/admin/codes/all", "psk.http_codes_all", AUTH_ADMIN, BODY_NONE },
	{ "GET", "/admin/codes", "psk.http_codes", AUTH_ADMIN, BODY_NONE },
	{ "GET", "/admin/codes/overdue", "psk.http_overdue", AUTH_ADMIN,
	  BODY_NONE },
	{ "POST", "/admin/codes/disassociate", "psk.http_disassociate", AUTH_ADMIN,
	  BODY_JSON },
	{ "POST", "/admin/codes/mark-non-usable", "psk.http_admin_mark_non_usable",
	  AUTH_ADMIN, BODY_JSON },
	{ "POST", "/admin/codes/restore", "psk.http_restore", AUTH_ADMIN,
	  BODY_JSON },
	{ "DELETE", "/admin/codes/{code}", "psk.http_delete_code", AUTH_ADMIN,
	  BODY_NONE },
	{ "GET", "/admin/logs", "psk.http_logs", AUTH_ADMIN, BODY_NONE },
	/* CSV in and out: streamed, each on a connection of its own (bulk.c) */
	{ "POST", "/admin/codes/import", "psk.http_codes_import", AUTH_ADMIN,
	  BODY_CSV },
	{ "GET", "/admin/codes/export", "psk.http_codes_export", AUTH_ADMIN,
	  BODY_NONE },
	{ "GET", "/admin/logs/export", "psk.http_logs_export", AUTH_ADMIN,
	  BODY_NONE },

	{ "GET", "/healthz", "psk.http_healthz", AUTH_NONE, BODY_NONE },
	{ "GET", "/openapi.json", NULL, AUTH_NONE, BODY_NONE },
	{ "GET", "/docs", NULL, AUTH_NONE, BODY_NONE },
	{ "GET", "/docs/{file}", NULL, AUTH_NONE, BODY_NONE },
};

const int shim_nroutes = sizeof(shim_routes) / sizeof(shim_routes[0]);

/*
 * Request headers that a route's statement takes: passed in the query
 * object under the header's name, which the query string may not use.
 */
static const struct
{
	const char *function;
	const char *header;
} route_headers[] = {
	{ "psk.http_reserve", "Idempotency-Key" },
};

const char *
route_header(const Route *route)
{
	for (size_t i = 0; i < sizeof(route_headers) / sizeof(route_headers[0]);
		 i++)
		if (route->function != NULL &&
			strcmp(route->function, route_headers[i].function) == 0)
			return route_headers[i].header;
	return NULL;
}

static bool
iov_equals(h2o_iovec_t v, const char *s)
{
	size_t len = strlen(s);

	return v.len == len && memcmp(v.base, s, len) == 0;
}

static void
allow_add(char *allow, size_t allowsize, const char *method)
{
	size_t used = strlen(allow);

	snprintf(allow + used, allowsize - used, "%s%s", used ? ", " : "", method);
}

/*
 * Fixed paths first: they win over a parameterised path, so that
 * DELETE /admin/codes/all is 405, not the deletion of a code named "all".
 */
RouteMatch
route_find(h2o_iovec_t method, h2o_iovec_t path, int *route, h2o_iovec_t *param,
		   char *allow, size_t allowsize)
{
	bool path_found = false;
	int	 i;

	allow[0] = '\0';
	*param = h2o_iovec_init(NULL, 0);
	for (i = 0; i < shim_nroutes; i++)
	{
		const Route *r = &shim_routes[i];

		if (strchr(r->path, '{') != NULL || !iov_equals(path, r->path))
			continue;
		if (iov_equals(method, r->method))
		{
			*route = i;
			return ROUTE_FOUND;
		}
		path_found = true;
		allow_add(allow, allowsize, r->method);
	}
	if (path_found)
		return ROUTE_NO_METHOD;

	for (i = 0; i < shim_nroutes; i++)
	{
		const Route *r = &shim_routes[i];
		const char	*brace = strchr(r->path, '{');
		size_t		 prefix;
		h2o_iovec_t	 rest;

		if (brace == NULL)
			continue;
		prefix = brace - r->path;
		if (path.len <= prefix || memcmp(path.base, r->path, prefix) != 0)
			continue;
		rest = h2o_iovec_init(path.base + prefix, path.len - prefix);
		if (memchr(rest.base, '/', rest.len) != NULL)
			continue;
		if (iov_equals(method, r->method))
		{
			*route = i;
			*param = rest;
			return ROUTE_FOUND;
		}
		path_found = true;
		allow_add(allow, allowsize, r->method);
	}
	return path_found ? ROUTE_NO_METHOD : ROUTE_NO_PATH;
}

const char *
route_auth_name(RouteAuth auth)
{
	switch (auth)
	{
		case AUTH_NONE:
			return "public";
		case AUTH_SESSION:
			return "session";
		case AUTH_USER:
			return "user";
		case AUTH_ADMIN:
			return "admin";
	}
	return "?";
}

/* psk-shim --routes: METHOD PATH WHO FUNCTION, one route a line */
void
route_print_table(FILE *out)
{
	int i;

	for (i = 0; i < shim_nroutes; i++)
	{
		const Route *r = &shim_routes[i];

		fprintf(out, "%s %s %s %s\n", r->method, r->path,
				route_auth_name(r->auth), r->function ? r->function : "-");
	}
}
