/*
 * bulk.c
 *		CSV in and out (API.md, "Bulk in and out: CSV"): POST
 *		/admin/codes/import, GET /admin/codes/export, GET /admin/logs/export.
 *
 * Each runs on a database connection of its own (pgconn.c), in
 * transactions the database's side expects (extension/bulk.c):
 *
 * Import.  The body is parsed as it arrives (csv.c), never held whole:
 * from the socket when the import is the first request of its connection
 * (gate.c kept its body back from h2o), else from the body h2o read (at
 * most --body-limit).  Rows go to the database in batches of BATCH_ROWS
 * (psk.http_codes_import_rows), all in one transaction; while a batch is
 * in flight the next one fills, and when that one is full too the socket
 * is not read (TCP pushes back on the client).  A malformed file stops
 * the reading and rolls back: nothing is inserted, and the reply is
 * invalid_input naming the line.  At the end a cursor WITH HOLD is
 * declared on the report (psk.http_codes_import_report) and COMMIT writes
 * it out, so that a file of a million refused rows is never a
 * million-entry reply in memory, and the reply is sent from it after the
 * codes are committed.
 *
 * Export.  BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, a cursor WITH
 * HOLD on the route's function (psk.http_codes_export, psk.http_logs_export:
 * the caller's checks, then every row from the one snapshot of their
 * statement), COMMIT: the rows are written to a temporary file of the
 * session and the transaction, with its snapshot, is over, whatever the
 * client's speed.  Then each FETCH of FETCH_ROWS rows is written as CSV
 * and sent; the next FETCH is sent only when h2o asks for more (the
 * generator's proceed: the client has taken the previous chunk).  So the
 * shim holds one chunk at a time, however many rows there are; a client
 * that takes nothing for STALL_SECONDS loses its database connection.
 */
#include "bulk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FETCH_ROWS	1000
#define BATCH_ROWS	5000
#define BATCH_BYTES (1024 * 1024)
/* seconds a client may take nothing of a reply before its database
 * connection (one of --bulk-max, and the held cursor's file) goes */
#define STALL_SECONDS 60

/* A growable buffer of bytes (malloc'ed, reused). */
typedef struct Buf
{
	char  *data;
	size_t len;
	size_t cap;
} Buf;

static bool
buf_reserve(Buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char  *p;

	if (b->len + more <= b->cap)
		return true;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

static bool
buf_add(Buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n + 1))
		return false;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

/* An element of an array literal: "s" with \ and " escaped, or NULL. */
static bool
buf_add_element(Buf *b, const char *s, size_t n, bool isnull)
{
	if (b->len > 1 && !buf_add(b, ",", 1))
		return false;
	if (isnull)
		return buf_add(b, "NULL", 4);
	if (!buf_reserve(b, 2 * n + 3))
		return false;
	b->data[b->len++] = '"';
	for (size_t i = 0; i < n; i++)
	{
		if (s[i] == '"' || s[i] == '\\')
			b->data[b->len++] = '\\';
		b->data[b->len++] = s[i];
	}
	b->data[b->len++] = '"';
	b->data[b->len] = '\0';
	return true;
}

typedef enum Format
{
	FORMAT_CSV,	  /* each row's columns as a CSV line, a header first */
	FORMAT_PIECES /* each row's first column as it is (the JSON report) */
} Format;

/* One request of a bulk route, in its memory pool. */
typedef struct Bulk
{
	h2o_generator_t gen; /* first: h2o hands back &gen */
	h2o_req_t	   *req;
	BulkCtx		   *ctx;
	struct timespec started;
	BulkKind		kind;
	const char	   *function; /* the route's psk.http_* */
	PgConn		   *db;
	bool			db_busy;
	bool			failed;
	const char	   *params[3]; /* token, body (none), query */

	/* the reply streamed from a cursor */
	Format				format;
	const char		   *fetch;
	const char		   *content_type;
	const char		   *filename;
	Buf					out;
	bool				responding;
	bool				header_done;
	h2o_timeout_entry_t stall; /* from a send to h2o's proceed */
	bool				stalled;

	/* an import's body: from the socket (gate.c) or from h2o's entity */
	h2o_socket_t	   *sock;  /* NULL: the entity */
	bool				owned; /* sock->data is ours (h2o's kept below) */
	void			   *sock_data;
	bool				reading;
	h2o_timeout_entry_t idle;
	size_t				head_len; /* the rewritten head, still in input */
	bool				has_length;
	uint64_t			length_left;
	bool				chunked;
	Http1Chunked		chunk;
	bool				expect_continue;
	h2o_iovec_t			entity;
	size_t				entity_pos;
	uint64_t			body_bytes;
	bool				body_over;
	bool				draining; /* refused: the rest of the body is dropped */
	uint64_t			drained;
	HttpError			refusal; /* the reply after the draining */

	/* the CSV and the batch being filled */
	CsvParser *csv;
	bool	   header_done_csv;
	int		   ncols;
	int		   col_code, col_countries, col_note;
	Buf		   lines, codes, countries, notes;
	int		   nrows;
	char	   batch_id[40];
	char	   message[200];
} Bulk;

