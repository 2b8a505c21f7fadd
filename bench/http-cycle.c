/*
 * http-cycle.c
 *		psk-http-cycle: the HTTP load generator of make bench (runs d and e).
 *		One event-driven thread per core holds all the connections, so the
 *		driver costs the machine what pgbench's -j threads cost run c (wrk,
 *		as the cycle needs it, wants a thread per connection: 32 threads on
 *		2 cores).
 *
 *	psk-http-cycle [-t THREADS] [-d SECONDS] [-T TIMEOUT] [-g PATH] [-k] --
 *HOST:PORT TOKEN...
 *
 * One HTTP/1.1 keep-alive connection per token (bench/bench.sh logs in
 * bench1..benchN first), one request at a time; connection i is served by
 * thread i % THREADS (default: the number of cores).  Each connection sends
 * POST /users/reserve, then POST /users/release with the code it got, and
 * so on; with -g, GET PATH over and over instead.  With -k each reserve
 * carries an Idempotency-Key, a new one every time (this run, connection,
 * count): the cost of a remembered request_id.
 *
 * Latency is per request, from its first byte sent to its reply's last
 * byte read, as measured: no coordinated-omission "correction" (wrk adds
 * (latency / mean interval) made-up samples for every slow request, which
 * turned two 1.1 s stalls into a p99 of 600 ms).  Errors are non-2xx
 * replies, socket errors (the connection is then opened again) and replies
 * slower than TIMEOUT (2 s, as wrk).  Prints a summary, then one line for
 * bench.sh:
 *
 *	RESULT cycles/s (requests/s with -g) p50_ms p99_ms errors max_ms
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 16384 /* a reserve or release reply is ~200 bytes */

typedef struct Conn
{
	const char *token;
	int			id;		  /* its number, for -k */
	uint64_t	reserves; /* sent so far, for -k */
	int			fd;
	uint32_t	events;	   /* what epoll watches for: EPOLLIN or EPOLLOUT */
	char		code[128]; /* held: release it next; "" reserve */
	char		out[1024]; /* the request being sent */
	size_t		out_len;
	size_t		out_done;
	char		in[BUF_SIZE];
	size_t		in_len;
	uint64_t	sent_at; /* ns; 0: no request outstanding */
} Conn;

typedef struct Thread
{
	pthread_t tid;
	Conn	**conns;
	int		  nconns;
	int		  ep;
	uint32_t *lat; /* per-request latency, µs */
	size_t	  nlat;
	size_t	  caplat;
	long	  errors_status;
	long	  errors_socket;
	long	  errors_timeout;
} Thread;

static struct sockaddr_storage addr;
static socklen_t			   addrlen;
static char					   host[256];
static uint64_t				   deadline_ns;
static uint64_t				   timeout_ns = 2000000000ull;
static const char *get_path; /* -g: GET this path instead of cycling */
static bool		   with_key; /* -k: an Idempotency-Key on every reserve */
static uint64_t	   run_id;	 /* -k: keys of this run are unlike any other's */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void
record(Thread *t, uint64_t ns)
{
	if (t->nlat == t->caplat)
	{
		t->caplat = t->caplat ? 2 * t->caplat : 65536;
		t->lat = realloc(t->lat, t->caplat * sizeof(uint32_t));
		if (t->lat == NULL)
		{
			perror("psk-http-cycle");
			exit(1);
		}
	}
	t->lat[t->nlat++] = (uint32_t) (ns / 1000);
}

/* The next request: GET the path, or release what is held, else reserve. */
static void
next_request(Conn *c)
{
	char body[160];
	char key[96] = "";

	if (get_path != NULL)
		c->out_len = snprintf(c->out, sizeof(c->out),
							  "GET %s HTTP/1.1\r\nHost: %s\r\n"
							  "Authorization: Bearer %s\r\n\r\n",
							  get_path, host, c->token);
	else
	{
		bool release = c->code[0] != '\0';

		if (release)
			snprintf(body, sizeof(body), "{\"code\":\"%s\"}", c->code);
		else
			snprintf(body, sizeof(body), "{\"tester_name\":\"bench\"}");
		if (!release && with_key)
			snprintf(key, sizeof(key),
					 "Idempotency-Key: %" PRIx64 "-%d-%" PRIu64 "\r\n", run_id,
					 c->id, c->reserves++);
		c->code[0] = '\0';
		c->out_len = snprintf(c->out, sizeof(c->out),
							  "POST /users/%s HTTP/1.1\r\nHost: %s\r\n"
							  "Authorization: Bearer %s\r\n%s"
							  "Content-Type: application/json\r\n"
							  "Content-Length: %zu\r\n\r\n%s",
							  release ? "release" : "reserve", host, c->token,
							  key, strlen(body), body);
	}
	c->out_done = 0;
	c->in_len = 0;
	c->sent_at = now_ns();
}

