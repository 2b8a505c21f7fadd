/*
 * writer.c
 *		Changing codes and writing audit rows below SPI, the way logical
 *		replication applies a change: index scans, row locks and the
 *		executor's simple-relation update and insert.
 *
 * Every statement a change of a code used to run through SPI paid for
 * plan-cache checks, executor start-up of a CTE plan, tuplestores and
 * projections; here each step is the one call that does the work.  What a
 * statement would have given us is kept:
 *
 * - Row locks as FOR [NO KEY] UPDATE [SKIP LOCKED] would take them,
 *   following a row to its newest version in READ COMMITTED and re-checking
 *   it there (what EvalPlanQual does), and failing with a serialization
 *   error under REPEATABLE READ.  Reserve and release first try their
 *   update on the version their snapshot saw, without the lock
 *   (psk_code_try_update): it is made only if that version is still the
 *   newest and unlocked, else they lock as above.
 * - Updates and inserts go through ExecSimpleRelationUpdate/Insert: CHECK
 *   and NOT NULL constraints, index maintenance (HOT when possible), unique
 *   checks and AFTER ROW triggers (psk.codes has none today).
 * - A change and its audit row are in the same transaction (they are made
 *   one after the other in one call), and an error rolls back both.
 *
 * Relations and indexes are found by name on every call (cheap syscache
 * lookups), so dropping and re-creating the extension in a session is safe;
 * column numbers are cached and re-checked by name on every call.
 */
#include "writer.h"

#include "access/attmap.h"
#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "free_hint.h"

/* Columns used here, by name; their numbers are resolved per relation. */
typedef struct Columns
{
	Oid				   relid; /* the relation they were resolved for */
	int				   ncols;
	const char *const *names;
	const Oid		  *types; /* each column's type (a domain's base type) */
	AttrNumber		   attnum[16];
	Oid				   typid[16]; /* the type found, checked once */
} Columns;

static const char *const code_names[CODE_NCOLS] = {
	"id",			"code",
	"pool",			"status",
	"holder_id",	"tester_name",
	"reserved_at",	"expires_at",
	"confirmed_at", "reservation_token",
	"released_at",	"freed_at",
	"note"
};
static const Oid code_types[CODE_NCOLS] = {
	INT8OID,		TEXTOID,		TEXTOID,		TEXTOID,		INT8OID,
	TEXTOID,		TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID
};
static Columns code_cols = { InvalidOid, CODE_NCOLS, code_names, code_types };

static const char *const log_names[LOG_NCOLS] = {
	"id",	   "logged_at", "action",		 "code",		   "code_type",
	"user_id", "user_name", "contact_email", "tester_name",	   "country",
	"region",  "note",		"clearance_id",	 "subject_user_id"
};
static const Oid log_types[LOG_NCOLS] = {
	INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID,
	TEXTOID, TEXTOID,		 TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID
};
static Columns log_cols = { InvalidOid, LOG_NCOLS, log_names, log_types };

static const char *const user_names[USER_NCOLS] = { "id",		 "email",
													"user_name", "is_admin",
													"pool",		 "team_name" };
static const Oid		 user_types[USER_NCOLS] = { INT8OID, TEXTOID, TEXTOID,
													BOOLOID, TEXTOID, TEXTOID };
static Columns user_cols = { InvalidOid, USER_NCOLS, user_names, user_types };

static const char *const session_names[SESSION_NCOLS] = {
	"token_hash", "user_id", "expires_at", "revoked_at"
};
static const Oid session_types[SESSION_NCOLS] = { BYTEAOID, INT8OID,
												  TIMESTAMPTZOID,
												  TIMESTAMPTZOID };
static Columns	 session_cols = { InvalidOid, SESSION_NCOLS, session_names,
								  session_types };

static const char *const request_names[REQ_NCOLS] = {
	"user_id",	  "request_id", "made_at",	   "tester_name",
	"country",	  "code_type",	"how_many",	   "codes",
	"code_types", "tokens",		"reserved_at", "expires_at"
};
static const Oid request_types[REQ_NCOLS] = {
	INT8OID,	  TEXTOID,		TIMESTAMPTZOID, TEXTOID,
	TEXTOID,	  TEXTOID,		INT4OID,		TEXTARRAYOID,
	TEXTARRAYOID, UUIDARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID
};
static Columns request_cols = { InvalidOid, REQ_NCOLS, request_names,
								request_types };