static void pump(Bulk *b);
static void stream_fetch(Bulk *b);

BulkKind
bulk_kind(const Route *route)
{
	if (route->function == NULL)
		return BULK_NONE;
	if (strcmp(route->function, "psk.http_codes_import") == 0)
		return BULK_IMPORT;
	if (strcmp(route->function, "psk.http_codes_export") == 0 ||
		strcmp(route->function, "psk.http_logs_export") == 0)
		return BULK_EXPORT;
	return BULK_NONE;
}

BulkCtx *
bulk_ctx_create(Worker *w)
{
	BulkCtx		 *ctx = calloc(1, sizeof(BulkCtx));
	h2o_evloop_t *loop = w->ctx.loop;

	ctx->worker = w;
	ctx->loop = loop;
	h2o_timeout_init(loop, &ctx->connect_timeout,
					 shim_config.connect_timeout_ms);
	h2o_timeout_init(loop, &ctx->run_timeout, shim_config.timeout_ms + 1000);
	/* a head or a body sending nothing: --idle-timeout, as h2o's requests */
	h2o_timeout_init(loop, &ctx->idle_timeout, shim_config.idle_timeout_ms);
	h2o_timeout_init(loop, &ctx->zero_timeout, 0);
	h2o_timeout_init(loop, &ctx->long_timeout, BULK_LONG_SECONDS * 1000 + 1000);
	h2o_timeout_init(loop, &ctx->stall_timeout, STALL_SECONDS * 1000);
	h2o_linklist_init_anchor(&ctx->gates);
	return ctx;
}

static HttpError
http_error(int status, const char *kind, const char *message)
{
	HttpError e = { status, kind, message, NULL, 0 };

	return e;
}

/*
 * The import's framing as gate.c left it, when this request is that
 * import; checked in on_req right after the route, as the contract orders
 * (the size before the token).
 */
static GateHandover *
handover_of(h2o_req_t *req)
{
	BulkCtx *ctx = H2O_STRUCT_FROM_MEMBER(Worker, ctx, req->conn->ctx)->bulk;
	GateHandover *hand = ctx->handover;

	if (hand == NULL || hand->taken ||
		req->conn->callbacks->get_socket == NULL ||
		req->conn->callbacks->get_socket(req->conn) != hand->sock)
		return NULL;
	return hand;
}

bool
bulk_size_error(h2o_req_t *req, const Route *route, HttpError *e)
{
	GateHandover *hand;
	char		  message[80];

	if (bulk_kind(route) != BULK_IMPORT || (hand = handover_of(req)) == NULL ||
		!hand->has_length || hand->length <= shim_config.import_limit)
		return false;
	snprintf(message, sizeof(message), "request body is larger than %zu bytes",
			 shim_config.import_limit);
	*e = http_error(413, "payload_too_large",
					h2o_strdup(&req->pool, message, SIZE_MAX).base);
	return true;
}

/* The socket back to h2o, which will write the reply on it. */
static void
release_socket(Bulk *b)
{
	if (h2o_timeout_is_linked(&b->idle))
		h2o_timeout_unlink(&b->idle);
	if (!b->owned)
		return;
	if (b->reading)
		h2o_socket_read_stop(b->sock);
	b->reading = false;
	b->sock->data = b->sock_data;
	b->owned = false;
}

static void
close_db(Bulk *b)
{
	pg_close(b->db);
	b->db = NULL;
	b->db_busy = false;
}

static void drain(Bulk *b);

/*
 * The request fails: an error reply, or, once a streamed reply has begun,
 * its end as broken (the client sees a cut-off chunked reply).  The
 * database connection goes, rolling back what was not committed.  An
 * import refused while its client still sends the body gets its reply
 * once that body is over (drain): closed with bytes unread, the socket
 * would be reset, and the client would likely lose the reply.
 */
