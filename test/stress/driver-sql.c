/*
 * driver-sql.c
 *		psk-load's way in through libpq: one connection per client, the
 *		psk_* functions as prepared statements.  The connection comes from
 *		the usual PG* environment variables.
 */
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

typedef struct Statement
{
	const char *name;
	const char *sql;
} Statement;

static const Statement statements[] = {
	{ "reserve", "SELECT code, code_type, reservation_token"
				 "  FROM psk_reserve($1, $2, $3, $4, $5::int)" },
	{ "confirm", "SELECT code FROM psk_confirm($1, $2, $3::uuid)" },
	{ "release", "SELECT code FROM psk_release($1, $2)" },
	{ "mark", "SELECT code FROM psk_mark_non_usable($1, $2, $3)" },
	{ "disassociate", "SELECT code FROM psk_disassociate($1, $2)" },
	{ "restore", "SELECT code FROM psk_restore($1, $2)" },
	{ "expire", "SELECT c FROM psk_expire_reservations() c" },
	{ "list", "SELECT code, status FROM psk_codes(page_size => 10000)" },
};

static void
copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* The server's last words at a crash are in the replies already. */
static void
quiet(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

static void *
sql_open(const char *email, int ttl, char *err, size_t errlen)
{
	PGconn	 *conn = PQconnectdb("");
	char	  setup[128];
	PGresult *res;

	(void) email;
	if (PQstatus(conn) != CONNECTION_OK)
	{
		copy(err, errlen, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, quiet, NULL);

	/* The clients connect as a superuser, who may set the TTL. */
	snprintf(setup, sizeof(setup),
			 "SET application_name = 'psk-load'; SET psk.reservation_ttl = %d",
			 ttl);
	res = PQexec(conn, setup);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		copy(err, errlen, PQerrorMessage(conn));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);

	for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++)
	{
		res = PQprepare(conn, statements[i].name, statements[i].sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			snprintf(err, errlen, "prepare %s: %s", statements[i].name,
					 PQerrorMessage(conn));
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}
	return conn;
}

static void
sql_close(void *s)
{
	PQfinish((PGconn *) s);
}

/*
 * Run a prepared statement and sort out its outcome.  PQexecPrepared
 * returns success only once the server said ReadyForQuery, that is after
 * the commit (flushed to WAL: synchronous_commit is on); a connection that
 * dies before that is "lost", whatever had arrived.
 */
static void
run(PGconn *conn, const char *name, int nparams, const char *const *params,
	Reply *r)
{
	PGresult *res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	r->nrows = 0;
	r->sqlstate[0] = '\0';
	r->message[0] = '\0';
	if (st == PGRES_TUPLES_OK)
	{
		int n = PQntuples(res);
		int ncols = PQnfields(res);

		if (n > LOAD_MAX_ROWS)
			n = LOAD_MAX_ROWS;
		for (int i = 0; i < n; i++)
		{
			Row *row = &r->rows[i];

			memset(row, 0, sizeof(*row));
			copy(row->code, sizeof(row->code), PQgetvalue(res, i, 0));
			if (strcmp(name, "reserve") == 0)
			{
				copy(row->pool, sizeof(row->pool), PQgetvalue(res, i, 1));
				copy(row->token, sizeof(row->token), PQgetvalue(res, i, 2));
			}
			else if (ncols > 1)
				copy(row->status, sizeof(row->status), PQgetvalue(res, i, 1));
		}
		r->nrows = n;
		r->outcome = OUT_OK;
	}
	else
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		copy(r->sqlstate, sizeof(r->sqlstate), state);
		copy(r->message, sizeof(r->message), PQerrorMessage(conn));
		r->message[strcspn(r->message, "\n")] = '\0';
		/* Gone, or going: admin shutdown, crash, connection failure. */
		if (PQstatus(conn) != CONNECTION_OK || state == NULL ||
			strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
			r->outcome = OUT_LOST;
		else
			r->outcome = OUT_ERR;
	}
	PQclear(res);
}

static void
sql_reserve(void *s, const char *email, const char *tester, const char *country,
			const char *code_type, int how_many, Reply *r)
{
	char		n[16];
	const char *p[5] = { email, tester, country, code_type, n };

	snprintf(n, sizeof(n), "%d", how_many);
	run(s, "reserve", 5, p, r);
}

static void
sql_confirm(void *s, const char *email, const char *code, const char *token,
			Reply *r)
{
	const char *p[3] = { email, code, token };

	run(s, "confirm", 3, p, r);
}

static void
sql_release(void *s, const char *email, const char *code, Reply *r)
{
	const char *p[2] = { email, code };

	run(s, "release", 2, p, r);
}

static void
sql_mark(void *s, const char *email, const char *code, const char *reason,
		 Reply *r)
{
	const char *p[3] = { email, code, reason };

	run(s, "mark", 3, p, r);
}

static void
sql_disassociate(void *s, const char *admin, const char *code, Reply *r)
{
	const char *p[2] = { admin, code };

	run(s, "disassociate", 2, p, r);
}

static void
sql_restore(void *s, const char *admin, const char *code, Reply *r)
{
	const char *p[2] = { admin, code };

	run(s, "restore", 2, p, r);
}

static void
sql_expire(void *s, Reply *r)
{
	run(s, "expire", 0, NULL, r);
}

static void
sql_list(void *s, const char *admin, Reply *r)
{
	/* psk_codes acts for no one: database privileges govern it. */
	(void) admin;
	run(s, "list", 0, NULL, r);
}

const Driver sql_driver = {
	.name = "sql",
	.open = sql_open,
	.close = sql_close,
	.reserve = sql_reserve,
	.confirm = sql_confirm,
	.release = sql_release,
	.mark = sql_mark,
	.disassociate = sql_disassociate,
	.restore = sql_restore,
	.expire = sql_expire,
	.list = sql_list,
};
