/*
 * db.c
 *		A pool of non-blocking libpq connections driven by one h2o event loop.
 *
 * Each worker thread owns a pool.  The loop watches a dup() of every
 * connection's socket (h2o closes the descriptor it is given; libpq keeps
 * its own), so waiting for the database never blocks the loop.  A new
 * connection sets its session up and prepares every route's statement once;
 * afterwards each request is a single PQsendQueryPrepared.  Requests wait in
 * a queue while all connections are busy.  A lost connection fails the
 * request it was running with "unavailable" and is re-established with
 * exponential backoff while the other connections keep serving.
 *
 * A request whose client went away (the connection closed by h2o, or found
 * closed or reset by the watch below) leaves the queue, or has its
 * statement cancelled (PQcancel): a login whose client hung up must not
 * run bcrypt and count a failure for nobody.  While jobs wait or run, the
 * pool looks at their clients' sockets every WATCH_MS.
 *
 * Across a failover: --db may name several hosts with
 * target_session_attrs=read-write, so that libpq connects to whichever is
 * the primary now.  A connection that answers 25006 (read-only: its server
 * is, or has become, a standby) is dropped after that answer, with the idle
 * ones to the same server, and re-established the same way.  TCP
 * keepalives (defaults the conninfo can override) notice a primary whose
 * machine died without closing anything.
 */
#include "shim.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WATCH_MS 50

const char db_client_gone[] = "the client went away";

typedef enum DbState
{
	DB_DOWN,	   /* waiting for the backoff timer */
	DB_CONNECTING, /* PQconnectPoll in progress */
	DB_SETUP,	   /* session settings, then the prepares */
	DB_IDLE,
	DB_BUSY
} DbState;

struct DbConn
{
	PgSocket			io; /* first: the socket's data is the DbConn */
	DbPool			   *pool;
	PGcancel		   *cancel; /* to cancel the running statement */
	DbState				state;
	int					setup_step; /* 0: settings, then statement i - 1 */
	DbJob			   *job;	 /* running; NULL if its requester went away */
	PGresult		   *result;	 /* of the running command, until it ends */
	bool				failing; /* failed since it last worked: log once */
	int					backoff; /* index into pool->backoff */
	h2o_timeout_entry_t timer;	 /* connect, run watchdog or backoff */
};

/*
 * reconnect delays: 100 ms doubling to 1 s.  A failover's new primary takes
 * writes a few seconds after the old one died; a longer cap would add up to
 * that much to the outage, for little saved (an attempt is one connect).
 */
static const int backoff_ms[] = { 100, 200, 400, 800, 1000 };
#define NBACKOFF ((int) (sizeof(backoff_ms) / sizeof(backoff_ms[0])))

struct DbPool
{
	h2o_loop_t		   *loop;
	const char *const  *statements;
	int					nstatements;
	char			  **names;		   /* "s<i>" */
	char				settings[128]; /* sent first on every new connection */
	DbConn			   *conns;
	int					nconns;
	int					nalive; /* connections not DB_DOWN */
	bool				closing;
	h2o_linklist_t		waiting;	  /* DbJob.link, oldest first */
	h2o_timeout_t		wait_timeout; /* longest wait in the queue */
	h2o_timeout_t		run_timeout;  /* watchdog: statement timeout + 1 s */
	h2o_timeout_t		connect_timeout;
	h2o_timeout_t		backoff[NBACKOFF];
	h2o_timeout_t		watch_timeout; /* the clients of jobs, every WATCH_MS */
	h2o_timeout_entry_t watch_entry;
};

/* set-up connections (idle or busy) of every pool, for /ready */
static atomic_int nready;

static void conn_start(DbConn *c);
static void conn_lost(DbConn *c, const char *why);
static void conn_dispatch(DbConn *c);
static void on_readable(h2o_socket_t *sock, const char *err);

static void
timer_set(DbConn *c, h2o_timeout_t *timeout)
{
	if (h2o_timeout_is_linked(&c->timer))
		h2o_timeout_unlink(&c->timer);
	if (timeout != NULL)
		h2o_timeout_link(c->pool->loop, timeout, &c->timer);
}

/* job->done owns res from here on */
static void
job_finish(DbJob *job, PGresult *res, const char *why)
{
	job->conn = NULL;
	job->done(job, res, why);
}