static void
fail(Bulk *b, HttpError e)
{
	if (b->failed)
		return;
	b->failed = true;
	close_db(b);
	if (b->responding)
	{
		release_socket(b);
		shim_log("%.*s: reply cut off: %s", (int) b->req->path.len,
				 b->req->path.base, e.message);
		h2o_send(b->req, NULL, 0, H2O_SEND_STATE_ERROR);
		return;
	}
	if (b->sock != NULL && !b->body_over && b->kind == BULK_IMPORT)
	{
		h2o_mem_pool_t *pool = &b->req->pool;

		b->refusal = e;
		b->refusal.message = h2o_strdup(pool, e.message, SIZE_MAX).base;
		if (e.detail != NULL)
			b->refusal.detail = h2o_strdup(pool, e.detail, SIZE_MAX).base;
		if (!b->owned)
		{
			b->sock_data = b->sock->data;
			b->sock->data = b;
			b->owned = true;
		}
		b->draining = true;
		drain(b);
		return;
	}
	release_socket(b);
	server_error_reply(b->req, &b->started, e);
}

void
bulk_fail(Bulk *b, HttpError e)
{
	fail(b, e);
}

static void
fail_db(Bulk *b, PGresult *res, const char *why)
{
	if (res == NULL)
		fail(b, http_error(503, "unavailable", why));
	else
	{
		fail(b, http_error_from_result(res));
		PQclear(res);
	}
}

/* A malformed CSV: invalid_input naming the line where the fault starts. */
static void
fail_csv(Bulk *b, uint64_t line, const char *what)
{
	snprintf(b->message, sizeof(b->message), "malformed CSV: line %llu: %s",
			 (unsigned long long) line, what);
	fail(b, http_error(400, "invalid_input", b->message));
}

/* --- the reply, from a cursor ------------------------------------------- */

static void
on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
	Bulk *b = (Bulk *) gen;

	if (h2o_timeout_is_linked(&b->stall))
		h2o_timeout_unlink(&b->stall);
	if (b->stalled)
	{
		/* its database connection is gone: end the reply as broken */
		b->stalled = false;
		h2o_send(req, NULL, 0, H2O_SEND_STATE_ERROR);
		return;
	}
	stream_fetch(b);
}

/* The client took nothing for STALL_SECONDS: free the connection. */
static void
on_stall(h2o_timeout_entry_t *entry)
{
	Bulk *b = H2O_STRUCT_FROM_MEMBER(Bulk, stall, entry);

	shim_log("%.*s: the client took nothing for %d s; its transfer ends",
			 (int) b->req->path.len, b->req->path.base, STALL_SECONDS);
	b->failed = true;
	b->stalled = true;
	close_db(b);
}

/* The client went away: nothing more to send. */
static void
on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
	Bulk *b = (Bulk *) gen;

	(void) req;
	b->failed = true;
	if (h2o_timeout_is_linked(&b->stall))
		h2o_timeout_unlink(&b->stall);
	close_db(b);
}

static bool
add_csv_field(Buf *out, const char *s, size_t len, bool isnull, bool first)
{
	if (!buf_reserve(out, CSV_QUOTED_MAX(len) + 3))
		return false;
	if (!first)
		out->data[out->len++] = ',';
	out->len += csv_write_field(out->data + out->len, s, len, isnull);
	return true;
}

/* One FETCH as bytes of the reply; false when out of memory. */
static bool
format_rows(Bulk *b, const PGresult *res)
{
	int nrows = PQntuples(res);
	int ncols = PQnfields(res);

	b->out.len = 0;
	if (b->format == FORMAT_PIECES)
	{
		for (int r = 0; r < nrows; r++)
			if (!buf_add(&b->out, PQgetvalue(res, r, 0),
						 PQgetlength(res, r, 0)))
				return false;
		return true;
	}
	if (!b->header_done)
	{
		for (int c = 0; c < ncols; c++)
		{
			const char *name = PQfname(res, c);

			if (!add_csv_field(&b->out, name, strlen(name), false, c == 0))
				return false;
		}
		if (!buf_add(&b->out, "\r\n", 2))
			return false;
		b->header_done = true;
	}
	for (int r = 0; r < nrows; r++)
	{
		for (int c = 0; c < ncols; c++)
			if (!add_csv_field(&b->out, PQgetvalue(res, r, c),
							   PQgetlength(res, r, c), PQgetisnull(res, r, c),
							   c == 0))
				return false;
		if (!buf_add(&b->out, "\r\n", 2))
			return false;
	}
	return true;
}

