/*
 * query.c
 *		Kept SPI plans and returning their results from set-returning
 *		functions.
 */
#include "psk.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

/*
 * The plan of query: prepared on first use with the cursor options
 * options, kept for the backend's life.
 */
static SPIPlanPtr
query_plan(PskQuery *query, int options)
{
	if (query->plan == NULL)
	{
		SPIPlanPtr plan = SPI_prepare_cursor(query->sql, query->nargs,
											 query->argtypes, options);

		if (plan == NULL)
			elog(ERROR, "psk: SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "psk: SPI_keepplan failed");
		query->plan = plan;
	}
	return query->plan;
}

/* The plan of a statement run whole (psk_execute, psk_execute_latest). */
static SPIPlanPtr
statement_plan(PskQuery *query)
{
	return query_plan(query, query->generic	 ? CURSOR_OPT_GENERIC_PLAN
							 : query->custom ? CURSOR_OPT_CUSTOM_PLAN
											 : 0);
}

static void
null_flags(const PskQuery *query, const bool *nulls, char *flags)
{
	Assert(query->nargs <= PSK_MAX_ARGS);
	for (int i = 0; i < query->nargs; i++)
		flags[i] = (nulls != NULL && nulls[i]) ? 'n' : ' ';
}

uint64
psk_execute(PskQuery *query, Datum *values, const bool *nulls, bool read_only)
{
	char nullflags[PSK_MAX_ARGS];
	int	 rc;

	null_flags(query, nulls, nullflags);
	rc = SPI_execute_plan(statement_plan(query), values, nullflags, read_only,
						  0);
	if (rc < 0)
		elog(ERROR, "psk: SPI_execute_plan failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * psk_execute, read-only, in a snapshot taken now rather than the
 * transaction's: what a foreign key's check reads under REPEATABLE READ,
 * so that rows committed since the transaction's snapshot count too.
 */
uint64
psk_execute_latest(PskQuery *query, Datum *values, const bool *nulls)
{
	char nullflags[PSK_MAX_ARGS];
	int	 rc;

	null_flags(query, nulls, nullflags);
	rc = SPI_execute_snapshot(statement_plan(query), values, nullflags,
							  GetLatestSnapshot(), InvalidSnapshot, true, false,
							  0);
	if (rc < 0)
		elog(ERROR, "psk: SPI_execute_snapshot failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

Portal
psk_open_cursor(PskQuery *query, const char *name, Datum *values,
				const bool *nulls)
{
	SPIPlanPtr plan =
		query_plan(query, CURSOR_OPT_NO_SCROLL | CURSOR_OPT_FAST_PLAN |
							  (query->custom ? CURSOR_OPT_CUSTOM_PLAN : 0));
	char   nullflags[PSK_MAX_ARGS];
	Portal portal;

	null_flags(query, nulls, nullflags);
	portal = SPI_cursor_open(name, plan, values, nullflags, true);
	if (portal == NULL)
		elog(ERROR, "psk: SPI_cursor_open failed: %s",
			 SPI_result_code_string(SPI_result));
	return portal;
}

Datum
psk_result(uint64 row, int col, bool *isnull)
{
	Assert(SPI_tuptable != NULL && row < SPI_processed);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
						 isnull);
}

/* A copy in the caller's (pre-SPI_connect) memory context. */
char *
psk_spi_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char  *copy = SPI_palloc(len);

	memcpy(copy, s, len);
	return copy;
}

/* In the caller's (pre-SPI_connect) memory context, or NULL. */
char *
psk_result_cstring(uint64 row, int col)
{
	char *value;

	Assert(SPI_tuptable != NULL && row < SPI_processed);
	value = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
	return value ? psk_spi_strdup(value) : NULL;
}

/*
 * The caller's result set, made on first use.  Works for functions
 * returning a row type and for those returning a scalar set (RETURNS TABLE
 * with one column, SETOF text).
 */
TupleDesc
psk_result_set(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	   tupdesc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(
			ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg(
				 "set-valued function called in context that cannot accept a set")));

	if (rsinfo->setResult == NULL)
	{
		MemoryContext oldcxt;
		Oid			  result_type;

		oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
		switch (get_call_result_type(fcinfo, &result_type, &tupdesc))
		{
			case TYPEFUNC_COMPOSITE:
				tupdesc = CreateTupleDescCopy(tupdesc);
				break;
			case TYPEFUNC_SCALAR:
				tupdesc = CreateTemplateTupleDesc(1);
				TupleDescInitEntry(tupdesc, 1, "result", result_type, -1, 0);
				break;
			default:
				elog(ERROR, "psk: unexpected function result type");
		}
		rsinfo->returnMode = SFRM_Materialize;
		rsinfo->setDesc = tupdesc;
		rsinfo->setResult = tuplestore_begin_heap(rsinfo->allowedModes &
													  SFRM_Materialize_Random,
												  false, work_mem);
		MemoryContextSwitchTo(oldcxt);
	}
	return rsinfo->setDesc;
}

/*
 * Materialize the last SPI result as the function's result set, or append
 * it to the rows already there: the SQL must produce exactly the declared
 * columns.
 */
void
psk_return_tuptable(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	   tupdesc = psk_result_set(fcinfo);
	Datum		  *values;
	bool		  *nulls;

	if (SPI_tuptable == NULL || SPI_tuptable->tupdesc->natts != tupdesc->natts)
		elog(ERROR, "psk: query result does not match the function's columns");

	values = palloc(tupdesc->natts * sizeof(Datum));
	nulls = palloc(tupdesc->natts * sizeof(bool));
	for (uint64 row = 0; row < SPI_processed; row++)
	{
		heap_deform_tuple(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						  values, nulls);
		tuplestore_putvalues(rsinfo->setResult, tupdesc, values, nulls);
	}
}

void
psk_return_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	   tupdesc = psk_result_set(fcinfo);

	tuplestore_putvalues(rsinfo->setResult, tupdesc, values, nulls);
}

/*
 * InitMaterializedSRF for a function returning a table: with the row type
 * the caller expects when it gives one (a function scan does), so that the
 * function's declared result columns are not read back from pg_proc on
 * every call (build_function_result_tupdesc_t, a sixtieth of a reserve +
 * release cycle); else (called in a select list) as usual.
 */
void
psk_materialize(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) &&
										rsinfo->expectedDesc != NULL
									? MAT_SRF_USE_EXPECTED_DESC
									: 0);
}
