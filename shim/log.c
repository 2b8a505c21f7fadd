/*
 * log.c
 *		Diagnostics to standard error; the access log to standard output.
 *		Each line is one write(2), so threads do not interleave.  Neither
 *		ever carries a token, a password, a body or a query string.
 */
#include "shim.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static size_t
timestamp(char *buf, size_t size)
{
	struct timespec now;
	struct tm		tm;
	size_t			n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(buf + n, size - n, ".%03ldZ", now.tv_nsec / 1000000);
	return n;
}

void
shim_log(const char *fmt, ...)
{
	char	line[1024];
	size_t	n;
	va_list ap;
	int		m;

	n = timestamp(line, sizeof(line));
	n += snprintf(line + n, sizeof(line) - n, " psk-shim: ");
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = (m < 0) ? n : (n + m < sizeof(line) - 1 ? n + m : sizeof(line) - 2);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

/* METHOD PATH STATUS DURATION; path without the query string */
void
access_log(h2o_iovec_t method, h2o_iovec_t path, int status, double millis)
{
	char   line[600];
	size_t n;

	if (!shim_config.access_log)
		return;
	n = timestamp(line, sizeof(line));
	n += snprintf(line + n, sizeof(line) - n, " %.*s ",
				  (int) (method.len < 16 ? method.len : 16), method.base);
	for (size_t i = 0; i < path.len && n < 500; i++)
	{
		unsigned char c = (unsigned char) path.base[i];

		line[n++] = (c > 0x20 && c < 0x7f) ? (char) c : '?';
	}
	n += snprintf(line + n, sizeof(line) - n, " %d %.3fms\n", status, millis);
	if (write(STDOUT_FILENO, line, n) < 0)
		return;
}