static void
start_reply(Bulk *b)
{
	h2o_req_t *req = b->req;
	char	   disposition[80];

	server_reply_started(req, &b->started, 200);
	req->res.status = 200;
	req->res.reason = http_reason(200);
	/* unknown length: chunked (HTTP/1.1), or until the connection closes */
	req->res.content_length = SIZE_MAX;
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
				   b->content_type, strlen(b->content_type));
	if (b->filename != NULL)
	{
		snprintf(disposition, sizeof(disposition),
				 "attachment; filename=\"%s\"", b->filename);
		h2o_add_header(&req->pool, &req->res.headers,
					   H2O_TOKEN_CONTENT_DISPOSITION, NULL,
					   h2o_strdup(&req->pool, disposition, SIZE_MAX).base,
					   strlen(disposition));
	}
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
				   H2O_STRLIT("no-store"));
	b->gen.proceed = on_proceed;
	b->gen.stop = on_stop;
	h2o_start_response(req, &b->gen);
	b->responding = true;
}

static void
on_fetched(void *arg, PGresult *res, const char *why)
{
	Bulk	   *b = arg;
	bool		last;
	h2o_iovec_t chunk;

	b->db_busy = false;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fail_db(b, res, why);
		return;
	}
	last = PQntuples(res) < FETCH_ROWS;
	if (!format_rows(b, res))
	{
		PQclear(res);
		fail(b, http_error(500, "internal", "out of memory"));
		return;
	}
	PQclear(res);
	if (!b->responding)
		start_reply(b);
	if (last)
		close_db(b);
	chunk = h2o_iovec_init(b->out.data, b->out.len);
	if (!last)
		h2o_timeout_link(b->ctx->loop, &b->ctx->stall_timeout, &b->stall);
	/* the buffer is reused only after h2o asks for more (proceed) */
	h2o_send(b->req, &chunk, chunk.len ? 1 : 0,
			 last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void
stream_fetch(Bulk *b)
{
	if (b->failed || b->db == NULL)
		return;
	b->db_busy = true;
	pg_exec(b->db, b->fetch, 0, NULL, on_fetched, b);
}

/* --- the import's body ---------------------------------------------------- */

static void reading_start(Bulk *b);

/* The draining is over: the refusal's reply. */
static void
drained(Bulk *b)
{
	b->draining = false;
	b->body_over = true;
	release_socket(b);
	server_error_reply(b->req, &b->started, b->refusal);
}

/*
 * Read and drop the rest of a refused body: to its end, at most
 * --import-limit bytes more (DRAIN_MIN at least, so that a small limit
 * does not close on a client still sending a few bytes: a reset that would
 * likely lose it the reply), while it keeps coming (on_idle).
 */
#define DRAIN_MIN (1024 * 1024)

static void
drain(Bulk *b)
{
	for (;;)
	{
		h2o_buffer_t *in;
		size_t		  n;

		if (b->head_len > 0)
		{
			h2o_buffer_consume(&b->sock->input, b->head_len);
			b->head_len = 0;
		}
		in = b->sock->input;
		if (b->drained > shim_config.import_limit && b->drained > DRAIN_MIN)
		{
			drained(b);
			return;
		}
		if (b->chunked)
		{
			size_t skip, avail;

			switch (http1_chunked_next(&b->chunk, in->bytes, in->size, &skip,
									   &avail))
			{
				case CHUNKED_MORE:
					h2o_buffer_consume(&b->sock->input, skip);
					reading_start(b);
					return;
				case CHUNKED_DATA:
					h2o_buffer_consume(&b->sock->input, skip + avail);
					http1_chunked_took(&b->chunk, avail);
					b->drained += skip + avail;
					continue;
				case CHUNKED_END:
				case CHUNKED_ERROR:
					drained(b);
					return;
			}
		}
		if (b->length_left == 0)
		{
			drained(b);
			return;
		}
		if (in->size == 0)
		{
			reading_start(b);
			return;
		}
		n = in->size < b->length_left ? in->size : (size_t) b->length_left;
		h2o_buffer_consume(&b->sock->input, n);
		b->length_left -= n;
		b->drained += n;
	}
}

static void
on_idle(h2o_timeout_entry_t *entry)
{
	Bulk *b = H2O_STRUCT_FROM_MEMBER(Bulk, idle, entry);

	if (b->draining)
	{
		drained(b);
		return;
	}
	snprintf(b->message, sizeof(b->message),
			 "the request body stopped arriving (nothing for %d ms)",
			 shim_config.idle_timeout_ms);
	b->body_over = true;
	fail(b, http_error(400, "invalid_input", b->message));
}

static void
on_body_read(h2o_socket_t *sock, const char *err)
{
	Bulk *b = sock->data;

	if (err != NULL)
	{
		/* the client is gone, or shut its side: nothing more to read */
		b->body_over = true;
		if (b->draining)
			drained(b);
		else
			fail(b, http_error(400, "invalid_input",
							   "the request body ended before its end"));
		return;
	}
	if (h2o_timeout_is_linked(&b->idle))
		h2o_timeout_unlink(&b->idle);
	h2o_timeout_link(b->ctx->loop, &b->ctx->idle_timeout, &b->idle);
	if (b->draining)
		drain(b);
	else
		pump(b);
}

static void
reading_start(Bulk *b)
{
	if (!b->owned || b->reading)
		return;
	b->reading = true;
	h2o_socket_read_start(b->sock, on_body_read);
	if (!h2o_timeout_is_linked(&b->idle))
		h2o_timeout_link(b->ctx->loop, &b->ctx->idle_timeout, &b->idle);
}

static void
reading_stop(Bulk *b)
{
	if (!b->owned || !b->reading)
		return;
	b->reading = false;
	h2o_socket_read_stop(b->sock);
	if (h2o_timeout_is_linked(&b->idle))
		h2o_timeout_unlink(&b->idle);
}

static void
batch_reset(Bulk *b)
{
	b->lines.len = b->codes.len = b->countries.len = b->notes.len = 0;
	buf_add(&b->lines, "{", 1);
	buf_add(&b->codes, "{", 1);
	buf_add(&b->countries, "{", 1);
	buf_add(&b->notes, "{", 1);
	b->nrows = 0;
}

static size_t
batch_bytes(const Bulk *b)
{
	return b->lines.len + b->codes.len + b->countries.len + b->notes.len;
}

static void
on_batch_done(void *arg, PGresult *res, const char *why)
{
	Bulk *b = arg;

	b->db_busy = false;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fail_db(b, res, why);
		return;
	}
	PQclear(res);
	pump(b);
}

