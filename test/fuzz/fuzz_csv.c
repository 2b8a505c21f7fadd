/*
 * fuzz_csv.c
 *		libFuzzer target for what the shim reads of an import itself:
 *		the CSV reader and writer (shim/csv.c), the chunked transfer coding
 *		and the request head (shim/http1.c).
 *
 * Properties checked, besides AddressSanitizer and UBSan:
 *	- CSV read whole and read in pieces (of sizes taken from the input)
 *	  give the same rows, or the same error at the same line;
 *	- every field of every row is UTF-8 without NUL, and no row has more
 *	  than CSV_MAX_FIELDS fields or CSV_MAX_ROW bytes;
 *	- a row written back with csv_write_field reads as the same fields;
 *	- the chunked coding decoded whole and byte by byte gives the same
 *	  data and the same end;
 *	- a head http1_head accepts lies within its input.
 *
 * Build: make -C shim fuzz (clang); run: shim/psk-fuzz-csv -max_total_time=30
 */
#include "csv.h"
#include "http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rows of a run, flattened: fields as "len:bytes", rows ended by \n. */
typedef struct Out
{
	char  *data;
	size_t len;
	size_t cap;
} Out;

static void
put(Out *o, const void *s, size_t n)
{
	if (o->len + n > o->cap)
	{
		o->cap = (o->len + n) * 2 + 64;
		o->data = realloc(o->data, o->cap);
		if (o->data == NULL)
			abort();
	}
	memcpy(o->data + o->len, s, n);
	o->len += n;
}

static void
check_row(const CsvParser *p)
{
	size_t total = 0;

	if (p->nfields < 1 || p->nfields > CSV_MAX_FIELDS)
		abort();
	for (int i = 0; i < p->nfields; i++)
	{
		size_t		len;
		const char *f = csv_field(p, i, &len);

		total += len;
		for (size_t k = 0; k < len; k++)
			if (f[k] == '\0')
				abort();
	}
	if (total > CSV_MAX_ROW)
		abort();
}

static void
record_row(Out *o, const CsvParser *p)
{
	char head[32];

	check_row(p);
	for (int i = 0; i < p->nfields; i++)
	{
		size_t		len;
		const char *f = csv_field(p, i, &len);
		int			n = snprintf(head, sizeof(head), "%zu:", len);

		put(o, head, n);
		put(o, f, len);
	}
	snprintf(head, sizeof(head), "@%llu\n", (unsigned long long) p->row_line);
	put(o, head, strlen(head));
}

/* Write the row back and read it again: the same fields. */
static void
round_trip(const CsvParser *p)
{
	static CsvParser again;
	Out				 line = { 0 };
	size_t			 used;
	CsvStatus		 st;

	for (int i = 0; i < p->nfields; i++)
	{
		size_t		len;
		const char *f = csv_field(p, i, &len);
		char	   *q = malloc(CSV_QUOTED_MAX(len) + 1);
		size_t		n = csv_write_field(q, f, len, false);

		if (i > 0)
			put(&line, ",", 1);
		put(&line, q, n);
		free(q);
	}
	/* LF: a CR ends the row before its LF */
	put(&line, "\n", 1);
	csv_init(&again);
	st = csv_parse(&again, line.data, line.len, &used);
	/* a row of one empty field was written as "", which is a row */
	if (st != CSV_RECORD || used != line.len || again.nfields != p->nfields)
		abort();
	for (int i = 0; i < p->nfields; i++)
	{
		size_t		a, b;
		const char *x = csv_field(p, i, &a);
		const char *y = csv_field(&again, i, &b);

		if (a != b || memcmp(x, y, a) != 0)
			abort();
	}
	free(line.data);
}

/*
 * Read data with pieces of the sizes steps gives (0: whole); the rows and
 * the end go to o.
 */
