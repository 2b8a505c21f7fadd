/*
 * limits.c
 *		What one client may hold of the shim: connections, their time,
 *		their unread answers, and logins in flight.
 *
 * - Threads: a new connection goes to the thread with the fewest open (the
 *   one that accepted it hands it over when another has fewer).  Every
 *   thread watches the one listening socket, and the first awake takes
 *   each connection: left alone, a burst of connections all landed on one
 *   thread (31 of 32 in a bench run), which then served them all with its
 *   own database connections while the other thread's sat idle.
 * - Connections: at most --max-connections open at once (all threads).  At
 *   the cap, or when accept() fails for want of descriptors or memory
 *   (EMFILE, ENFILE, ENOBUFS, ENOMEM), a thread stops watching the
 *   listening socket, so that it does not spin on a connection it cannot
 *   take, and looks again when one of its connections closes or every
 *   ACCEPT_RETRY_MS.  Connections beyond the cap wait in the kernel's
 *   backlog.
 * - Idle: h2o's request timeout is --idle-timeout: a connection must send a
 *   whole request within it, counted from its start or from the end of the
 *   previous answer (a client trickling a request byte by byte, or idle
 *   between requests, is closed).
 * - Writes: a connection with answer bytes in the kernel of which the client
 *   has acknowledged none for --write-timeout (it reads nothing) is cut: its
 *   socket is shut down with the unsent bytes discarded (a reset), and h2o
 *   then closes it.
 * - Pipelining: a request that arrives with more already waiting behind it
 *   (the client sent them without reading the answers) counts as
 *   pipelined; past --max-pipelined in a row, the shim answers the request
 *   in hand, closes the connection and drops the rest.
 * - Logins: at most --login-limit logins in flight (each is a bcrypt in
 *   the database, and holds one of its connections), and at most
 *   --login-limit-per-client from one client address; beyond either, 429
 *   locked_out with Retry-After at once, without touching the database.
 *   A flood from one address then leaves the other logins, and every other
 *   route, their share.
 * - A client gone (limits_client_gone): its request is dropped from the
 *   queue, or its statement cancelled (db.c), so that a login whose client
 *   hung up does not run bcrypt and count a failure for nobody.  For a
 *   login an end of file is enough (a client that half-closes after its
 *   login request is taken as gone); for other requests only a reset.
 */
#define _GNU_SOURCE /* memmem */
#include "shim.h"

#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_RETRY_MS 100

/* One open connection. */
typedef struct Conn
{
	h2o_linklist_t link; /* in Limits.conns */
	h2o_socket_t  *sock;
	Limits		  *limits;
	int			   pipelined;	  /* pipelined requests in a row */
	bool		   stalled;		  /* unacknowledged bytes at the last tick */
	uint64_t	   acked;		  /* bytes the client had acknowledged then */
	uint64_t	   stalled_since; /* ms */
} Conn;

struct Limits
{
	Worker		  *worker;
	h2o_loop_t	  *loop;
	h2o_socket_cb  on_accept;
	h2o_linklist_t conns;
	atomic_int	   nconns; /* open here or handed here; all threads read it */
	/* connections handed here by other threads (see handoff_send) */
	pthread_mutex_t		handoff_lock;
	h2o_linklist_t		handoffs; /* Handoff.link */
	Wake				handoff_wake;
	bool				paused;
	bool				logged_full; /* said so since it last accepted */
	h2o_timeout_t		retry_timeout;
	h2o_timeout_entry_t retry_entry;
	h2o_timeout_t		tick_timeout;
	h2o_timeout_entry_t tick_entry;
};

static atomic_int open_conns;

/* Every thread's Limits, for the hand-over (filled before threads start). */
static Limits **all_limits;
static int		nall_limits;

/* A connection accepted by one thread for another. */
typedef struct Handoff
{
	h2o_linklist_t link;
	int			   fd;
} Handoff;

static uint64_t
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * At start: descriptors for the connections, the database connections and
 * a few more; the soft limit is raised as far as the hard one allows, and
 * the connection cap lowered to what fits.
 */
void
limits_setup(void)
{
	struct rlimit rl;
	long		  want = (long) shim_config.max_connections +
				2L * shim_config.threads * shim_config.pool_size + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if ((rlim_t) want > rl.rlim_cur)
	{
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur =
			(rl.rlim_max == RLIM_INFINITY || (rlim_t) want < rl.rlim_max)
				? (rlim_t) want
				: rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = old;
	}
	if ((rlim_t) want > rl.rlim_cur)
	{
		long fit = (long) rl.rlim_cur -
				   2L * shim_config.threads * shim_config.pool_size - 64;

		shim_config.max_connections = fit > 1 ? (int) fit : 1;
		shim_log("the descriptor limit (%ld) holds only %d connections: "
				 "--max-connections lowered to that",
				 (long) rl.rlim_cur, shim_config.max_connections);
	}
}

