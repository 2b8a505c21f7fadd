/*
 * engine.c
 *		The hot path below SPI: reserving and releasing codes with index
 *		scans, row locks and the executor's simple-relation update and
 *		insert, the way logical replication applies a change.
 *
 * Every statement psk_reserve and psk_release used to run through SPI paid
 * for plan-cache checks, executor start-up of a CTE plan, tuplestores and
 * projections; here each step is the one call that does the work.  What a
 * statement would have given us is kept:
 *
 * - Row locks as FOR NO KEY UPDATE SKIP LOCKED (reserve) and FOR NO KEY
 *   UPDATE (release) would take them, following a row to its newest version
 *   in READ COMMITTED and re-checking it there (what EvalPlanQual does), and
 *   failing with a serialization error under REPEATABLE READ.
 * - Updates and inserts go through ExecSimpleRelationUpdate/Insert: CHECK
 *   and NOT NULL constraints, index maintenance (HOT when possible), unique
 *   checks and AFTER ROW triggers, hence the holder_id foreign key check.
 * - A change and its audit row are in the same transaction (they are made
 *   one after the other in this call), and an error rolls back both.
 *
 * Relations and indexes are found by name on every call (cheap syscache
 * lookups), so dropping and re-creating the extension in a session is safe;
 * column numbers are cached and re-checked by name on every call.
 */
#include "psk.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* Columns used here, by name; their numbers are resolved per relation. */
typedef struct Columns
{
	Oid			relid;			/* the relation they were resolved for */
	int			ncols;
	const char *const *names;
	AttrNumber	attnum[16];
} Columns;

enum
{
	CODE_ID, CODE_CODE, CODE_POOL, CODE_STATUS, CODE_HOLDER, CODE_TESTER,
	CODE_RESERVED_AT, CODE_EXPIRES_AT, CODE_CONFIRMED_AT, CODE_TOKEN,
	CODE_RELEASED_AT, CODE_FREED_AT, CODE_NOTE, CODE_NCOLS
};
static const char *const code_names[CODE_NCOLS] = {
	"id", "code", "pool", "status", "holder_id", "tester_name",
	"reserved_at", "expires_at", "confirmed_at", "reservation_token",
	"released_at", "freed_at", "note"
};
static Columns code_cols = {InvalidOid, CODE_NCOLS, code_names};

enum
{
	LOG_ID, LOG_LOGGED_AT, LOG_ACTION, LOG_CODE, LOG_CODE_TYPE, LOG_USER_ID,
	LOG_USER_NAME, LOG_EMAIL, LOG_TESTER, LOG_COUNTRY, LOG_REGION, LOG_NOTE,
	LOG_CLEARANCE, LOG_NCOLS
};
static const char *const log_names[LOG_NCOLS] = {
	"id", "logged_at", "action", "code", "code_type", "user_id",
	"user_name", "contact_email", "tester_name", "country", "region", "note",
	"clearance_id"
};
static Columns log_cols = {InvalidOid, LOG_NCOLS, log_names};

enum
{
	USER_ID, USER_EMAIL, USER_NAME, USER_IS_ADMIN, USER_POOL, USER_NCOLS
};
static const char *const user_names[USER_NCOLS] = {
	"id", "email", "user_name", "is_admin", "pool"
};
static Columns user_cols = {InvalidOid, USER_NCOLS, user_names};

/*
 * Column numbers of rel, from the cache when every cached number still has
 * the expected name, else looked up again (the table was re-created or
 * altered).
 */
static const AttrNumber *
resolve_columns(Relation rel, Columns *cols)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (cols->relid == RelationGetRelid(rel))
	{
		int			i;

		for (i = 0; i < cols->ncols; i++)
		{
			AttrNumber	n = cols->attnum[i];

			if (n > desc->natts ||
				TupleDescAttr(desc, n - 1)->attisdropped ||
				strcmp(NameStr(TupleDescAttr(desc, n - 1)->attname),
					   cols->names[i]) != 0)
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
	}
	cols->relid = RelationGetRelid(rel);
	return cols->attnum;
}

