/*
 * compress.c
 *		gzip for replies over 1,000 bytes when the request accepts it
 *		(API.md, "Switching from the old service": the old service did so).
 *
 * h2o 2.2.5 has a compress filter, but it compresses only 200 replies of
 * the types its MIME map calls compressible, takes "gzip;q=0" for a yes,
 * and sends what it compressed chunked.  This filter compresses any
 * status, honours q=0, and since every reply of the shim is handed to h2o
 * whole (one final h2o_send), compresses it in one go and sends it with
 * its Content-Length, so the connection stays reusable whatever the status.
 * A reply that already has a Content-Encoding (the /docs files, gzipped
 * once at start-up) is left alone.
 */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

/* bodies of more than this many bytes are compressed */
#define COMPRESS_OVER 1000

typedef struct GzipStream
{
	h2o_ostream_t super;
	h2o_iovec_t	  pending; /* input of partial sends, kept until the last */
} GzipStream;

/* One token of a list, with its parameters; NULL at the end. */
static const char *
next_element(const char **p, const char *end, size_t *len)
{
	const char *s;

	while (*p < end && (**p == ' ' || **p == '\t' || **p == ','))
		(*p)++;
	if (*p >= end)
		return NULL;
	s = *p;
	while (*p < end && **p != ',')
		(*p)++;
	*len = *p - s;
	return s;
}

/*
 * Does Accept-Encoding accept gzip?  "gzip" or "*", unless its q is 0
 * ("gzip;q=0" is a refusal, RFC 9110 12.5.3).
 */
bool
compress_accepts_gzip(h2o_req_t *req)
{
	ssize_t i = -1;
	bool	gzip = false;
	bool	star = false;
	bool	gzip_named = false;

	while ((i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, i)) >=
		   0)
	{
		h2o_iovec_t v = req->headers.entries[i].value;
		const char *p = v.base, *end = v.base + v.len, *e;
		size_t		len;

		while ((e = next_element(&p, end, &len)) != NULL)
		{
			size_t		name_len = 0;
			const char *q;
			bool		refused = false;

			while (name_len < len && e[name_len] != ';' && e[name_len] != ' ' &&
				   e[name_len] != '\t')
				name_len++;
			/* q=0, q=0.0, q=0.000: refused */
			q = memchr(e, ';', len);
			if (q != NULL)
			{
				const char *qend = e + len;

				q++;
				while (q < qend && (*q == ' ' || *q == '\t'))
					q++;
				if (qend - q >= 3 && (q[0] == 'q' || q[0] == 'Q') &&
					q[1] == '=' && q[2] == '0')
				{
					refused = true;
					for (q += 3; q < qend && *q != ' ' && *q != ';'; q++)
						if (*q != '.' && *q != '0')
							refused = false;
				}
			}
			if (h2o_lcstris(e, name_len, H2O_STRLIT("gzip")) ||
				h2o_lcstris(e, name_len, H2O_STRLIT("x-gzip")))
			{
				gzip_named = true;
				gzip = !refused;
			}
			else if (name_len == 1 && e[0] == '*')
				star = !refused;
		}
	}
	return gzip || (star && !gzip_named);
}

/* gzip of the whole body into the request's pool; {NULL, 0} on failure */
static h2o_iovec_t
gzip_all(h2o_req_t *req, h2o_iovec_t *bufs, size_t n)
{
	z_stream	zs;
	size_t		total = 0;
	int			rc = Z_OK;
	h2o_iovec_t out = { NULL, 0 };

	for (size_t i = 0; i < n; i++)
		total += bufs[i].len;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
					 Z_DEFAULT_STRATEGY) != Z_OK)
		return out;
	out.len = deflateBound(&zs, total);
	out.base = h2o_mem_alloc_pool(&req->pool, out.len);
	zs.next_out = (Bytef *) out.base;
	zs.avail_out = out.len;
	for (size_t i = 0; i < n; i++)
	{
		zs.next_in = (Bytef *) bufs[i].base;
		zs.avail_in = bufs[i].len;
		rc = deflate(&zs, i + 1 == n ? Z_FINISH : Z_NO_FLUSH);
		if (rc == Z_STREAM_ERROR)
			break;
	}
	if (n == 0)
		rc = deflate(&zs, Z_FINISH);
	out.len = rc == Z_STREAM_END ? zs.total_out : 0;
	deflateEnd(&zs);
	return out;
}