/*
 * Column numbers of rel, from the cache when every cached number still has
 * the expected name, else looked up again (the table was re-created or
 * altered).  Datums are stored as they are, so a column must also have the
 * type they are of, without a typmod to enforce (varchar(5) is refused, as
 * is any type other than the expected one or a domain over it): a table
 * altered under psk is an error, never a wrong row or a crash.
 */
static const AttrNumber *
resolve_columns(Relation rel, Columns *cols)
{
	TupleDesc desc = RelationGetDescr(rel);

	if (cols->relid == RelationGetRelid(rel))
	{
		int i;

		for (i = 0; i < cols->ncols; i++)
		{
			AttrNumber		  n = cols->attnum[i];
			Form_pg_attribute att;

			if (n > desc->natts)
				break;
			att = TupleDescAttr(desc, n - 1);
			if (att->attisdropped ||
				strcmp(NameStr(att->attname), cols->names[i]) != 0 ||
				att->atttypid != cols->typid[i] || att->atttypmod != -1)
				break;
		}
		if (i == cols->ncols)
			return cols->attnum;
	}

	cols->relid = InvalidOid;
	for (int i = 0; i < cols->ncols; i++)
	{
		cols->attnum[i] = InvalidAttrNumber;
		for (int n = 1; n <= desc->natts; n++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, n - 1);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), cols->names[i]) == 0)
				cols->attnum[i] = n;
		}
		if (cols->attnum[i] == InvalidAttrNumber)
			elog(ERROR, "psk: column %s.%s is missing",
				 RelationGetRelationName(rel), cols->names[i]);
		else
		{
			Form_pg_attribute att = TupleDescAttr(desc, cols->attnum[i] - 1);

			if (getBaseType(att->atttypid) != cols->types[i] ||
				att->atttypmod != -1)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("psk: column %s.%s is of type %s, not %s",
								RelationGetRelationName(rel), cols->names[i],
								format_type_with_typemod(att->atttypid,
														 att->atttypmod),
								format_type_be(cols->types[i])),
						 errhint("The table was altered; psk writes it only "
								 "as its install script made it.")));
			cols->typid[i] = att->atttypid;
		}
	}
	cols->relid = RelationGetRelid(rel);
	return cols->attnum;
}

/*
 * The OIDs of psk's relations, by name, found once and kept until any
 * relation or schema changes (an invalidation message of either kind
 * empties the cache): every call of the engine opens several, and a name
 * lookup costs two syscache probes.
 */
#define RELATION_CACHE_SIZE 32

static struct
{
	char name[NAMEDATALEN];
	Oid	 relid;
} relation_cache[RELATION_CACHE_SIZE];
static int	relation_cache_used = 0;
static bool relation_cache_registered = false;

static void
relation_cache_reset(Datum arg, Oid relid)
{
	relation_cache_used = 0;
}

static void
relation_cache_reset_syscache(Datum arg, int cacheid, uint32 hashvalue)
{
	relation_cache_used = 0;
}

Oid
psk_relation(const char *name)
{
	Oid relid = psk_relation_if_exists(name);

	if (!OidIsValid(relid))
		elog(ERROR, "psk: relation psk.%s is missing", name);
	return relid;
}

/*
 * The same, or InvalidOid when psk has no such relation: one made by a
 * later release than the SQL objects installed, as when a session of the
 * old release runs this library until ALTER EXTENSION UPDATE.
 */
Oid
psk_relation_if_exists(const char *name)
{
	Oid relid;

	for (int i = 0; i < relation_cache_used; i++)
		if (strcmp(relation_cache[i].name, name) == 0)
			return relation_cache[i].relid;

	if (!relation_cache_registered)
	{
		CacheRegisterRelcacheCallback(relation_cache_reset, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID,
									  relation_cache_reset_syscache, (Datum) 0);
		relation_cache_registered = true;
	}
	relid = get_relname_relid(name, get_namespace_oid("psk", false));
	if (OidIsValid(relid) && relation_cache_used < RELATION_CACHE_SIZE)
	{
		strlcpy(relation_cache[relation_cache_used].name, name, NAMEDATALEN);
		relation_cache[relation_cache_used].relid = relid;
		relation_cache_used++;
	}
	return relid;
}

