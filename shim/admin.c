/*
 * admin.c
 *		The admin port (--admin-listen): GET /metrics (Prometheus text
 *		format 0.0.4), GET /live and GET /ready.  No authentication: bind it
 *		where only the monitoring reaches.
 *
 * One thread of its own, with its own loop, h2o context and a single
 * database connection, so that a scrape never waits behind the API's
 * requests and never takes one of their connections.  The database part
 * is one statement, SELECT ... FROM psk.metrics(), whose result (or
 * failure) is kept for one second: however often /metrics and /ready are
 * asked, the database sees at most one such query a second.  Requests that
 * arrive while it runs wait for it.
 *
 * /ready is 200 when that statement succeeded on a primary (not a hot
 * standby).  The expiry worker's state is in its body and in /metrics
 * (psk_expiry_worker_up), not in its status: a dead worker is a fault of
 * the database that every shim shares, and taking all of them out of the
 * load balancer for it would turn late expiries into an outage.
 */
#include "shim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_MS 1000

/* the pool binds three parameters (token, body, query) to every statement */
static const char *const admin_statements[] = {
	"SELECT m.name, m.labels, m.value::text FROM psk.metrics() m, "
	"(VALUES ($1::text, $2::text, $3::text)) AS unused(a, b, c)"
};

typedef struct AdminReq
{
	h2o_linklist_t link; /* in waiting, until the statement answers */
	h2o_req_t	  *req;
	bool		   metrics; /* else /ready */
} AdminReq;

static struct
{
	h2o_globalconf_t conf;
	h2o_context_t	 ctx;
	h2o_accept_ctx_t accept_ctx;
	h2o_socket_t	*listener;
	DbPool			*db;
	pthread_t		 thread;
	bool			 stopping;
	Wake			 stop_wake;
	Worker			*workers;
	int				 nworkers;

	/* the last answer of psk.metrics(): a result, or why there is none */
	DbJob			job;
	bool			running;
	PGresult	   *result;
	char			reason[256];
	struct timespec fetched_at; /* 0: never */
	h2o_linklist_t	waiting;	/* AdminReq.link */
} admin;

static double
millis_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1e3 + (now.tv_nsec - t->tv_nsec) / 1e6;
}

static void
reply(h2o_req_t *req, int status, const char *type, const char *body,
	  size_t len)
{
	static h2o_generator_t generator = { NULL, NULL };
	h2o_iovec_t			   buf = h2o_iovec_init(body, len);

	req->res.status = status;
	req->res.reason = http_reason(status);
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
				   type, strlen(type));
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
				   H2O_STRLIT("no-store"));
	req->res.content_length = len;
	h2o_start_response(req, &generator);
	if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
		h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
	else
		h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void
reply_json(h2o_req_t *req, int status, const char *json)
{
	reply(req, status, "application/json",
		  h2o_strdup(&req->pool, json, SIZE_MAX).base, strlen(json));
}

/* The value of a one-label-less row of the result, or NULL. */
static const char *
db_value(const char *name)
{
	for (int i = 0; admin.result != NULL && i < PQntuples(admin.result); i++)
		if (strcmp(PQgetvalue(admin.result, i, 0), name) == 0)
			return PQgetvalue(admin.result, i, 2);
	return NULL;
}

static bool
database_ready(void)
{
	const char *primary = db_value("psk_database_primary");

	return primary != NULL && strcmp(primary, "1") == 0;
}

static void
answer_ready(h2o_req_t *req)
{
	char		body[512];
	const char *worker = db_value("psk_expiry_worker_up");
	size_t		n;

	if (database_ready())
	{
		snprintf(body, sizeof(body),
				 "{\"status\":\"ready\",\"database\":\"primary\","
				 "\"expiry_worker\":\"%s\"}",
				 worker && strcmp(worker, "1") == 0 ? "running"
													: "not running");
		reply_json(req, 200, body);
		return;
	}
	n = (size_t) snprintf(body, sizeof(body),
						  "{\"status\":\"not ready\",\"reason\":");
	if (admin.result != NULL)
		n += json_quote(body + n, "the database is a standby (read-only)",
						strlen("the database is a standby (read-only)"));
	else
	{
		size_t len = strcspn(admin.reason, "\n");

		if (len > 60)
			len = 60;
		n += json_quote(body + n, admin.reason, len);
	}
	snprintf(body + n, sizeof(body) - n, "}");
	reply_json(req, 503, body);
}

