/*
 * config.c
 *		Command-line flags, each with an environment-variable fallback.
 *
 * Precedence: flag, then environment, then the built-in default.
 */
#include "shim.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ShimConfig shim_config;

static void
usage(FILE *out)
{
	fprintf(
		out,
		"psk-shim: the HTTP API of the psk extension (libh2o + libpq)\n"
		"\n"
		"Usage: psk-shim [OPTION]...\n"
		"\n"
		"Options (environment variable in brackets):\n"
		"  --listen HOST:PORT       address to listen on [PSK_LISTEN]\n"
		"                           (default 127.0.0.1:8000)\n"
		"  --admin-listen HOST:PORT address of GET /metrics, /live and /ready\n"
		"                           (no auth: monitoring only) [PSK_ADMIN_LISTEN]\n"
		"                           (default 127.0.0.1:8001)\n"
		"  --db CONNINFO            libpq connection string or URI\n"
		"                           [PSK_DB, then DATABASE_URL; default: libpq's\n"
		"                           defaults and PG* variables]\n"
		"  --threads N              worker threads, one event loop each\n"
		"                           [PSK_THREADS] (default: number of cores)\n"
		"  --pool N                 database connections per thread\n"
		"                           [PSK_POOL] (default 4)\n"
		"  --body-limit BYTES       largest request body [PSK_BODY_LIMIT]\n"
		"                           (default 65536)\n"
		"  --import-limit BYTES     largest CSV import (POST /admin/codes/import),\n"
		"                           read as it arrives [PSK_IMPORT_LIMIT]\n"
		"                           (default 67108864, 64 MiB)\n"
		"  --bulk-max N             CSV imports and exports at once, each on a\n"
		"                           database connection of its own\n"
		"                           [PSK_BULK_MAX] (default 4)\n"
		"  --timeout DURATION       statement timeout, and the longest a request\n"
		"                           waits for a free connection [PSK_TIMEOUT]\n"
		"                           (default 5s)\n"
		"  --connect-timeout DURATION\n"
		"                           database connection attempts\n"
		"                           [PSK_CONNECT_TIMEOUT] (default 5s)\n"
		"  --shutdown-timeout DURATION\n"
		"                           longest wait for in-flight requests after\n"
		"                           SIGTERM [PSK_SHUTDOWN_TIMEOUT] (default 30s)\n"
		"  --max-connections N      connections open at once; past it, and when\n"
		"                           descriptors run out, accepting pauses\n"
		"                           [PSK_MAX_CONNECTIONS] (default 1024)\n"
		"  --idle-timeout DURATION  the longest a connection may take to send a\n"
		"                           whole request, or stay idle between requests\n"
		"                           [PSK_IDLE_TIMEOUT] (default 10s)\n"
		"  --write-timeout DURATION a connection whose answer does not move for\n"
		"                           this long (its client reads nothing) is cut\n"
		"                           [PSK_WRITE_TIMEOUT] (default 10s)\n"
		"  --max-pipelined N        requests a connection may send in a row\n"
		"                           before reading the answers; past it the\n"
		"                           connection ends with the answer in hand\n"
		"                           [PSK_MAX_PIPELINED] (default 16)\n"
		"  --login-limit N          logins in flight (each a bcrypt in the\n"
		"                           database); more: 429 with Retry-After\n"
		"                           [PSK_LOGIN_LIMIT] (default: --threads)\n"
		"  --login-limit-per-client N\n"
		"                           logins in flight from one client address\n"
		"                           [PSK_LOGIN_LIMIT_PER_CLIENT]\n"
		"                           (default: half of --login-limit, at least 1)\n"
		"  --quiet                  no access log [PSK_QUIET=1]\n"
		"  --cors-origins ORIGIN[,ORIGIN...]\n"
		"                           web origins allowed to call the API from a\n"
		"                           browser, e.g. http://localhost:5173\n"
		"                           [PSK_CORS_ORIGINS] (default none: no CORS)\n"
		"  --docs-dir DIR           Swagger UI's files (swagger-ui-dist) for\n"
		"                           GET /docs [PSK_DOCS_DIR] (default\n"
		"                           docs/node_modules/swagger-ui-dist beside\n"
		"                           the binary)\n"
		"  --routes                 print the route table and exit\n"
		"  --help                   print this help and exit\n"
		"\n"
		"A DURATION is milliseconds, or a number followed by ms or s.\n"
		"The access log (one line per request: method, path, status,\n"
		"duration) goes to standard output, diagnostics to standard error.\n"
		"SIGTERM or SIGINT: stop accepting, finish in-flight requests, exit 0.\n");
}