const AttrNumber *
psk_code_columns(Relation rel)
{
	return resolve_columns(rel, &code_cols);
}

const AttrNumber *
psk_user_columns(Relation rel)
{
	return resolve_columns(rel, &user_cols);
}

const AttrNumber *
psk_session_columns(Relation rel)
{
	return resolve_columns(rel, &session_cols);
}

/* audit_log.id's identity sequence; a pg_depend scan, so kept per table. */
static Oid
audit_id_sequence(Relation log, AttrNumber id_att)
{
	static Oid for_relid = InvalidOid;
	static Oid seqid = InvalidOid;

	if (for_relid != RelationGetRelid(log))
	{
		for_relid = InvalidOid;
		seqid = getIdentitySequence(RelationGetRelid(log), id_att, false);
		for_relid = RelationGetRelid(log);
	}
	return seqid;
}

/*
 * The CHECK constraints of a table, compiled once per backend.  The
 * executor compiles them again for every statement (and so for every call
 * of ours): reading them back from their stored text and planning them is
 * about an eighth of the backend's time in a reserve + release cycle.
 *
 * The cache is checked against the constraints' stored text on every use,
 * so a changed constraint is compiled afresh.  A table with a constraint
 * that cannot be kept (see not_cacheable) is left to the executor, which
 * compiles its constraints itself, as usual.
 */
typedef struct CheckCache
{
	Oid			  relid;
	int			  ncheck;
	char		**ccbin; /* the constraints' text, to compare */
	ExprState	**exprs; /* NULL: not cacheable */
	MemoryContext cxt;
} CheckCache;

/* A function whose compiled form may go stale: anything but C/internal. */
static bool
is_interpreted_function(Oid funcid, void *context)
{
	HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Oid		  lang;

	if (!HeapTupleIsValid(tuple))
		return true;
	lang = ((Form_pg_proc) GETSTRUCT(tuple))->prolang;
	ReleaseSysCache(tuple);
	return lang != INTERNALlanguageId && lang != ClanguageId;
}

/*
 * May this constraint not be kept compiled across statements?  A hashed IN
 * list builds its hash table in per-statement memory on first use; a SQL
 * or PL function keeps its parsed body (or is inlined by the planner),
 * which CREATE OR REPLACE would leave stale.
 */
static bool not_cacheable(Node *node, void *context);

bool
psk_expr_not_cacheable(Node *node)
{
	return not_cacheable(node, NULL);
}

static bool
not_cacheable(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, ScalarArrayOpExpr) &&
		OidIsValid(((ScalarArrayOpExpr *) node)->hashfuncid))
		return true;
	if (check_functions_in_node(node, is_interpreted_function, context))
		return true;
	return expression_tree_walker(node, not_cacheable, context);
}

static bool
check_cache_is_current(const CheckCache *cache, Relation rel)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	if (cache->cxt == NULL || cache->relid != RelationGetRelid(rel) ||
		constr == NULL || cache->ncheck != constr->num_check)
		return false;
	for (int i = 0; i < cache->ncheck; i++)
		if (strcmp(cache->ccbin[i], constr->check[i].ccbin) != 0)
			return false;
	return true;
}

static ExprState **
cached_check_exprs(CheckCache *cache, Relation rel)
{
	TupleConstr	 *constr = RelationGetDescr(rel)->constr;
	MemoryContext cxt;
	MemoryContext oldcxt;
	int			  ncheck;
	char		**ccbin;
	ExprState	**exprs;

	if (check_cache_is_current(cache, rel))
		return cache->exprs;

	if (cache->cxt != NULL)
		MemoryContextDelete(cache->cxt);
	cache->cxt = NULL;
	if (constr == NULL || constr->num_check == 0)
		return NULL;

	/* Built aside, kept only when complete (an error leaves no half cache). */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "psk check constraints",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	ncheck = constr->num_check;
	ccbin = palloc(ncheck * sizeof(char *));
	exprs = palloc(ncheck * sizeof(ExprState *));
	for (int i = 0; i < ncheck; i++)
		ccbin[i] = pstrdup(constr->check[i].ccbin);
	for (int i = 0; i < ncheck; i++)
	{
		Node *stored = stringToNode(ccbin[i]);
		Expr *expr;

		/* before planning, which may inline a SQL function's body */
		if (not_cacheable(stored, NULL) ||
			not_cacheable((Node *) (expr = expression_planner((Expr *) stored)),
						  NULL))
		{
			exprs = NULL;
			break;
		}
		exprs[i] = ExecInitExpr(expr, NULL);
	}
	MemoryContextSwitchTo(oldcxt);

	MemoryContextSetParent(cxt, CacheMemoryContext);
	cache->cxt = cxt;
	cache->relid = RelationGetRelid(rel);
	cache->ncheck = ncheck;
	cache->ccbin = ccbin;
	cache->exprs = exprs;
	return exprs;
}

