/*
 * json.c
 *		The little JSON the shim writes itself: quoted strings for error
 *		messages and for the query-string and form objects it passes on.
 *		Replies of the routes are built by the database.
 */
#include "shim.h"

/*
 * Well-formed UTF-8 (no overlong forms, no surrogates, nothing past
 * U+10FFFF) and no NUL: what PostgreSQL's text and jsonb accept.
 */
bool
utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *) str;
	const unsigned char *end = s + len;

	while (s < end)
	{
		unsigned char c = *s;
		int			  n;
		uint32_t	  cp;

		if (c == 0)
			return false;
		if (c < 0x80)
		{
			s++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (end - s <= n)
			return false;
		for (int i = 1; i <= n; i++)
		{
			if ((s[i] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			(cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return false;
		s += n + 1;
	}
	return true;
}

/* JSON-escape s into dst, no quotes: at most 6 * len bytes; s is UTF-8 */
size_t
json_escape(char *dst, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char			 *d = dst;

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		switch (c)
		{
			case '"':
				*d++ = '\\', *d++ = '"';
				break;
			case '\\':
				*d++ = '\\', *d++ = '\\';
				break;
			case '\n':
				*d++ = '\\', *d++ = 'n';
				break;
			case '\r':
				*d++ = '\\', *d++ = 'r';
				break;
			case '\t':
				*d++ = '\\', *d++ = 't';
				break;
			default:
				if (c < 0x20)
				{
					*d++ = '\\', *d++ = 'u', *d++ = '0', *d++ = '0';
					*d++ = hex[c >> 4], *d++ = hex[c & 15];
				}
				else
					*d++ = (char) c;
		}
	}
	return d - dst;
}

/* dst must hold JSON_QUOTED_MAX(len) bytes; s is valid UTF-8 */
size_t
json_quote(char *dst, const char *s, size_t len)
{
	size_t n = json_escape(dst + 1, s, len);

	dst[0] = '"';
	dst[n + 1] = '"';
	return n + 2;
}