static void
send_batch(Bulk *b)
{
	const char *params[6];

	if (!buf_add(&b->lines, "}", 1) || !buf_add(&b->codes, "}", 1) ||
		!buf_add(&b->countries, "}", 1) || !buf_add(&b->notes, "}", 1))
	{
		fail(b, http_error(500, "internal", "out of memory"));
		return;
	}
	params[0] = b->params[0];
	params[1] = b->batch_id;
	params[2] = b->lines.data;
	params[3] = b->codes.data;
	params[4] = b->countries.data;
	params[5] = b->notes.data;
	b->db_busy = true;
	/* libpq copies the parameters: the buffers are free again */
	pg_exec(b->db, "SELECT psk.http_codes_import_rows($1, $2, $3, $4, $5, $6)",
			6, params, on_batch_done, b);
	batch_reset(b);
}

static bool
header_is(const char *s, size_t len, const char *name)
{
	size_t n = strlen(name);

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return len == n && h2o_lcstris(s, len, name, n);
}

/* The header row: which column is which. */
static bool
take_header(Bulk *b)
{
	static const char *const names[] = { "code", "countries", "note" };
	int		  *cols[] = { &b->col_code, &b->col_countries, &b->col_note };
	CsvParser *p = b->csv;

	b->col_code = b->col_countries = b->col_note = -1;
	for (int i = 0; i < p->nfields; i++)
	{
		size_t		len;
		const char *name = csv_field(p, i, &len);

		for (int k = 0; k < 3; k++)
		{
			if (!header_is(name, len, names[k]))
				continue;
			if (*cols[k] >= 0)
			{
				char what[80];

				snprintf(what, sizeof(what),
						 "the header names the column \"%s\" twice", names[k]);
				fail_csv(b, p->row_line, what);
				return false;
			}
			*cols[k] = i;
		}
	}
	if (b->col_code < 0)
	{
		fail_csv(b, p->row_line,
				 "the header row has no \"code\" column (it names the "
				 "columns: code, and maybe countries and note)");
		return false;
	}
	b->ncols = p->nfields;
	b->header_done_csv = true;
	return true;
}

