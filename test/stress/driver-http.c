/*
 * driver-http.c
 *		psk-load's way in through psk-shim: plain sockets, HTTP/1.1 with
 *		keep-alive, one connection and one bearer token per client.
 *
 * The shim's address comes from PSK_LOAD_HTTP (host:port); clients whose
 * reservations must expire (ttl > 0) go to PSK_LOAD_HTTP_TTL instead, a
 * shim whose database role has psk.reservation_ttl set (the TTL cannot be
 * set per HTTP session).  Every account's password is PSK_LOAD_PASSWORD
 * (default Rdl@12345).  There is no endpoint for the expiry sweep: the
 * expirer stays on SQL.
 *
 * Outcomes: a 2xx reply is OUT_OK; an error reply's kind is mapped back to
 * its SQLSTATE (OUT_ERR); a 503, a connection that dies or a reply that
 * never comes is OUT_LOST, as a cut-off SQL call: the request may or may
 * not have committed.  After a loss the next call connects and logs in
 * again (the shim may have been restarted), waiting for it up to
 * RECONNECT_SECONDS.
 */
#include "load.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_MAX	  (1024 * 1024)
#define REPLY_SECONDS	  30 /* a reply slower than this is lost */
#define RECONNECT_SECONDS 20

typedef struct Session
{
	char   host[128];
	char   port[16];
	char   email[64];
	bool   is_admin;
	int	   fd;		   /* -1: not connected */
	char   token[256]; /* bearer token; empty: not logged in */
	char  *buf;		   /* the last reply */
	size_t len;
	int	   status;
	char  *body; /* into buf */
	size_t body_len;
} Session;

/* The contract's error kinds and the SQLSTATEs they stand for. */
static const struct
{
	const char *kind;
	const char *sqlstate;
} kinds[] = {
	{ "no_codes_available", "PK001" }, { "not_found", "PK002" },
	{ "not_allowed", "PK003" },		   { "wrong_state", "PK004" },
	{ "token_mismatch", "PK005" },	   { "reservation_expired", "PK006" },
	{ "invalid_input", "PK007" },	   { "unauthorized", "PK008" },
	{ "conflict", "PK009" },		   { "locked_out", "PK010" },
};

static void
copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* Just enough JSON: the replies' shapes are known (API.md). */

/* The end of the JSON value at p (string, object, array or scalar). */
static const char *
json_skip(const char *p, const char *end)
{
	int	 depth = 0;
	bool in_string = false;

	for (; p < end; p++)
	{
		if (in_string)
		{
			if (*p == '\\')
				p++;
			else if (*p == '"')
			{
				in_string = false;
				if (depth == 0)
					return p + 1;
			}
		}
		else if (*p == '"')
			in_string = true;
		else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
		{
			if (--depth <= 0)
				return depth == 0 ? p + 1 : p;
		}
		else if (depth == 0 && (*p == ',' || *p == ' ' || *p == '\n'))
			return p;
	}
	return end;
}

static const char *
json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/*
 * The value of key in the object [obj, end) (obj at its '{'), at that
 * object's own level; NULL if absent.
 */
static const char *
json_get(const char *obj, const char *end, const char *key)
{
	size_t		klen = strlen(key);
	const char *p = json_ws(obj, end);

	if (p >= end || *p != '{')
		return NULL;
	p++;
	while (p < end)
	{
		const char *k;
		const char *kend;

		p = json_ws(p, end);
		if (p >= end || *p != '"')
			return NULL;
		k = p + 1;
		kend = json_skip(p, end);
		p = json_ws(kend, end);
		if (p >= end || *p != ':')
			return NULL;
		p = json_ws(p + 1, end);
		if ((size_t) (kend - 1 - k) == klen && strncmp(k, key, klen) == 0)
			return p;
		p = json_ws(json_skip(p, end), end);
		if (p < end && *p == ',')
			p++;
		else
			return NULL;
	}
	return NULL;
}

/* A string value (escapes kept as they are: ours have none); "" if none. */
static void
json_string(const char *v, const char *end, char *dst, size_t size)
{
	const char *s;

	dst[0] = '\0';
	if (v == NULL || v >= end || *v != '"')
		return;
	s = json_skip(v, end);
	snprintf(dst, size, "%.*s", (int) (s - v - 2), v + 1);
}

/* Append s to dst as a JSON string. */
static void
json_quote(char *dst, size_t size, const char *s)
{
	size_t n = strlen(dst);

	if (n + 2 >= size)
		return;
	dst[n++] = '"';
	for (; *s && n + 8 < size; s++)
	{
		if (*s == '"' || *s == '\\')
			dst[n++] = '\\';
		if ((unsigned char) *s < 0x20)
			n += snprintf(dst + n, size - n, "\\u%04x", *s);
		else
			dst[n++] = *s;
	}
	dst[n++] = '"';
	dst[n] = '\0';
}

