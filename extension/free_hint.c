/*
 * free_hint.c
 *		Where the live entries of the free-code index start: a hint per
 *		database and pool, in shared memory, so that a reserve does not step
 *		over the dead entries that an old snapshot keeps from vacuum.
 *
 * Every reservation leaves a dead entry at the head of codes_free_lru_idx
 * (pool, freed_at NULLS FIRST, id) WHERE status = 'CAN_BE_USED'.  While any
 * snapshot older than those entries is held (a REPEATABLE READ report,
 * pg_dump, an idle-in-transaction session), vacuum may not remove them, and
 * a scan from the pool's head steps over all of them on every reserve.
 *
 * The hint of a pool is a position in that index below which every entry is
 * dead to every snapshot taken from now on: the row version it points to
 * (and, for the root of a HOT chain, every version of the chain) was
 * deleted or updated by a committed transaction, or inserted by an aborted
 * one.  Such an entry can never again be visible as a free code, whatever
 * happens later: a commit or an abort is final.  A reserve starts its scan
 * at the hint; while scanning it notes the first entry not provably dead
 * (the first live one, one it reserves itself, one locked by another
 * caller, one whose inserter or deleter is in progress) and raises the hint
 * to it at the end.
 *
 * Whatever puts an entry into the index lowers the hint to that entry's
 * position after the entry is physically in the index and before its
 * transaction commits: psk_code_update, when the new row is CAN_BE_USED
 * (release, disassociate, restore, expiry), and, for plain SQL
 * (psk_add_codes, the CSV import, the migration, a superuser's INSERT,
 * UPDATE, COPY or TRUNCATE), a statement-level trigger on psk.codes that
 * resets every hint of the database.
 *
 * Why a reserve still returns what a scan from the head would:
 *
 * - Its snapshot is taken before it reads the hint.  An entry that the
 *   snapshot sees as committed was lowered for before its commit, hence
 *   before the hint was read: it is at or above the hint.  An entry whose
 *   inserter commits later is invisible to the snapshot in either scan.
 * - Entries below the hint are dead to the snapshot too, unless it is older
 *   than the change that killed them; then a scan from the head would find
 *   the row updated when it locks it and (READ COMMITTED) follow it to its
 *   newest version, which is not free at that position: either it is no
 *   longer CAN_BE_USED, and is skipped, or it was freed again and has a
 *   newer entry further on, where the hinted scan finds it in its order.
 *   (Under REPEATABLE READ the scan from the head would fail with a
 *   serialization error there; the hinted scan goes on.)
 * - A raise could cross an entry inserted after the raiser read the hint;
 *   so every lowering bumps the pool's generation and records its position
 *   in a small ring, and a raise goes no higher than any position lowered
 *   since the raiser read the hint (no raise at all when the ring has
 *   wrapped).  A raise never lowers the hint.
 * - Uniqueness is untouched: a code is still taken only by locking its row
 *   as FOR NO KEY UPDATE SKIP LOCKED and re-checking the locked version.
 *
 * The index's relfilenode is kept with a database's hints; a reserve that
 * finds another (the extension made anew, a table rewritten) starts again
 * from the head.  Without psk in shared_preload_libraries there is no
 * shared memory and every reserve scans from the head, as before.
 */
#include "psk.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "free_hint.h"

/* Databases with hints (more scan from the head), lowerings kept per pool. */
#define HINT_DATABASES 32
#define HINT_RING	   16

static const char *const pools[] = { "OSV", "HSV", "COMMON" };

#define HINT_POOLS lengthof(pools)

typedef struct HintPool
{
	PskFreeKey hint;			   /* entries below are dead to the future */
	uint64	   gen;				   /* lowerings so far */
	PskFreeKey lowered[HINT_RING]; /* lowering g at [g % HINT_RING] */
} HintPool;

typedef struct HintDatabase
{
	Oid		 dboid;		  /* InvalidOid: slot free */
	Oid		 relfilenode; /* of codes_free_lru_idx */
	HintPool pools[HINT_POOLS];
} HintDatabase;

typedef struct HintShared
{
	LWLock		*lock;
	HintDatabase dbs[HINT_DATABASES];
} HintShared;

static HintShared *hint_shared = NULL;

const PskFreeKey psk_free_key_min = { false, 0, PG_INT64_MIN };

PG_FUNCTION_INFO_V1(psk_free_hints_reset);
PG_FUNCTION_INFO_V1(psk_free_code_hints);

int
psk_free_key_cmp(const PskFreeKey *a, const PskFreeKey *b)
{
	if (a->freed != b->freed)
		return a->freed ? 1 : -1; /* NULLS FIRST */
	if (a->freed && a->freed_at != b->freed_at)
		return a->freed_at < b->freed_at ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return 0;
}

void
psk_free_hint_shmem_request(void)
{
	RequestAddinShmemSpace(sizeof(HintShared));
	RequestNamedLWLockTranche("psk free-code hints", 1);
}

