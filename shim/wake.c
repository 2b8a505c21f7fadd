/*
 * wake.c
 *		Waking a thread's event loop from another thread: an eventfd that
 *		the loop watches without reading (H2O_SOCKET_FLAG_DONT_READ).
 *
 * Not h2o's multithread queue: its pipe is read into a buffer from the
 * thread-local pool (h2o_socket_buffer_prototype) of the thread that made
 * the queue, the main thread for every context the shim builds there, so
 * the threads reading their queues shared that pool without a lock (a
 * heap-use-after-free under AddressSanitizer, a corrupted reply).  The
 * caller keeps whatever the woken loop should look at, under its own lock.
 */
#include "shim.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void
on_wake(h2o_socket_t *sock, const char *err)
{
	Wake	*w = sock->data;
	uint64_t n;

	(void) err;
	/* the count back to 0; EAGAIN: another wake-up took it already */
	if (read(w->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		shim_log("reading a wake-up eventfd: %m");
	w->cb(w);
}

void
wake_init(Wake *w, h2o_loop_t *loop, void (*cb)(Wake *), void *data)
{
	w->cb = cb;
	w->data = data;
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->fd < 0)
	{
		perror("psk-shim: eventfd");
		exit(1);
	}
	w->sock = h2o_evloop_socket_create(loop, w->fd, H2O_SOCKET_FLAG_DONT_READ);
	w->sock->data = w;
	h2o_socket_read_start(w->sock, on_wake);
}

void
wake_send(Wake *w)
{
	uint64_t one = 1;

	if (write(w->fd, &one, sizeof(one)) != sizeof(one))
		shim_log("cannot wake a thread: %m");
}