/* The pool can serve nothing now: answer everyone waiting. */
static void
fail_waiting(DbPool *pool, const char *why)
{
	while (!h2o_linklist_is_empty(&pool->waiting))
	{
		DbJob *job = H2O_STRUCT_FROM_MEMBER(DbJob, link, pool->waiting.next);

		h2o_linklist_unlink(&job->link);
		h2o_timeout_unlink(&job->deadline);
		job_finish(job, NULL, why);
	}
}

/* A connection lost while sending (pgsocket.c). */
static void
io_lost(PgSocket *io, const char *why)
{
	conn_lost((DbConn *) io, why);
}

/* The next step of a new connection's setup, or ready for work. */
static void
setup_next(DbConn *c)
{
	DbPool *pool = c->pool;
	int		ok;

	while (c->setup_step > 0 && c->setup_step <= pool->nstatements &&
		   pool->statements[c->setup_step - 1] == NULL)
		c->setup_step++;

	if (c->setup_step == 0)
		ok = PQsendQuery(c->io.pg, pool->settings);
	else if (c->setup_step <= pool->nstatements)
		ok = PQsendPrepare(c->io.pg, pool->names[c->setup_step - 1],
						   pool->statements[c->setup_step - 1], 0, NULL);
	else
	{
		timer_set(c, NULL);
		if (c->failing)
			shim_log("database connection re-established");
		c->failing = false;
		c->backoff = 0;
		c->state = DB_IDLE;
		atomic_fetch_add(&nready, 1);
		conn_dispatch(c);
		return;
	}
	if (!ok)
	{
		conn_lost(c, PQerrorMessage(c->io.pg));
		return;
	}
	pg_socket_flush(&c->io);
}

static void
on_connect_poll(h2o_socket_t *sock, const char *err)
{
	DbConn *c = sock->data;

	(void) err;
	switch (PQconnectPoll(c->io.pg))
	{
		case PGRES_POLLING_READING:
			if (!pg_socket_watch(&c->io, c->pool->loop, on_connect_poll, NULL))
				conn_lost(c, "no socket");
			break;
		case PGRES_POLLING_WRITING:
			if (!pg_socket_watch(&c->io, c->pool->loop, NULL, on_connect_poll))
				conn_lost(c, "no socket");
			break;
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(c->io.pg, 1) != 0 ||
				!pg_socket_watch(&c->io, c->pool->loop, on_readable, NULL))
			{
				conn_lost(c, PQerrorMessage(c->io.pg));
				break;
			}
			c->cancel = PQgetCancel(c->io.pg);
			c->state = DB_SETUP;
			c->setup_step = 0;
			setup_next(c);
			break;
		default:
			conn_lost(c, PQerrorMessage(c->io.pg));
			break;
	}
}

static void
conn_start(DbConn *c)
{
	/*
	 * The whole conninfo is expanded from "dbname": the keepalives before it
	 * are defaults it may override; the replies are JSON, so UTF-8 whatever
	 * it says.
	 */
	static const char *const keys[] = { "keepalives_idle",
										"keepalives_interval",
										"keepalives_count",
										"dbname",
										"fallback_application_name",
										"client_encoding",
										NULL };
	const char *values[] = { "5",		 "2",	 "3", shim_config.conninfo,
							 "psk-shim", "UTF8", NULL };

	c->io.pg = PQconnectStartParams(keys, values, 1);
	c->state = DB_CONNECTING;
	c->pool->nalive++;
	if (c->io.pg == NULL)
	{
		conn_lost(c, "out of memory");
		return;
	}
	if (PQstatus(c->io.pg) == CONNECTION_BAD)
	{
		conn_lost(c, PQerrorMessage(c->io.pg));
		return;
	}
	PQsetNoticeProcessor(c->io.pg, pg_socket_notice, NULL);
	timer_set(c, &c->pool->connect_timeout);
	if (!pg_socket_watch(&c->io, c->pool->loop, NULL, on_connect_poll))
		conn_lost(c, "no socket");
}

/*
 * Close the connection; fail its running request; retry after a backoff.
 * Only the first failure of a streak is logged, and the recovery.
 */
