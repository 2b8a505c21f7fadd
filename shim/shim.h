/*
 * shim.h
 *		Shared declarations of psk-shim, the HTTP face of the psk extension.
 *
 * The shim is deliberately thin: it parses HTTP, finds the route, checks the
 * size, the bearer token's presence and the media type, and hands
 * (token, body, query) to one prepared statement per route.  The database
 * validates, applies every rule and builds the JSON reply.
 */
#ifndef PSK_SHIM_H
#define PSK_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "h2o.h"

/* config.c: command-line flags with environment fallbacks */
typedef struct ShimConfig
{
	const char *listen;		  /* HOST:PORT */
	const char *admin_listen; /* HOST:PORT of /metrics, /live, /ready */
	const char *conninfo;	  /* libpq connection string or URI */
	int			threads;	  /* worker threads, each with its own loop */
	int			pool_size;	  /* database connections per thread */
	size_t		body_limit;	  /* bytes */
	int			timeout_ms;	  /* statement timeout, and longest queue wait */
	int			connect_timeout_ms;
	int			shutdown_timeout_ms; /* longest drain on SIGTERM */
	bool		access_log;
	const char *cors_origins; /* comma-separated; empty: no CORS */
	const char *docs_dir;	  /* swagger-ui-dist; NULL: beside the binary */
	/* limits.c */
	int max_connections;		/* open at once, all threads */
	int idle_timeout_ms;		/* to send a whole request */
	int write_timeout_ms;		/* an answer not moving */
	int max_pipelined;			/* requests in a row sent before reading */
	int login_limit;			/* logins in flight */
	int login_limit_per_client; /* ... from one client address */
	/* bulk.c */
	size_t import_limit; /* bytes of a CSV import */
	int	   bulk_max;	 /* imports and exports at once */
} ShimConfig;

extern ShimConfig shim_config;

/* Parse argv; exits for --help, --routes and bad flags. */
extern void shim_configure(int argc, char **argv);

/* routes.c: one row per endpoint of the contract */
typedef enum RouteAuth
{
	AUTH_NONE,	  /* no token: login, health, the document */
	AUTH_SESSION, /* any valid session */
	AUTH_USER,	  /* a non-admin user (checked by the database) */
	AUTH_ADMIN	  /* an admin (checked by the database) */
} RouteAuth;

typedef enum RouteBody
{
	BODY_NONE,	/* a body, if any, is ignored */
	BODY_JSON,	/* application/json */
	BODY_LOGIN, /* JSON or the OAuth2 url-encoded form */
	BODY_CSV	/* text/csv, read as it arrives (bulk.c) */
} RouteBody;

typedef struct Route
{
	const char *method;
	const char *path; /* a trailing "{name}" segment is a parameter */
	/*
	 * psk.http_* (token, body, query); NULL: the shim answers from its own
	 * data (/openapi.json, /docs and its files)
	 */
	const char *function;
	RouteAuth	auth;
	RouteBody	body;
} Route;

extern const Route shim_routes[];
extern const int   shim_nroutes;

typedef enum RouteMatch
{
	ROUTE_FOUND,
	ROUTE_NO_PATH,
	ROUTE_NO_METHOD
} RouteMatch;

/*
 * Find the route of method + path (path without the query string).  On
 * ROUTE_FOUND, *param holds the raw {parameter} segment (or is empty); on
 * ROUTE_NO_METHOD, allow receives the methods the path takes ("GET, POST").
 */
extern RouteMatch  route_find(h2o_iovec_t method, h2o_iovec_t path, int *route,
							  h2o_iovec_t *param, char *allow, size_t allowsize);
extern const char *route_auth_name(RouteAuth auth);
/* The request header the route's statement takes, or NULL. */
extern const char *route_header(const Route *route);
extern void		   route_print_table(FILE *out);

/* db.c: a pool of non-blocking libpq connections on one event loop */
typedef struct DbPool DbPool;
typedef struct DbConn DbConn;
typedef struct DbJob  DbJob;

/*
 * res is NULL when the database is unavailable.  The callback owns res and
 * must PQclear it, now or later: the shim answers with the PGresult's own
 * bytes and clears it when the request is done.
 */
typedef void (*DbDoneCallback)(DbJob *job, PGresult *res,
							   const char *unavailable_reason);

struct DbJob
{
	h2o_linklist_t		link;	  /* in the wait queue */
	h2o_timeout_entry_t deadline; /* for the wait queue */
	DbPool			   *pool;
	DbConn			   *conn; /* while it runs */
	int					statement;
	const char		   *params[3];
	DbDoneCallback		done;
	int	 client_fd; /* the requester's socket, watched while it waits; or -1 */
	bool eof_is_gone; /* its end of file (not only a reset) means gone */
};

/* statements[i] is prepared as "s<i>" on every connection (NULL: none) */
extern DbPool *db_pool_create(h2o_loop_t *loop, const char *const *statements,
							  int nstatements);
/* Run job->statement; job->done is called exactly once, maybe right away. */
extern void db_submit(DbPool *pool, DbJob *job);
/*
 * The requester went away: forget the job (a running statement is
 * cancelled, its answer discarded).
 */