void
limits_configure(h2o_globalconf_t *conf)
{
	conf->http1.req_timeout = shim_config.idle_timeout_ms;
}

static void
pause_accepting(Limits *l)
{
	if (l->paused || l->worker->listener == NULL)
		return;
	h2o_socket_read_stop(l->worker->listener);
	l->paused = true;
	if (!h2o_timeout_is_linked(&l->retry_entry))
		h2o_timeout_link(l->loop, &l->retry_timeout, &l->retry_entry);
}

static void
resume_accepting(Limits *l)
{
	if (!l->paused || l->worker->stopping || l->worker->listener == NULL ||
		atomic_load(&open_conns) >= shim_config.max_connections)
		return;
	l->paused = false;
	h2o_socket_read_start(l->worker->listener, l->on_accept);
}

static void
on_retry(h2o_timeout_entry_t *entry)
{
	Limits *l = H2O_STRUCT_FROM_MEMBER(Limits, retry_entry, entry);

	resume_accepting(l);
	if (l->paused && !l->worker->stopping)
		h2o_timeout_link(l->loop, &l->retry_timeout, &l->retry_entry);
}

static void
on_conn_close(void *data)
{
	Conn   *c = data;
	Limits *l = c->limits;

	h2o_linklist_unlink(&c->link);
	free(c);
	atomic_fetch_sub(&l->nconns, 1);
	atomic_fetch_sub(&open_conns, 1);
	resume_accepting(l);
}

/* A connection's place given back: it was never adopted. */
static void
forget(Limits *l, int fd)
{
	close(fd);
	atomic_fetch_sub(&l->nconns, 1);
	atomic_fetch_sub(&open_conns, 1);
}