static void
conn_lost(DbConn *c, const char *why)
{
	DbPool *pool = c->pool;
	DbJob  *job = c->job;

	if (!c->failing)
		shim_log("database connection %s: %.*s",
				 c->state == DB_CONNECTING ? "failed" : "lost",
				 (int) strcspn(why, "\n"), why);
	c->failing = true;
	if (c->io.sock != NULL)
	{
		h2o_socket_close(c->io.sock);
		c->io.sock = NULL;
	}
	if (c->cancel != NULL)
	{
		PQfreeCancel(c->cancel);
		c->cancel = NULL;
	}
	if (c->io.pg != NULL)
	{
		PQfinish(c->io.pg);
		c->io.pg = NULL;
	}
	if (c->result != NULL)
	{
		PQclear(c->result);
		c->result = NULL;
	}
	c->job = NULL;
	c->io.want_write = false;
	if (c->state == DB_IDLE || c->state == DB_BUSY)
		atomic_fetch_sub(&nready, 1);
	if (c->state != DB_DOWN)
		pool->nalive--;
	c->state = DB_DOWN;
	timer_set(c, NULL);
	if (!pool->closing)
	{
		timer_set(c, &pool->backoff[c->backoff]);
		if (c->backoff < NBACKOFF - 1)
			c->backoff++;
	}

	if (job != NULL)
		job_finish(job, NULL, "the database connection was lost");
	if (pool->nalive == 0)
		fail_waiting(pool, "the database is unavailable");
}

/*
 * Stop the statement running on c and forget its job: the answer (an
 * error, as a rule) is read and dropped when it comes.  PQcancel blocks for
 * a round trip to the server; it is sent only for a client gone.
 */
static void
conn_abandon(DbConn *c)
{
	char why[256];

	if (c->job != NULL)
		c->job->conn = NULL;
	c->job = NULL;
	if (c->cancel != NULL && !PQcancel(c->cancel, why, sizeof(why)))
		shim_log("could not cancel a statement: %s", why);
}

static void watch_start(DbPool *pool);
static void on_watch(h2o_timeout_entry_t *entry);

static void
conn_run(DbConn *c, DbJob *job)
{
	c->state = DB_BUSY;
	c->job = job;
	job->conn = c;
	timer_set(c, &c->pool->run_timeout);
	watch_start(c->pool);
	if (!PQsendQueryPrepared(c->io.pg, c->pool->names[job->statement], 3,
							 job->params, NULL, NULL, 0))
	{
		conn_lost(c, PQerrorMessage(c->io.pg));
		return;
	}
	pg_socket_flush(&c->io);
}

static void
conn_dispatch(DbConn *c)
{
	DbPool *pool = c->pool;
	DbJob  *job;

	while (c->state == DB_IDLE && !h2o_linklist_is_empty(&pool->waiting))
	{
		job = H2O_STRUCT_FROM_MEMBER(DbJob, link, pool->waiting.next);
		h2o_linklist_unlink(&job->link);
		h2o_timeout_unlink(&job->deadline);
		/* gone while it waited: not run at all */
		if (limits_client_gone(job->client_fd, job->eof_is_gone))
			job_finish(job, NULL, db_client_gone);
		else
			conn_run(c, job);
	}
}

/* 25006: the statement ran on a server that takes no writes */
static bool
is_read_only_error(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return state != NULL && strcmp(state, "25006") == 0;
}

/*
 * c's server answered 25006: drop c and the idle connections to the same
 * server (they would answer the same), to connect again to whichever server
 * takes writes now.  Busy ones end their statement first.
 */
static void
drop_read_only(DbConn *c)
{
	DbPool *pool = c->pool;
	char	host[256], port[32];

	snprintf(host, sizeof(host), "%s",
			 PQhost(c->io.pg) ? PQhost(c->io.pg) : "");
	snprintf(port, sizeof(port), "%s",
			 PQport(c->io.pg) ? PQport(c->io.pg) : "");
	shim_log("database server %s:%s is read-only (a standby now): "
			 "reconnecting to the primary",
			 host, port);
	for (int i = 0; i < pool->nconns; i++)
	{
		DbConn *o = &pool->conns[i];

		if (o == c ||
			(o->state == DB_IDLE && o->io.pg != NULL &&
			 strcmp(host, PQhost(o->io.pg) ? PQhost(o->io.pg) : "") == 0 &&
			 strcmp(port, PQport(o->io.pg) ? PQport(o->io.pg) : "") == 0))
		{
			o->failing = true; /* said above */
			o->backoff = 0;
			conn_lost(o, "read-only");
		}
	}
}