void
psk_free_hint_shmem_startup(void)
{
	bool found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hint_shared =
		ShmemInitStruct("psk free-code hints", sizeof(HintShared), &found);
	if (!found)
	{
		memset(hint_shared, 0, sizeof(HintShared));
		hint_shared->lock =
			&(GetNamedLWLockTranche("psk free-code hints"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

static int
pool_number(const char *pool)
{
	for (int i = 0; i < (int) HINT_POOLS; i++)
		if (strcmp(pool, pools[i]) == 0)
			return i;
	return -1;
}

/* This database's hints, or NULL; a free slot taken if create.  Under lock. */
static HintDatabase *
my_database(bool create)
{
	static int	  cached = -1;
	HintDatabase *free_slot = NULL;

	if (cached >= 0 && hint_shared->dbs[cached].dboid == MyDatabaseId)
		return &hint_shared->dbs[cached];
	for (int i = 0; i < HINT_DATABASES; i++)
	{
		HintDatabase *db = &hint_shared->dbs[i];

		if (db->dboid == MyDatabaseId)
		{
			cached = i;
			return db;
		}
		if (db->dboid == InvalidOid && free_slot == NULL)
			free_slot = db;
	}
	if (!create || free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(HintDatabase));
	free_slot->dboid = MyDatabaseId;
	for (int p = 0; p < (int) HINT_POOLS; p++)
		free_slot->pools[p].hint = psk_free_key_min;
	cached = free_slot - hint_shared->dbs;
	return free_slot;
}

/* Lower a pool's hint to key at most; a raiser in flight sees it.  Locked. */
static void
lower_pool(HintPool *hp, const PskFreeKey *key)
{
	if (psk_free_key_cmp(key, &hp->hint) < 0)
		hp->hint = *key;
	hp->gen++;
	hp->lowered[hp->gen % HINT_RING] = *key;
}

/*
 * Where a reserve in pool may start: the hint and its generation.  Call
 * after the scan's snapshot is taken.  False without a hint (psk not
 * preloaded, or too many databases): start at the pool's head.
 */
bool
psk_free_hint_read(const char *pool, Oid relfilenode, PskFreeKey *start,
				   uint64 *gen)
{
	int			  p = pool_number(pool);
	HintDatabase *db;
	bool		  ok = false;

	if (hint_shared == NULL || p < 0)
		return false;
	LWLockAcquire(hint_shared->lock, LW_EXCLUSIVE);
	db = my_database(true);
	if (db != NULL)
	{
		/* Another index (re-created, rewritten): start from the head. */
		if (db->relfilenode != relfilenode)
		{
			for (int i = 0; i < (int) HINT_POOLS; i++)
				lower_pool(&db->pools[i], &psk_free_key_min);
			db->relfilenode = relfilenode;
		}
		*start = db->pools[p].hint;
		*gen = db->pools[p].gen;
		ok = true;
	}
	LWLockRelease(hint_shared->lock);
	return ok;
}

/*
 * Raise pool's hint to stop, a position below which the caller found only
 * entries dead to the future since it read the hint at generation gen; no
 * higher than any position lowered since.
 */
void
psk_free_hint_raise(const char *pool, Oid relfilenode, uint64 gen,
					const PskFreeKey *stop)
{
	int			  p = pool_number(pool);
	HintDatabase *db;

	if (hint_shared == NULL || p < 0)
		return;
	LWLockAcquire(hint_shared->lock, LW_EXCLUSIVE);
	db = my_database(false);
	if (db != NULL && db->relfilenode == relfilenode)
	{
		HintPool  *hp = &db->pools[p];
		PskFreeKey to = *stop;

		if (hp->gen - gen <= HINT_RING)
		{
			for (uint64 g = gen + 1; g <= hp->gen; g++)
				if (psk_free_key_cmp(&hp->lowered[g % HINT_RING], &to) < 0)
					to = hp->lowered[g % HINT_RING];
			if (psk_free_key_cmp(&to, &hp->hint) > 0)
				hp->hint = to;
		}
	}
	LWLockRelease(hint_shared->lock);
}

/*
 * An entry at key was put into pool's part of the free-code index: lower
 * the hint to it.  Call after the index insertion, before the commit.
 */
void
psk_free_hint_lower(const char *pool, const PskFreeKey *key)
{
	int			  p = pool_number(pool);
	HintDatabase *db;

	if (hint_shared == NULL || p < 0)
		return;
	LWLockAcquire(hint_shared->lock, LW_EXCLUSIVE);
	db = my_database(false);
	if (db != NULL)
		lower_pool(&db->pools[p], key);
	LWLockRelease(hint_shared->lock);
}

/* Every pool of this database back to its head. */
void
psk_free_hint_reset(void)
{
	HintDatabase *db;

	if (hint_shared == NULL)
		return;
	LWLockAcquire(hint_shared->lock, LW_EXCLUSIVE);
	db = my_database(false);
	if (db != NULL)
		for (int p = 0; p < (int) HINT_POOLS; p++)
			lower_pool(&db->pools[p], &psk_free_key_min);
	LWLockRelease(hint_shared->lock);
}

/*
 * Is the index entry pointing at tid dead to every future snapshot?  Every
 * version of the HOT chain it leads to was deleted or updated away by a
 * committed transaction (the last one not HOT-updated: its successor has
 * an entry of its own), or inserted by an aborted one.  An inserter or
 * deleter in progress (this transaction included), a lock or an aborted
 * deleter: not dead.  In doubt, not dead.
 */
bool
psk_free_entry_dead(Relation heap, ItemPointer tid)
{
	BlockNumber	  blkno = ItemPointerGetBlockNumber(tid);
	OffsetNumber  offnum = ItemPointerGetOffsetNumber(tid);
	TransactionId prev_xmax = InvalidTransactionId;
	bool		  at_chain_start = true;
	bool		  dead = false;
	Buffer		  buf;
	Page		  page;

	buf = ReadBuffer(heap, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);

	/* The walk of heap_hot_search_buffer, judging each version. */
	for (;;)
	{
		ItemId		  lp;
		HeapTupleData tuple;
		TransactionId dead_after;
		HTSV_Result	  state;

		if (offnum < FirstOffsetNumber || offnum > PageGetMaxOffsetNumber(page))
			break; /* in doubt */
		lp = PageGetItemId(page, offnum);
		if (!ItemIdIsNormal(lp))
		{
			if (ItemIdIsRedirected(lp) && at_chain_start)
			{
				offnum = ItemIdGetRedirect(lp);
				at_chain_start = false;
				continue;
			}
			/* Pruned: what the entry led to was dead to everyone. */
			dead = true;
			break;
		}
		tuple.t_data = (HeapTupleHeader) PageGetItem(page, lp);
		tuple.t_len = ItemIdGetLength(lp);
		tuple.t_tableOid = RelationGetRelid(heap);
		ItemPointerSet(&tuple.t_self, blkno, offnum);

		/* A heap-only version is never where an entry points. */
		if (at_chain_start && HeapTupleIsHeapOnly(&tuple))
			break;
		/* The chain continued into a slot pruned and used again. */
		if (TransactionIdIsValid(prev_xmax) &&
			!TransactionIdEquals(prev_xmax,
								 HeapTupleHeaderGetXmin(tuple.t_data)))
		{
			dead = true;
			break;
		}

		state = HeapTupleSatisfiesVacuumHorizon(&tuple, buf, &dead_after);
		if (state != HEAPTUPLE_DEAD && state != HEAPTUPLE_RECENTLY_DEAD)
			break; /* live or in progress */
		if (!HeapTupleIsHotUpdated(&tuple))
		{
			dead = true;
			break;
		}
		/* HOT-updated by a committed transaction: the next version too. */
		offnum = ItemPointerGetOffsetNumber(&tuple.t_data->t_ctid);
		prev_xmax = HeapTupleHeaderGetUpdateXid(tuple.t_data);
		at_chain_start = false;
	}
	UnlockReleaseBuffer(buf);
	return dead;
}

/*
 * psk.free_hints_reset(): AFTER INSERT OR UPDATE OR TRUNCATE ... FOR EACH
 * STATEMENT on psk.codes.  Plain SQL may have put entries anywhere in the
 * free-code index; psk's own updates (writer.c) fire no statement trigger
 * and lower the hint themselves.
 */
Datum
psk_free_hints_reset(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("psk.free_hints_reset() must be called as a trigger")));
	psk_free_hint_reset();
	return PointerGetDatum(NULL);
}

/*
 * psk.free_code_hints() -> (pool, freed_at, id, generation): where reserves
 * of this database start, for monitoring and tests.  No row: no hint (psk
 * not preloaded, or no reserve yet); id NULL: the pool's head.
 */
Datum
psk_free_code_hints(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HintDatabase   copy;
	bool		   have = false;

	psk_materialize(fcinfo);
	if (hint_shared == NULL)
		return (Datum) 0;
	LWLockAcquire(hint_shared->lock, LW_SHARED);
	{
		HintDatabase *db = my_database(false);

		if (db != NULL)
		{
			copy = *db;
			have = true;
		}
	}
	LWLockRelease(hint_shared->lock);
	if (!have)
		return (Datum) 0;
	for (int p = 0; p < (int) HINT_POOLS; p++)
	{
		const PskFreeKey *k = &copy.pools[p].hint;
		Datum			  values[4];
		bool			  nulls[4] = { 0 };

		values[0] = CStringGetTextDatum(pools[p]);
		values[1] = TimestampTzGetDatum(k->freed_at);
		nulls[1] = !k->freed;
		values[2] = Int64GetDatum(k->id);
		nulls[2] = k->id == PG_INT64_MIN;
		values[3] = Int64GetDatum((int64) copy.pools[p].gen);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
