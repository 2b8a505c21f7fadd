/*
 * gate.c
 *		The front door of every new connection: the one place where the
 *		shim sees a request before h2o has read its body.
 *
 * h2o 2.2.5 hands a handler a request only once its whole body is in
 * memory, and refuses one over a single limit for every path (--body-limit,
 * 64 KiB).  An import of up to --import-limit (64 MiB) must instead be read
 * as it arrives.  So a new connection is read here first, up to the end of
 * its first request's head:
 *
 *	- not POST /admin/codes/import (almost always: decided on the first
 *	  bytes or the request line), or a head this file does not fully
 *	  understand (http1.c is strict): the connection goes to h2o as it
 *	  came (h2o_accept reads what was read here first);
 *	- an import with a body: the head is rewritten in the socket's buffer
 *	  to the same request without a body ("Content-Length: 0",
 *	  "Connection: close", no Expect), and the connection goes to h2o with
 *	  the body's framing left here (GateHandover).  h2o parses that head
 *	  and calls the handler at once, in the same call; server.c checks
 *	  route, size, token, role and media type as for every request, and
 *	  bulk.c then reads the body from the socket itself, which h2o leaves
 *	  alone until the reply is sent, and answers through h2o as usual.
 *	  The connection closes after the reply.
 *
 * An import as a later request of a kept-alive connection is never seen
 * here: h2o reads its body under --body-limit, and bulk.c imports that
 * (a larger one is 413, whose message says to send it on a new
 * connection).
 */
#include "bulk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Gate
{
	h2o_linklist_t		link; /* in BulkCtx.gates */
	Worker			   *worker;
	h2o_socket_t	   *sock;
	h2o_timeout_entry_t timeout; /* the head must come in time */
} Gate;

static const char import_path[] = "/admin/codes/import";

static void
gate_free(Gate *g)
{
	h2o_linklist_unlink(&g->link);
	if (h2o_timeout_is_linked(&g->timeout))
		h2o_timeout_unlink(&g->timeout);
	free(g);
}

/* To h2o, with whatever was read. */
static void
pass(Gate *g)
{
	Worker		 *w = g->worker;
	h2o_socket_t *sock = g->sock;

	h2o_socket_read_stop(sock);
	sock->data = NULL;
	gate_free(g);
	h2o_accept(&w->accept_ctx, sock);
}

static void
close_gate(Gate *g)
{
	h2o_socket_t *sock = g->sock;

	gate_free(g);
	h2o_socket_close(sock);
}

static bool
is_import(const Http1Head *h)
{
	const char *q = memchr(h->target, '?', h->target_len);
	size_t		len = q ? (size_t) (q - h->target) : h->target_len;

	return h->method_len == 4 && memcmp(h->method, "POST", 4) == 0 &&
		   len == sizeof(import_path) - 1 &&
		   memcmp(h->target, import_path, len) == 0;
}

static bool
add(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
	if (*n + len > cap)
		return false;
	memcpy(out + *n, s, len);
	*n += len;
	return true;
}

static bool
named(const Http1Header *hd, const char *name)
{
	size_t len = strlen(name);

	return hd->name_len == len && h2o_lcstris(hd->name, len, name, len);
}

/*
 * The head without its body: the framing headers out, "Connection: close"
 * and "Content-Length: 0" in.  0 when it would not fit h2o's limit.
 */