static Oid
psk_relation(const char *name)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("psk", false));

	if (!OidIsValid(relid))
		elog(ERROR, "psk: relation psk.%s is missing", name);
	return relid;
}

/*
 * One call's worth of executor state: psk.codes and psk.audit_log as result
 * relations with their indexes open, as a ModifyTable node would have them.
 */
typedef struct Writer
{
	EState	   *estate;
	ResultRelInfo *codes;
	ResultRelInfo *log;
	const AttrNumber *code_att;
	const AttrNumber *log_att;
	Oid			log_id_seq;		/* audit_log.id's identity sequence */
	TupleTableSlot *code_slot;	/* a code as locked */
	TupleTableSlot *new_code;	/* its new version */
	TupleTableSlot *log_row;
	TimestampTz now;
} Writer;

/* audit_log.id's identity sequence; a pg_depend scan, so kept per table. */
static Oid
audit_id_sequence(Relation log, AttrNumber id_att)
{
	static Oid	for_relid = InvalidOid;
	static Oid	seqid = InvalidOid;

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
	Oid			relid;
	int			ncheck;
	char	  **ccbin;			/* the constraints' text, to compare */
	ExprState **exprs;			/* NULL: not cacheable */
	MemoryContext cxt;
} CheckCache;

/* A function whose compiled form may go stale: anything but C/internal. */
static bool
is_interpreted_function(Oid funcid, void *context)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Oid			lang;

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
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	MemoryContext cxt;
	MemoryContext oldcxt;
	int			ncheck;
	char	  **ccbin;
	ExprState **exprs;

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
		Node	   *stored = stringToNode(ccbin[i]);
		Expr	   *expr;

		/* before planning, which may inline a SQL function's body */
		if (not_cacheable(stored, NULL) ||
			not_cacheable((Node *) (expr = expression_planner((Expr *) stored)), NULL))
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

static ResultRelInfo *
open_result_relation(EState *estate, const char *name, Index rti,
					 CheckCache *checks)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	Relation	rel = table_open(psk_relation(name), RowExclusiveLock);

	InitResultRelInfo(rri, rel, rti, NULL, 0);
	rri->ri_ConstraintExprs = cached_check_exprs(checks, rel);
	ExecOpenIndices(rri, false);
	/* Found by ExecGetTriggerResultRel when AFTER triggers fire. */
	estate->es_opened_result_relations =
		lappend(estate->es_opened_result_relations, rri);
	return rri;
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
writer_begin(Writer *w)
{
	EState	   *estate;
	MemoryContext oldcxt;

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	w->estate = estate = CreateExecutorState();
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);
	estate->es_snapshot = GetActiveSnapshot();
	estate->es_output_cid = GetCurrentCommandId(true);

	w->codes = open_result_relation(estate, "codes", 1, &codes_checks);
	w->log = open_result_relation(estate, "audit_log", 2, &log_checks);
	ExecInitRangeTable(estate, list_make2(result_rte(w->codes->ri_RelationDesc),
										  result_rte(w->log->ri_RelationDesc)));

	w->code_att = resolve_columns(w->codes->ri_RelationDesc, &code_cols);
	w->log_att = resolve_columns(w->log->ri_RelationDesc, &log_cols);
	w->log_id_seq = audit_id_sequence(w->log->ri_RelationDesc, w->log_att[LOG_ID]);

	w->code_slot = ExecInitExtraTupleSlot(estate,
										  RelationGetDescr(w->codes->ri_RelationDesc),
										  table_slot_callbacks(w->codes->ri_RelationDesc));
	w->new_code = ExecInitExtraTupleSlot(estate,
										 RelationGetDescr(w->codes->ri_RelationDesc),
										 &TTSOpsVirtual);
	w->log_row = ExecInitExtraTupleSlot(estate,
										RelationGetDescr(w->log->ri_RelationDesc),
										&TTSOpsVirtual);
	w->now = GetCurrentTransactionStartTimestamp();	/* now() */
	MemoryContextSwitchTo(oldcxt);

	AfterTriggerBeginQuery();
}