static CheckCache codes_checks;
static CheckCache log_checks;
static CheckCache request_checks;

static ResultRelInfo *
open_result_relation(EState *estate, const char *name, Index rti,
					 CheckCache *checks)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	Relation	   rel = table_open(psk_relation(name), RowExclusiveLock);

	InitResultRelInfo(rri, rel, rti, NULL, 0);
	rri->ri_ConstraintExprs = cached_check_exprs(checks, rel);
	psk_open_indices(rri);
	/* Found by ExecGetTriggerResultRel when AFTER triggers fire. */
	estate->es_opened_result_relations =
		lappend(estate->es_opened_result_relations, rri);
	return rri;
}

/*
 * psk.audit_log is partitioned by logged_at (partitions.c makes and drops
 * the partitions).  The parent is opened as a ModifyTable node opens the
 * target of an INSERT, without its (partitioned) indexes.  A row goes to
 * the partition log_partition finds for it; a row past every partition
 * goes to the default partition, so a missing partition never fails a
 * change.
 */
static ResultRelInfo *
open_log(PskWriter *w, EState *estate, Index rti)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	Relation rel = table_open(psk_relation("audit_log"), RowExclusiveLock);

	InitResultRelInfo(rri, rel, rti, NULL, 0);
	w->log_partitioned = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE;
	w->log_part = NULL;
	w->log_mtstate = NULL;
	w->log_proute = NULL;
	if (!w->log_partitioned)
	{
		/* not partitioned (a table made before 0.3.0 and not updated) */
		rri->ri_ConstraintExprs = cached_check_exprs(&log_checks, rel);
		psk_open_indices(rri);
	}
	estate->es_opened_result_relations =
		lappend(estate->es_opened_result_relations, rri);
	return rri;
}

/*
 * The partition of psk.audit_log that a row logged at ts belongs in, found
 * as the executor's tuple routing finds it (a binary search of the range
 * bounds, else the default partition), or InvalidOid unless the table is
 * partitioned as psk makes it: by range of logged_at alone.
 */
static Oid
log_partition_for(Relation parent, AttrNumber logged_at, TimestampTz ts)
{
	PartitionKey	   key = RelationGetPartitionKey(parent);
	PartitionDesc	   desc;
	PartitionBoundInfo bounds;
	Datum			   value = TimestampTzGetDatum(ts);
	bool			   equal;
	int				   index = -1;

	if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE ||
		key->partnatts != 1 || key->partattrs[0] != logged_at ||
		key->parttypid[0] != TIMESTAMPTZOID)
		return InvalidOid;
	desc = RelationGetPartitionDesc(parent, true);
	bounds = desc->boundinfo;
	if (bounds == NULL)
		return InvalidOid;
	if (bounds->ndatums > 0)
		index = bounds->indexes[partition_range_datum_bsearch(
									key->partsupfunc, key->partcollation,
									bounds, 1, &value, &equal) +
								1];
	if (index < 0)
		index = bounds->default_index;
	return index >= 0 ? desc->oids[index] : InvalidOid;
}

/*
 * The partition a row logged at ts goes to, opened with its indexes.  The
 * executor's tuple routing (as COPY and logical replication use it) costs
 * a partition directory, a dispatch tree and their teardown on every call,
 * about a twentieth of a reserve + release cycle for the one partition its
 * rows go to; so the partition is looked up here and opened as any table
 * psk writes (the parent first, then the partition: the executor's lock
 * order).  Its partition constraint is still checked on insert.  A second
 * partition in one call, a partition with its own partitions or of another
 * kind, or one whose columns are laid out unlike the parent's, is left to
 * the executor's routing.
 */