/* Append ,"key":"value" (or the first member); nothing for NULL. */
static void
json_member(char *dst, size_t size, const char *key, const char *value)
{
	if (value == NULL)
		return;
	if (strlen(dst) > 1)
		strncat(dst, ",", size - strlen(dst) - 1);
	json_quote(dst, size, key);
	strncat(dst, ":", size - strlen(dst) - 1);
	json_quote(dst, size, value);
}

/* ------------------------------------------------------------------ */
/* HTTP */

static void
disconnect(Session *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static bool
connect_once(Session *s)
{
	struct addrinfo	 hints = { .ai_family = AF_INET,
							   .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	struct timeval	 tv = { REPLY_SECONDS, 0 };
	int				 one = 1;
	int				 fd;

	if (getaddrinfo(s->host, s->port, &hints, &ai) != 0)
		return false;
	fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
	{
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return false;
	}
	freeaddrinfo(ai);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	s->fd = fd;
	return true;
}

/*
 * A kept-alive connection the server closed while we were not looking
 * (a restart, an idle timeout): nothing was sent on it, so it is safe to
 * drop it and connect again.
 */
static bool
closed_by_peer(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char		  c;

	if (poll(&p, 1, 0) <= 0)
		return false;
	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

static bool
send_all(int fd, const char *p, size_t n)
{
	while (n > 0)
	{
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= w;
	}
	return true;
}

/* Read until buf holds at least want bytes; false on EOF or error. */
static bool
read_to(Session *s, size_t want)
{
	if (want >= RESPONSE_MAX)
		return false;
	while (s->len < want)
	{
		ssize_t r = recv(s->fd, s->buf + s->len, RESPONSE_MAX - 1 - s->len, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		s->len += r;
	}
	s->buf[s->len] = '\0';
	return true;
}

/* Read one reply: status, headers, body (Content-Length or chunked). */
static bool
read_reply(Session *s, bool *keep_alive)
{
	char  *eoh;
	size_t hlen;
	long   clen = -1;
	bool   chunked = false;

	s->len = 0;
	s->buf[0] = '\0';
	while ((eoh = strstr(s->buf, "\r\n\r\n")) == NULL)
		if (!read_to(s, s->len + 1))
			return false;
	hlen = eoh + 4 - s->buf;
	if (sscanf(s->buf, "HTTP/1.%*d %d", &s->status) != 1)
		return false;
	*keep_alive = true;
	for (char *line = strstr(s->buf, "\r\n") + 2; line < eoh;
		 line = strstr(line, "\r\n") + 2)
	{
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			clen = strtol(line + 15, NULL, 10);
		else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0)
			chunked = strstr(line, "chunked") != NULL;
		else if (strncasecmp(line, "Connection:", 11) == 0)
			*keep_alive = strstr(line, "close") == NULL;
	}
	if (!chunked)
	{
		if (clen < 0 || !read_to(s, hlen + clen))
			return false;
		s->body = s->buf + hlen;
		s->body_len = clen;
		return true;
	}

	/* chunked: decode in place, after the headers */
	s->body = s->buf + hlen;
	s->body_len = 0;
	for (size_t at = hlen;;)
	{
		char *eol;
		long  n;

		while ((eol = strstr(s->buf + at, "\r\n")) == NULL)
			if (!read_to(s, s->len + 1))
				return false;
		n = strtol(s->buf + at, NULL, 16);
		if (!read_to(s, (eol + 2 - s->buf) + n + 2))
			return false;
		eol = s->buf + at; /* the buffer does not move */
		eol = strstr(eol, "\r\n");
		if (n == 0)
			break;
		memmove(s->body + s->body_len, eol + 2, n);
		s->body_len += n;
		at = (eol + 2 - s->buf) + n + 2;
	}
	s->body[s->body_len] = '\0';
	return true;
}

/*
 * One request and its reply.  false: the connection died (or never came
 * up) somewhere on the way; the request may or may not have been acted on.
 */
static bool
request(Session *s, const char *method, const char *path, const char *body,
		bool auth)
{
	char head[1024];
	int	 n;
	bool keep_alive;

	if (s->fd >= 0 && closed_by_peer(s->fd))
		disconnect(s);
	if (s->fd < 0 && !connect_once(s))
		return false;
	n = snprintf(
		head, sizeof(head),
		"%s %s HTTP/1.1\r\nHost: %s:%s\r\n%s%s%s"
		"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		method, path, s->host, s->port, auth ? "Authorization: Bearer " : "",
		auth ? s->token : "", auth ? "\r\n" : "", body ? strlen(body) : 0);
	if (n >= (int) sizeof(head) || !send_all(s->fd, head, n) ||
		(body && !send_all(s->fd, body, strlen(body))) ||
		!read_reply(s, &keep_alive))
	{
		disconnect(s);
		return false;
	}
	if (!keep_alive)
		disconnect(s);
	return true;
}

/* Log in (again): a new connection and a new token, waiting for the shim. */
static bool
login(Session *s, char *err, size_t errlen)
{
	char		body[512] = "{";
	const char *password = getenv("PSK_LOAD_PASSWORD");
	const char *p;
	time_t		give_up = time(NULL) + RECONNECT_SECONDS;

	json_member(body, sizeof(body), "username", s->email);
	json_member(body, sizeof(body), "password",
				password ? password : "Rdl@12345");
	strncat(body, "}", sizeof(body) - strlen(body) - 1);
	disconnect(s);
	s->token[0] = '\0';
	for (;;)
	{
		/*
		 * 503: the shim has no database yet, or the login guard has no
		 * worker free (a burst of logins, as after a restart); 429: locked
		 * out.  All say "try again later".
		 */
		if (request(s, "POST", "/auth/login", body, false) &&
			s->status != 503 && s->status != 429)
			break;
		if (time(NULL) > give_up)
		{
			snprintf(err, errlen, "login %s: no answer from %s:%s", s->email,
					 s->host, s->port);
			return false;
		}
		sleep_ms(50);
	}
	p = json_get(s->body, s->body + s->body_len, "access_token");
	json_string(p, s->body + s->body_len, s->token, sizeof(s->token));
	if (s->status != 200 || s->token[0] == '\0')
	{
		snprintf(err, errlen, "login %s: %d %.*s", s->email, s->status,
				 (int) s->body_len, s->body);
		return false;
	}
	/* Admins mark through /admin, users through /users. */
	if (!request(s, "GET", "/auth/me", NULL, true) || s->status != 200)
	{
		snprintf(err, errlen, "GET /auth/me as %s failed", s->email);
		return false;
	}
	p = json_get(s->body, s->body + s->body_len, "is_admin");
	s->is_admin = p != NULL && strncmp(p, "true", 4) == 0;
	return true;
}

/*
 * A call: log in again first if the last one was lost, send it, and sort
 * out the outcome.  On success the reply's body is in s->body.
 */
static bool
call(Session *s, const char *method, const char *path, const char *body,
	 Reply *r)
{
	const char *end;
	char		kind[64];

	r->nrows = 0;
	r->sqlstate[0] = '\0';
	r->message[0] = '\0';
	if (s->token[0] == '\0' && !login(s, r->message, sizeof(r->message)))
	{
		r->outcome = OUT_LOST;
		return false;
	}
	if (!request(s, method, path, body, true))
	{
		r->outcome = OUT_LOST;
		snprintf(r->message, sizeof(r->message), "%s %s: connection lost",
				 method, path);
		s->token[0] = '\0'; /* log in again: the shim may be new */
		return false;
	}
	if (s->status >= 200 && s->status < 300)
	{
		r->outcome = OUT_OK;
		return true;
	}
	end = s->body + s->body_len;
	json_string(json_get(s->body, end, "error"), end, kind, sizeof(kind));
	json_string(json_get(s->body, end, "message"), end, r->message,
				sizeof(r->message));
	if (s->status == 503)
	{
		r->outcome = OUT_LOST;
		return false;
	}
	r->outcome = OUT_ERR;
	/* an unknown kind (internal, ...): "H" and the status, never expected */
	snprintf(r->sqlstate, sizeof(r->sqlstate), "H%d", s->status);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i].kind) == 0)
			copy(r->sqlstate, sizeof(r->sqlstate), kinds[i].sqlstate);
	if (r->message[0] == '\0')
		snprintf(r->message, sizeof(r->message), "%s %s: %d %s", method, path,
				 s->status, kind);
	return false;
}

