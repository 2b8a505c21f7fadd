/*
 * form.c
 *		application/x-www-form-urlencoded (query strings and the OAuth2 login
 *		form) to a JSON object of strings, which the database reads.
 */
#include "shim.h"

#include <stdio.h>
#include <string.h>

#define FORM_MAX_FIELDS 64

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %XX and, in forms, '+' as a space; false on a broken escape */
bool
percent_decode(const char *src, size_t len, bool plus_is_space, char *dst,
			   size_t *dstlen)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (src[i] == '%')
		{
			int hi, lo;

			if (i + 2 >= len)
				return false;
			hi = hexval(src[i + 1]);
			lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			dst[n++] = (char) (hi << 4 | lo);
			i += 2;
		}
		else if (src[i] == '+' && plus_is_space)
			dst[n++] = ' ';
		else
			dst[n++] = src[i];
	}
	*dstlen = n;
	return true;
}

typedef struct Field
{
	const char *name;
	size_t		len;
} Field;

static const char *
fail(h2o_mem_pool_t *pool, const char *what, const char *why, const char *name,
	 size_t namelen)
{
	size_t size = strlen(what) + strlen(why) + namelen + 64;
	char  *msg = h2o_mem_alloc_pool(pool, size);

	if (name != NULL)
		snprintf(msg, size, "%s: parameter \"%.*s\" %s", what, (int) namelen,
				 name, why);
	else
		snprintf(msg, size, "%s: %s", what, why);
	return msg;
}

/*
 * Decode form into {"name": "value", ...}.  extra_name, when not NULL, adds
 * one more field from a path segment (percent-encoded, '+' kept).  A name
 * given twice is an error: the contract makes it invalid_input.
 */
FormResult
form_to_json(h2o_mem_pool_t *pool, const char *what, h2o_iovec_t form,
			 const char *extra_name, h2o_iovec_t extra_value)
{
	FormResult r = { NULL, NULL };
	Field	   fields[FORM_MAX_FIELDS];
	int		   nfields = 0;
	size_t	   cap = 12 * form.len + JSON_QUOTED_MAX(extra_value.len) +
				 (extra_name ? JSON_QUOTED_MAX(strlen(extra_name)) : 0) + 16;
	char  *out = h2o_mem_alloc_pool(pool, cap);
	char  *scratch = h2o_mem_alloc_pool(pool, form.len + extra_value.len + 1);
	size_t o = 0;
	size_t pos = 0;

	out[o++] = '{';
	for (;;)
	{
		const char *seg;
		size_t		seglen;
		const char *eq;
		const char *name, *value;
		size_t		namelen, valuelen;
		bool		is_extra = false;

		if (pos < form.len)
		{
			const char *amp = memchr(form.base + pos, '&', form.len - pos);

			seg = form.base + pos;
			seglen = amp ? (size_t) (amp - seg) : form.len - pos;
			pos += seglen + 1;
			if (seglen == 0)
				continue;
		}
		else if (extra_name != NULL)
		{
			is_extra = true;
			seg = NULL;
			seglen = 0;
		}
		else
			break;

		if (is_extra)
		{
			name = extra_name;
			namelen = strlen(extra_name);
			if (!percent_decode(extra_value.base, extra_value.len, false,
								scratch, &valuelen))
			{
				r.error =
					fail(pool, "path", "malformed percent-encoding", NULL, 0);
				return r;
			}
			value = scratch;
			extra_name = NULL;
		}
		else
		{
			size_t rawnamelen;

			eq = memchr(seg, '=', seglen);
			rawnamelen = eq ? (size_t) (eq - seg) : seglen;
			if (!percent_decode(seg, rawnamelen, true, scratch, &namelen))
			{
				r.error =
					fail(pool, what, "malformed percent-encoding", NULL, 0);
				return r;
			}
			name = h2o_strdup(pool, scratch, namelen).base;
			valuelen = 0;
			if (eq != NULL && !percent_decode(eq + 1, seglen - rawnamelen - 1,
											  true, scratch, &valuelen))
			{
				r.error =
					fail(pool, what, "malformed percent-encoding", NULL, 0);
				return r;
			}
			value = scratch;
		}

		if (!utf8_valid(name, namelen) || !utf8_valid(value, valuelen))
		{
			r.error = fail(pool, what, "is not valid UTF-8", NULL, 0);
			return r;
		}
		for (int i = 0; i < nfields; i++)
		{
			if (fields[i].len == namelen &&
				memcmp(fields[i].name, name, namelen) == 0)
			{
				r.error =
					fail(pool, what, "is given more than once", name, namelen);
				return r;
			}
		}
		if (nfields == FORM_MAX_FIELDS)
		{
			r.error = fail(pool, what, "too many parameters", NULL, 0);
			return r;
		}
		fields[nfields].name = name;
		fields[nfields].len = namelen;
		nfields++;

		if (o > 1)
			out[o++] = ',';
		o += json_quote(out + o, name, namelen);
		out[o++] = ':';
		o += json_quote(out + o, value, valuelen);
	}
	out[o++] = '}';
	out[o] = '\0';
	r.json = out;
	return r;
}