/* Is the HELP/TYPE of a family known; the text of one psk.metrics() name. */
static const struct
{
	const char *name;
	const char *type;
	const char *help;
} families[] = {
	{ "psk_codes", "gauge", "Codes by pool (code_type) and status." },
	{ "psk_free_codes", "gauge",
	  "CAN_BE_USED codes valid in each country, by pool." },
	{ "psk_oldest_hold_seconds", "gauge",
	  "Age of the oldest RESERVED or IN_USE hold of a pool (0: none)." },
	{ "psk_transitions_total", "counter",
	  "Audit rows by action, since the extension was installed." },
	{ "psk_expiry_worker_up", "gauge",
	  "1 while the expiry worker of this database runs." },
	{ "psk_expiry_worker_last_sweep_timestamp_seconds", "gauge",
	  "When the expiry worker last swept (Unix time; 0: never)." },
	{ "psk_expiry_worker_sweeps_total", "counter",
	  "Sweeps of the expiry worker since it started." },
	{ "psk_code_counts_timestamp_seconds", "gauge",
	  "When psk_codes and psk_free_codes were counted (Unix time)." },
	{ "psk_database_primary", "gauge",
	  "1 when the database is a primary, 0 on a standby." },
};

static void
render_family_header(FILE *out, const char *name)
{
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (strcmp(families[i].name, name) == 0)
		{
			fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, families[i].help,
					name, families[i].type);
			return;
		}
	fprintf(out, "# TYPE %s untyped\n", name);
}

static void
answer_metrics(h2o_req_t *req)
{
	char  *text = NULL;
	size_t len = 0;
	FILE  *out = open_memstream(&text, &len);
	int	   n = admin.result ? PQntuples(admin.result) : 0;

	if (out == NULL)
	{
		reply_json(req, 500,
				   "{\"error\":\"internal\",\"message\":\"out of "
				   "memory\"}");
		return;
	}
	fprintf(out,
			"# HELP psk_database_up 1 when the last query of the database's "
			"metrics succeeded.\n"
			"# TYPE psk_database_up gauge\n"
			"psk_database_up %d\n",
			admin.result != NULL);
	/* the rows of one family together, in their first row's order */
	for (int i = 0; i < n; i++)
	{
		const char *name = PQgetvalue(admin.result, i, 0);
		bool		seen = false;

		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(PQgetvalue(admin.result, j, 0), name) == 0;
		if (seen)
			continue;
		render_family_header(out, name);
		for (int j = i; j < n; j++)
		{
			const char *labels = PQgetvalue(admin.result, j, 1);

			if (strcmp(PQgetvalue(admin.result, j, 0), name) != 0)
				continue;
			fprintf(out, labels[0] ? "%s{%s} %s\n" : "%s%s %s\n", name, labels,
					PQgetvalue(admin.result, j, 2));
		}
	}
	metrics_render_http(out, admin.workers, admin.nworkers);
	fclose(out);
	reply(req, 200, "text/plain; version=0.0.4; charset=utf-8",
		  h2o_strdup(&req->pool, text, len).base, len);
	free(text);
}

static void
answer(AdminReq *ar)
{
	if (ar->metrics)
		answer_metrics(ar->req);
	else
		answer_ready(ar->req);
}

static void
on_fetched(DbJob *job, PGresult *res, const char *unavailable)
{
	(void) job;
	admin.running = false;
	clock_gettime(CLOCK_MONOTONIC, &admin.fetched_at);
	PQclear(admin.result);
	admin.result = NULL;
	if (res == NULL)
		snprintf(admin.reason, sizeof(admin.reason), "%s", unavailable);
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(admin.reason, sizeof(admin.reason), "%s",
				 PQresultErrorMessage(res));
		shim_log("metrics: %.*s", (int) strcspn(admin.reason, "\n"),
				 admin.reason);
		PQclear(res);
	}
	else
		admin.result = res;

	while (!h2o_linklist_is_empty(&admin.waiting))
	{
		AdminReq *ar =
			H2O_STRUCT_FROM_MEMBER(AdminReq, link, admin.waiting.next);

		h2o_linklist_unlink(&ar->link);
		answer(ar);
	}
}

/* The client went away before the statement answered. */
static void
on_admin_req_dispose(void *p)
{
	AdminReq *ar = p;

	if (h2o_linklist_is_linked(&ar->link))
		h2o_linklist_unlink(&ar->link);
}