/* The reply is one code object (or its code only): fill row i. */
static void
take_row(Reply *r, const char *obj, const char *end)
{
	Row *row;

	if (r->nrows >= LOAD_MAX_ROWS)
		return;
	row = &r->rows[r->nrows++];
	memset(row, 0, sizeof(*row));
	json_string(json_get(obj, end, "code"), end, row->code, sizeof(row->code));
	json_string(json_get(obj, end, "code_type"), end, row->pool,
				sizeof(row->pool));
	json_string(json_get(obj, end, "reservation_token"), end, row->token,
				sizeof(row->token));
	json_string(json_get(obj, end, "status"), end, row->status,
				sizeof(row->status));
}

/* Every object of the array member key of the reply, as rows. */
static void
take_rows(Session *s, const char *key, Reply *r)
{
	const char *end = s->body + s->body_len;
	const char *p = json_get(s->body, end, key);

	if (p == NULL || *p != '[')
		return;
	p = json_ws(p + 1, end);
	while (p < end && *p == '{')
	{
		const char *next = json_skip(p, end);

		take_row(r, p, next);
		p = json_ws(next, end);
		if (p < end && *p == ',')
			p = json_ws(p + 1, end);
	}
}

/* ------------------------------------------------------------------ */
/* The driver */

static void *
http_open(const char *email, int ttl, char *err, size_t errlen)
{
	const char *addr = getenv(ttl > 0 ? "PSK_LOAD_HTTP_TTL" : "PSK_LOAD_HTTP");
	const char *colon;
	Session	   *s;

	if (email == NULL)
	{
		copy(err, errlen,
			 "the HTTP driver acts for an account (no expiry endpoint)");
		return NULL;
	}
	if (addr == NULL || (colon = strrchr(addr, ':')) == NULL)
	{
		snprintf(err, errlen, "set %s to the shim's host:port",
				 ttl > 0 ? "PSK_LOAD_HTTP_TTL" : "PSK_LOAD_HTTP");
		return NULL;
	}
	s = calloc(1, sizeof(Session));
	if (s == NULL || (s->buf = malloc(RESPONSE_MAX)) == NULL)
	{
		free(s);
		copy(err, errlen, "out of memory");
		return NULL;
	}
	s->fd = -1;
	snprintf(s->host, sizeof(s->host), "%.*s", (int) (colon - addr), addr);
	copy(s->port, sizeof(s->port), colon + 1);
	copy(s->email, sizeof(s->email), email);
	if (!login(s, err, errlen))
	{
		disconnect(s);
		free(s->buf);
		free(s);
		return NULL;
	}
	return s;
}

