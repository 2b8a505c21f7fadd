/*
 * pgconn.c
 *		A database connection of its own for one import or export (bulk.h).
 *
 * An import is one transaction of many statements that lasts as long as
 * its upload, an export a cursor read as slowly as its client reads:
 * neither may hold one of the pool's connections (db.c), which serve
 * reserves.  So each gets a connection of its own, opened for it and
 * closed after it (PQfinish: an unfinished transaction is rolled back),
 * watched by the worker's loop as the pool's are.  At most --bulk-max are
 * open at once in the whole process.
 */
#include "bulk.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum PgState
{
	PG_CONNECTING,
	PG_SETUP,
	PG_IDLE,
	PG_BUSY,
	PG_DEAD
} PgState;

struct PgConn
{
	PgSocket			io; /* first: the socket's data is the PgConn */
	BulkCtx			   *ctx;
	PgState				state;
	PGresult		   *result; /* of the running statement */
	PgCallback			cb;
	void			   *arg;
	h2o_timeout_entry_t timer;
	char				why[256]; /* of a failure answered from the loop */
};

static atomic_int open_conns;

static void on_readable(h2o_socket_t *sock, const char *err);

static void
timer_set(PgConn *c, h2o_timeout_t *timeout)
{
	if (h2o_timeout_is_linked(&c->timer))
		h2o_timeout_unlink(&c->timer);
	if (timeout != NULL)
		h2o_timeout_link(c->ctx->loop, timeout, &c->timer);
}

/* Hand res (or the failure) to the waiting callback; c may be gone after. */
static void
finish(PgConn *c, PGresult *res, const char *why)
{
	PgCallback cb = c->cb;
	void	  *arg = c->arg;

	c->cb = NULL;
	timer_set(c, NULL);
	if (cb != NULL)
		cb(arg, res, why);
	else
		PQclear(res);
}

static void
release(PgConn *c)
{
	if (c->io.sock != NULL)
	{
		h2o_socket_read_stop(c->io.sock);
		h2o_socket_close(c->io.sock);
		c->io.sock = NULL;
	}
	if (c->io.pg != NULL)
	{
		PQfinish(c->io.pg);
		c->io.pg = NULL;
	}
	PQclear(c->result);
	c->result = NULL;
}

/* The connection is of no more use: say why to whoever waits. */
static void
fail(PgConn *c, const char *why)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%.*s", (int) strcspn(why, "\n"), why);
	release(c);
	c->state = PG_DEAD;
	finish(c, NULL, msg);
}

/* A connection lost while sending (pgsocket.c). */
static void
io_lost(PgSocket *io, const char *why)
{
	fail((PgConn *) io, why);
}

static void
on_connect_poll(h2o_socket_t *sock, const char *err)
{
	PgConn *c = sock->data;
	char	settings[200];

	(void) err;
	switch (PQconnectPoll(c->io.pg))
	{
		case PGRES_POLLING_READING:
			if (!pg_socket_watch(&c->io, c->ctx->loop, on_connect_poll, NULL))
				fail(c, "no socket");
			return;
		case PGRES_POLLING_WRITING:
			if (!pg_socket_watch(&c->io, c->ctx->loop, NULL, on_connect_poll))
				fail(c, "no socket");
			return;
		case PGRES_POLLING_OK:
			break;
		default:
			fail(c, PQerrorMessage(c->io.pg));
			return;
	}
	if (PQsetnonblocking(c->io.pg, 1) != 0 ||
		!pg_socket_watch(&c->io, c->ctx->loop, on_readable, NULL))
	{
		fail(c, PQerrorMessage(c->io.pg));
		return;
	}
	/*
	 * A client that stops reading an export, or sending an import, must
	 * not hold its snapshot or its transaction for ever.
	 */
	snprintf(settings, sizeof(settings),
			 "SET statement_timeout = %d; SET TimeZone = 'UTC';"
			 " SET idle_in_transaction_session_timeout = %d",
			 shim_config.timeout_ms,
			 shim_config.timeout_ms > 60000 ? shim_config.timeout_ms : 60000);
	c->state = PG_SETUP;
	if (!PQsendQuery(c->io.pg, settings))
	{
		fail(c, PQerrorMessage(c->io.pg));
		return;
	}
	pg_socket_flush(&c->io);
}