/* Fire the queued AFTER triggers (the foreign key check) and clean up. */
static void
writer_end(Writer *w)
{
	AfterTriggerEndQuery(w->estate);

	ExecCloseIndices(w->codes);
	ExecCloseIndices(w->log);
	table_close(w->codes->ri_RelationDesc, NoLock);
	table_close(w->log->ri_RelationDesc, NoLock);
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
static bool
lock_row(Relation rel, TupleTableSlot *slot, LockTupleMode mode, bool wait)
{
	TM_FailureData tmfd;
	TM_Result	result;
	ItemPointerData tid = slot->tts_tid;

	result = table_tuple_lock(rel, &tid, GetActiveSnapshot(), slot,
							  GetCurrentCommandId(false), mode,
							  wait ? LockWaitBlock : LockWaitSkip,
							  IsolationUsesXactSnapshot() ? 0 :
							  TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							  &tmfd);
	switch (result)
	{
		case TM_Ok:
			return true;
		case TM_WouldBlock:		/* SKIP LOCKED */
		case TM_Deleted:
		case TM_SelfModified:	/* changed earlier in this very call */
			return false;
		case TM_Updated:
			/* Only without FIND_LAST_VERSION: REPEATABLE READ or above. */
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
			break;
		default:
			elog(ERROR, "psk: unexpected result %d locking a row", (int) result);
	}
	return false;
}

static int64
slot_int8(TupleTableSlot *slot, AttrNumber att, bool *isnull)
{
	Datum		d = slot_getattr(slot, att, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

static bool
slot_text_equals(TupleTableSlot *slot, AttrNumber att, const char *s)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);
	text	   *t;

	if (isnull)
		return false;
	t = DatumGetTextPP(d);
	return VARSIZE_ANY_EXHDR(t) == strlen(s) &&
		memcmp(VARDATA_ANY(t), s, strlen(s)) == 0;
}

/*
 * The user with this e-mail (any case), optionally locked FOR KEY SHARE
 * (what the holder_id foreign key takes anyway, taken first so that a user
 * deleted meanwhile is an unknown user rather than a foreign-key error).
 * Raises not_allowed for an unknown user or an admin (psk_check_user).
 */
static void
find_user(const char *given_email, bool lock, PskUser *user)
{
	char	   *email = psk_lower(given_email);
	Relation	rel = table_open(psk_relation("users"), RowShareLock);
	Relation	idx = index_open(psk_relation("users_email_key"), AccessShareLock);
	const AttrNumber *att = resolve_columns(rel, &user_cols);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found;
	bool		isnull;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(email));
	key.sk_collation = idx->rd_indcollation[0];
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);

	/* The locked version may have a new e-mail: look again. */
	if (found && lock)
		found = lock_row(rel, slot, LockTupleKeyShare, true) &&
			slot_text_equals(slot, att[USER_EMAIL], email);

	if (found)
	{
		user->id = slot_int8(slot, att[USER_ID], &isnull);
		user->is_admin = DatumGetBool(slot_getattr(slot, att[USER_IS_ADMIN], &isnull));
		user->email = TextDatumGetCString(slot_getattr(slot, att[USER_EMAIL], &isnull));
		user->user_name = TextDatumGetCString(slot_getattr(slot, att[USER_NAME], &isnull));
		user->pool = TextDatumGetCString(slot_getattr(slot, att[USER_POOL], &isnull));
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);

	psk_check_user(given_email, found ? user : NULL);
}

/* Is code_id valid in country_id?  One probe of code_countries' key. */
static bool
code_in_country(Relation cc, Relation cc_key, TupleTableSlot *slot,
				int64 code_id, int64 country_id)
{
	ScanKeyData key[2];
	IndexScanDesc scan;
	bool		found;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(code_id));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(country_id));
	scan = index_beginscan(cc, cc_key, GetActiveSnapshot(), 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	return found;
}