/* A row into the batch. */
static bool
take_row(Bulk *b)
{
	CsvParser  *p = b->csv;
	char		line[24];
	size_t		len;
	const char *s;
	bool		ok;

	if (!b->header_done_csv)
		return take_header(b);
	if (p->nfields != b->ncols)
	{
		char what[80];

		snprintf(what, sizeof(what), "%d fields, the header has %d", p->nfields,
				 b->ncols);
		fail_csv(b, p->row_line, what);
		return false;
	}
	snprintf(line, sizeof(line), "%llu", (unsigned long long) p->row_line);
	s = csv_field(p, b->col_code, &len);
	ok = buf_add(&b->lines, b->lines.len > 1 ? "," : "", b->lines.len > 1) &&
		 buf_add(&b->lines, line, strlen(line)) &&
		 buf_add_element(&b->codes, s, len, false);
	if (ok)
	{
		len = 0;
		s = b->col_countries >= 0 ? csv_field(p, b->col_countries, &len) : "";
		ok = buf_add_element(&b->countries, s, len, len == 0);
	}
	if (ok)
	{
		len = 0;
		s = b->col_note >= 0 ? csv_field(p, b->col_note, &len) : "";
		ok = buf_add_element(&b->notes, s, len, len == 0);
	}
	if (!ok)
	{
		fail(b, http_error(500, "internal", "out of memory"));
		return false;
	}
	b->nrows++;
	return true;
}

/*
 * The transaction ends: COMMIT, which writes out the held cursor (an
 * export's rows, an import's report) and, for an import, commits the
 * codes.  Then the reply streams from the cursor.
 */
static void
on_commit(void *arg, PGresult *res, const char *why)
{
	Bulk *b = arg;

	b->db_busy = false;
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK ||
		strcmp(PQcmdStatus(res), "COMMIT") != 0)
	{
		if (res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK)
		{
			PQclear(res);
			fail(b, http_error(503, "unavailable",
							   "the transaction was rolled back"));
			return;
		}
		fail_db(b, res, why);
		return;
	}
	PQclear(res);
	stream_fetch(b);
}

/* The cursor is declared: COMMIT, which may take a while (the rows). */
static void
on_declared(void *arg, PGresult *res, const char *why)
{
	Bulk *b = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		b->db_busy = false;
		fail_db(b, res, why);
		return;
	}
	PQclear(res);
	pg_exec_slow(b->db, "COMMIT", on_commit, b);
}

/* An import's last statements: the report's cursor, then COMMIT. */
static void
on_long_timeout(void *arg, PGresult *res, const char *why)
{
	Bulk	   *b = arg;
	const char *params[1] = { b->batch_id };

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		b->db_busy = false;
		fail_db(b, res, why);
		return;
	}
	PQclear(res);
	b->format = FORMAT_PIECES;
	b->fetch = "FETCH 1000 FROM psk_import_report";
	b->content_type = "application/json";
	b->filename = NULL;
	pg_exec(b->db,
			"DECLARE psk_import_report NO SCROLL CURSOR WITH HOLD FOR"
			" SELECT * FROM psk.http_codes_import_report($1)",
			1, params, on_declared, b);
}

/* The body is over: the last rows, then the end once no batch is out. */
static void
finish_import(Bulk *b)
{
	if (b->db_busy)
		return; /* on_batch_done comes back here */
	if (b->nrows > 0)
	{
		send_batch(b);
		return;
	}
	b->db_busy = true;
	/* the COMMIT writes out the report: not under --timeout */
	pg_exec(b->db, "SET LOCAL statement_timeout = " BULK_LONG_MS, 0, NULL,
			on_long_timeout, b);
}

/* The end of the body: the last row, and the checks of the whole file. */
static void
body_over(Bulk *b)
{
	CsvStatus st;

	b->body_over = true;
	release_socket(b);
	while ((st = csv_finish(b->csv)) == CSV_RECORD)
		if (!take_row(b))
			return;
	if (st == CSV_ERROR)
	{
		fail_csv(b, b->csv->error_line, b->csv->error);
		return;
	}
	if (!b->header_done_csv)
	{
		fail_csv(b, 1, "no header row: the file is empty");
		return;
	}
	finish_import(b);
}

/*
 * The next bytes of the body that are here: false when there are none now
 * (reading resumes), or when the body is over or broken (handled).
 */
