/*
 * json_out.h
 *		A small writer of compact JSON on a StringInfo, for the replies of
 *		the HTTP routes (json_out.c).
 */
#ifndef PSK_JSON_OUT_H
#define PSK_JSON_OUT_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/*
 * A reply being written.  The buffer is allocated by json_init in the
 * memory context current then; it stays there when it grows, so a reply
 * may be written from inside an SPI connection and returned after it.
 */
typedef struct JsonOut
{
	StringInfoData buf;
	bool		   comma; /* the next value or key needs a "," first */
} JsonOut;

extern void json_init(JsonOut *out);

extern void json_object_start(JsonOut *out);
extern void json_object_end(JsonOut *out);
extern void json_array_start(JsonOut *out);
extern void json_array_end(JsonOut *out);
extern void json_key(JsonOut *out, const char *key);

/* Values; a NULL pointer is written as null. */
extern void json_null(JsonOut *out);
extern void json_string(JsonOut *out, const char *value);
extern void json_bool(JsonOut *out, bool value);
extern void json_int64(JsonOut *out, int64 value);
extern void json_timestamptz(JsonOut *out, TimestampTz value);
extern void json_uuid(JsonOut *out, const pg_uuid_t *value);
extern void json_text_array(JsonOut *out, ArrayType *value);
/* A value already written as JSON (by another JsonOut). */
extern void json_raw(JsonOut *out, const char *json, int len);

/*
 * A value of an SQL type, as json_build_object writes it: numbers and
 * booleans bare, timestamps in ISO 8601 with offset, text arrays as
 * arrays, anything else as the string its output function makes.
 */
extern void json_datum(JsonOut *out, Datum value, Oid type, bool isnull);

/*
 * Row row of SPI_tuptable as an object: keys[i] names column i + 1; the
 * list ends with NULL and may be shorter than the row.
 */
extern void json_spi_row(JsonOut *out, uint64 row, const char *const *keys);

/* The reply, as the json (text) result of a route function. */
extern text *json_result(JsonOut *out);

#endif /* PSK_JSON_OUT_H */