/*
 * An audit row is built in w->log_row: log_begin, log_set for each field
 * given (the others are NULL), then log_append.
 */
static void
log_begin(Writer *w)
{
	TupleTableSlot *slot = w->log_row;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
}

static inline void
log_set(Writer *w, int col, Datum value)
{
	w->log_row->tts_values[w->log_att[col] - 1] = value;
	w->log_row->tts_isnull[w->log_att[col] - 1] = false;
}

static void
log_append(Writer *w, const char *action)
{
	log_set(w, LOG_ID, Int64GetDatum(nextval_internal(w->log_id_seq, false)));
	log_set(w, LOG_LOGGED_AT, TimestampTzGetDatum(w->now));
	log_set(w, LOG_ACTION, CStringGetTextDatum(action));
	ExecStoreVirtualTuple(w->log_row);
	ExecSimpleRelationInsert(w->log, w->estate, w->log_row);
}

/* Start the new version of the locked code in w->code_slot as a copy. */
static TupleTableSlot *
new_version(Writer *w)
{
	TupleTableSlot *slot = w->new_code;
	int			natts = slot->tts_tupleDescriptor->natts;

	slot_getallattrs(w->code_slot);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, w->code_slot->tts_values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, w->code_slot->tts_isnull, natts * sizeof(bool));
	return slot;
}

static inline void
set_column(TupleTableSlot *slot, AttrNumber att, Datum value, bool isnull)
{
	slot->tts_values[att - 1] = value;
	slot->tts_isnull[att - 1] = isnull;
}

/* What psk_reserve_codes asks for. */
typedef struct Request
{
	const char *tester;
	int			how_many;
	bool		has_country;
	int64		country_id;
	const char *country;
	const char *region;
} Request;

/*
 * Reserve up to req->how_many codes of pool for user, least recently used
 * first: an ordered scan of the free-codes index, skipping rows others hold
 * locked.  Returns how many, stored in out[].
 */