static void
http_close(void *session)
{
	Session *s = session;

	disconnect(s);
	free(s->buf);
	free(s);
}

static void
http_reserve(void *session, const char *email, const char *tester,
			 const char *country, const char *code_type, int how_many, Reply *r)
{
	Session *s = session;
	char	 body[512] = "{";

	(void) email;
	json_member(body, sizeof(body), "tester_name", tester);
	json_member(body, sizeof(body), "country", country);
	json_member(body, sizeof(body), "code_type", code_type);
	/* one code: the single-object shape; more: {codes: [...]} */
	if (how_many != 1)
		snprintf(body + strlen(body), sizeof(body) - strlen(body),
				 ",\"how_many\":%d", how_many);
	strncat(body, "}", sizeof(body) - strlen(body) - 1);
	if (!call(s, "POST", "/users/reserve", body, r))
		return;
	if (how_many != 1)
		take_rows(s, "codes", r);
	else
		take_row(r, s->body, s->body + s->body_len);
}

/* A call on one code whose reply changes nothing we keep. */
static void
code_call(Session *s, const char *path, const char *code, const char *key,
		  const char *value, Reply *r)
{
	char body[512] = "{";

	json_member(body, sizeof(body), "code", code);
	json_member(body, sizeof(body), key, value);
	strncat(body, "}", sizeof(body) - strlen(body) - 1);
	call(s, "POST", path, body, r);
}

static void
http_confirm(void *s, const char *email, const char *code, const char *token,
			 Reply *r)
{
	(void) email;
	code_call(s, "/users/confirm", code, "reservation_token", token, r);
}

static void
http_release(void *s, const char *email, const char *code, Reply *r)
{
	(void) email;
	code_call(s, "/users/release", code, NULL, NULL, r);
}

static void
http_mark(void *session, const char *email, const char *code,
		  const char *reason, Reply *r)
{
	Session *s = session;

	(void) email;
	code_call(s,
			  s->is_admin ? "/admin/codes/mark-non-usable"
						  : "/users/mark-non-usable",
			  code, "reason", reason, r);
}

static void
http_disassociate(void *s, const char *admin, const char *code, Reply *r)
{
	(void) admin;
	code_call(s, "/admin/codes/disassociate", code, NULL, NULL, r);
}

static void
http_restore(void *s, const char *admin, const char *code, Reply *r)
{
	(void) admin;
	code_call(s, "/admin/codes/restore", code, NULL, NULL, r);
}

static void
http_expire(void *s, Reply *r)
{
	(void) s;
	r->outcome = OUT_ERR;
	r->nrows = 0;
	copy(r->sqlstate, sizeof(r->sqlstate), "H404");
	copy(r->message, sizeof(r->message), "no HTTP endpoint sweeps expiries");
}

static void
http_list(void *session, const char *admin, Reply *r)
{
	Session *s = session;

	(void) admin;
	if (call(s, "GET", "/admin/codes?page_size=10000", NULL, r))
		take_rows(s, "codes", r);
}

const Driver http_driver = {
	.name = "http",
	.open = http_open,
	.close = http_close,
	.reserve = http_reserve,
	.confirm = http_confirm,
	.release = http_release,
	.mark = http_mark,
	.disassociate = http_disassociate,
	.restore = http_restore,
	.expire = http_expire,
	.list = http_list,
};