extern void db_cancel(DbJob *job);
/*
 * The reason a job ends with when its client_fd shows the requester gone
 * while it waited or ran (db.c watches them); the request is then over.
 */
extern const char db_client_gone[];
extern void		  db_pool_close(DbPool *pool);
/* A pool of nconns connections (db_pool_create: --pool of them). */
extern DbPool *db_pool_create_sized(h2o_loop_t		  *loop,
									const char *const *statements,
									int nstatements, int nconns);
/* counts[4] += connections down, connecting, idle, busy (any thread) */
extern void db_pool_states(DbPool *pool, int counts[4]);

/*
 * True while at least one connection of any pool is set up, i.e. connected
 * to a server that took it as read-write (libpq's target_session_attrs,
 * when --db asks for it) and not since lost: for /ready.  Any thread.
 */
extern bool db_pool_has_primary(void);

/* json.c: the little JSON the shim writes itself */
extern bool utf8_valid(const char *s, size_t len);
/* Bytes json_quote may write for len input bytes. */
#define JSON_QUOTED_MAX(len) (6 * (len) + 2)
/* Write s as a quoted JSON string; returns bytes written. */
extern size_t json_quote(char *dst, const char *s, size_t len);
/* The same without the quotes: at most 6 * len bytes. */
extern size_t json_escape(char *dst, const char *s, size_t len);

/* An error reply {"error": kind, "message": text} */
typedef struct HttpError
{
	int			status;
	const char *kind;
	const char *message;
	const char *detail;		 /* appended to message when set */
	int			retry_after; /* seconds, for 429; 0: no header */
} HttpError;

/* Map a failed statement to the contract's status and kind. */
extern HttpError   http_error_from_result(const PGresult *res);
extern const char *http_reason(int status);

/* form.c: query strings and url-encoded forms to a JSON object */
typedef struct FormResult
{
	char	   *json;  /* NUL-terminated object, or NULL on error */
	const char *error; /* why not */
} FormResult;

extern FormResult form_to_json(h2o_mem_pool_t *pool, const char *what,
							   h2o_iovec_t form, const char *extra_name,
							   h2o_iovec_t extra_value);
extern bool percent_decode(const char *src, size_t len, bool plus_is_space,
						   char *dst, size_t *dstlen);

/*
 * wake.c: wake a thread's event loop from another (cb runs in the loop's
 * thread); instead of h2o_multithread_send_message, see there.
 */
typedef struct Wake
{
	int			  fd;
	h2o_socket_t *sock;
	void (*cb)(struct Wake *w);
	void *data;
} Wake;
extern void wake_init(Wake *w, h2o_loop_t *loop, void (*cb)(Wake *w),
					  void *data);
extern void wake_send(Wake *w);

/* limits.c: what one client may hold (see there) */
typedef struct Limits Limits;
typedef struct Worker Worker;

typedef struct LoginHold
{
	bool	held;
	bool	known;	  /* addr is set */
	uint8_t addr[16]; /* the client's, IPv4 as ::ffff:a.b.c.d */
} LoginHold;

extern void	   limits_setup(void);
extern void	   limits_configure(h2o_globalconf_t *conf);
extern Limits *limits_worker_init(Worker *w, h2o_loop_t *loop,
								  h2o_socket_cb on_accept);
extern void	   limits_worker_stop(Worker *w);
/*
 * Accept one connection, within --max-connections (pauses when full), for
 * the thread with the fewest open.
 */
extern void limits_accept(Worker *w, h2o_socket_t *listener);
/* Client connections open on w's thread (or on their way to it). */
extern int limits_open_connections(Worker *w);
/* Every request: counts pipelined ones (may end the connection after it). */
extern void limits_on_request(h2o_req_t *req);
extern int	limits_client_fd(h2o_req_t *req);
extern bool limits_client_gone(int fd, bool eof_is_gone);
/* A place for a login in flight, or false: answer 429 with retry_after. */
extern bool limits_login_take(h2o_req_t *req, LoginHold *hold,
							  int *retry_after);
extern void limits_login_give(LoginHold *hold);

/* server.c: one worker thread = one loop, one h2o context, one db pool */
struct Worker
{
	int					id;
	pthread_t			thread;
	h2o_context_t		ctx;
	h2o_accept_ctx_t	accept_ctx;
	h2o_socket_t	   *listener;
	DbPool			   *db;
	int					inflight; /* requests not yet fully answered */
	bool				stopping;
	bool				drain_expired;
	h2o_timeout_t		drain_timeout;
	h2o_timeout_entry_t drain_entry;
	Wake				stop_wake; /* worker_request_stop */
	Limits			   *limits;
	struct BulkCtx	   *bulk; /* gate.c, bulk.c */
};

extern void	 server_setup(h2o_globalconf_t *conf);
extern void	 worker_init(Worker *w, h2o_globalconf_t *conf, int listen_fd);
extern void *worker_main(void *arg);
extern void	 worker_request_stop(Worker *w);
/*
 * A request the handler handed to bulk.c: its error reply, or the access
 * log line and metrics of a streamed reply that begins.
 */