static int
reserve_from_pool(Writer *w, const PskUser *user, const Request *req,
				  const char *pool, int how_many, PskReserved *out)
{
	Relation	codes = w->codes->ri_RelationDesc;
	const AttrNumber *att = w->code_att;
	Relation	free_idx = index_open(psk_relation("codes_free_lru_idx"), AccessShareLock);
	Relation	cc = NULL;
	Relation	cc_key = NULL;
	TupleTableSlot *cc_slot = NULL;
	bool		check_country = req->has_country && strcmp(pool, "COMMON") != 0;
	ScanKeyData key;
	IndexScanDesc scan;
	int			got = 0;

	if (check_country)
	{
		cc = table_open(psk_relation("code_countries"), AccessShareLock);
		cc_key = index_open(psk_relation("code_countries_pkey"), AccessShareLock);
		cc_slot = table_slot_create(cc, NULL);
	}

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(pool));
	key.sk_collation = free_idx->rd_indcollation[0];
	scan = index_beginscan(codes, free_idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	while (got < how_many &&
		   index_getnext_slot(scan, ForwardScanDirection, w->code_slot))
	{
		TupleTableSlot *slot;
		PskReserved *r = &out[got];
		bool		isnull;
		int64		code_id;

		if (check_country &&
			!code_in_country(cc, cc_key, cc_slot,
							 slot_int8(w->code_slot, att[CODE_ID], &isnull),
							 req->country_id))
			continue;

		if (!lock_row(codes, w->code_slot, LockTupleNoKeyExclusive, false))
			continue;

		/* The locked version may be newer than the one scanned: re-check. */
		code_id = slot_int8(w->code_slot, att[CODE_ID], &isnull);
		if (!slot_text_equals(w->code_slot, att[CODE_STATUS], "CAN_BE_USED") ||
			!slot_text_equals(w->code_slot, att[CODE_POOL], pool) ||
			(check_country &&
			 !code_in_country(cc, cc_key, cc_slot, code_id, req->country_id)))
			continue;

		r->code = TextDatumGetCString(slot_getattr(w->code_slot, att[CODE_CODE], &isnull));
		r->pool = pool;
		if (!pg_strong_random(r->token.data, UUID_LEN))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random reservation token")));
		r->token.data[6] = (r->token.data[6] & 0x0f) | 0x40;	/* version 4 */
		r->token.data[8] = (r->token.data[8] & 0x3f) | 0x80;	/* RFC 4122 */
		r->reserved_at = w->now;
		r->expires = psk_reservation_ttl > 0;
		r->expires_at = r->expires ?
			TimestampTzPlusMilliseconds(w->now, (int64) psk_reservation_ttl * 1000) : 0;

		slot = new_version(w);
		set_column(slot, att[CODE_STATUS], CStringGetTextDatum("RESERVED"), false);
		set_column(slot, att[CODE_HOLDER], Int64GetDatum(user->id), false);
		set_column(slot, att[CODE_TESTER], CStringGetTextDatum(req->tester), false);
		set_column(slot, att[CODE_RESERVED_AT], TimestampTzGetDatum(w->now), false);
		set_column(slot, att[CODE_RELEASED_AT], (Datum) 0, true);
		set_column(slot, att[CODE_EXPIRES_AT], TimestampTzGetDatum(r->expires_at),
				   !r->expires);
		set_column(slot, att[CODE_TOKEN], UUIDPGetDatum(&r->token), false);
		ExecStoreVirtualTuple(slot);
		ExecSimpleRelationUpdate(w->codes, w->estate, NULL, w->code_slot, slot);

		log_begin(w);
		log_set(w, LOG_CODE, CStringGetTextDatum(r->code));
		log_set(w, LOG_CODE_TYPE, CStringGetTextDatum(pool));
		log_set(w, LOG_USER_ID, Int64GetDatum(user->id));
		log_set(w, LOG_USER_NAME, CStringGetTextDatum(user->user_name));
		log_set(w, LOG_EMAIL, CStringGetTextDatum(user->email));
		log_set(w, LOG_TESTER, CStringGetTextDatum(req->tester));
		if (req->has_country)
		{
			log_set(w, LOG_COUNTRY, CStringGetTextDatum(req->country));
			log_set(w, LOG_REGION, CStringGetTextDatum(req->region));
		}
		log_append(w, "RESERVED");
		got++;
	}
	index_endscan(scan);
	index_close(free_idx, NoLock);
	if (check_country)
	{
		ExecDropSingleTupleTableSlot(cc_slot);
		index_close(cc_key, NoLock);
		table_close(cc, NoLock);
	}
	return got;
}

/* Look up a country by name (case-insensitive): id, name and region. */
static PskQuery find_country = {
	"SELECT c.id, c.name, r.name FROM psk.countries c"
	"  JOIN psk.regions r ON r.id = c.region_id"
	" WHERE pg_catalog.lower(c.name) = pg_catalog.lower(pg_catalog.btrim($1))",
	1, {TEXTOID}
};

static void
lookup_country(const char *country, Request *req)
{
	Datum		arg = CStringGetTextDatum(country);
	bool		isnull;

	SPI_connect();
	if (psk_execute(&find_country, &arg, NULL, true) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("unknown country \"%s\"", country)));
	req->has_country = true;
	req->country_id = DatumGetInt64(psk_result(0, 1, &isnull));
	req->country = psk_result_cstring(0, 2);
	req->region = psk_result_cstring(0, 3);
	SPI_finish();
}

void
psk_reserve_codes(const char *email, const char *tester, const char *country,
				  const char *pool, int how_many, PskReserved *out)
{
	Request		req = {.tester = tester, .how_many = how_many};
	Writer		w;
	PskUser		user;
	int			got;

	Assert(how_many >= 1 && how_many <= PSK_MAX_HOW_MANY);
	if (country != NULL)
		lookup_country(country, &req);

	writer_begin(&w);
	find_user(email, true, &user);
	if (pool == NULL)
		pool = psk_pool_name(user.pool);

	/* The requested pool first; what it cannot supply comes from COMMON. */
	got = reserve_from_pool(&w, &user, &req, pool, how_many, out);
	if (got < how_many && strcmp(pool, "COMMON") != 0)
		got += reserve_from_pool(&w, &user, &req, "COMMON", how_many - got,
								 out + got);

	/* All or none: the error rolls back what was taken. */
	if (got < how_many)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NO_CODES_AVAILABLE),
				 how_many == 1 ?
				 errmsg("no codes available in pool %s", pool) :
				 errmsg("only %d of %d codes available in pool %s and COMMON",
						got, how_many, pool)));
	writer_end(&w);
}