static void
read_csv(const uint8_t *data, size_t size, const uint8_t *steps, size_t nsteps,
		 Out *o, bool trip)
{
	static CsvParser p;
	size_t			 at = 0, k = 0;
	CsvStatus		 st = CSV_MORE;
	char			 end[200];

	csv_init(&p);
	while (at < size && st != CSV_ERROR)
	{
		size_t piece =
			nsteps ? (size_t) (steps[k++ % nsteps] % 17) + 1 : size - at;
		size_t off = 0;

		if (piece > size - at)
			piece = size - at;
		while (off < piece)
		{
			size_t used;

			st = csv_parse(&p, (const char *) data + at + off, piece - off,
						   &used);
			/* CSV_MORE takes all it was given */
			if (used > piece - off || (st == CSV_MORE && used != piece - off))
				abort();
			off += used;
			if (st == CSV_ERROR)
				break;
			if (st == CSV_RECORD)
			{
				record_row(o, &p);
				if (trip)
					round_trip(&p);
			}
		}
		at += piece;
	}
	if (st != CSV_ERROR)
		while ((st = csv_finish(&p)) == CSV_RECORD)
		{
			record_row(o, &p);
			if (trip)
				round_trip(&p);
		}
	snprintf(end, sizeof(end), "end %d %llu %s", st,
			 (unsigned long long) p.error_line, p.error);
	put(o, end, strlen(end));
}

/* The chunked coding, with pieces of the sizes steps gives (0: whole). */
static void
read_chunked(const uint8_t *data, size_t size, size_t step, Out *o)
{
	Http1Chunked	   d;
	Http1ChunkedStatus st = CHUNKED_MORE;
	size_t			   have = 0; /* bytes given so far */
	size_t			   at = 0;	 /* bytes taken */
	char			   end[32];

	http1_chunked_init(&d);
	have = step ? (step < size ? step : size) : size;
	for (;;)
	{
		size_t skip, avail;

		st = http1_chunked_next(&d, (const char *) data + at, have - at, &skip,
								&avail);
		if (skip > have - at)
			abort();
		at += skip;
		if (st == CHUNKED_END || st == CHUNKED_ERROR)
			break;
		if (st == CHUNKED_MORE)
		{
			if (at != have)
				abort(); /* all of it was framing */
			if (have == size)
				break;
			have = have + step < size ? have + step : size;
			continue;
		}
		/* data: take half, then the rest, as a slow consumer would */
		if (avail == 0 || at + avail > have)
			abort();
		{
			size_t n = avail > 1 ? avail / 2 : avail;

			put(o, data + at, n);
			http1_chunked_took(&d, n);
			at += n;
		}
	}
	snprintf(end, sizeof(end), "|%d|%zu", st == CHUNKED_MORE ? 0 : (int) st,
			 st == CHUNKED_END ? at : 0);
	put(o, end, strlen(end));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Out		   a = { 0 }, b = { 0 };
	Http1Head *h;

	if (size < 2)
		return 0;
	/* the first byte picks the steps of the pieces, from the input's end */
	{
		size_t		   nsteps = data[0] % 8 + 1;
		const uint8_t *body = data + 1;
		size_t		   n = size - 1;

		read_csv(body, n, NULL, 0, &a, true);
		read_csv(body, n, body + (n > nsteps ? n - nsteps : 0),
				 n > nsteps ? nsteps : n, &b, false);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
		a.len = b.len = 0;

		read_chunked(body, n, 0, &a);
		read_chunked(body, n, 1, &b);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			abort();
	}
	h = malloc(sizeof(Http1Head));
	if (http1_head((const char *) data, size, h) == 1)
	{
		const char *end = (const char *) data + size;

		if (h->head_len > size || h->method < (const char *) data ||
			h->target + h->target_len > end || h->nheaders > HTTP1_MAX_HEADERS)
			abort();
		for (int i = 0; i < h->nheaders; i++)
			if (h->headers[i].value + h->headers[i].value_len >
				(const char *) data + h->head_len)
				abort();
	}
	free(h);
	free(a.data);
	free(b.data);
	return 0;
}
