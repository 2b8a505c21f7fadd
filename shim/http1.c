/*
 * http1.c
 *		A request head and the chunked transfer coding (http1.h).
 *
 * Strict on purpose: gate.c rewrites only a head it fully understands and
 * hands anything else to h2o untouched, so a lenient reading here could
 * only make the two disagree.
 */
#include "http1.h"

#include <string.h>

/* RFC 9110 tchar */
static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		   (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

static bool
iequals(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c != lit[i])
			return false;
	}
	return true;
}

/* End of the line starting at buf + at: index of its CR, or -1 (more). */
static long
line_end(const char *buf, size_t len, size_t at)
{
	const char *cr = memchr(buf + at, '\r', len - at);

	if (cr == NULL)
		return -1;
	return cr - buf;
}

int
http1_request_line(const char *buf, size_t len, Http1Head *h)
{
	size_t limit = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;
	size_t i = 0;
	long   cr;

	/* the method, as far as it has come */
	while (i < limit && is_tchar((unsigned char) buf[i]))
		i++;
	if (i == limit)
		return len >= HTTP1_MAX_HEAD ? -1 : 0;
	if (i == 0 || buf[i] != ' ')
		return -1;
	h->method = buf;
	h->method_len = i;
	cr = line_end(buf, limit, i);
	if (cr < 0)
	{
		/* a bare LF is h2o's to judge */
		if (memchr(buf, '\n', limit) != NULL || len >= HTTP1_MAX_HEAD)
			return -1;
		return 0;
	}
	if ((size_t) cr + 1 >= limit)
		return len >= HTTP1_MAX_HEAD ? -1 : 0;
	if (buf[cr + 1] != '\n')
		return -1;
	/* METHOD SP target SP HTTP/1.d */
	if (cr - (long) i < 11 || memcmp(buf + cr - 9, " HTTP/1.", 8) != 0 ||
		(buf[cr - 1] != '0' && buf[cr - 1] != '1'))
		return -1;
	h->target = buf + i + 1;
	h->target_len = (size_t) (cr - 9) - (i + 1);
	h->minor = buf[cr - 1] - '0';
	if (h->target_len == 0)
		return -1;
	for (size_t k = 0; k < h->target_len; k++)
	{
		unsigned char c = (unsigned char) h->target[k];

		if (c <= ' ' || c == 0x7f)
			return -1;
	}
	return 1;
}

int
http1_head(const char *buf, size_t len, Http1Head *h)
{
	size_t limit = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;
	size_t at;
	int	   r = http1_request_line(buf, len, h);

	if (r != 1)
		return r;
	h->nheaders = 0;
	h->has_length = false;
	h->length = 0;
	h->chunked = false;
	h->expect_continue = false;
	at = (size_t) ((const char *) memchr(buf, '\n', limit) - buf) + 1;
	for (;;)
	{
		long		 cr = line_end(buf, limit, at);
		size_t		 name_end, v, vend;
		Http1Header *hd;

		if (cr < 0 || (size_t) cr + 1 >= limit)
		{
			if (memchr(buf + at, '\n', limit - at) != NULL ||
				len >= HTTP1_MAX_HEAD)
				return -1;
			return 0;
		}
		if (buf[cr + 1] != '\n')
			return -1;
		if ((size_t) cr == at)
		{
			h->head_len = (size_t) cr + 2;
			break;
		}
		/* name ":" OWS value OWS */
		name_end = at;
		while (name_end < (size_t) cr &&
			   is_tchar((unsigned char) buf[name_end]))
			name_end++;
		if (name_end == at || buf[name_end] != ':')
			return -1;
		v = name_end + 1;
		while (v < (size_t) cr && (buf[v] == ' ' || buf[v] == '\t'))
			v++;
		vend = (size_t) cr;
		while (vend > v && (buf[vend - 1] == ' ' || buf[vend - 1] == '\t'))
			vend--;
		for (size_t k = v; k < vend; k++)
		{
			unsigned char c = (unsigned char) buf[k];

			if ((c < ' ' && c != '\t') || c == 0x7f)
				return -1;
		}
		if (h->nheaders == HTTP1_MAX_HEADERS)
			return -1;
		hd = &h->headers[h->nheaders++];
		hd->name = buf + at;
		hd->name_len = name_end - at;
		hd->value = buf + v;
		hd->value_len = vend - v;

		if (iequals(hd->name, hd->name_len, "content-length"))
		{
			uint64_t n = 0;

			if (h->has_length || hd->value_len == 0 || hd->value_len > 18)
				return -1;
			for (size_t k = 0; k < hd->value_len; k++)
			{
				if (hd->value[k] < '0' || hd->value[k] > '9')
					return -1;
				n = n * 10 + (uint64_t) (hd->value[k] - '0');
			}
			h->has_length = true;
			h->length = n;
		}
		else if (iequals(hd->name, hd->name_len, "transfer-encoding"))
		{
			if (h->chunked || !iequals(hd->value, hd->value_len, "chunked"))
				return -1;
			h->chunked = true;
		}
		else if (iequals(hd->name, hd->name_len, "expect"))
		{
			if (h->expect_continue ||
				!iequals(hd->value, hd->value_len, "100-continue"))
				return -1;
			h->expect_continue = true;
		}
		at = (size_t) cr + 2;
	}
	if (h->has_length && h->chunked)
		return -1;
	return 1;
}