static void
bad_value(const char *name, const char *value)
{
	fprintf(stderr, "psk-shim: invalid value for %s: \"%s\"\n", name, value);
	exit(2);
}

static long
parse_long(const char *name, const char *value, long min, long max)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		bad_value(name, value);
	return v;
}

/* milliseconds: "250", "250ms" or "5s" */
static int
parse_duration(const char *name, const char *value)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || v < 1)
		bad_value(name, value);
	if (strcmp(end, "s") == 0)
	{
		if (v > INT_MAX / 1000)
			bad_value(name, value);
		v *= 1000;
	}
	else if (*end != '\0' && strcmp(end, "ms") != 0)
		bad_value(name, value);
	if (v > INT_MAX)
		bad_value(name, value);
	return (int) v;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return (v != NULL && v[0] != '\0') ? v : NULL;
}

void
shim_configure(int argc, char **argv)
{
	enum
	{
		OPT_LISTEN = 256,
		OPT_ADMIN_LISTEN,
		OPT_DB,
		OPT_THREADS,
		OPT_POOL,
		OPT_BODY_LIMIT,
		OPT_IMPORT_LIMIT,
		OPT_BULK_MAX,
		OPT_TIMEOUT,
		OPT_CONNECT_TIMEOUT,
		OPT_SHUTDOWN_TIMEOUT,
		OPT_MAX_CONNECTIONS,
		OPT_IDLE_TIMEOUT,
		OPT_WRITE_TIMEOUT,
		OPT_MAX_PIPELINED,
		OPT_LOGIN_LIMIT,
		OPT_LOGIN_LIMIT_PER_CLIENT,
		OPT_QUIET,
		OPT_CORS_ORIGINS,
		OPT_DOCS_DIR,
		OPT_ROUTES,
		OPT_HELP
	};
	static const struct option options[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN },
		{ "db", required_argument, NULL, OPT_DB },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "pool", required_argument, NULL, OPT_POOL },
		{ "body-limit", required_argument, NULL, OPT_BODY_LIMIT },
		{ "import-limit", required_argument, NULL, OPT_IMPORT_LIMIT },
		{ "bulk-max", required_argument, NULL, OPT_BULK_MAX },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
		{ "shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT },
		{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
		{ "write-timeout", required_argument, NULL, OPT_WRITE_TIMEOUT },
		{ "max-pipelined", required_argument, NULL, OPT_MAX_PIPELINED },
		{ "login-limit", required_argument, NULL, OPT_LOGIN_LIMIT },
		{ "login-limit-per-client", required_argument, NULL,
		  OPT_LOGIN_LIMIT_PER_CLIENT },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "cors-origins", required_argument, NULL, OPT_CORS_ORIGINS },
		{ "docs-dir", required_argument, NULL, OPT_DOCS_DIR },
		{ "routes", no_argument, NULL, OPT_ROUTES },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 }
	};
	const char *listen = env("PSK_LISTEN");
	const char *admin_listen = env("PSK_ADMIN_LISTEN");
	const char *conninfo = env("PSK_DB");
	const char *threads = env("PSK_THREADS");
	const char *pool = env("PSK_POOL");
	const char *body_limit = env("PSK_BODY_LIMIT");
	const char *import_limit = env("PSK_IMPORT_LIMIT");
	const char *bulk_max = env("PSK_BULK_MAX");
	const char *timeout = env("PSK_TIMEOUT");
	const char *connect_timeout = env("PSK_CONNECT_TIMEOUT");
	const char *shutdown_timeout = env("PSK_SHUTDOWN_TIMEOUT");
	const char *max_connections = env("PSK_MAX_CONNECTIONS");
	const char *idle_timeout = env("PSK_IDLE_TIMEOUT");
	const char *write_timeout = env("PSK_WRITE_TIMEOUT");
	const char *max_pipelined = env("PSK_MAX_PIPELINED");
	const char *login_limit = env("PSK_LOGIN_LIMIT");
	const char *login_limit_per_client = env("PSK_LOGIN_LIMIT_PER_CLIENT");
	const char *quiet = env("PSK_QUIET");
	const char *cors_origins = env("PSK_CORS_ORIGINS");
	const char *docs_dir = env("PSK_DOCS_DIR");
	bool		print_routes = false;
	long		ncores = sysconf(_SC_NPROCESSORS_ONLN);
	int			c;

	if (conninfo == NULL)
		conninfo = env("DATABASE_URL");

	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1)
	{
		switch (c)
		{
			case OPT_LISTEN:
				listen = optarg;
				break;
			case OPT_ADMIN_LISTEN:
				admin_listen = optarg;
				break;
			case OPT_DB:
				conninfo = optarg;
				break;
			case OPT_THREADS:
				threads = optarg;
				break;
			case OPT_POOL:
				pool = optarg;
				break;
			case OPT_BODY_LIMIT:
				body_limit = optarg;
				break;
			case OPT_IMPORT_LIMIT:
				import_limit = optarg;
				break;
			case OPT_BULK_MAX:
				bulk_max = optarg;
				break;
			case OPT_TIMEOUT:
				timeout = optarg;
				break;
			case OPT_CONNECT_TIMEOUT:
				connect_timeout = optarg;
				break;
			case OPT_SHUTDOWN_TIMEOUT:
				shutdown_timeout = optarg;
				break;
			case OPT_MAX_CONNECTIONS:
				max_connections = optarg;
				break;
			case OPT_IDLE_TIMEOUT:
				idle_timeout = optarg;
				break;
			case OPT_WRITE_TIMEOUT:
				write_timeout = optarg;
				break;
			case OPT_MAX_PIPELINED:
				max_pipelined = optarg;
				break;
			case OPT_LOGIN_LIMIT:
				login_limit = optarg;
				break;
			case OPT_LOGIN_LIMIT_PER_CLIENT:
				login_limit_per_client = optarg;
				break;
			case OPT_QUIET:
				quiet = "1";
				break;
			case OPT_CORS_ORIGINS:
				cors_origins = optarg;
				break;
			case OPT_DOCS_DIR:
				docs_dir = optarg;
				break;
			case OPT_ROUTES:
				print_routes = true;
				break;
			case OPT_HELP:
				usage(stdout);
				exit(0);
			default:
				usage(stderr);
				exit(2);
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "psk-shim: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
	/* a bad origin is refused whatever else was asked */
	cors_configure(cors_origins ? cors_origins : "");
	if (print_routes)
	{
		route_print_table(stdout);
		exit(0);
	}

	shim_config.listen = listen ? listen : "127.0.0.1:8000";
	shim_config.admin_listen = admin_listen ? admin_listen : "127.0.0.1:8001";
	/* no auth on the admin port: never on the public listener */
	if (strcmp(shim_config.admin_listen, shim_config.listen) == 0)
	{
		fprintf(stderr, "psk-shim: --admin-listen must differ from --listen "
						"(the admin port has no auth)\n");
		exit(2);
	}
	shim_config.conninfo = conninfo ? conninfo : "";
	shim_config.threads = threads
							  ? (int) parse_long("--threads", threads, 1, 256)
							  : (int) (ncores > 0 ? ncores : 1);
	shim_config.pool_size = pool ? (int) parse_long("--pool", pool, 1, 256) : 4;
	shim_config.body_limit =
		body_limit ? (size_t) parse_long("--body-limit", body_limit, 1,
										 64L * 1024 * 1024)
				   : 65536;
	shim_config.import_limit =
		import_limit
			? (size_t) parse_long("--import-limit", import_limit, 1, 1L << 40)
			: 64L * 1024 * 1024;
	shim_config.bulk_max =
		bulk_max ? (int) parse_long("--bulk-max", bulk_max, 1, 1000) : 4;
	shim_config.timeout_ms =
		timeout ? parse_duration("--timeout", timeout) : 5000;
	shim_config.connect_timeout_ms =
		connect_timeout ? parse_duration("--connect-timeout", connect_timeout)
						: 5000;
	shim_config.shutdown_timeout_ms =
		shutdown_timeout
			? parse_duration("--shutdown-timeout", shutdown_timeout)
			: 30000;
	shim_config.access_log = !(quiet && strcmp(quiet, "0") != 0);
	shim_config.max_connections =
		max_connections
			? (int) parse_long("--max-connections", max_connections, 1, 1000000)
			: 1024;
	shim_config.idle_timeout_ms =
		idle_timeout ? parse_duration("--idle-timeout", idle_timeout) : 10000;
	shim_config.write_timeout_ms =
		write_timeout ? parse_duration("--write-timeout", write_timeout)
					  : 10000;
	shim_config.max_pipelined =
		max_pipelined
			? (int) parse_long("--max-pipelined", max_pipelined, 0, 1000000)
			: 16;
	shim_config.login_limit =
		login_limit ? (int) parse_long("--login-limit", login_limit, 1, 4096)
					: shim_config.threads;
	shim_config.login_limit_per_client =
		login_limit_per_client
			? (int) parse_long("--login-limit-per-client",
							   login_limit_per_client, 1, 4096)
			: (shim_config.login_limit > 1 ? shim_config.login_limit / 2 : 1);
	shim_config.cors_origins = cors_origins ? cors_origins : "";
	shim_config.docs_dir = docs_dir;
}