void
psk_release_code(const char *email, const char *code, const char *clearance,
				 const char *note, PskReleased *out)
{
	Writer		w;
	PskUser		user;
	const AttrNumber *att;
	Relation	codes;
	Relation	code_key;
	ScanKeyData key;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	char	   *wanted = psk_normalize_code(code, DEFAULT_COLLATION_OID);
	bool		found;
	bool		isnull;
	int64		holder;
	Datum		tester;
	char	   *status;

	writer_begin(&w);
	att = w.code_att;
	codes = w.codes->ri_RelationDesc;
	find_user(email, false, &user);

	code_key = index_open(psk_relation("codes_code_key"), AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(wanted));
	key.sk_collation = code_key->rd_indcollation[0];
	scan = index_beginscan(codes, code_key, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, w.code_slot);
	index_endscan(scan);
	index_close(code_key, NoLock);

	/* Wait for whoever holds it locked; then look at its newest version. */
	found = found && lock_row(codes, w.code_slot, LockTupleNoKeyExclusive, true);
	status = found ? TextDatumGetCString(slot_getattr(w.code_slot, att[CODE_STATUS], &isnull)) : NULL;
	holder = found ? slot_int8(w.code_slot, att[CODE_HOLDER], &isnull) : 0;
	psk_check_holder(code, status, found && !isnull, holder, user.id);

	tester = slot_getattr(w.code_slot, att[CODE_TESTER], &isnull);
	out->code = TextDatumGetCString(slot_getattr(w.code_slot, att[CODE_CODE], &isnull));
	out->released_at = w.now;

	slot = new_version(&w);
	set_column(slot, att[CODE_STATUS], CStringGetTextDatum("CAN_BE_USED"), false);
	set_column(slot, att[CODE_HOLDER], (Datum) 0, true);
	set_column(slot, att[CODE_TESTER], (Datum) 0, true);
	set_column(slot, att[CODE_RESERVED_AT], (Datum) 0, true);
	set_column(slot, att[CODE_EXPIRES_AT], (Datum) 0, true);
	set_column(slot, att[CODE_CONFIRMED_AT], (Datum) 0, true);
	set_column(slot, att[CODE_TOKEN], (Datum) 0, true);
	set_column(slot, att[CODE_RELEASED_AT], TimestampTzGetDatum(w.now), false);
	set_column(slot, att[CODE_FREED_AT], TimestampTzGetDatum(w.now), false);
	if (note != NULL)
		set_column(slot, att[CODE_NOTE], CStringGetTextDatum(note), false);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationUpdate(w.codes, w.estate, NULL, w.code_slot, slot);

	log_begin(&w);
	log_set(&w, LOG_CODE, CStringGetTextDatum(out->code));
	log_set(&w, LOG_CODE_TYPE, slot_getattr(w.code_slot, att[CODE_POOL], &isnull));
	log_set(&w, LOG_USER_ID, Int64GetDatum(user.id));
	log_set(&w, LOG_USER_NAME, CStringGetTextDatum(user.user_name));
	log_set(&w, LOG_EMAIL, CStringGetTextDatum(user.email));
	log_set(&w, LOG_TESTER, tester);
	if (clearance != NULL || note != NULL)
		log_set(&w, LOG_NOTE, CStringGetTextDatum(clearance ? clearance : note));
	if (clearance != NULL)
		log_set(&w, LOG_CLEARANCE, CStringGetTextDatum(clearance));
	log_append(&w, "RELEASED");

	writer_end(&w);
}