static ResultRelInfo *
log_partition(PskWriter *w, TimestampTz ts)
{
	Relation parent = w->log->ri_RelationDesc;
	Oid		 leaf = log_partition_for(parent, w->log_att[LOG_LOGGED_AT], ts);

	if (w->log_part != NULL &&
		RelationGetRelid(w->log_part->ri_RelationDesc) == leaf)
		return w->log_part;
	if (OidIsValid(leaf) && w->log_part == NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(w->estate->es_query_cxt);
		Relation	  rel = table_open(leaf, RowExclusiveLock);

		if (rel->rd_rel->relkind == RELKIND_RELATION &&
			build_attrmap_by_name_if_req(RelationGetDescr(parent),
										 RelationGetDescr(rel)) == NULL)
		{
			ResultRelInfo *rri = makeNode(ResultRelInfo);

			InitResultRelInfo(rri, rel, w->log->ri_RangeTableIndex, w->log, 0);
			rri->ri_ConstraintExprs = cached_check_exprs(&log_checks, rel);
			psk_open_indices(rri);
			w->estate->es_opened_result_relations =
				lappend(w->estate->es_opened_result_relations, rri);
			w->log_part = rri;
			MemoryContextSwitchTo(oldcxt);
			return rri;
		}
		table_close(rel, NoLock);
		MemoryContextSwitchTo(oldcxt);
	}

	if (w->log_proute == NULL)
	{
		ModifyTableState *mtstate = makeNode(ModifyTableState);

		mtstate->ps.plan = NULL;
		mtstate->ps.state = w->estate;
		mtstate->operation = CMD_INSERT;
		mtstate->mt_nrels = 1;
		mtstate->resultRelInfo = w->log;
		mtstate->rootResultRelInfo = w->log;
		w->log_mtstate = mtstate;
		w->log_proute = ExecSetupPartitionTupleRouting(w->estate, parent);
	}
	return ExecFindPartition(w->log_mtstate, w->log, w->log_proute, w->log_row,
							 w->estate);
}

static RangeTblEntry *
result_rte(Relation rel)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	return rte;
}

/*
 * Start a call: see the changes made before it in this transaction (as SPI
 * does before each statement) and take a fresh snapshot in READ COMMITTED.
 */
static void
writer_start(PskWriter *w, bool with_codes, bool with_requests)
{
	EState		 *estate;
	MemoryContext oldcxt;
	List		 *rtable = NIL;

	/* Below SPI nothing else checks it: before any change. */
	psk_require_writable("a change to psk");
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	w->estate = estate = CreateExecutorState();
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);
	estate->es_snapshot = GetActiveSnapshot();
	estate->es_output_cid = GetCurrentCommandId(true);

	w->codes = NULL;
	if (with_codes)
	{
		w->codes = open_result_relation(estate, "codes", 1, &codes_checks);
		rtable = lappend(rtable, result_rte(w->codes->ri_RelationDesc));
	}
	w->log = open_log(w, estate, list_length(rtable) + 1);
	rtable = lappend(rtable, result_rte(w->log->ri_RelationDesc));
	w->requests = NULL;
	if (with_requests)
	{
		w->requests =
			open_result_relation(estate, "reserve_requests",
								 list_length(rtable) + 1, &request_checks);
		rtable = lappend(rtable, result_rte(w->requests->ri_RelationDesc));
	}
	ExecInitRangeTable(estate, rtable);

	w->log_att = resolve_columns(w->log->ri_RelationDesc, &log_cols);
	w->log_id_seq =
		audit_id_sequence(w->log->ri_RelationDesc, w->log_att[LOG_ID]);
	w->log_row =
		ExecInitExtraTupleSlot(estate,
							   RelationGetDescr(w->log->ri_RelationDesc),
							   &TTSOpsVirtual);
	if (with_codes)
	{
		w->code_att = resolve_columns(w->codes->ri_RelationDesc, &code_cols);
		w->code_slot =
			ExecInitExtraTupleSlot(estate,
								   RelationGetDescr(w->codes->ri_RelationDesc),
								   table_slot_callbacks(
									   w->codes->ri_RelationDesc));
		w->new_code =
			ExecInitExtraTupleSlot(estate,
								   RelationGetDescr(w->codes->ri_RelationDesc),
								   &TTSOpsVirtual);
	}
	if (with_requests)
	{
		Relation rel = w->requests->ri_RelationDesc;

		w->request_att = resolve_columns(rel, &request_cols);
		w->request_slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel),
												 table_slot_callbacks(rel));
		w->new_request = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel),
												&TTSOpsVirtual);
	}
	w->now = GetCurrentTransactionStartTimestamp(); /* now() */
	w->new_codes = NIL;
	MemoryContextSwitchTo(oldcxt);

	AfterTriggerBeginQuery();
}

