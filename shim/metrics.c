/*
 * metrics.c
 *		The shim's own metrics: requests by route and status, a latency
 *		histogram per route, and the database connections by state.
 *
 * Each worker thread counts into its own block (no lock, no cache line
 * shared with another thread on the request path); a scrape sums the
 * blocks with relaxed atomic reads.  The counters live as long as the
 * process.
 */
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* upper bounds of the histogram's buckets, in seconds (+Inf follows) */
static const double bucket_le[] = { 0.001, 0.0025, 0.005, 0.01, 0.025,
									0.05,  0.1,	   0.25,  0.5,	1,
									2.5,   5,	   10 };
#define NBUCKETS ((int) (sizeof(bucket_le) / sizeof(bucket_le[0])))

#define STATUS_MIN 100
#define NSTATUS	   500 /* 100..599 */

typedef struct RouteStats
{
	uint64_t by_status[NSTATUS];
	uint64_t buckets[NBUCKETS]; /* not cumulative; +Inf is count */
	uint64_t count;
	uint64_t sum_ns;
} RouteStats;

/* the last row: requests that matched no route */
typedef struct ThreadStats
{
	RouteStats routes[METRICS_MAX_ROUTES + 1];
} ThreadStats;

static ThreadStats *stats;
static int			nstats;

void
metrics_init(int nthreads)
{
	if (shim_nroutes > METRICS_MAX_ROUTES)
	{
		fprintf(stderr, "psk-shim: more than %d routes\n", METRICS_MAX_ROUTES);
		exit(1);
	}
	stats = calloc(nthreads, sizeof(ThreadStats));
	if (stats == NULL)
	{
		perror("psk-shim: metrics");
		exit(1);
	}
	nstats = nthreads;
}

static inline void
add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t
get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void
metrics_observe(int thread, int route, int status, double millis)
{
	RouteStats *r;
	double		seconds = millis / 1e3;

	if (stats == NULL || thread < 0 || thread >= nstats)
		return;
	r = &stats[thread]
			 .routes[route >= 0 && route < shim_nroutes ? route
														: METRICS_MAX_ROUTES];
	if (status >= STATUS_MIN && status < STATUS_MIN + NSTATUS)
		add(&r->by_status[status - STATUS_MIN], 1);
	for (int b = 0; b < NBUCKETS; b++)
		if (seconds <= bucket_le[b])
		{
			add(&r->buckets[b], 1);
			break;
		}
	add(&r->count, 1);
	add(&r->sum_ns, millis > 0 ? (uint64_t) (millis * 1e6) : 0);
}

/* The route label: "POST /users/reserve", or "unmatched". */
static void
route_label(char *buf, size_t size, int r)
{
	if (r == METRICS_MAX_ROUTES)
		snprintf(buf, size, "unmatched");
	else
		snprintf(buf, size, "%s %s", shim_routes[r].method,
				 shim_routes[r].path);
}

void
metrics_render_http(FILE *out, Worker *workers, int nworkers)
{
	static RouteStats		 sum; /* only the admin thread renders */
	char					 label[160];
	int						 db[4] = { 0, 0, 0, 0 };
	static const char *const db_state[4] = { "down", "connecting", "idle",
											 "busy" };

	fprintf(out, "# HELP psk_http_requests_total HTTP requests answered on "
				 "the public port, by route and status.\n"
				 "# TYPE psk_http_requests_total counter\n");
	for (int r = 0; r <= METRICS_MAX_ROUTES; r++)
	{
		if (r >= shim_nroutes && r != METRICS_MAX_ROUTES)
			continue;
		route_label(label, sizeof(label), r);
		for (int s = 0; s < NSTATUS; s++)
		{
			uint64_t n = 0;

			for (int t = 0; t < nstats; t++)
				n += get(&stats[t].routes[r].by_status[s]);
			if (n > 0)
				fprintf(out,
						"psk_http_requests_total{route=\"%s\",status=\"%d\"} "
						"%llu\n",
						label, s + STATUS_MIN, (unsigned long long) n);
		}
	}

	fprintf(out, "# HELP psk_http_request_duration_seconds Time from a "
				 "request's arrival to its reply, by route.\n"
				 "# TYPE psk_http_request_duration_seconds histogram\n");
	for (int r = 0; r <= METRICS_MAX_ROUTES; r++)
	{
		uint64_t cumulative = 0;

		if (r >= shim_nroutes && r != METRICS_MAX_ROUTES)
			continue;
		memset(&sum, 0, sizeof(sum));
		for (int t = 0; t < nstats; t++)
		{
			const RouteStats *rs = &stats[t].routes[r];

			for (int b = 0; b < NBUCKETS; b++)
				sum.buckets[b] += get(&rs->buckets[b]);
			sum.count += get(&rs->count);
			sum.sum_ns += get(&rs->sum_ns);
		}
		if (sum.count == 0)
			continue;
		route_label(label, sizeof(label), r);
		for (int b = 0; b < NBUCKETS; b++)
		{
			cumulative += sum.buckets[b];
			fprintf(out,
					"psk_http_request_duration_seconds_bucket{route=\"%s\","
					"le=\"%g\"} %llu\n",
					label, bucket_le[b], (unsigned long long) cumulative);
		}
		/* count is read after the buckets: never below their sum */
		if (sum.count < cumulative)
			sum.count = cumulative;
		fprintf(out,
				"psk_http_request_duration_seconds_bucket{route=\"%s\","
				"le=\"+Inf\"} %llu\n"
				"psk_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
				"psk_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
				label, (unsigned long long) sum.count, label, sum.sum_ns / 1e9,
				label, (unsigned long long) sum.count);
	}

	for (int i = 0; i < nworkers; i++)
		db_pool_states(workers[i].db, db);
	fprintf(out, "# HELP psk_db_connections The public port's database "
				 "connections, by state.\n"
				 "# TYPE psk_db_connections gauge\n");
	for (int i = 0; i < 4; i++)
		fprintf(out, "psk_db_connections{state=\"%s\"} %d\n", db_state[i],
				db[i]);
	fprintf(out, "# HELP psk_http_connections Client connections open on "
				 "the public port, by worker thread.\n"
				 "# TYPE psk_http_connections gauge\n");
	for (int i = 0; i < nworkers; i++)
		fprintf(out, "psk_http_connections{thread=\"%d\"} %d\n", i,
				limits_open_connections(&workers[i]));
}
