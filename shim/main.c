/*
 * main.c
 *		psk-shim: configure, listen, start one event-loop thread per core,
 *		and on SIGTERM or SIGINT drain them and exit 0.
 *
 * The threads share one listening socket (each loop watches a dup() of it
 * and accepts when it can), so a busy thread simply accepts less.
 */
#include "shim.h"

#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static h2o_globalconf_t globalconf;

/*
 * The threads, their loops and database pools live as long as the process;
 * held here, not on main's stack, so that a leak checker finds them
 * reachable at exit.
 */
static Worker *workers;

/* HOST:PORT, [IPv6]:PORT or :PORT; returns a listening socket or exits */
static int
listen_on(const char *flag, const char *spec)
{
	char			host[256];
	const char	   *colon = strrchr(spec, ':');
	const char	   *port;
	struct addrinfo hints, *res;
	int				fd, on = 1, rc;

	if (colon == NULL || colon[1] == '\0' ||
		(size_t) (colon - spec) >= sizeof(host))
	{
		fprintf(stderr, "psk-shim: %s wants HOST:PORT, not \"%s\"\n", flag,
				spec);
		exit(2);
	}
	port = colon + 1;
	if (spec[0] == '[' && colon > spec && colon[-1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int) (colon - spec - 2),
				 spec + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int) (colon - spec), spec);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res)) != 0)
	{
		fprintf(stderr, "psk-shim: cannot resolve %s: %s\n", spec,
				gai_strerror(rc));
		exit(1);
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
				res->ai_protocol);
	if (fd < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
		bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
		listen(fd, SOMAXCONN) != 0)
	{
		fprintf(stderr, "psk-shim: cannot listen on %s: %m\n", spec);
		exit(1);
	}
	freeaddrinfo(res);
	return fd;
}

int
main(int argc, char **argv)
{
	sigset_t stop_signals;
	int		 listen_fd;
	int		 admin_fd;
	int		 sig;

	shim_configure(argc, argv);
	limits_setup();
	signal(SIGPIPE, SIG_IGN);

	/* only the main thread takes SIGTERM/SIGINT, through sigwait() */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	server_setup(&globalconf);
	listen_fd = listen_on("--listen", shim_config.listen);
	admin_fd = listen_on("--admin-listen", shim_config.admin_listen);
	metrics_init(shim_config.threads);

	workers = calloc(shim_config.threads, sizeof(Worker));
	for (int i = 0; i < shim_config.threads; i++)
	{
		int fd = dup(listen_fd);

		if (fd < 0)
		{
			perror("psk-shim: dup");
			return 1;
		}
		workers[i].id = i;
		worker_init(&workers[i], &globalconf, fd);
	}
	close(listen_fd);
	for (int i = 0; i < shim_config.threads; i++)
		h2o_multithread_create_thread(&workers[i].thread, NULL, worker_main,
									  &workers[i]);

	admin_start(admin_fd, workers, shim_config.threads);

	shim_log("listening on %s (%d threads, %d database connections each); "
			 "admin port %s",
			 shim_config.listen, shim_config.threads, shim_config.pool_size,
			 shim_config.admin_listen);

	while (sigwait(&stop_signals, &sig) != 0)
		;
	shim_log("%s: finishing in-flight requests",
			 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	for (int i = 0; i < shim_config.threads; i++)
		worker_request_stop(&workers[i]);
	for (int i = 0; i < shim_config.threads; i++)
		pthread_join(workers[i].thread, NULL);
	admin_stop();
	shim_log("stopped");
	return 0;
}