/* Watch c's socket for events; a system call only when that changes. */
static void
watch(Thread *t, Conn *c, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (op == EPOLL_CTL_MOD && c->events == events)
		return;
	c->events = events;
	if (epoll_ctl(t->ep, op, c->fd, &ev) != 0)
	{
		perror("psk-http-cycle: epoll_ctl");
		exit(1);
	}
}

static void
conn_open(Thread *t, Conn *c)
{
	int one = 1;

	c->fd =
		socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
	{
		perror("psk-http-cycle: socket");
		exit(1);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *) &addr, addrlen) != 0 &&
		errno != EINPROGRESS)
	{
		perror("psk-http-cycle: connect");
		exit(1);
	}
	/* a held code is forgotten: the server may not have seen its release */
	c->code[0] = '\0';
	next_request(c);
	watch(t, c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void
conn_reset(Thread *t, Conn *c)
{
	t->errors_socket++;
	close(c->fd);
	conn_open(t, c);
}

/* Send what is left of the request; then wait for the reply. */
static void
on_writable(Thread *t, Conn *c)
{
	while (c->out_done < c->out_len)
	{
		ssize_t n = send(c->fd, c->out + c->out_done, c->out_len - c->out_done,
						 MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
		{
			watch(t, c, EPOLLOUT, EPOLL_CTL_MOD);
			return;
		}
		if (n <= 0)
		{
			conn_reset(t, c);
			return;
		}
		c->out_done += n;
	}
	watch(t, c, EPOLLIN, EPOLL_CTL_MOD);
}

/*
 * A whole reply in c->in?  Returns its length, 0 if more is to come, -1 if
 * it cannot be read (no Content-Length: the shim always sends one).
 */
static long
reply_length(Conn *c, int *status, const char **body)
{
	char *eoh;
	char *cl;
	long  len;

	c->in[c->in_len] = '\0';
	if ((eoh = strstr(c->in, "\r\n\r\n")) == NULL)
		return c->in_len < BUF_SIZE - 1 ? 0 : -1;
	*eoh = '\0';
	cl = strcasestr(c->in, "\r\nContent-Length:");
	if (sscanf(c->in, "HTTP/1.%*d %d", status) != 1 || cl == NULL)
		return -1;
	len = strtol(cl + 17, NULL, 10);
	*eoh = '\r';
	*body = eoh + 4;
	if (len < 0 || eoh + 4 - c->in + len >= BUF_SIZE)
		return -1;
	return (size_t) (eoh + 4 - c->in + len) <= c->in_len ? eoh + 4 - c->in + len
														 : 0;
}

/* The first "code" of a reserve reply, compact or not. */
static void
take_code(Conn *c, const char *body)
{
	const char *p = strstr(body, "\"code\"");
	size_t		n;

	if (p == NULL)
		return;
	p += 6;
	p += strspn(p, " :");
	if (*p++ != '"')
		return;
	n = strcspn(p, "\"");
	if (p[n] == '"' && n < sizeof(c->code))
		snprintf(c->code, sizeof(c->code), "%.*s", (int) n, p);
}

static void
on_readable(Thread *t, Conn *c)
{
	int			status = 0;
	const char *body = NULL;
	long		len = 0;
	bool		releasing = strncmp(c->out, "POST /users/release", 19) == 0;

	for (;;)
	{
		ssize_t n = recv(c->fd, c->in + c->in_len, BUF_SIZE - 1 - c->in_len, 0);

		if (n < 0 && errno == EAGAIN)
			return;
		if (n > 0)
		{
			c->in_len += n;
			len = reply_length(c, &status, &body);
		}
		if (n <= 0 || len < 0)
		{
			conn_reset(t, c);
			return;
		}
		if (len > 0)
			break;
	}
	record(t, now_ns() - c->sent_at);
	if (now_ns() - c->sent_at > timeout_ns)
		t->errors_timeout++;
	if (status < 200 || status > 299)
		t->errors_status++;
	else if (!releasing && get_path == NULL)
		take_code(c, body);
	if (now_ns() >= deadline_ns)
	{
		c->sent_at = 0;
		return;
	}
	/* a request fits the socket's buffer: send it now, no epoll round */
	next_request(c);
	on_writable(t, c);
}

static void *
thread_main(void *arg)
{
	Thread			  *t = arg;
	struct epoll_event ev[64];
	uint64_t		   now;

	t->ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < t->nconns; i++)
		conn_open(t, t->conns[i]);
	while ((now = now_ns()) < deadline_ns)
	{
		int ms = (int) ((deadline_ns - now) / 1000000) + 1;
		int n = epoll_wait(t->ep, ev, 64, ms);

		for (int i = 0; i < n; i++)
		{
			Conn *c = ev[i].data.ptr;

			if (ev[i].events & (EPOLLERR | EPOLLHUP) &&
				!(ev[i].events & EPOLLIN))
				conn_reset(t, c);
			else if (ev[i].events & EPOLLOUT)
				on_writable(t, c);
			else if (ev[i].events & EPOLLIN)
				on_readable(t, c);
		}
	}
	/* a request still unanswered at the end that waited too long */
	for (int i = 0; i < t->nconns; i++)
	{
		if (t->conns[i]->sent_at != 0 &&
			now - t->conns[i]->sent_at > timeout_ns)
			t->errors_timeout++;
		close(t->conns[i]->fd);
	}
	close(t->ep);
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return (x > y) - (x < y);
}

static void
usage(void)
{
	fprintf(
		stderr,
		"usage: psk-http-cycle [-t THREADS] [-d SECONDS] [-T TIMEOUT_SECONDS] [-g PATH] [-k] HOST:PORT TOKEN...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int				nthreads = (int) sysconf(_SC_NPROCESSORS_ONLN);
	double			seconds = 10;
	int				opt;
	int				nconns;
	char		   *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	Thread		   *threads;
	Conn		   *conns;
	uint64_t		start;
	double			elapsed;
	size_t			n = 0;
	uint32_t	   *all;
	long			e_status = 0, e_socket = 0, e_timeout = 0;

	while ((opt = getopt(argc, argv, "t:d:T:g:k")) != -1)
	{
		switch (opt)
		{
			case 't':
				nthreads = atoi(optarg);
				break;
			case 'd':
				seconds = atof(optarg);
				break;
			case 'g':
				get_path = optarg;
				break;
			case 'T':
				timeout_ns = (uint64_t) (atof(optarg) * 1e9);
				break;
			case 'k':
				with_key = true;
				break;
			default:
				usage();
		}
	}
	if (argc - optind < 2 || nthreads < 1 || seconds <= 0)
		usage();
	snprintf(host, sizeof(host), "%s", argv[optind]);
	if ((colon = strrchr(host, ':')) == NULL)
		usage();
	*colon = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
	{
		fprintf(stderr, "psk-http-cycle: cannot resolve %s\n", argv[optind]);
		return 1;
	}
	memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
	addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	*colon = ':'; /* the Host header takes the port too */

	nconns = argc - optind - 1;
	if (nthreads > nconns)
		nthreads = nconns;
	conns = calloc(nconns, sizeof(Conn));
	threads = calloc(nthreads, sizeof(Thread));
	for (int i = 0; i < nthreads; i++)
		threads[i].conns = calloc(nconns / nthreads + 1, sizeof(Conn *));
	for (int i = 0; i < nconns; i++)
	{
		Thread *t = &threads[i % nthreads];

		conns[i].token = argv[optind + 1 + i];
		conns[i].id = i;
		t->conns[t->nconns++] = &conns[i];
	}

	start = now_ns();
	run_id = (uint64_t) time(NULL) << 20 ^ (uint64_t) getpid();
	deadline_ns = start + (uint64_t) (seconds * 1e9);
	for (int i = 0; i < nthreads; i++)
		pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]);
	for (int i = 0; i < nthreads; i++)
	{
		pthread_join(threads[i].tid, NULL);
		n += threads[i].nlat;
	}
	elapsed = (now_ns() - start) / 1e9;

	all = malloc((n + 1) * sizeof(uint32_t));
	n = 0;
	for (int i = 0; i < nthreads; i++)
	{
		memcpy(all + n, threads[i].lat, threads[i].nlat * sizeof(uint32_t));
		n += threads[i].nlat;
		e_status += threads[i].errors_status;
		e_socket += threads[i].errors_socket;
		e_timeout += threads[i].errors_timeout;
	}
	qsort(all, n, sizeof(uint32_t), cmp_u32);
#define PCT(p) (n ? all[(size_t) ((n - 1) * (p))] / 1000.0 : 0)
	printf(
		"%d connections on %d threads, %.1f s: %zu requests, %.0f requests/s",
		nconns, nthreads, elapsed, n, n / elapsed);
	if (get_path == NULL)
		printf(", %.0f cycles/s", n / 2 / elapsed);
	printf("\n");
	printf(
		"latency per request: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		PCT(0.50), PCT(0.90), PCT(0.99), n ? all[n - 1] / 1000.0 : 0);
	printf("errors: %ld non-2xx, %ld socket, %ld over %.1f s\n", e_status,
		   e_socket, e_timeout, timeout_ns / 1e9);
	printf("RESULT %.0f %.3f %.3f %ld %.3f\n",
		   get_path ? n / elapsed : n / 2 / elapsed, PCT(0.50), PCT(0.99),
		   e_status + e_socket + e_timeout, n ? all[n - 1] / 1000.0 : 0);
	return 0;
}