/* The command on c has ended (PQgetResult returned NULL). */
static void
conn_command_done(DbConn *c)
{
	PGresult *res = c->result;

	c->result = NULL;
	if (c->state == DB_SETUP)
	{
		ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

		if (st != PGRES_COMMAND_OK)
		{
			char why[512];

			snprintf(why, sizeof(why), "setup of a new connection: %s",
					 res ? PQresultErrorMessage(res) : "no result");
			PQclear(res);
			conn_lost(c, why);
			return;
		}
		PQclear(res);
		c->setup_step++;
		setup_next(c);
		return;
	}
	else
	{
		DbJob *job = c->job;
		bool   standby = res != NULL && is_read_only_error(res);

		c->job = NULL;
		c->state = DB_IDLE;
		timer_set(c, NULL);
		if (job != NULL)
			job_finish(job, res, NULL);
		else
			PQclear(res); /* its requester went away */
		if (standby)
			drop_read_only(c);
		else
			conn_dispatch(c);
	}
}

static void
on_readable(h2o_socket_t *sock, const char *err)
{
	DbConn *c = sock->data;

	(void) err;
	if (!PQconsumeInput(c->io.pg) || PQstatus(c->io.pg) == CONNECTION_BAD)
	{
		/* an idle connection's error message may be the last query's */
		conn_lost(c, c->state == DB_IDLE ? "the server closed the connection"
										 : PQerrorMessage(c->io.pg));
		return;
	}
	if (c->state != DB_BUSY && c->state != DB_SETUP)
		return;
	while (!PQisBusy(c->io.pg))
	{
		PGresult *res = PQgetResult(c->io.pg);

		if (res == NULL)
		{
			if (PQstatus(c->io.pg) == CONNECTION_BAD)
				conn_lost(c, PQerrorMessage(c->io.pg));
			else
				conn_command_done(c);
			return;
		}
		/* keep the first error, else the last result */
		if (c->result == NULL || PQresultStatus(c->result) != PGRES_FATAL_ERROR)
		{
			PQclear(c->result);
			c->result = res;
		}
		else
			PQclear(res);
	}
	/* libpq may have more to send after reading */
	if (PQflush(c->io.pg) < 0)
		conn_lost(c, PQerrorMessage(c->io.pg));
}

static void
on_timer(h2o_timeout_entry_t *entry)
{
	DbConn *c = H2O_STRUCT_FROM_MEMBER(DbConn, timer, entry);

	switch (c->state)
	{
		case DB_DOWN:
			conn_start(c);
			break;
		case DB_CONNECTING:
		case DB_SETUP:
			conn_lost(c, "connection attempt timed out");
			break;
		case DB_BUSY:
			conn_lost(c, "no answer from the database");
			break;
		case DB_IDLE:
			break;
	}
}

static void
on_wait_timeout(h2o_timeout_entry_t *entry)
{
	DbJob *job = H2O_STRUCT_FROM_MEMBER(DbJob, deadline, entry);

	h2o_linklist_unlink(&job->link);
	job_finish(job, NULL, "no database connection became free in time");
}

DbPool *
db_pool_create(h2o_loop_t *loop, const char *const *statements, int nstatements)
{
	return db_pool_create_sized(loop, statements, nstatements,
								shim_config.pool_size);
}

DbPool *
db_pool_create_sized(h2o_loop_t *loop, const char *const *statements,
					 int nstatements, int nconns)
{
	DbPool *pool = calloc(1, sizeof(DbPool));

	if (pool == NULL)
		return NULL;
	pool->loop = loop;
	pool->statements = statements;
	pool->nstatements = nstatements;
	pool->names = calloc(nstatements, sizeof(char *));
	for (int i = 0; i < nstatements; i++)
	{
		pool->names[i] = malloc(16);
		snprintf(pool->names[i], 16, "s%d", i);
	}
	snprintf(pool->settings, sizeof(pool->settings),
			 "SET statement_timeout = %d; SET TimeZone = 'UTC'",
			 shim_config.timeout_ms);
	h2o_linklist_init_anchor(&pool->waiting);
	h2o_timeout_init(loop, &pool->wait_timeout, shim_config.timeout_ms);
	h2o_timeout_init(loop, &pool->run_timeout, shim_config.timeout_ms + 1000);
	h2o_timeout_init(loop, &pool->connect_timeout,
					 shim_config.connect_timeout_ms);
	for (int i = 0; i < NBACKOFF; i++)
		h2o_timeout_init(loop, &pool->backoff[i], backoff_ms[i]);
	h2o_timeout_init(loop, &pool->watch_timeout, WATCH_MS);
	pool->watch_entry.cb = on_watch;

	pool->nconns = nconns;
	pool->conns = calloc(pool->nconns, sizeof(DbConn));
	for (int i = 0; i < pool->nconns; i++)
	{
		DbConn *c = &pool->conns[i];

		c->pool = pool;
		c->io.lost = io_lost;
		c->state = DB_DOWN;
		c->timer.cb = on_timer;
		conn_start(c);
	}
	return pool;
}

