/*
 * lists.c
 *		The pools, the code statuses and the audit actions (see lists.h),
 *		and psk.lists(), which shows them to SQL.
 */
#include "psk.h"
#include "lists.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

static const char *const pools[] = { "OSV", "HSV", "COMMON" };
static const char *const statuses[] = { "CAN_BE_USED", "RESERVED", "IN_USE",
										"NON_USABLE" };
static const char *const actions[] = {
	"ADDED",		"RESERVED",		 "CONFIRMED",		  "RELEASED",
	"EXPIRED",		"DISASSOCIATED", "MARKED_NON_USABLE", "RESTORED",
	"DELETED",		"COMMENTED",	 "RENEWED",			  "USER_CREATED",
	"USER_UPDATED", "USER_DELETED"
};

const PskList psk_pools = { "pool", lengthof(pools), pools };
const PskList psk_statuses = { "status", lengthof(statuses), statuses };
const PskList psk_actions = { "action", lengthof(actions), actions };

const char *
psk_list_name(const PskList *list, const char *value)
{
	if (value == NULL)
		return NULL;
	for (int i = 0; i < list->n; i++)
		if (pg_strcasecmp(value, list->names[i]) == 0)
			return list->names[i];

	/* A pool is the caller's own choice: name the choices. */
	if (list == &psk_pools)
	{
		StringInfoData known;

		initStringInfo(&known);
		for (int i = 0; i < list->n; i++)
			appendStringInfo(&known, "%s%s",
							 i == 0				? ""
							 : i == list->n - 1 ? " and "
												: ", ",
							 list->names[i]);
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("unknown %s \"%s\"", list->what, value),
						errhint("Pools are %s.", known.data)));
	}
	ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
					errmsg("unknown %s \"%s\"", list->what, value)));
	return NULL; /* not reached */
}

const char *
psk_pool_name(const char *pool)
{
	return psk_list_name(&psk_pools, pool);
}

Datum
psk_list_array(const PskList *list)
{
	Datum *elems = palloc(list->n * sizeof(Datum));

	for (int i = 0; i < list->n; i++)
		elems[i] = CStringGetTextDatum(list->names[i]);
	return PointerGetDatum(
		construct_array(elems, list->n, TEXTOID, -1, false, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(psk_lists);

/* psk.lists() -> (list, n, name): every list, each in its order. */
Datum
psk_lists(PG_FUNCTION_ARGS)
{
	static const PskList *const all[] = { &psk_pools, &psk_statuses,
										  &psk_actions };
	ReturnSetInfo			   *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	psk_materialize(fcinfo);
	for (size_t l = 0; l < lengthof(all); l++)
	{
		for (int i = 0; i < all[l]->n; i++)
		{
			Datum values[3];
			bool  nulls[3] = { 0 };

			values[0] = CStringGetTextDatum(all[l]->what);
			values[1] = Int32GetDatum(i + 1);
			values[2] = CStringGetTextDatum(all[l]->names[i]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
								 nulls);
		}
	}
	return (Datum) 0;
}