static size_t
rewrite(const Http1Head *h, char *out, size_t cap)
{
	static const char tail[] = "connection: close\r\ncontent-length: 0\r\n\r\n";
	size_t			  n = 0;
	char			  version[16];

	snprintf(version, sizeof(version), " HTTP/1.%d\r\n", h->minor);
	if (!add(out, cap, &n, h->method, h->method_len) ||
		!add(out, cap, &n, " ", 1) ||
		!add(out, cap, &n, h->target, h->target_len) ||
		!add(out, cap, &n, version, strlen(version)))
		return 0;
	for (int i = 0; i < h->nheaders; i++)
	{
		const Http1Header *hd = &h->headers[i];

		if (named(hd, "content-length") || named(hd, "transfer-encoding") ||
			named(hd, "expect") || named(hd, "connection"))
			continue;
		if (!add(out, cap, &n, hd->name, hd->name_len) ||
			!add(out, cap, &n, ": ", 2) ||
			!add(out, cap, &n, hd->value, hd->value_len) ||
			!add(out, cap, &n, "\r\n", 2))
			return 0;
	}
	if (!add(out, cap, &n, tail, sizeof(tail) - 1))
		return 0;
	return n;
}

/* Put head[0..len) where the first old_len bytes of the input were. */
static void
replace_head(h2o_socket_t *sock, size_t old_len, const char *head, size_t len)
{
	size_t rest = sock->input->size - old_len;

	if (len > old_len)
		h2o_buffer_reserve(&sock->input, len - old_len);
	memmove(sock->input->bytes + len, sock->input->bytes + old_len, rest);
	memcpy(sock->input->bytes, head, len);
	sock->input->size = len + rest;
}

static void
on_read(h2o_socket_t *sock, const char *err)
{
	Gate		 *g = sock->data;
	BulkCtx		 *ctx = g->worker->bulk;
	h2o_buffer_t *in = sock->input;
	size_t		  n = in->size < 5 ? in->size : 5;
	Http1Head	 *h;
	char		  head[HTTP1_MAX_HEAD];
	size_t		  len;
	int			  r;
	GateHandover  hand;

	if (err != NULL)
	{
		close_gate(g);
		return;
	}
	/* anything but a POST: h2o's at once */
	if (memcmp(in->bytes, "POST ", n) != 0)
	{
		pass(g);
		return;
	}
	if (n < 5)
		return;
	h = malloc(sizeof(Http1Head));
	if (h == NULL)
	{
		pass(g);
		return;
	}
	r = http1_request_line(in->bytes, in->size, h);
	if (r == 1 && is_import(h))
		r = http1_head(in->bytes, in->size, h);
	else if (r == 1)
		r = -1;
	if (r == 0)
	{
		free(h);
		return;
	}
	if (r < 0 || (!h->has_length && !h->chunked) ||
		(len = rewrite(h, head, sizeof(head))) == 0)
	{
		free(h);
		pass(g);
		return;
	}
	hand.sock = sock;
	hand.head_len = len;
	hand.has_length = h->has_length;
	hand.length = h->length;
	hand.chunked = h->chunked;
	hand.expect_continue = h->expect_continue;
	hand.taken = false;
	replace_head(sock, h->head_len, head, len);
	free(h);
	/* h2o calls the handler (bulk.c) before h2o_accept returns */
	ctx->handover = &hand;
	pass(g);
	ctx->handover = NULL;
}

static void
on_timeout(h2o_timeout_entry_t *entry)
{
	close_gate(H2O_STRUCT_FROM_MEMBER(Gate, timeout, entry));
}

void
gate_accept(Worker *w, h2o_socket_t *sock)
{
	Gate *g = calloc(1, sizeof(Gate));

	if (g == NULL)
	{
		h2o_accept(&w->accept_ctx, sock);
		return;
	}
	g->worker = w;
	g->sock = sock;
	sock->data = g;
	h2o_linklist_insert(&w->bulk->gates, &g->link);
	g->timeout.cb = on_timeout;
	h2o_timeout_link(w->bulk->loop, &w->bulk->idle_timeout, &g->timeout);
	h2o_socket_read_start(sock, on_read);
}

/* Shutting down: the connections that sent no whole request yet go. */
void
gate_close_all(Worker *w)
{
	while (!h2o_linklist_is_empty(&w->bulk->gates))
		close_gate(H2O_STRUCT_FROM_MEMBER(Gate, link, w->bulk->gates.next));
}