static bool
next_piece(Bulk *b, const char **data, size_t *avail)
{
	if (b->sock == NULL)
	{
		/* h2o's entity: all of it is here */
		if (b->entity_pos == b->entity.len)
		{
			body_over(b);
			return false;
		}
		*data = b->entity.base + b->entity_pos;
		*avail = b->entity.len - b->entity_pos;
		return true;
	}
	if (b->head_len > 0)
	{
		h2o_buffer_consume(&b->sock->input, b->head_len);
		b->head_len = 0;
	}
	if (b->chunked)
	{
		size_t skip;

		switch (http1_chunked_next(&b->chunk, b->sock->input->bytes,
								   b->sock->input->size, &skip, avail))
		{
			case CHUNKED_MORE:
				h2o_buffer_consume(&b->sock->input, skip);
				reading_start(b);
				return false;
			case CHUNKED_DATA:
				h2o_buffer_consume(&b->sock->input, skip);
				*data = b->sock->input->bytes;
				return true;
			case CHUNKED_END:
				h2o_buffer_consume(&b->sock->input, skip);
				body_over(b);
				return false;
			case CHUNKED_ERROR:
				fail(b, http_error(400, "invalid_input",
								   "malformed chunked transfer coding"));
				return false;
		}
	}
	if (b->length_left == 0)
	{
		body_over(b);
		return false;
	}
	if (b->sock->input->size == 0)
	{
		reading_start(b);
		return false;
	}
	*data = b->sock->input->bytes;
	*avail = b->sock->input->size < b->length_left ? b->sock->input->size
												   : (size_t) b->length_left;
	return true;
}

/* n bytes of the piece were parsed */
static bool
took(Bulk *b, size_t n)
{
	if (b->sock == NULL)
		b->entity_pos += n;
	else
	{
		h2o_buffer_consume(&b->sock->input, n);
		if (b->chunked)
			http1_chunked_took(&b->chunk, n);
		else
			b->length_left -= n;
	}
	b->body_bytes += n;
	if (b->body_bytes > shim_config.import_limit)
	{
		snprintf(b->message, sizeof(b->message),
				 "request body is larger than %zu bytes",
				 shim_config.import_limit);
		fail(b, http_error(413, "payload_too_large", b->message));
		return false;
	}
	return true;
}

/*
 * Parse what is here into batches; send a full batch when the database is
 * free, and stop reading while one waits for it.
 */
static void
pump(Bulk *b)
{
	while (!b->failed)
	{
		const char *data;
		size_t		avail, used;
		CsvStatus	st;

		if (b->body_over)
		{
			finish_import(b);
			return;
		}
		if (b->nrows >= BATCH_ROWS || batch_bytes(b) >= BATCH_BYTES)
		{
			if (b->db_busy)
			{
				reading_stop(b);
				return;
			}
			send_batch(b);
			continue;
		}
		if (!next_piece(b, &data, &avail))
			return;
		st = csv_parse(b->csv, data, avail, &used);
		if (!took(b, used))
			return;
		if (st == CSV_ERROR)
		{
			fail_csv(b, b->csv->error_line, b->csv->error);
			return;
		}
		if (st == CSV_RECORD && !take_row(b))
			return;
	}
}

static void
on_continue_sent(h2o_socket_t *sock, const char *err)
{
	Bulk *b = sock->data;

	if (err != NULL)
	{
		fail(b, http_error(400, "invalid_input", "the client went away"));
		return;
	}
	pump(b);
}

/* The database took the import: read the body. */
static void
start_body(Bulk *b)
{
	static h2o_iovec_t cont = { H2O_STRLIT("HTTP/1.1 100 Continue\r\n\r\n") };

	b->csv = malloc(sizeof(CsvParser));
	if (b->csv == NULL)
	{
		fail(b, http_error(500, "internal", "out of memory"));
		return;
	}
	csv_init(b->csv);
	batch_reset(b);
	if (b->sock != NULL)
	{
		/* h2o reads nor writes this socket until the reply: ours till then */
		b->sock_data = b->sock->data;
		b->sock->data = b;
		b->owned = true;
		b->idle.cb = on_idle;
		if (b->expect_continue)
		{
			h2o_socket_write(b->sock, &cont, 1, on_continue_sent);
			return;
		}
	}
	pump(b);
}

