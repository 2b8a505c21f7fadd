/*
 * args.c
 *		Checking function arguments: every bad input is invalid_input
 *		(PK007) with a message naming the argument.
 */
#include "psk.h"

#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/formatting.h"

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
		   c == '\v';
}

static bool
is_blank(const char *s)
{
	for (; *s; s++)
		if (!is_space(*s))
			return false;
	return true;
}

char *
psk_trim_space(char *s)
{
	char *end;

	while (is_space(*s))
		s++;
	end = s + strlen(s);
	while (end > s && is_space(end[-1]))
		*--end = '\0';
	return s;
}

char *
psk_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
			 bool required, int maxlen)
{
	text *arg;

	if (PG_ARGISNULL(argno))
		return psk_check_text(NULL, name, required, maxlen);

	arg = PG_GETARG_TEXT_PP(argno);
	/* Refuse huge values before copying them. */
	if (VARSIZE_ANY_EXHDR(arg) > (Size) maxlen * MAX_MULTIBYTE_CHAR_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("%s is longer than %d characters", name, maxlen)));
	return psk_check_text(text_to_cstring(arg), name, required, maxlen);
}

char *
psk_text_arg_capped(FunctionCallInfo fcinfo, int argno, int maxlen)
{
	text *arg;
	Size  cap = (Size) maxlen * MAX_MULTIBYTE_CHAR_LEN + 1;

	if (PG_ARGISNULL(argno))
		return NULL;
	arg = PG_GETARG_TEXT_PP(argno);
	return pnstrdup(VARDATA_ANY(arg), Min(VARSIZE_ANY_EXHDR(arg), cap));
}

char *
psk_check_text(char *value, const char *name, bool required, int maxlen)
{
	if (value == NULL)
	{
		if (required)
			ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
							errmsg("%s is required", name)));
		return NULL;
	}
	/* Refuse huge values before counting characters one by one. */
	if (strlen(value) > (Size) maxlen * MAX_MULTIBYTE_CHAR_LEN ||
		pg_mbstrlen(value) > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("%s is longer than %d characters", name, maxlen)));
	if (is_blank(value))
	{
		if (required)
			ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
							errmsg("%s must not be empty", name)));
		return NULL;
	}
	return value;
}

int32
psk_int_arg(FunctionCallInfo fcinfo, int argno, const char *name, int32 defval,
			int32 min, int32 max)
{
	int32 value;

	if (PG_ARGISNULL(argno))
		return defval;
	value = PG_GETARG_INT32(argno);
	if (value < min || value > max)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("%s must be between %d and %d", name, min, max)));
	return value;
}

/*
 * lower() as SQL has it (the database's collation), done once here rather
 * than in a statement, where a filter would redo it for every row scanned.
 */
char *
psk_lower(const char *s)
{
	return str_tolower(s, strlen(s), DEFAULT_COLLATION_OID);
}

/*
 * A code as stored: trimmed of white space at both ends, upper-cased in
 * collation collid.  The one definition, also behind psk.normalize_code(),
 * which the code domain's check and every statement looking up a code use.
 */
char *
psk_normalize_code(const char *code, Oid collid)
{
	const char *ws = " \t\n\r\f\v";
	const char *end = code + strlen(code);

	while (*code && strchr(ws, *code))
		code++;
	while (end > code && strchr(ws, end[-1]))
		end--;
	return str_toupper(code, end - code, collid);
}

PG_FUNCTION_INFO_V1(normalize_code);

/* psk.normalize_code(text) */
Datum
normalize_code(PG_FUNCTION_ARGS)
{
	char *code = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_TEXT_P(
		cstring_to_text(psk_normalize_code(code, PG_GET_COLLATION())));
}

/* An error context callback that keeps the statement out of the log. */
static void
hide_statement(void *arg)
{
	(void) arg;
	errhidestmt(true);
}

/*
 * work(fcinfo), with no error it raises logging the statement that called
 * it: for the functions that take a password, which a caller may have
 * written into the statement as a literal.  Every error, the argument
 * checks' too, so a context callback rather than errhidestmt at each
 * ereport.
 */
Datum
psk_call_hiding_statement(PGFunction work, FunctionCallInfo fcinfo)
{
	ErrorContextCallback hide;
	Datum				 result;

	hide.callback = hide_statement;
	hide.arg = NULL;
	hide.previous = error_context_stack;
	error_context_stack = &hide;
	result = work(fcinfo);
	error_context_stack = hide.previous;
	return result;
}
