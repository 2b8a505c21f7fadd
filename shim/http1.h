/*
 * http1.h
 *		The little of HTTP/1.1 the shim reads itself, for the import's
 *		streamed body (gate.c, bulk.c): a request head, strictly, and the
 *		chunked transfer coding.  Plain C, no h2o: the fuzz target builds it.
 */
#ifndef PSK_HTTP1_H
#define PSK_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* h2o's own limits on a request head (H2O_MAX_REQLEN, H2O_MAX_HEADERS) */
#define HTTP1_MAX_HEAD	  8192
#define HTTP1_MAX_HEADERS 100

typedef struct Http1Header
{
	const char *name;
	size_t		name_len;
	const char *value;
	size_t		value_len;
} Http1Header;

typedef struct Http1Head
{
	const char *method;
	size_t		method_len;
	const char *target; /* path and query string */
	size_t		target_len;
	int			minor; /* HTTP/1.minor */
	Http1Header headers[HTTP1_MAX_HEADERS];
	int			nheaders;
	size_t		head_len; /* through the blank line */
	/* the body's framing */
	bool	 has_length;
	uint64_t length;
	bool	 chunked;
	bool	 expect_continue;
} Http1Head;

/*
 * The request line of buf[0..len): 1 with method and target set when it is
 * complete, 0 when more is needed, -1 when it is not one to read further.
 */
extern int http1_request_line(const char *buf, size_t len, Http1Head *h);

/*
 * The whole head: 1 when complete and plain (CRLF line ends, no folded
 * lines, no control characters, at most one Content-Length, and
 * Transfer-Encoding only "chunked", not both; Expect only
 * "100-continue"), 0 when more is needed, -1 otherwise: h2o then reads it
 * as it would any other.
 */
extern int http1_head(const char *buf, size_t len, Http1Head *h);

/* The chunked transfer coding, decoded as it arrives. */
typedef struct Http1Chunked
{
	int		 state;
	uint64_t left;	 /* data bytes left in the current chunk */
	int		 digits; /* of the size */
	size_t	 line;	 /* bytes of the current size or trailer line */
} Http1Chunked;

typedef enum Http1ChunkedStatus
{
	CHUNKED_MORE, /* all of in was framing: give more */
	CHUNKED_DATA, /* data follows the framing */
	CHUNKED_END,  /* the last chunk and its trailers are over */
	CHUNKED_ERROR /* not the chunked coding */
} Http1ChunkedStatus;

extern void http1_chunked_init(Http1Chunked *d);

/*
 * Read framing from in[0..len): *skip is the framing read.  On
 * CHUNKED_DATA, *avail data bytes start at in + *skip (the current chunk's,
 * as far as in goes); the caller takes n <= *avail of them and says so with
 * http1_chunked_took.  On CHUNKED_END, *skip ends the message.
 */
extern Http1ChunkedStatus http1_chunked_next(Http1Chunked *d, const char *in,
											 size_t len, size_t *skip,
											 size_t *avail);
extern void				  http1_chunked_took(Http1Chunked *d, size_t n);

#endif /* PSK_HTTP1_H */