extern void server_error_reply(h2o_req_t *req, const struct timespec *started,
							   HttpError e);
extern void server_reply_started(h2o_req_t *req, const struct timespec *started,
								 int status);

/*
 * CSV in and out (bulk.c, gate.c, pgconn.c; bulk.h inside): imports and
 * exports stream on database connections of their own.
 */
typedef struct BulkCtx BulkCtx;
typedef enum BulkKind
{
	BULK_NONE,
	BULK_IMPORT, /* POST /admin/codes/import */
	BULK_EXPORT	 /* GET /admin/codes/export, /admin/logs/export */
} BulkKind;

extern BulkCtx *bulk_ctx_create(Worker *w);
extern BulkKind bulk_kind(const Route *route);
/* The import's body over --import-limit: the 413, before the token check */
extern bool bulk_size_error(h2o_req_t *req, const Route *route, HttpError *e);
/*
 * Once route, size, token presence and media type have passed: the
 * transfer, made in the handler (an import takes its socket from gate.c
 * then); bulk_run starts it once the pool's statement of GET /auth/me has
 * said the caller is an admin, so that no one else holds one of the
 * --bulk-max connections even for a moment.
 */
typedef struct Bulk Bulk;
extern Bulk *bulk_prepare(h2o_req_t *req, const Route *route, const char *token,
						  const char *query, const struct timespec *started);
extern void	 bulk_run(Bulk *b);
/* A refusal before bulk_run (an import's unread body is dropped first) */
extern void bulk_fail(Bulk *b, HttpError e);
/* gate.c: every new connection comes here before h2o */
extern void gate_accept(Worker *w, h2o_socket_t *sock);
extern void gate_close_all(Worker *w);

/* metrics.c: the shim's own metrics, per thread, summed at a scrape */
#define METRICS_MAX_ROUTES 64
/* route: index in shim_routes, or -1 (no route: 404) */
extern void metrics_init(int nthreads);
extern void metrics_observe(int thread, int route, int status, double millis);
/* Append the HTTP metrics and psk_db_connections to out. */
extern void metrics_render_http(FILE *out, Worker *workers, int nworkers);

/* admin.c: --admin-listen, GET /metrics, /live and /ready */
extern void admin_start(int listen_fd, Worker *workers, int nworkers);
extern void admin_stop(void);

/* cors.c: --cors-origins */
extern void cors_configure(const char *list);
extern bool cors_enabled(void);
/* OPTIONS with Access-Control-Request-Method from a listed origin */
extern bool cors_is_preflight(h2o_req_t *req);
/* The preflight's headers; methods: the route's, as in Allow */
extern void cors_preflight_headers(h2o_req_t *req, const char *methods);
/* The filter that adds the CORS headers to every other reply */
extern void cors_register(h2o_pathconf_t *path);

/* compress.c: gzip of replies over 1,000 bytes */
extern bool		   compress_accepts_gzip(h2o_req_t *req);
extern void		   compress_register(h2o_pathconf_t *path);
extern h2o_iovec_t compress_gzip_static(const char *data, size_t len);

/* docs.c: GET /docs and its files, read once at start-up */
typedef struct DocFile
{
	const char *name; /* "" for the page itself */
	const char *content_type;
	h2o_iovec_t body;	 /* {NULL, 0}: not installed */
	h2o_iovec_t gzipped; /* {NULL, 0}: none */
} DocFile;

extern void			  docs_load(const char *dir);
extern const DocFile *docs_find(h2o_iovec_t name);

/* openapi.S */
extern const char shim_openapi_json[];
extern const char shim_openapi_json_end[];

/* log.c */
extern void shim_log(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
extern void access_log(h2o_iovec_t method, h2o_iovec_t path, int status,
					   double millis);

/*
 * pgsocket.c: a libpq connection driven by an h2o event loop, for the
 * request pool (db.c) and the connections of CSV transfers (pgconn.c).
 * Embedded as the first member of its owner, so that the owner is the
 * h2o socket's data and either type reaches the other by a cast.
 */
typedef struct PgSocket
{
	PGconn		 *pg;
	h2o_socket_t *sock;		  /* wraps a dup() of PQsocket(pg) */
	bool		  want_write; /* waiting for the socket to take more */
	/* the owner's handler of a connection lost while sending */
	void (*lost)(struct PgSocket *io, const char *why);
} PgSocket;

/*
 * Watch the connection's current socket (libpq may change it while
 * connecting) for reading and/or writing; false when it has none.
 */
extern bool pg_socket_watch(PgSocket *io, h2o_loop_t *loop,
							h2o_socket_cb on_read, h2o_socket_cb on_write);
/* Send what libpq has buffered; wait for writability if the socket is full. */
extern void pg_socket_flush(PgSocket *io);
/* libpq's notice processor: into the shim's log, first line only. */
extern void pg_socket_notice(void *arg, const char *message);

#endif /* PSK_SHIM_H */