void
psk_writer_begin(PskWriter *w)
{
	writer_start(w, true, false);
}

void
psk_audit_writer_begin(PskWriter *w)
{
	writer_start(w, false, false);
}

void
psk_writer_begin_requests(PskWriter *w)
{
	writer_start(w, true, true);
}

/*
 * ExecCloseIndices, but the indexes' locks kept to the end of the
 * transaction, as the tables' are.  Releasing each one (ten or so a call)
 * cost more than the whole lookup of a code; a REINDEX waits for our
 * transaction anyway, on the table's lock.
 */
static void
close_indices(ResultRelInfo *rri)
{
	for (int i = 0; i < rri->ri_NumIndices; i++)
		if (rri->ri_IndexRelationDescs[i] != NULL)
			index_close(rri->ri_IndexRelationDescs[i], NoLock);
}

/* Fire the queued AFTER triggers, if any, and clean up. */
void
psk_writer_end(PskWriter *w)
{
	AfterTriggerEndQuery(w->estate);
	psk_audit_remember_codes(w);

	if (w->codes != NULL)
	{
		close_indices(w->codes);
		table_close(w->codes->ri_RelationDesc, NoLock);
	}
	if (w->log_part != NULL)
	{
		close_indices(w->log_part);
		table_close(w->log_part->ri_RelationDesc, NoLock);
	}
	if (w->log_proute != NULL)
		ExecCleanupTupleRouting(w->log_mtstate, w->log_proute);
	if (!w->log_partitioned)
		close_indices(w->log);
	w->log_part = NULL;
	w->log_proute = NULL;
	w->log_mtstate = NULL;
	table_close(w->log->ri_RelationDesc, NoLock);
	if (w->requests != NULL)
	{
		close_indices(w->requests);
		table_close(w->requests->ri_RelationDesc, NoLock);
	}
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	PopActiveSnapshot();
}

/*
 * Lock the row version in slot (and, in READ COMMITTED, its newest version
 * if it was updated meanwhile) in mode; the slot then holds the locked
 * version.  Returns false when the row is gone, or locked by others and
 * wait is false.
 */
bool
psk_lock_row(Relation rel, TupleTableSlot *slot, LockTupleMode mode, bool wait)
{
	TM_FailureData	tmfd;
	TM_Result		result;
	ItemPointerData tid = slot->tts_tid;

	result = table_tuple_lock(rel, &tid, GetActiveSnapshot(), slot,
							  GetCurrentCommandId(false), mode,
							  wait ? LockWaitBlock : LockWaitSkip,
							  IsolationUsesXactSnapshot()
								  ? 0
								  : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							  &tmfd);
	switch (result)
	{
		case TM_Ok:
			return true;
		case TM_WouldBlock: /* SKIP LOCKED */
		case TM_Deleted:
		case TM_SelfModified: /* changed earlier in this very call */
			return false;
		case TM_Updated:
			/* Only without FIND_LAST_VERSION: REPEATABLE READ or above. */
			ereport(
				ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg(
					 "could not serialize access due to concurrent update")));
			break;
		default:
			elog(ERROR, "psk: unexpected result %d locking a row",
				 (int) result);
	}
	return false;
}

