/*
 * csv.c
 *		CSV read incrementally and written (csv.h).
 *
 * The reader is a byte-at-a-time state machine, so that a row split across
 * the pieces of a request body, at any byte, reads as if it came whole
 * (test/fuzz/fuzz_csv.c checks exactly that).  Delimiters, quotes and line
 * ends are ASCII and never part of a UTF-8 sequence, so each field is
 * checked for UTF-8 on its own once its row is complete.
 */
#include "csv.h"

#include <stdio.h>
#include <string.h>

enum
{
	S_FIELD,	/* at the start of a field */
	S_UNQUOTED, /* in an unquoted field */
	S_QUOTED,	/* in a quoted field */
	S_QUOTE,	/* after a quote in a quoted field: an end, or "" */
	S_FAILED
};

static const unsigned char bom[3] = { 0xEF, 0xBB, 0xBF };

void
csv_init(CsvParser *p)
{
	p->state = S_FIELD;
	p->bom = 0;
	p->cr = false;
	p->in_row = false;
	p->quoted = false;
	p->any_quoted = false;
	p->have_row = false;
	p->finished = false;
	p->line = 1;
	p->row_line = 1;
	p->quote_line = 0;
	p->len = 0;
	p->nfields = 0;
	p->error_line = 0;
	p->error[0] = '\0';
}

static CsvStatus
fail(CsvParser *p, uint64_t line, const char *what)
{
	p->state = S_FAILED;
	p->error_line = line;
	snprintf(p->error, sizeof(p->error), "%s", what);
	return CSV_ERROR;
}