/* The running command is over (PQgetResult gave NULL). */
static void
command_done(PgConn *c)
{
	PGresult *res = c->result;

	c->result = NULL;
	if (c->state == PG_SETUP)
	{
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			char why[300];

			snprintf(why, sizeof(why), "setup of a connection: %s",
					 res ? PQresultErrorMessage(res) : "no result");
			PQclear(res);
			fail(c, why);
			return;
		}
		PQclear(res);
		c->state = PG_IDLE;
		finish(c, NULL, NULL);
		return;
	}
	c->state = PG_IDLE;
	finish(c, res, NULL);
}

static void
on_readable(h2o_socket_t *sock, const char *err)
{
	PgConn *c = sock->data;

	(void) err;
	if (!PQconsumeInput(c->io.pg) || PQstatus(c->io.pg) == CONNECTION_BAD)
	{
		fail(c, c->state == PG_IDLE ? "the server closed the connection"
									: PQerrorMessage(c->io.pg));
		return;
	}
	if (c->state != PG_BUSY && c->state != PG_SETUP)
		return;
	while (!PQisBusy(c->io.pg))
	{
		PGresult *res = PQgetResult(c->io.pg);

		if (res == NULL)
		{
			command_done(c);
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
	if (PQflush(c->io.pg) < 0)
		fail(c, PQerrorMessage(c->io.pg));
}

/* A failure answered from the loop, not before the call that found it. */
static void
fail_later(PgConn *c, const char *why)
{
	snprintf(c->why, sizeof(c->why), "%.*s", (int) strcspn(why, "\n"), why);
	release(c);
	c->state = PG_DEAD;
	timer_set(c, &c->ctx->zero_timeout);
}

static void
on_timer(h2o_timeout_entry_t *entry)
{
	PgConn *c = H2O_STRUCT_FROM_MEMBER(PgConn, timer, entry);

	if (c->state == PG_DEAD)
		finish(c, NULL, c->why);
	else
		fail(c, c->state == PG_BUSY ? "no answer from the database"
									: "connection attempt timed out");
}

PgConn *
pg_open(BulkCtx *ctx, PgCallback cb, void *arg)
{
	static const char *const keys[] = { "dbname", "fallback_application_name",
										"client_encoding", NULL };
	const char *values[] = { shim_config.conninfo, "psk-shim bulk", "UTF8",
							 NULL };
	PgConn	   *c;

	if (atomic_fetch_add(&open_conns, 1) >= shim_config.bulk_max)
	{
		atomic_fetch_sub(&open_conns, 1);
		return NULL;
	}
	c = calloc(1, sizeof(PgConn));
	if (c == NULL)
	{
		atomic_fetch_sub(&open_conns, 1);
		return NULL;
	}
	c->ctx = ctx;
	c->io.lost = io_lost;
	c->cb = cb;
	c->arg = arg;
	c->timer.cb = on_timer;
	c->state = PG_CONNECTING;
	c->io.pg = PQconnectStartParams(keys, values, 1);
	if (c->io.pg == NULL || PQstatus(c->io.pg) == CONNECTION_BAD)
	{
		fail_later(c, c->io.pg ? PQerrorMessage(c->io.pg) : "out of memory");
		return c;
	}
	PQsetNoticeProcessor(c->io.pg, pg_socket_notice, NULL);
	timer_set(c, &ctx->connect_timeout);
	if (!pg_socket_watch(&c->io, c->ctx->loop, NULL, on_connect_poll))
		fail_later(c, "no socket");
	return c;
}

void
pg_exec(PgConn *c, const char *sql, int nparams, const char *const *params,
		PgCallback cb, void *arg)
{
	c->cb = cb;
	c->arg = arg;
	if (c->state != PG_IDLE)
	{
		fail_later(c, "the database connection was lost");
		return;
	}
	c->state = PG_BUSY;
	timer_set(c, &c->ctx->run_timeout);
	/* without parameters, the simple protocol: a few statements at once */
	if (!(nparams == 0 ? PQsendQuery(c->io.pg, sql)
					   : PQsendQueryParams(c->io.pg, sql, nparams, NULL, params,
										   NULL, NULL, 0)))
	{
		fail(c, PQerrorMessage(c->io.pg));
		return;
	}
	pg_socket_flush(&c->io);
}

void
pg_exec_slow(PgConn *c, const char *sql, PgCallback cb, void *arg)
{
	pg_exec(c, sql, 0, NULL, cb, arg);
	if (c->state == PG_BUSY)
		timer_set(c, &c->ctx->long_timeout);
}

void
pg_close(PgConn *c)
{
	if (c == NULL)
		return;
	timer_set(c, NULL);
	release(c);
	free(c);
	atomic_fetch_sub(&open_conns, 1);
}
