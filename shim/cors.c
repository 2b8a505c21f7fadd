/*
 * cors.c
 *		CORS for web clients served from another origin (API.md, "Switching
 *		from the old service"): the old service's single-page app calls the
 *		API from its own origin, so the browser asks first (a preflight) and
 *		reads a reply only when it names that origin.
 *
 * --cors-origins lists the origins allowed (default none: no CORS header
 * at all, and OPTIONS stays 405).  For a listed origin a preflight on any
 * route is answered 204 before any other check (server.c asks
 * cors_is_preflight first); every other reply to it, errors included and
 * those h2o makes itself (413), gets Allow-Origin, Allow-Credentials,
 * Expose-Headers and Vary from the filter below.  An origin not listed
 * gets no Access-Control-* header; its requests are answered as without
 * CORS, and the browser keeps the reply from the page.
 */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORIGINS 64

static h2o_iovec_t origins[MAX_ORIGINS];
static int		   norigins;

/* scheme://host[:port], nothing after: what a browser sends as Origin */
static bool
origin_well_formed(const char *s, size_t len)
{
	size_t start;

	if (len > 7 && strncmp(s, "http://", 7) == 0)
		start = 7;
	else if (len > 8 && strncmp(s, "https://", 8) == 0)
		start = 8;
	else
		return false;
	for (size_t i = start; i < len; i++)
	{
		unsigned char c = s[i];

		if (c <= ' ' || c >= 0x7f || c == '/' || c == '?' || c == '#' ||
			c == ',' || c == '*')
			return false;
	}
	return true;
}

void
cors_configure(const char *list)
{
	const char *p = list;

	norigins = 0;
	while (p != NULL && *p != '\0')
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);

		/* spaces around an entry are allowed: "a, b" */
		while (len > 0 && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 0)
		{
			if (!origin_well_formed(p, len))
			{
				fprintf(stderr,
						"psk-shim: --cors-origins: \"%.*s\" is not an origin "
						"(scheme://host[:port], no path)\n",
						(int) len, p);
				exit(2);
			}
			if (norigins == MAX_ORIGINS)
			{
				fprintf(stderr, "psk-shim: --cors-origins: more than %d\n",
						MAX_ORIGINS);
				exit(2);
			}
			/* scheme and host are case-insensitive: compare lower-cased */
			origins[norigins] = h2o_strdup(NULL, p, len);
			h2o_strtolower(origins[norigins].base, len);
			norigins++;
		}
		p = end ? end + 1 : NULL;
	}
}

bool
cors_enabled(void)
{
	return norigins > 0;
}

/* The request's Origin when it is one of ours; else NULL. */
static const h2o_iovec_t *
listed_origin(h2o_req_t *req)
{
	ssize_t		i;
	h2o_iovec_t v;

	if (norigins == 0)
		return NULL;
	i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
	if (i < 0)
		return NULL;
	v = req->headers.entries[i].value;
	for (int k = 0; k < norigins; k++)
		if (h2o_lcstris(v.base, v.len, origins[k].base, origins[k].len))
			return &req->headers.entries[i].value;
	return NULL;
}

bool
cors_is_preflight(h2o_req_t *req)
{
	return h2o_memis(req->method.base, req->method.len,
					 H2O_STRLIT("OPTIONS")) &&
		   h2o_find_header_by_str(&req->headers,
								  H2O_STRLIT("access-control-request-method"),
								  -1) >= 0 &&
		   listed_origin(req) != NULL;
}

static void
add(h2o_req_t *req, const char *name, size_t name_len, h2o_iovec_t value)
{
	h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 1,
						  NULL, value.base, value.len);
}

/*
 * The preflight's headers; methods are the route's ("GET, POST").  The
 * Origin is echoed as the browser sent it (it compares exactly).
 */
void
cors_preflight_headers(h2o_req_t *req, const char *methods)
{
	const h2o_iovec_t *origin = listed_origin(req);

	add(req, H2O_STRLIT("access-control-allow-origin"), *origin);
	add(req, H2O_STRLIT("access-control-allow-methods"),
		h2o_strdup(&req->pool, methods, SIZE_MAX));
	add(req, H2O_STRLIT("access-control-allow-headers"),
		h2o_iovec_init(
			H2O_STRLIT("Authorization, Content-Type, Idempotency-Key")));
	add(req, H2O_STRLIT("access-control-allow-credentials"),
		h2o_iovec_init(H2O_STRLIT("true")));
	add(req, H2O_STRLIT("access-control-max-age"),
		h2o_iovec_init(H2O_STRLIT("600")));
	h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY,
						 H2O_STRLIT("Origin"));
}

/*
 * Every other reply.  With CORS on, a reply depends on the Origin sent, so
 * Vary: Origin goes on every reply (a shared cache must not hand one
 * origin's reply to another); the Access-Control-* headers only to a
 * listed origin.
 */
static void
on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	const h2o_iovec_t *origin;

	(void) self;
	if (norigins > 0 && !(req->res.status == 204 && cors_is_preflight(req)))
	{
		h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY,
							 H2O_STRLIT("Origin"));
		if ((origin = listed_origin(req)) != NULL)
		{
			add(req, H2O_STRLIT("access-control-allow-origin"), *origin);
			add(req, H2O_STRLIT("access-control-allow-credentials"),
				h2o_iovec_init(H2O_STRLIT("true")));
			add(req, H2O_STRLIT("access-control-expose-headers"),
				h2o_iovec_init(H2O_STRLIT("Retry-After")));
		}
	}
	h2o_setup_next_ostream(req, slot);
}

void
cors_register(h2o_pathconf_t *path)
{
	h2o_filter_t *filter = h2o_create_filter(path, sizeof(*filter));

	filter->on_setup_ostream = on_setup_ostream;
}
