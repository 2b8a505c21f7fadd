/*
 * bulk.h
 *		What the CSV import and exports share inside the shim (gate.c,
 *		pgconn.c, bulk.c).  shim.h has their hooks into the server.
 */
#ifndef PSK_SHIM_BULK_H
#define PSK_SHIM_BULK_H

#include "shim.h"

#include "csv.h"
#include "http1.h"

/*
 * The first request of a new connection, when it is an import: its body
 * has not been read (gate.c has handed h2o a head without it), and its
 * framing is here, for bulk.c to read the body from the socket itself.
 */
typedef struct GateHandover
{
	h2o_socket_t *sock;
	size_t		  head_len; /* the rewritten head at the start of input */
	bool		  has_length;
	uint64_t	  length;
	bool		  chunked;
	bool		  expect_continue;
	bool		  taken; /* bulk.c has it */
} GateHandover;

/* One per worker thread. */
struct BulkCtx
{
	Worker		  *worker;
	h2o_loop_t	  *loop;
	h2o_timeout_t  connect_timeout; /* --connect-timeout */
	h2o_timeout_t  run_timeout;		/* a statement: --timeout + 1 s */
	h2o_timeout_t  idle_timeout;	/* a client sending nothing */
	h2o_timeout_t  zero_timeout;	/* the next turn of the loop */
	h2o_timeout_t  long_timeout;	/* a COMMIT that writes out a cursor */
	h2o_timeout_t  stall_timeout;	/* a client taking none of a reply */
	h2o_linklist_t gates;			/* connections gate.c holds */
	GateHandover  *handover;		/* during gate.c's h2o_accept */
};

/*
 * pgconn.c: a database connection of its own for one import or export,
 * on the worker's loop, one statement at a time (text parameters).
 * PgCallback gets the PGresult (its to PQclear) or, res NULL, why the
 * connection failed; for pg_open, (NULL, NULL) when it is ready.  No
 * callback comes after pg_close.
 */
typedef struct PgConn PgConn;
typedef void (*PgCallback)(void *arg, PGresult *res, const char *error);

/* NULL when --bulk-max connections are open already */
extern PgConn *pg_open(BulkCtx *ctx, PgCallback cb, void *arg);
extern void	   pg_exec(PgConn *c, const char *sql, int nparams,
					   const char *const *params, PgCallback cb, void *arg);
extern void	   pg_close(PgConn *c);
/*
 * A statement that may take long (a COMMIT writing out a held cursor of a
 * million rows): watched for BULK_LONG_SECONDS, not --timeout; the session
 * must have statement_timeout set as long (SET LOCAL).
 */
#define BULK_LONG_SECONDS 600
#define BULK_LONG_MS	  "600000"
extern void pg_exec_slow(PgConn *c, const char *sql, PgCallback cb, void *arg);

#endif /* PSK_SHIM_BULK_H */