int64
psk_slot_int8(TupleTableSlot *slot, AttrNumber att, bool *isnull)
{
	Datum d = slot_getattr(slot, att, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

bool
psk_slot_text_equals(TupleTableSlot *slot, AttrNumber att, const char *s)
{
	bool  isnull;
	Datum d = slot_getattr(slot, att, &isnull);
	text *t;

	if (isnull)
		return false;
	t = DatumGetTextPP(d);
	return VARSIZE_ANY_EXHDR(t) == strlen(s) &&
		   memcmp(VARDATA_ANY(t), s, strlen(s)) == 0;
}

/* A text column as a C string; NULL for NULL. */
char *
psk_slot_cstring(TupleTableSlot *slot, AttrNumber att)
{
	bool  isnull;
	Datum d = slot_getattr(slot, att, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

bool
psk_find_code(PskWriter *w, const char *code)
{
	Relation code_key =
		index_open(psk_relation("codes_code_key"), AccessShareLock);
	char		 *wanted = psk_normalize_code(code, DEFAULT_COLLATION_OID);
	ScanKeyData	  key;
	IndexScanDesc scan;
	bool		  found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(wanted));
	key.sk_collation = code_key->rd_indcollation[0];
	scan = index_beginscan(w->codes->ri_RelationDesc, code_key,
						   GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, w->code_slot);
	index_endscan(scan);
	index_close(code_key, NoLock);
	return found;
}

bool
psk_lock_code(PskWriter *w, const char *code, LockTupleMode mode)
{
	/* Wait for whoever holds it locked; then look at its newest version. */
	return psk_find_code(w, code) &&
		   psk_lock_row(w->codes->ri_RelationDesc, w->code_slot, mode, true);
}

TupleTableSlot *
psk_code_change(PskWriter *w)
{
	TupleTableSlot *slot = w->new_code;
	int				natts = slot->tts_tupleDescriptor->natts;

	slot_getallattrs(w->code_slot);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, w->code_slot->tts_values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, w->code_slot->tts_isnull, natts * sizeof(bool));
	return slot;
}

/*
 * A free code has an entry in the free-code index, new unless the update
 * was HOT: lower the pool's hint to it, now that it is in the index and
 * before the commit (free_hint.c).
 */
static void
code_updated(PskWriter *w)
{
	TupleTableSlot	 *row = w->new_code;
	const AttrNumber *att = w->code_att;

	if (psk_slot_text_equals(row, att[CODE_STATUS], "CAN_BE_USED"))
	{
		PskFreeKey key;
		bool	   isnull;
		Datum	   freed_at = slot_getattr(row, att[CODE_FREED_AT], &isnull);
		char	  *pool = psk_slot_cstring(row, att[CODE_POOL]);

		key.freed = !isnull;
		key.freed_at = isnull ? 0 : DatumGetTimestampTz(freed_at);
		key.id = psk_slot_int8(row, att[CODE_ID], &isnull);
		psk_free_hint_lower(pool, &key);
		pfree(pool);
	}
}

void
psk_code_update(PskWriter *w)
{
	ExecStoreVirtualTuple(w->new_code);
	ExecSimpleRelationUpdate(w->codes, w->estate, NULL, w->code_slot,
							 w->new_code);
	code_updated(w);
}

/*
 * psk_code_update for a row that is not locked: ExecSimpleRelationUpdate's
 * steps, with heap_update told not to wait.  It succeeds (TM_Ok) only when
 * no one has changed or locked the row since the snapshot, so the version
 * the caller checked is the newest, as a lock would have made sure, and the
 * lock's own WAL record and page change are saved.  Otherwise nothing has
 * changed: the caller locks the row and looks again.  BEFORE ROW triggers
 * want a locked row (GetTupleForTrigger); with any, the caller locks first.
 */
bool
psk_code_try_update(PskWriter *w)
{
	ResultRelInfo  *rri = w->codes;
	Relation		rel = rri->ri_RelationDesc;
	TupleTableSlot *row = w->new_code;
	ItemPointer		tid = &w->code_slot->tts_tid;
	TM_FailureData	tmfd;
	LockTupleMode	lockmode;
	bool			update_indexes;
	List		   *recheck = NIL;

	if (rri->ri_TrigDesc != NULL && rri->ri_TrigDesc->trig_update_before_row)
		return false;
	ExecStoreVirtualTuple(row);
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);
	if (rel->rd_att->constr != NULL)
	{
		if (rel->rd_att->constr->has_generated_stored)
			ExecComputeStoredGenerated(rri, w->estate, row, CMD_UPDATE);
		ExecConstraints(rri, row, w->estate);
	}
	if (table_tuple_update(rel, tid, row, GetCurrentCommandId(true),
						   w->estate->es_snapshot, InvalidSnapshot,
						   false /* no wait */, &tmfd, &lockmode,
						   &update_indexes) != TM_Ok)
		return false;
	if (rri->ri_NumIndices > 0 && update_indexes)
		recheck =
			ExecInsertIndexTuples(rri, row, w->estate, true, false, NULL, NIL);
	ExecARUpdateTriggers(w->estate, rri, NULL, NULL, tid, NULL, row, recheck,
						 NULL, false);
	list_free(recheck);
	code_updated(w);
	return true;
}

void
psk_code_delete(PskWriter *w)
{
	ExecSimpleRelationDelete(w->codes, w->estate, NULL, w->code_slot);
}

void
psk_code_free(PskWriter *w, const char *status)
{
	psk_code_set(w, CODE_STATUS, CStringGetTextDatum(status), false);
	psk_code_set(w, CODE_HOLDER, (Datum) 0, true);
	psk_code_set(w, CODE_TESTER, (Datum) 0, true);
	psk_code_set(w, CODE_TOKEN, (Datum) 0, true);
	psk_code_set(w, CODE_RESERVED_AT, (Datum) 0, true);
	psk_code_set(w, CODE_EXPIRES_AT, (Datum) 0, true);
	psk_code_set(w, CODE_CONFIRMED_AT, (Datum) 0, true);
	if (strcmp(status, "CAN_BE_USED") == 0)
		psk_code_set(w, CODE_FREED_AT, TimestampTzGetDatum(w->now), false);
}

void
psk_audit_begin(PskWriter *w)
{
	TupleTableSlot *slot = w->log_row;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true,
		   slot->tts_tupleDescriptor->natts * sizeof(bool));
}

