/*
 * index_cache.c
 *		The indexes of the tables psk writes, opened for a call with
 *		index information built once per backend.
 *
 * ExecOpenIndices builds each index's IndexInfo afresh (its key columns,
 * expressions and predicate copied from the relcache), and the executor
 * then plans and compiles each partial index's predicate for every call:
 * psk.codes has four partial indexes, so that was about a tenth of the
 * instructions of a reserve + release cycle.  Here an IndexInfo is built
 * once per index, with its expressions and predicate compiled, and each
 * call gets a copy of it (the executor writes into an IndexInfo as it
 * goes: an access method's cache, lazily built states), sharing only the
 * compiled expressions, which are evaluated one row at a time.
 *
 * An entry is dropped (its memory kept to the end of the transaction, for
 * a call under way) when the index or its table is invalidated in the
 * relcache (an index dropped, re-created or altered; CREATE INDEX
 * CONCURRENTLY marking it ready, which invalidates the table), and whether
 * the index takes inserts yet is read from the relcache on every call.
 * Expressions that cannot be kept compiled (see psk_expr_not_cacheable)
 * are left to the executor, per call, as before.
 */
#include "writer.h"

#include "access/genam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "optimizer/optimizer.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#define INDEX_CACHE_SIZE 64

typedef struct CachedIndex
{
	Oid			  indexoid;
	Oid			  heapoid;
	IndexInfo	 *info;
	MemoryContext cxt;
} CachedIndex;

static CachedIndex index_cache[INDEX_CACHE_SIZE];
static int		   index_cache_used = 0;
static bool		   index_cache_registered = false;

/*
 * Forget entry i.  A call under way may still evaluate its compiled
 * expressions through the copies it took: an invalidation is processed
 * whenever the call takes a lock or its own statement's catalog changes
 * are made visible (another session's VACUUM or ANALYZE of psk.codes does
 * it, mid-call, at the next lock), so the memory is kept to the end of the
 * transaction, no call outlives that.  Outside a transaction no call is
 * under way.
 */
static void
index_cache_drop(int i)
{
	if (IsTransactionState())
		MemoryContextSetParent(index_cache[i].cxt, TopTransactionContext);
	else
		MemoryContextDelete(index_cache[i].cxt);
	index_cache[i] = index_cache[--index_cache_used];
}

static void
index_cache_invalidate(Datum arg, Oid relid)
{
	for (int i = index_cache_used - 1; i >= 0; i--)
		if (!OidIsValid(relid) || index_cache[i].indexoid == relid ||
			index_cache[i].heapoid == relid)
			index_cache_drop(i);
}

/* The IndexInfo of index, from the cache or built and kept there. */
static IndexInfo *
cached_index_info(Relation index)
{
	Oid			  indexoid = RelationGetRelid(index);
	MemoryContext cxt;
	MemoryContext oldcxt;
	IndexInfo	 *info;

	for (int i = 0; i < index_cache_used; i++)
		if (index_cache[i].indexoid == indexoid)
			return index_cache[i].info;

	if (!index_cache_registered)
	{
		CacheRegisterRelcacheCallback(index_cache_invalidate, (Datum) 0);
		index_cache_registered = true;
	}
	if (index_cache_used == INDEX_CACHE_SIZE)
		index_cache_drop(0);

	/* Built aside, kept only when complete (an error leaves no entry). */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "psk index info",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	info = BuildIndexInfo(index);
	if (info->ii_Expressions != NIL &&
		!psk_expr_not_cacheable((Node *) info->ii_Expressions))
	{
		List *planned =
			(List *) expression_planner((Expr *) info->ii_Expressions);

		if (!psk_expr_not_cacheable((Node *) planned))
			info->ii_ExpressionsState = ExecInitExprList(planned, NULL);
	}
	if (info->ii_Predicate != NIL &&
		!psk_expr_not_cacheable((Node *) info->ii_Predicate))
	{
		Expr *planned = expression_planner((Expr *) info->ii_Predicate);

		if (!psk_expr_not_cacheable((Node *) planned))
			info->ii_PredicateState = ExecInitQual((List *) planned, NULL);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextSetParent(cxt, CacheMemoryContext);

	index_cache[index_cache_used].indexoid = indexoid;
	index_cache[index_cache_used].heapoid = index->rd_index->indrelid;
	index_cache[index_cache_used].info = info;
	index_cache[index_cache_used].cxt = cxt;
	index_cache_used++;
	return info;
}

/*
 * ExecOpenIndices(rri, false), with each IndexInfo a copy of the cached
 * one, in the current memory context (the call's executor state).
 */
void
psk_open_indices(ResultRelInfo *rri)
{
	Relation  rel = rri->ri_RelationDesc;
	List	 *indexes;
	ListCell *lc;
	int		  n = 0;

	rri->ri_NumIndices = 0;
	if (!RelationGetForm(rel)->relhasindex)
		return;
	indexes = RelationGetIndexList(rel);
	if (indexes == NIL)
		return;

	rri->ri_IndexRelationDescs =
		palloc(list_length(indexes) * sizeof(Relation));
	rri->ri_IndexRelationInfo =
		palloc(list_length(indexes) * sizeof(IndexInfo *));
	foreach (lc, indexes)
	{
		Relation   index = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo *info = palloc(sizeof(IndexInfo));

		/* this call's own copy, for what the executor builds as it goes */
		memcpy(info, cached_index_info(index), sizeof(IndexInfo));
		info->ii_ReadyForInserts = index->rd_index->indisready;
		info->ii_AmCache = NULL;
		info->ii_Context = CurrentMemoryContext;
		rri->ri_IndexRelationDescs[n] = index;
		rri->ri_IndexRelationInfo[n] = info;
		rri->ri_NumIndices = ++n;
	}
	list_free(indexes);
}