void
db_submit(DbPool *pool, DbJob *job)
{
	job->pool = pool;
	job->conn = NULL;
	if (pool->nalive == 0 || pool->closing)
	{
		job_finish(job, NULL, "the database is unavailable");
		return;
	}
	for (int i = 0; i < pool->nconns; i++)
	{
		if (pool->conns[i].state == DB_IDLE)
		{
			conn_run(&pool->conns[i], job);
			return;
		}
	}
	h2o_linklist_insert(&pool->waiting, &job->link);
	job->deadline.cb = on_wait_timeout;
	h2o_timeout_link(pool->loop, &pool->wait_timeout, &job->deadline);
	watch_start(pool);
}

void
db_cancel(DbJob *job)
{
	if (h2o_linklist_is_linked(&job->link))
	{
		h2o_linklist_unlink(&job->link);
		h2o_timeout_unlink(&job->deadline);
	}
	else if (job->conn != NULL)
		conn_abandon(job->conn);
}

static void
watch_start(DbPool *pool)
{
	if (!h2o_timeout_is_linked(&pool->watch_entry))
		h2o_timeout_link(pool->loop, &pool->watch_timeout, &pool->watch_entry);
}

/* The jobs whose clients went away end now; the others are watched on. */
static void
on_watch(h2o_timeout_entry_t *entry)
{
	DbPool		   *pool = H2O_STRUCT_FROM_MEMBER(DbPool, watch_entry, entry);
	h2o_linklist_t	gone;
	h2o_linklist_t *node;
	bool			watching = false;

	h2o_linklist_init_anchor(&gone);
	for (node = pool->waiting.next; node != &pool->waiting;)
	{
		DbJob *job = H2O_STRUCT_FROM_MEMBER(DbJob, link, node);

		node = node->next;
		if (!limits_client_gone(job->client_fd, job->eof_is_gone))
		{
			watching = true;
			continue;
		}
		h2o_linklist_unlink(&job->link);
		h2o_timeout_unlink(&job->deadline);
		h2o_linklist_insert(&gone, &job->link);
	}
	for (int i = 0; i < pool->nconns; i++)
	{
		DbConn *c = &pool->conns[i];
		DbJob  *job = c->job;

		if (c->state != DB_BUSY || job == NULL)
			continue;
		if (!limits_client_gone(job->client_fd, job->eof_is_gone))
		{
			watching = true;
			continue;
		}
		conn_abandon(c);
		h2o_linklist_insert(&gone, &job->link);
	}
	while (!h2o_linklist_is_empty(&gone))
	{
		DbJob *job = H2O_STRUCT_FROM_MEMBER(DbJob, link, gone.next);

		h2o_linklist_unlink(&job->link);
		job_finish(job, NULL, db_client_gone);
	}
	if (watching)
		watch_start(pool);
}

bool
db_pool_has_primary(void)
{
	return atomic_load(&nready) > 0;
}

void
db_pool_close(DbPool *pool)
{
	pool->closing = true;
	if (h2o_timeout_is_linked(&pool->watch_entry))
		h2o_timeout_unlink(&pool->watch_entry);
	fail_waiting(pool, "the server is shutting down");
	for (int i = 0; i < pool->nconns; i++)
	{
		DbConn *c = &pool->conns[i];

		c->failing = true; /* no log line */
		if (c->state != DB_DOWN)
			conn_lost(c, "closing");
		timer_set(c, NULL);
	}
}

/*
 * For GET /metrics, from another thread: a relaxed read of each
 * connection's state, which only its own loop writes (a count a moment
 * old is good enough).  counts: down, connecting (and setting up), idle,
 * busy.
 */
void
db_pool_states(DbPool *pool, int counts[4])
{
	for (int i = 0; i < pool->nconns; i++)
	{
		DbState st = __atomic_load_n(&pool->conns[i].state, __ATOMIC_RELAXED);

		counts[st == DB_DOWN ? 0 : st == DB_IDLE ? 2 : st == DB_BUSY ? 3 : 1]++;
	}
}
