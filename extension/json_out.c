/*
 * json_out.c
 *		Compact JSON on a StringInfo: {"code":"OSV-0001","n":1}.
 *
 * Strings are escaped by escape_json, as json_build_object escapes them
 * (quote, backslash and control characters; everything else, UTF-8
 * included, passes through), and timestamps are written by
 * JsonEncodeDateTime in the session's time zone, as json_build_object
 * writes them.  Only the spacing differs from the json type's output.
 */
#include "psk.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "json_out.h"

void
json_init(JsonOut *out)
{
	initStringInfo(&out->buf);
	out->comma = false;
}

/* Before a value or a key: separate it from the previous one. */
static inline void
json_next(JsonOut *out)
{
	if (out->comma)
		appendStringInfoChar(&out->buf, ',');
	out->comma = true;
}

void
json_object_start(JsonOut *out)
{
	json_next(out);
	appendStringInfoChar(&out->buf, '{');
	out->comma = false;
}

void
json_object_end(JsonOut *out)
{
	appendStringInfoChar(&out->buf, '}');
	out->comma = true;
}

void
json_array_start(JsonOut *out)
{
	json_next(out);
	appendStringInfoChar(&out->buf, '[');
	out->comma = false;
}

void
json_array_end(JsonOut *out)
{
	appendStringInfoChar(&out->buf, ']');
	out->comma = true;
}

void
json_key(JsonOut *out, const char *key)
{
	json_next(out);
	escape_json(&out->buf, key);
	appendStringInfoChar(&out->buf, ':');
	out->comma = false;
}

void
json_null(JsonOut *out)
{
	json_next(out);
	appendStringInfoString(&out->buf, "null");
}

void
json_string(JsonOut *out, const char *value)
{
	json_next(out);
	if (value == NULL)
		appendStringInfoString(&out->buf, "null");
	else
		escape_json(&out->buf, value);
}

void
json_bool(JsonOut *out, bool value)
{
	json_next(out);
	appendStringInfoString(&out->buf, value ? "true" : "false");
}

void
json_int64(JsonOut *out, int64 value)
{
	json_next(out);
	appendStringInfo(&out->buf, INT64_FORMAT, value);
}

void
json_timestamptz(JsonOut *out, TimestampTz value)
{
	char buf[MAXDATELEN + 1];

	json_next(out);
	appendStringInfoChar(&out->buf, '"');
	appendStringInfoString(&out->buf,
						   JsonEncodeDateTime(buf, TimestampTzGetDatum(value),
											  TIMESTAMPTZOID, NULL));
	appendStringInfoChar(&out->buf, '"');
}

void
json_uuid(JsonOut *out, const pg_uuid_t *value)
{
	if (value == NULL)
		json_null(out);
	else
		json_string(out,
					DatumGetCString(
						DirectFunctionCall1(uuid_out, UUIDPGetDatum(value))));
}

void
json_text_array(JsonOut *out, ArrayType *value)
{
	Datum *elems;
	bool  *nulls;
	int	   n;

	if (value == NULL)
	{
		json_null(out);
		return;
	}
	deconstruct_array(value, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
					  &n);
	json_array_start(out);
	for (int i = 0; i < n; i++)
		json_string(out, nulls[i] ? NULL : TextDatumGetCString(elems[i]));
	json_array_end(out);
}

void
json_raw(JsonOut *out, const char *json, int len)
{
	json_next(out);
	appendBinaryStringInfo(&out->buf, json, len);
}

void
json_datum(JsonOut *out, Datum value, Oid type, bool isnull)
{
	Oid	 output;
	bool varlena;

	if (isnull)
	{
		json_null(out);
		return;
	}
	type = getBaseType(type);
	switch (type)
	{
		case TEXTOID:
		case VARCHAROID:
			json_string(out, TextDatumGetCString(value));
			return;
		case BOOLOID:
			json_bool(out, DatumGetBool(value));
			return;
		case INT2OID:
			json_int64(out, DatumGetInt16(value));
			return;
		case INT4OID:
			json_int64(out, DatumGetInt32(value));
			return;
		case INT8OID:
			json_int64(out, DatumGetInt64(value));
			return;
		case TIMESTAMPTZOID:
			json_timestamptz(out, DatumGetTimestampTz(value));
			return;
		case UUIDOID:
			json_uuid(out, DatumGetUUIDP(value));
			return;
		case TEXTARRAYOID:
			json_text_array(out, DatumGetArrayTypeP(value));
			return;
		case NUMERICOID:
			/* psk's numbers are counts: always finite */
			json_next(out);
			appendStringInfoString(&out->buf,
								   DatumGetCString(
									   DirectFunctionCall1(numeric_out,
														   value)));
			return;
		default:
			getTypeOutputInfo(type, &output, &varlena);
			json_string(out, OidOutputFunctionCall(output, value));
			return;
	}
}

void
json_spi_row(JsonOut *out, uint64 row, const char *const *keys)
{
	HeapTuple tuple = SPI_tuptable->vals[row];
	TupleDesc desc = SPI_tuptable->tupdesc;

	json_object_start(out);
	for (int col = 1; keys[col - 1] != NULL; col++)
	{
		bool  isnull;
		Datum value = SPI_getbinval(tuple, desc, col, &isnull);

		json_key(out, keys[col - 1]);
		json_datum(out, value, SPI_gettypeid(desc, col), isnull);
	}
	json_object_end(out);
}

text *
json_result(JsonOut *out)
{
	return cstring_to_text_with_len(out->buf.data, out->buf.len);
}
