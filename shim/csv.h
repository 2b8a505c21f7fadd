/*
 * csv.h
 *		CSV (RFC 4180) read incrementally and written, for the imports and
 *		exports of bulk.c.  Plain C, no h2o: the fuzz target builds it alone.
 */
#ifndef PSK_CSV_H
#define PSK_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* a row of more fields, or of more bytes, is refused */
#define CSV_MAX_FIELDS 64
#define CSV_MAX_ROW	   65536

typedef enum CsvStatus
{
	CSV_MORE,	/* every byte given was taken; no row is complete yet */
	CSV_RECORD, /* a row is complete: csv_field(); the rest comes next */
	CSV_END,	/* (csv_finish) the input is over, every row was given */
	CSV_ERROR	/* malformed: error, at error_line; nothing more */
} CsvStatus;

/*
 * A parser.  It takes the input in pieces of any size and gives back one
 * row at a time, so that a caller may stop between rows (and take the rest
 * of its piece later).  Line numbers are the file's: every CRLF, LF or CR
 * counts, also inside a quoted field; a row's line is where it starts.
 * A UTF-8 byte order mark at the start is skipped; empty lines are skipped
 * (a row with one empty, unquoted field is such a line).  Refused: a quote
 * inside an unquoted field, anything but a comma or a line end after a
 * closing quote, a quoted field still open at the end (the error names the
 * line where it opened), a row longer than CSV_MAX_ROW bytes or of more
 * than CSV_MAX_FIELDS fields, and a field that is not UTF-8 or holds a NUL
 * (the line of the first bad byte).
 */
typedef struct CsvParser
{
	int		 state;
	int		 bom;		 /* bytes of a leading BOM seen; -1: past it */
	bool	 cr;		 /* the previous byte was a CR */
	bool	 in_row;	 /* a row has begun */
	bool	 quoted;	 /* the row's current field is quoted */
	bool	 any_quoted; /* some field of the row was quoted */
	bool	 have_row;	 /* a row was returned: cleared on the next call */
	bool	 finished;	 /* csv_finish returned the last row */
	uint64_t line;		 /* line of the next byte, from 1 */
	uint64_t row_line;	 /* line where the current row started */
	uint64_t quote_line; /* line where the open quoted field started */
	char	 buf[CSV_MAX_ROW]; /* the row's fields, one after the other */
	size_t	 len;
	size_t	 ends[CSV_MAX_FIELDS]; /* where each field ends in buf */
	int		 nfields;
	uint64_t error_line;
	char	 error[160];
} CsvParser;

extern void csv_init(CsvParser *p);

/*
 * Parse from data[0..len): *used is set to the bytes taken.  CSV_RECORD
 * when a row is complete (maybe before len), CSV_MORE when all was taken,
 * CSV_ERROR when malformed.
 */
extern CsvStatus csv_parse(CsvParser *p, const char *data, size_t len,
						   size_t *used);

/* The input is over: the last row (without a line end), or CSV_END. */
extern CsvStatus csv_finish(CsvParser *p);

/* Field i (0-based) of the row just returned; its length in *len. */
extern const char *csv_field(const CsvParser *p, int i, size_t *len);

/* Bytes csv_write_field may write for len input bytes. */
#define CSV_QUOTED_MAX(len) (2 * (len) + 2)

/*
 * A field as written: NULL (isnull) as nothing; a value quoted, quotes
 * doubled, when it is empty or holds a comma, quote, CR or LF, or begins
 * or ends with a space or tab, or begins with a byte order mark.  Returns
 * bytes written.
 */
extern size_t csv_write_field(char *dst, const char *s, size_t len,
							  bool isnull);

#endif /* PSK_CSV_H */