static void
gzip_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
		  h2o_send_state_t state)
{
	GzipStream *s = (GzipStream *) self;
	h2o_iovec_t all[2];
	size_t		n = 0;
	h2o_iovec_t gz;

	/* not the shim's way, but keep a partial send for the last one */
	if (h2o_send_state_is_in_progress(state))
	{
		h2o_iovec_t joined;

		for (size_t i = 0; i < bufcnt; i++)
		{
			joined = h2o_concat(&req->pool, s->pending, bufs[i]);
			s->pending = joined;
		}
		/* ask for the rest, as h2o_proceed_response would */
		if (req->_generator != NULL && req->_generator->proceed != NULL)
			req->_generator->proceed(req->_generator, req);
		return;
	}
	if (s->pending.len > 0)
	{
		for (size_t i = 0; i < bufcnt; i++)
			s->pending = h2o_concat(&req->pool, s->pending, bufs[i]);
		all[n++] = s->pending;
		bufs = all;
		bufcnt = n;
	}
	gz = gzip_all(req, bufs, bufcnt);
	if (gz.base == NULL || gz.len == 0)
	{
		/* cannot happen short of memory: end the reply as broken */
		h2o_ostream_send_next(self, req, NULL, 0, H2O_SEND_STATE_ERROR);
		return;
	}
	/* the headers go out with the first send: the length is known now */
	req->res.content_length = gz.len;
	h2o_ostream_send_next(self, req, &gz, 1, state);
}

static void
on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
	GzipStream *s;

	(void) self;
	if (req->res.content_length == SIZE_MAX ||
		req->res.content_length <= COMPRESS_OVER || req->res.status == 204 ||
		req->res.status == 304 ||
		h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")) ||
		h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_ENCODING, -1) >= 0)
	{
		h2o_setup_next_ostream(req, slot);
		return;
	}
	/* a reply this long could have been compressed: caches must know */
	h2o_set_header_token(&req->pool, &req->res.headers, H2O_TOKEN_VARY,
						 H2O_STRLIT("Accept-Encoding"));
	if (!compress_accepts_gzip(req))
	{
		h2o_setup_next_ostream(req, slot);
		return;
	}
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_ENCODING,
				   NULL, H2O_STRLIT("gzip"));
	s = (GzipStream *) h2o_add_ostream(req, sizeof(GzipStream), slot);
	s->super.do_send = gzip_send;
	s->pending = h2o_iovec_init(NULL, 0);
	h2o_setup_next_ostream(req, &s->super.next);
}

void
compress_register(h2o_pathconf_t *path)
{
	h2o_filter_t *filter = h2o_create_filter(path, sizeof(*filter));

	filter->on_setup_ostream = on_setup_ostream;
}

/*
 * gzip of data made once (the /docs files at start-up), malloc'ed;
 * {NULL, 0} on failure.
 */
h2o_iovec_t
compress_gzip_static(const char *data, size_t len)
{
	z_stream	zs;
	h2o_iovec_t out = { NULL, 0 };

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9,
					 Z_DEFAULT_STRATEGY) != Z_OK)
		return out;
	out.len = deflateBound(&zs, len);
	out.base = malloc(out.len);
	if (out.base == NULL)
	{
		deflateEnd(&zs);
		return h2o_iovec_init(NULL, 0);
	}
	zs.next_in = (Bytef *) data;
	zs.avail_in = len;
	zs.next_out = (Bytef *) out.base;
	zs.avail_out = out.len;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
	{
		free(out.base);
		out = h2o_iovec_init(NULL, 0);
	}
	else
		out.len = zs.total_out;
	deflateEnd(&zs);
	return out;
}