void
psk_audit_code(PskWriter *w, const PskUser *actor)
{
	TupleTableSlot *old = w->code_slot;
	bool			isnull;
	Datum			tester;

	psk_audit_begin(w);
	psk_audit_set(w, LOG_CODE,
				  slot_getattr(old, w->code_att[CODE_CODE], &isnull));
	psk_audit_set(w, LOG_CODE_TYPE,
				  slot_getattr(old, w->code_att[CODE_POOL], &isnull));
	psk_audit_actor(w, actor);
	tester = slot_getattr(old, w->code_att[CODE_TESTER], &isnull);
	if (!isnull)
		psk_audit_set(w, LOG_TESTER, tester);
}

void
psk_audit_actor(PskWriter *w, const PskUser *actor)
{
	psk_audit_set(w, LOG_USER_ID, Int64GetDatum(actor->id));
	psk_audit_set(w, LOG_USER_NAME, CStringGetTextDatum(actor->user_name));
	psk_audit_set(w, LOG_EMAIL, CStringGetTextDatum(actor->email));
}

void
psk_audit_append(PskWriter *w, const char *action)
{
	psk_audit_append_at(w, action, w->now);
}

void
psk_audit_append_at(PskWriter *w, const char *action, TimestampTz logged_at)
{
	/* What the previous row's constraints and index entries left behind. */
	ResetPerTupleExprContext(w->estate);
	psk_audit_set(w, LOG_ID,
				  Int64GetDatum(nextval_internal(w->log_id_seq, false)));
	psk_audit_set(w, LOG_LOGGED_AT, TimestampTzGetDatum(logged_at));
	psk_audit_set(w, LOG_ACTION, CStringGetTextDatum(action));
	psk_audit_remember(w, action);
	ExecStoreVirtualTuple(w->log_row);
	if (!w->log_partitioned)
		ExecSimpleRelationInsert(w->log, w->estate, w->log_row);
	else
	{
		ResultRelInfo  *part = log_partition(w, logged_at);
		TupleTableSlot *row = w->log_row;

		/* A partition made from another table may order its columns so. */
		if (part->ri_RootToPartitionMap != NULL)
			row = execute_attr_map_slot(part->ri_RootToPartitionMap->attrMap,
										row, part->ri_PartitionTupleSlot);
		/* Its CHECK constraints compiled once per backend, as above. */
		if (part->ri_ConstraintExprs == NULL)
			part->ri_ConstraintExprs =
				cached_check_exprs(&log_checks, part->ri_RelationDesc);
		ExecSimpleRelationInsert(part, w->estate, row);
	}
}
