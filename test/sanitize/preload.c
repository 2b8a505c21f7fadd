/*
 * preload.c: preloaded into the postmaster after the ASan and UBSan runtimes
 * by test/sanitize/run.sh, for two things they cannot do alone in postgres.
 *
 * ASan has to start at all.  postgres is not linked with it, so the runtime
 * initializes at the first malloc, which comes from libgpg-error's
 * constructor, inside bindtextdomain() and under glibc's _nl_state_lock.
 * The initialization looks up swift_demangle and, not finding it, calls
 * dlerror(), whose message is translated under the same lock: the process
 * hangs before main().  Defined here, the lookup succeeds and dlerror() has
 * nothing to say.  Returning NULL means "not a Swift name".
 *
 * UBSan has to see its options.  It reads them at its first report, from
 * /proc/self/environ, long after postgres has written its process title
 * over that memory.  So they are taken here, before main(), and handed over
 * through the hook the runtime asks first.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

char	   *swift_demangle(const char *mangled, size_t length, char *buffer,
						   size_t *size, uint32_t flags);
const char *__ubsan_default_options(void);

static const char *ubsan_options = "";

char *
swift_demangle(const char *mangled, size_t length, char *buffer, size_t *size,
			   uint32_t flags)
{
	return NULL;
}

const char *
__ubsan_default_options(void)
{
	return ubsan_options;
}

static void __attribute__((constructor)) save_ubsan_options(void)
{
	const char *options = getenv("UBSAN_OPTIONS");

	if (options != NULL)
		ubsan_options = strdup(options);
}