/* The thread of l takes the accepted connection fd (counted already). */
static void
adopt(Limits *l, int fd)
{
	h2o_socket_t *sock;
	Conn		 *c;

	if (l->worker->stopping || (c = calloc(1, sizeof(Conn))) == NULL)
	{
		forget(l, fd);
		return;
	}
	sock = h2o_evloop_socket_create(l->loop, fd,
									H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
	c->sock = sock;
	c->limits = l;
	h2o_linklist_insert(&l->conns, &c->link);
	sock->on_close.cb = on_conn_close;
	sock->on_close.data = c;
	/* its first request's head is read there, then it goes to h2o */
	gate_accept(l->worker, sock);
}

/* The hand-over: the connection in to's list, to's loop woken (wake.c). */
static void
handoff_send(Limits *to, int fd)
{
	Handoff *h = calloc(1, sizeof(Handoff));

	if (h == NULL)
	{
		forget(to, fd);
		return;
	}
	h->fd = fd;
	pthread_mutex_lock(&to->handoff_lock);
	h2o_linklist_insert(&to->handoffs, &h->link);
	pthread_mutex_unlock(&to->handoff_lock);
	wake_send(&to->handoff_wake);
}

static void
on_handoff(Wake *wake)
{
	Limits		  *l = wake->data;
	h2o_linklist_t mine;

	h2o_linklist_init_anchor(&mine);
	pthread_mutex_lock(&l->handoff_lock);
	h2o_linklist_insert_list(&mine, &l->handoffs);
	pthread_mutex_unlock(&l->handoff_lock);
	while (!h2o_linklist_is_empty(&mine))
	{
		Handoff *h = H2O_STRUCT_FROM_MEMBER(Handoff, link, mine.next);

		h2o_linklist_unlink(&h->link);
		adopt(l, h->fd);
		free(h);
	}
}

int
limits_open_connections(Worker *w)
{
	return atomic_load(&w->limits->nconns);
}

/* The thread with the fewest connections; l itself on a tie. */
static Limits *
least_loaded(Limits *l)
{
	Limits *best = l;
	int		fewest = atomic_load(&l->nconns);

	for (int i = 0; i < nall_limits; i++)
	{
		int n = atomic_load(&all_limits[i]->nconns);

		if (n < fewest)
		{
			best = all_limits[i];
			fewest = n;
		}
	}
	return best;
}

void
limits_accept(Worker *w, h2o_socket_t *listener)
{
	Limits *l = w->limits;
	Limits *to;
	int		fd;
	int		on = 1;

	/* a place first, so that threads accepting at once stay within it */
	if (atomic_fetch_add(&open_conns, 1) >= shim_config.max_connections)
	{
		atomic_fetch_sub(&open_conns, 1);
		if (!l->logged_full)
			shim_log("thread %d: %d connections open, the most "
					 "--max-connections allows: not accepting for now",
					 w->id, shim_config.max_connections);
		l->logged_full = true;
		pause_accepting(l);
		return;
	}
	/* another thread may have taken it: then -1 with EAGAIN */
	fd = accept4(h2o_socket_get_fd(listener), NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
	{
		int err = errno;

		atomic_fetch_sub(&open_conns, 1);
		if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
		{
			if (!l->logged_full)
				shim_log("thread %d: cannot accept: %s; trying again in %d ms",
						 w->id, strerror(err), ACCEPT_RETRY_MS);
			l->logged_full = true;
			pause_accepting(l);
		}
		return;
	}
	l->logged_full = false;
	/* as h2o_evloop_socket_accept does */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

	to = least_loaded(l);
	atomic_fetch_add(&to->nconns, 1);
	if (to == l)
		adopt(l, fd);
	else
		handoff_send(to, fd);
}

/* Cut a connection: unsent bytes discarded (RST), h2o closes it. */
static void
cut(Conn *c)
{
	int			  fd = h2o_socket_get_fd(c->sock);
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	shutdown(fd, SHUT_RDWR);
}

/*
 * Every tick: connections with bytes of an answer in the kernel's send
 * queue of which the client has acknowledged none for --write-timeout,
 * whether h2o still waits to write more or has moved on (to the next
 * pipelined request, or to waiting for one).
 */
static void
on_tick(h2o_timeout_entry_t *entry)
{
	Limits		   *l = H2O_STRUCT_FROM_MEMBER(Limits, tick_entry, entry);
	uint64_t		now = now_ms();
	h2o_linklist_t *node;

	for (node = l->conns.next; node != &l->conns; node = node->next)
	{
		Conn		   *c = H2O_STRUCT_FROM_MEMBER(Conn, link, node);
		int				fd = h2o_socket_get_fd(c->sock);
		int				outq = 0;
		struct tcp_info ti;
		socklen_t		len = sizeof(ti);

		if (ioctl(fd, SIOCOUTQ, &outq) != 0 || outq == 0 ||
			getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		{
			c->stalled = false;
			continue;
		}
		if (!c->stalled || ti.tcpi_bytes_acked != c->acked)
		{
			c->stalled = true;
			c->acked = ti.tcpi_bytes_acked;
			c->stalled_since = now;
		}
		else if (now - c->stalled_since >=
				 (uint64_t) shim_config.write_timeout_ms)
		{
			shim_log("cutting a connection that read nothing for %d ms "
					 "(--write-timeout), %d bytes unread",
					 shim_config.write_timeout_ms, outq);
			c->stalled = false;
			cut(c);
		}
	}
	h2o_timeout_link(l->loop, &l->tick_timeout, &l->tick_entry);
}

Limits *
limits_worker_init(Worker *w, h2o_loop_t *loop, h2o_socket_cb on_accept)
{
	Limits *l = calloc(1, sizeof(Limits));
	int		tick = shim_config.write_timeout_ms / 4;

	l->worker = w;
	l->loop = loop;
	l->on_accept = on_accept;
	h2o_linklist_init_anchor(&l->conns);
	pthread_mutex_init(&l->handoff_lock, NULL);
	h2o_linklist_init_anchor(&l->handoffs);
	wake_init(&l->handoff_wake, loop, on_handoff, l);
	all_limits = realloc(all_limits, (nall_limits + 1) * sizeof(Limits *));
	if (all_limits == NULL)
	{
		perror("psk-shim");
		exit(1);
	}
	all_limits[nall_limits++] = l;
	h2o_timeout_init(loop, &l->retry_timeout, ACCEPT_RETRY_MS);
	l->retry_entry.cb = on_retry;
	h2o_timeout_init(loop, &l->tick_timeout,
					 tick < 10 ? 10 : (tick > 1000 ? 1000 : tick));
	l->tick_entry.cb = on_tick;
	h2o_timeout_link(loop, &l->tick_timeout, &l->tick_entry);
	return l;
}

/* Stop the timers (the thread is stopping). */
void
limits_worker_stop(Worker *w)
{
	Limits *l = w->limits;

	if (h2o_timeout_is_linked(&l->retry_entry))
		h2o_timeout_unlink(&l->retry_entry);
	if (h2o_timeout_is_linked(&l->tick_entry))
		h2o_timeout_unlink(&l->tick_entry);
	l->paused = false;
}

static Conn *
conn_of(h2o_req_t *req)
{
	h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);

	if (sock == NULL || sock->on_close.cb != on_conn_close)
		return NULL;
	return sock->on_close.data;
}

/*
 * A new request: pipelined when more bytes wait behind it (in h2o's input
 * buffer past its end, or in the kernel).  Past --max-pipelined in a row the
 * connection ends with this answer.
 */
void
limits_on_request(h2o_req_t *req)
{
	Conn		 *c = conn_of(req);
	h2o_buffer_t *in;
	const char	 *end;
	const char	 *head;
	int			  queued = 0;
	bool		  more;

	if (c == NULL)
		return;
	in = c->sock->input;
	end = in->bytes;
	head = memmem(in->bytes, in->size, "\r\n\r\n", 4);
	if (head != NULL)
		end = head + 4;
	if (req->entity.base != NULL && req->entity.base >= in->bytes &&
		req->entity.base + req->entity.len <= in->bytes + in->size &&
		req->entity.base + req->entity.len > end)
		end = req->entity.base + req->entity.len;
	more = head != NULL && end < in->bytes + in->size;
	if (!more)
		more = ioctl(h2o_socket_get_fd(c->sock), FIONREAD, &queued) == 0 &&
			   queued > 0;
	c->pipelined = more ? c->pipelined + 1 : 0;
	if (c->pipelined > shim_config.max_pipelined)
		req->http1_is_persistent = 0;
}

int
limits_client_fd(h2o_req_t *req)
{
	Conn *c = conn_of(req);

	return c != NULL ? h2o_socket_get_fd(c->sock) : -1;
}

/*
 * Has the client of a request in flight gone?  It reset the connection; or,
 * with eof_is_gone, closed its side (an end of file with nothing before
 * it).  An end of file cannot tell a client that hung up from one that
 * half-closed and still reads (as some one-shot clients do), so it counts
 * for logins only, where it matters (a bcrypt, a failure counted), as
 * nginx takes it for every request; other requests are short.
 */
bool
limits_client_gone(int fd, bool eof_is_gone)
{
	char	c;
	ssize_t n;

	if (fd < 0)
		return false;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return (n == 0 && eof_is_gone) ||
		   (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* --- logins in flight --------------------------------------------------- */

/*
 * The clients with logins in flight: at most --login-limit of them, so a
 * plain array searched end to end (login_limit entries) is enough.
 */
typedef struct ClientCount
{
	uint8_t addr[16];
	int		n; /* 0: free */
} ClientCount;

static pthread_mutex_t logins_lock = PTHREAD_MUTEX_INITIALIZER;
static int			   logins_in_flight;
static ClientCount	  *clients;

/* The client's address as 16 bytes (IPv4 as ::ffff:a.b.c.d). */
static bool
client_addr(h2o_req_t *req, uint8_t *addr)
{
	struct sockaddr_storage ss;
	socklen_t				len =
		req->conn->callbacks->get_peername(req->conn, (struct sockaddr *) &ss);

	memset(addr, 0, 16);
	if (len == 0)
		return false;
	if (ss.ss_family == AF_INET)
	{
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &((struct sockaddr_in *) &ss)->sin_addr, 4);
	}
	else if (ss.ss_family == AF_INET6)
		memcpy(addr, &((struct sockaddr_in6 *) &ss)->sin6_addr, 16);
	else
		return false;
	return true;
}

/* Its entry, or else a free one; under the lock. */
static ClientCount *
client_entry(const uint8_t *addr)
{
	ClientCount *free_one = NULL;

	if (clients == NULL && (clients = calloc(shim_config.login_limit,
											 sizeof(ClientCount))) == NULL)
		return NULL;
	for (int i = 0; i < shim_config.login_limit; i++)
	{
		if (clients[i].n > 0 && memcmp(clients[i].addr, addr, 16) == 0)
			return &clients[i];
		if (clients[i].n == 0 && free_one == NULL)
			free_one = &clients[i];
	}
	return free_one;
}

/*
 * Take a place for a login; false (and *retry_after set) when the shim has
 * --login-limit logins in flight, or this client --login-limit-per-client.
 */
bool
limits_login_take(h2o_req_t *req, LoginHold *hold, int *retry_after)
{
	ClientCount *e = NULL;
	bool		 ok;

	hold->held = false;
	hold->known = client_addr(req, hold->addr);
	pthread_mutex_lock(&logins_lock);
	if (hold->known)
		e = client_entry(hold->addr);
	ok = logins_in_flight < shim_config.login_limit &&
		 (!hold->known ||
		  (e != NULL && e->n < shim_config.login_limit_per_client));
	if (ok)
	{
		logins_in_flight++;
		if (e != NULL)
		{
			memcpy(e->addr, hold->addr, 16);
			e->n++;
		}
		hold->held = true;
	}
	pthread_mutex_unlock(&logins_lock);
	*retry_after = 1;
	return ok;
}

void
limits_login_give(LoginHold *hold)
{
	if (!hold->held)
		return;
	hold->held = false;
	pthread_mutex_lock(&logins_lock);
	logins_in_flight--;
	if (hold->known)
	{
		ClientCount *e = client_entry(hold->addr);

		if (e != NULL && e->n > 0)
			e->n--;
	}
	pthread_mutex_unlock(&logins_lock);
}
