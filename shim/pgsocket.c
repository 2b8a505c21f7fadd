/*
 * pgsocket.c
 *		A libpq connection driven by an h2o event loop: its socket watched
 *		for reading and writing, and what libpq has buffered sent as the
 *		socket takes it.  Shared by the request pool (db.c) and the
 *		connections of CSV transfers (pgconn.c).
 */
#include "shim.h"

#include <string.h>
#include <unistd.h>

bool
pg_socket_watch(PgSocket *io, h2o_loop_t *loop, h2o_socket_cb on_read,
				h2o_socket_cb on_write)
{
	int fd;

	if (io->sock != NULL)
	{
		h2o_socket_close(io->sock);
		io->sock = NULL;
	}
	io->want_write = false;
	if (PQsocket(io->pg) < 0 || (fd = dup(PQsocket(io->pg))) < 0)
		return false;
	io->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
	io->sock->data = io; /* the owner: io is its first member */
	if (on_read != NULL)
		h2o_socket_read_start(io->sock, on_read);
	if (on_write != NULL)
	{
		io->want_write = true;
		h2o_socket_notify_write(io->sock, on_write);
	}
	return true;
}

static void
on_writable(h2o_socket_t *sock, const char *err)
{
	PgSocket *io = sock->data;
	int		  r;

	(void) err;
	io->want_write = false;
	r = PQflush(io->pg);
	if (r < 0)
		io->lost(io, PQerrorMessage(io->pg));
	else if (r > 0)
	{
		io->want_write = true;
		h2o_socket_notify_write(io->sock, on_writable);
	}
}

void
pg_socket_flush(PgSocket *io)
{
	if (!io->want_write)
		on_writable(io->sock, NULL);
}

void
pg_socket_notice(void *arg, const char *message)
{
	(void) arg;
	shim_log("database notice: %.*s", (int) strcspn(message, "\n"), message);
}