enum
{
	C_SIZE,	   /* hex digits of a chunk's size */
	C_EXT,	   /* after the size: extensions, up to the CR */
	C_SIZE_LF, /* the LF of the size line */
	C_DATA,	   /* the chunk's data */
	C_DATA_CR, /* the CRLF after the data */
	C_DATA_LF,
	C_TRAILER, /* after the last chunk: a trailer line, or the end */
	C_TRAILER_LF,
	C_DONE,
	C_ERROR
};

/* a size line (with extensions) or a trailer line longer is refused */
#define MAX_LINE 4096

void
http1_chunked_init(Http1Chunked *d)
{
	d->state = C_SIZE;
	d->left = 0;
	d->digits = 0;
	d->line = 0;
}

static int
hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

Http1ChunkedStatus
http1_chunked_next(Http1Chunked *d, const char *in, size_t len, size_t *skip,
				   size_t *avail)
{
	size_t i = 0;

	*avail = 0;
	while (i < len || d->state == C_DATA || d->state == C_DONE ||
		   d->state == C_ERROR)
	{
		char c;

		switch (d->state)
		{
			case C_DATA:
				if (d->left == 0)
				{
					d->state = C_DATA_CR;
					continue;
				}
				*skip = i;
				*avail = len - i < d->left ? len - i : (size_t) d->left;
				return *avail > 0 ? CHUNKED_DATA : CHUNKED_MORE;
			case C_DONE:
				*skip = i;
				return CHUNKED_END;
			case C_ERROR:
				*skip = i;
				return CHUNKED_ERROR;
		}
		c = in[i++];
		switch (d->state)
		{
			case C_SIZE:
				if (hex(c) >= 0)
				{
					/* 15 hex digits: under 2^60, no overflow */
					if (++d->digits > 15)
						d->state = C_ERROR;
					else
						d->left = d->left * 16 + (uint64_t) hex(c);
				}
				else if (d->digits > 0 && (c == ';' || c == ' ' || c == '\t'))
				{
					d->state = C_EXT;
					d->line = 0;
				}
				else if (d->digits > 0 && c == '\r')
					d->state = C_SIZE_LF;
				else
					d->state = C_ERROR;
				break;
			case C_EXT:
				if (c == '\r')
					d->state = C_SIZE_LF;
				else if (c == '\n' || ++d->line > MAX_LINE)
					d->state = C_ERROR;
				break;
			case C_SIZE_LF:
				if (c != '\n')
					d->state = C_ERROR;
				else if (d->left == 0)
				{
					d->state = C_TRAILER;
					d->line = 0;
				}
				else
					d->state = C_DATA;
				break;
			case C_DATA_CR:
				d->state = c == '\r' ? C_DATA_LF : C_ERROR;
				break;
			case C_DATA_LF:
				if (c == '\n')
				{
					d->state = C_SIZE;
					d->digits = 0;
					d->left = 0;
				}
				else
					d->state = C_ERROR;
				break;
			case C_TRAILER:
				/* a CR first: the blank line that ends it all */
				if (c == '\r' && d->line == 0)
					d->state = C_TRAILER_LF;
				else if (c == '\r')
				{
					d->state = C_TRAILER_LF;
					d->line = MAX_LINE + 1; /* a trailer line ends */
				}
				else if (c == '\n' || ++d->line > MAX_LINE)
					d->state = C_ERROR;
				break;
			case C_TRAILER_LF:
				if (c != '\n')
					d->state = C_ERROR;
				else if (d->line == 0)
					d->state = C_DONE;
				else
				{
					d->state = C_TRAILER;
					d->line = 0;
				}
				break;
		}
	}
	*skip = i;
	return CHUNKED_MORE;
}

void
http1_chunked_took(Http1Chunked *d, size_t n)
{
	d->left -= n;
}
