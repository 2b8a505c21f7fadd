/*
 * fuzz_form.c
 *		libFuzzer target for the input decoding the shim does itself
 *		(shim/form.c, shim/json.c): query strings, the login form and a
 *		{code} path segment to a JSON object; UTF-8 checking; JSON quoting.
 *
 * h2o's memory pool hands out pieces of 4 KB chunks, where AddressSanitizer
 * cannot see an overrun; here every allocation of form.c is its own
 * malloc() of the exact size, freed after each input.
 *
 * Build: make -C shim fuzz (clang); run: shim/psk-fuzz-form -max_total_time=30
 */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ALLOCS 4096

static void *allocs[MAX_ALLOCS];
static int	 nallocs;

void *
h2o_mem_alloc_pool(h2o_mem_pool_t *pool, size_t sz)
{
	void *p = malloc(sz);

	(void) pool;
	if (p == NULL || nallocs == MAX_ALLOCS)
		abort();
	allocs[nallocs++] = p;
	return p;
}

h2o_iovec_t
h2o_strdup(h2o_mem_pool_t *pool, const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX)
		len = strlen(s);
	p = h2o_mem_alloc_pool(pool, len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return h2o_iovec_init(p, len);
}

/* A decoded object must be {"...":"...",...}: valid UTF-8, no raw control */
static void
check_object(const char *json)
{
	size_t len = strlen(json);

	if (len < 2 || json[0] != '{' || json[len - 1] != '}' ||
		!utf8_valid(json, len))
		abort();
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) json[i] < 0x20)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	h2o_mem_pool_t *pool = NULL; /* unused by the allocator above */
	size_t			n, split;
	char		   *copy;
	FormResult		r;

	if (size == 0)
		return 0;
	/* the first byte: where the path segment starts, and whether there is one
	 */
	n = size - 1;
	split = n * data[0] / 255;
	copy = malloc(n + 1);
	memcpy(copy, data + 1, n);

	r = form_to_json(pool, "query string", h2o_iovec_init(copy, split),
					 (data[0] & 1) ? "code" : NULL,
					 h2o_iovec_init(copy + split, n - split));
	if (r.json != NULL)
		check_object(r.json);
	else if (r.error == NULL)
		abort();
	r = form_to_json(pool, "form", h2o_iovec_init(copy, n), NULL,
					 h2o_iovec_init(NULL, 0));
	if (r.json != NULL)
		check_object(r.json);

	if (utf8_valid(copy, n))
	{
		char  *q = malloc(JSON_QUOTED_MAX(n));
		size_t m = json_quote(q, copy, n);

		if (m > JSON_QUOTED_MAX(n) || q[0] != '"' || q[m - 1] != '"')
			abort();
		free(q);
	}

	while (nallocs > 0)
		free(allocs[--nallocs]);
	free(copy);
	return 0;
}