/* Length of the longest prefix of s that is UTF-8 without NUL. */
static size_t
utf8_prefix(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		size_t		  n;
		uint32_t	  cp;

		if (c == 0)
			return i;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1, cp = c & 0x1F;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2, cp = c & 0x0F;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3, cp = c & 0x07;
		else
			return i;
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++)
		{
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		/* overlong, surrogate or past U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
			(cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			return i;
		i += n + 1;
	}
	return len;
}

/* Line breaks (CRLF counted once) in s[0..len). */
static uint64_t
breaks(const char *s, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n' ? (i == 0 || s[i - 1] != '\r') : s[i] == '\r')
			n++;
	return n;
}

static CsvStatus
end_field(CsvParser *p)
{
	if (p->nfields == CSV_MAX_FIELDS)
	{
		char what[64];

		snprintf(what, sizeof(what), "a row of more than %d fields",
				 CSV_MAX_FIELDS);
		return fail(p, p->row_line, what);
	}
	p->ends[p->nfields++] = p->len;
	p->quoted = false;
	return CSV_MORE;
}

/*
 * The row is complete: its fields must be UTF-8.  A row of one empty
 * unquoted field is an empty line: no row.
 */
static CsvStatus
end_row(CsvParser *p)
{
	size_t start = 0;

	if (end_field(p) == CSV_ERROR)
		return CSV_ERROR;
	p->state = S_FIELD;
	p->in_row = false;
	if (p->nfields == 1 && p->len == 0 && !p->any_quoted)
	{
		p->nfields = 0;
		return CSV_MORE;
	}
	for (int i = 0; i < p->nfields; i++)
	{
		size_t ok = utf8_prefix((const unsigned char *) p->buf + start,
								p->ends[i] - start);

		if (start + ok < p->ends[i])
			return fail(p, p->row_line + breaks(p->buf, start + ok),
						p->buf[start + ok] == '\0'
							? "a NUL byte"
							: "bytes that are not UTF-8 text");
		start = p->ends[i];
	}
	p->have_row = true;
	return CSV_RECORD;
}

static CsvStatus
append(CsvParser *p, char c)
{
	if (p->len == CSV_MAX_ROW)
	{
		char what[64];

		snprintf(what, sizeof(what), "a row longer than %d bytes", CSV_MAX_ROW);
		return fail(p, p->row_line, what);
	}
	p->buf[p->len++] = c;
	return CSV_MORE;
}

/* One byte of the input (after the BOM check). */
static CsvStatus
step(CsvParser *p, char c)
{
	bool	  line_end = c == '\n' || c == '\r';
	bool	  crlf = c == '\n' && p->cr;
	uint64_t  line = p->line;
	CsvStatus r = CSV_MORE;

	/* the line of the next byte */
	if (line_end && !crlf)
		p->line++;
	p->cr = c == '\r';

	if (!p->in_row)
	{
		/* between rows: line ends (the LF of a CRLF too) are empty lines */
		if (line_end)
			return CSV_MORE;
		p->in_row = true;
		p->any_quoted = false;
		p->row_line = line;
	}

	switch (p->state)
	{
		case S_FIELD:
			if (c == '"')
			{
				p->state = S_QUOTED;
				p->quoted = true;
				p->any_quoted = true;
				p->quote_line = line;
			}
			else if (c == ',')
				r = end_field(p);
			else if (line_end)
				r = end_row(p);
			else
			{
				p->state = S_UNQUOTED;
				r = append(p, c);
			}
			break;
		case S_UNQUOTED:
			if (c == ',')
			{
				p->state = S_FIELD;
				r = end_field(p);
			}
			else if (line_end)
				r = end_row(p);
			else if (c == '"')
				r = fail(p, line,
						 "a quote inside an unquoted field (quote the "
						 "field and double the quote)");
			else
				r = append(p, c);
			break;
		case S_QUOTED:
			if (c == '"')
				p->state = S_QUOTE;
			else
				r = append(p, c);
			break;
		case S_QUOTE:
			if (c == '"')
			{
				p->state = S_QUOTED;
				r = append(p, c);
			}
			else if (c == ',')
			{
				p->state = S_FIELD;
				r = end_field(p);
			}
			else if (line_end)
				r = end_row(p);
			else
				r = fail(p, line,
						 "a character after the closing quote of a field");
			break;
	}
	return r;
}

CsvStatus
csv_parse(CsvParser *p, const char *data, size_t len, size_t *used)
{
	size_t i = 0;

	*used = 0;
	if (p->state == S_FAILED)
		return CSV_ERROR;
	if (p->have_row)
	{
		p->have_row = false;
		p->len = 0;
		p->nfields = 0;
	}
	while (i < len)
	{
		CsvStatus r;

		/* a BOM at the very start is skipped; a partial one is data */
		if (p->bom >= 0)
		{
			if ((unsigned char) data[i] == bom[p->bom])
			{
				i++;
				if (++p->bom == 3)
					p->bom = -1;
				continue;
			}
			else
			{
				int matched = p->bom;

				p->bom = -1;
				for (int k = 0; k < matched; k++)
					if ((r = step(p, (char) bom[k])) == CSV_ERROR)
					{
						*used = i;
						return r;
					}
			}
		}
		r = step(p, data[i++]);
		if (r != CSV_MORE)
		{
			*used = i;
			return r;
		}
	}
	*used = i;
	return CSV_MORE;
}

CsvStatus
csv_finish(CsvParser *p)
{
	size_t used;

	if (p->state == S_FAILED)
		return CSV_ERROR;
	if (p->have_row)
	{
		p->have_row = false;
		p->len = 0;
		p->nfields = 0;
	}
	if (p->finished)
		return CSV_END;
	/* a partial BOM alone is data */
	if (p->bom > 0)
	{
		int		  matched = p->bom;
		CsvStatus r;

		p->bom = -1;
		for (int k = 0; k < matched; k++)
			if ((r = step(p, (char) bom[k])) != CSV_MORE)
				return r;
	}
	(void) used;
	if (p->state == S_QUOTED)
		return fail(p, p->quote_line, "a quoted field is not closed");
	p->finished = true;
	if (p->in_row)
	{
		CsvStatus r = end_row(p);

		if (r == CSV_MORE)
			return CSV_END;
		return r;
	}
	return CSV_END;
}

const char *
csv_field(const CsvParser *p, int i, size_t *len)
{
	size_t start = i == 0 ? 0 : p->ends[i - 1];

	*len = p->ends[i] - start;
	return p->buf + start;
}

size_t
csv_write_field(char *dst, const char *s, size_t len, bool isnull)
{
	bool   quote = !isnull && len == 0;
	size_t n = 0;

	if (isnull)
		return 0;
	if (len > 0 && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' ||
					s[len - 1] == '\t'))
		quote = true;
	/* a BOM first would be skipped, were the field the file's first bytes */
	if (len >= 3 && memcmp(s, bom, 3) == 0)
		quote = true;
	for (size_t i = 0; i < len && !quote; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
			quote = true;
	if (!quote)
	{
		memcpy(dst, s, len);
		return len;
	}
	dst[n++] = '"';
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '"')
			dst[n++] = '"';
		dst[n++] = s[i];
	}
	dst[n++] = '"';
	return n;
}