/* {"batch_id":"<uuid>"}, as psk.http_codes_import answers */
static bool
read_batch_id(Bulk *b, const PGresult *res)
{
	const char *v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	const char *p = strstr(v, "\"batch_id\":\"");

	if (p == NULL || strlen(p + 12) < 37 || p[12 + 36] != '"')
		return false;
	memcpy(b->batch_id, p + 12, 36);
	b->batch_id[36] = '\0';
	return true;
}

static void
on_route_called(void *arg, PGresult *res, const char *why)
{
	Bulk *b = arg;
	bool  ok;

	b->db_busy = false;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fail_db(b, res, why);
		return;
	}
	ok = read_batch_id(b, res);
	PQclear(res);
	if (!ok)
	{
		shim_log("psk.http_codes_import returned no batch_id");
		fail(b, http_error(500, "internal", "internal server error"));
		return;
	}
	start_body(b);
}

static void
on_begun(void *arg, PGresult *res, const char *why)
{
	Bulk *b = arg;
	char  sql[160];

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		b->db_busy = false;
		fail_db(b, res, why);
		return;
	}
	PQclear(res);
	if (b->kind == BULK_IMPORT)
	{
		snprintf(sql, sizeof(sql), "SELECT %s($1, $2, $3)", b->function);
		pg_exec(b->db, sql, 3, b->params, on_route_called, b);
		return;
	}
	/* the function runs, and its rows are written out, at COMMIT */
	snprintf(sql, sizeof(sql),
			 "DECLARE psk_export NO SCROLL CURSOR WITH HOLD FOR"
			 " SELECT * FROM %s($1, $2, $3)",
			 b->function);
	pg_exec(b->db, sql, 3, b->params, on_declared, b);
}

static void
on_open(void *arg, PGresult *res, const char *why)
{
	Bulk *b = arg;

	PQclear(res);
	if (why != NULL)
	{
		b->db_busy = false;
		fail(b, http_error(503, "unavailable", why));
		return;
	}
	pg_exec(b->db,
			b->kind == BULK_IMPORT
				? "BEGIN"
				: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
				  " SET LOCAL statement_timeout = " BULK_LONG_MS,
			0, NULL, on_begun, b);
}

/* The request's pool is cleared: the reply is over, or its client gone. */
static void
on_dispose(void *p)
{
	Bulk *b = p;

	release_socket(b);
	if (h2o_timeout_is_linked(&b->idle))
		h2o_timeout_unlink(&b->idle);
	if (h2o_timeout_is_linked(&b->stall))
		h2o_timeout_unlink(&b->stall);
	close_db(b);
	free(b->csv);
	free(b->out.data);
	free(b->lines.data);
	free(b->codes.data);
	free(b->countries.data);
	free(b->notes.data);
}

Bulk *
bulk_prepare(h2o_req_t *req, const Route *route, const char *token,
			 const char *query, const struct timespec *started)
{
	BulkCtx *ctx = H2O_STRUCT_FROM_MEMBER(Worker, ctx, req->conn->ctx)->bulk;
	Bulk	*b = h2o_mem_alloc_shared(&req->pool, sizeof(Bulk), on_dispose);
	GateHandover *hand;

	memset(b, 0, sizeof(*b));
	b->req = req;
	b->ctx = ctx;
	b->started = *started;
	b->kind = bulk_kind(route);
	b->function = route->function;
	b->params[0] = token;
	b->params[1] = NULL;
	b->params[2] = query;
	b->format = FORMAT_CSV;
	b->fetch = "FETCH 1000 FROM psk_export";
	b->content_type = "text/csv; charset=utf-8";
	b->filename = strncmp(route->path, "/admin/logs/", 12) == 0
					  ? "psk-log.csv"
					  : "psk-codes.csv";
	b->idle.cb = on_idle;
	b->stall.cb = on_stall;

	if (b->kind == BULK_IMPORT)
	{
		if ((hand = handover_of(req)) != NULL)
		{
			hand->taken = true;
			b->sock = hand->sock;
			b->head_len = hand->head_len;
			b->has_length = hand->has_length;
			b->length_left = hand->length;
			b->chunked = hand->chunked;
			b->expect_continue = hand->expect_continue;
			http1_chunked_init(&b->chunk);
		}
		else
			b->entity = req->entity;
	}

	return b;
}

void
bulk_run(Bulk *b)
{
	b->db = pg_open(b->ctx, on_open, b);
	if (b->db == NULL)
	{
		fail(b, http_error(503, "unavailable",
						   "too many imports and exports at once "
						   "(--bulk-max); try again shortly"));
		return;
	}
	b->db_busy = true;
}