static int
on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
	h2o_iovec_t path = h2o_iovec_init(req->path.base, req->query_at != SIZE_MAX
														  ? req->query_at
														  : req->path.len);
	bool		get =
		h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
		h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
	bool	  metrics = h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"));
	bool	  ready = h2o_memis(path.base, path.len, H2O_STRLIT("/ready"));
	bool	  live = h2o_memis(path.base, path.len, H2O_STRLIT("/live"));
	AdminReq *ar;

	(void) self;
	if (!metrics && !ready && !live)
	{
		reply_json(req, 404,
				   "{\"error\":\"not_found\",\"message\":\"no such path (the "
				   "admin port has /metrics, /live and /ready)\"}");
		return 0;
	}
	if (!get)
	{
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
					   H2O_STRLIT("GET, HEAD"));
		reply_json(req, 405,
				   "{\"error\":\"method_not_allowed\",\"message\":\"method "
				   "not allowed on this path\"}");
		return 0;
	}
	if (live)
	{
		reply_json(req, 200, "{\"status\":\"live\"}");
		return 0;
	}

	ar = h2o_mem_alloc_shared(&req->pool, sizeof(*ar), on_admin_req_dispose);
	memset(ar, 0, sizeof(*ar));
	ar->req = req;
	ar->metrics = metrics;
	if (admin.fetched_at.tv_sec != 0 && !admin.running &&
		millis_since(&admin.fetched_at) < CACHE_MS)
	{
		answer(ar);
		return 0;
	}
	h2o_linklist_insert(&admin.waiting, &ar->link);
	if (!admin.running)
	{
		admin.running = true;
		memset(&admin.job, 0, sizeof(admin.job));
		admin.job.statement = 0;
		admin.job.done = on_fetched;
		db_submit(admin.db, &admin.job);
	}
	return 0;
}

static void
on_admin_accept(h2o_socket_t *listener, const char *err)
{
	h2o_socket_t *sock;

	if (err != NULL || (sock = h2o_evloop_socket_accept(listener)) == NULL)
		return;
	h2o_accept(&admin.accept_ctx, sock);
}

static void
on_admin_stop(Wake *wake)
{
	(void) wake;
	admin.stopping = true;
}

static void *
admin_main(void *arg)
{
	(void) arg;
	while (!admin.stopping)
		h2o_evloop_run(admin.ctx.loop, INT32_MAX);
	h2o_socket_read_stop(admin.listener);
	h2o_socket_close(admin.listener);
	admin.listener = NULL;
	db_pool_close(admin.db);
	return NULL;
}

/* From main, once the workers exist: serve the admin port from now on. */
void
admin_start(int listen_fd, Worker *workers, int nworkers)
{
	h2o_hostconf_t *host;
	h2o_pathconf_t *path;
	h2o_handler_t  *handler;
	h2o_evloop_t   *loop = h2o_evloop_create();

	admin.workers = workers;
	admin.nworkers = nworkers;
	h2o_linklist_init_anchor(&admin.waiting);

	h2o_config_init(&admin.conf);
	admin.conf.server_name = h2o_iovec_init(H2O_STRLIT("psk-shim"));
	admin.conf.max_request_entity_size = 4096;
	admin.conf.http1.upgrade_to_http2 = 0;
	host =
		h2o_config_register_host(&admin.conf,
								 h2o_iovec_init(H2O_STRLIT("default")), 65535);
	path = h2o_config_register_path(host, "/", 0);
	handler = h2o_create_handler(path, sizeof(*handler));
	handler->on_req = on_admin_req;

	h2o_context_init(&admin.ctx, loop, &admin.conf);
	admin.accept_ctx.ctx = &admin.ctx;
	admin.accept_ctx.hosts = admin.conf.hosts;
	admin.listener =
		h2o_evloop_socket_create(loop, listen_fd, H2O_SOCKET_FLAG_DONT_READ);
	h2o_socket_read_start(admin.listener, on_admin_accept);
	wake_init(&admin.stop_wake, loop, on_admin_stop, NULL);
	admin.db = db_pool_create_sized(loop, admin_statements, 1, 1);
	h2o_multithread_create_thread(&admin.thread, NULL, admin_main, NULL);
}

void
admin_stop(void)
{
	wake_send(&admin.stop_wake);
	pthread_join(admin.thread, NULL);
}
