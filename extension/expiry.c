/*
 * expiry.c
 *		Returning overdue holds to their pool (reservations past
 *		psk.reservation_ttl, codes in use past psk.in_use_ttl, unless their
 *		holder renewed them): psk_expire_reservations() and the background
 *		workers that call it every psk.expiry_interval when psk is in
 *		shared_preload_libraries (one per database in psk.database), which
 *		also forget the request_ids of reserves older than 24 hours.
 */
#include "writer.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(psk_expire_reservations);

PGDLLEXPORT void psk_expiry_main(Datum main_arg);

/* An overdue hold as the index shows it, before it is locked. */
typedef struct Overdue
{
	ItemPointerData tid;
	TimestampTz		expires_at;
	int64			id;
} Overdue;

/* A hold returned to its pool, for its audit row. */
typedef struct Expired
{
	int64 id;
	char *code;
	char *pool;
	int64 holder_id;
	char *tester;
} Expired;

static int
overdue_cmp(const void *a, const void *b)
{
	const Overdue *x = a;
	const Overdue *y = b;

	if (x->expires_at != y->expires_at)
		return x->expires_at < y->expires_at ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

static int
expired_cmp(const void *a, const void *b)
{
	const Expired *x = a;
	const Expired *y = b;

	return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

/* Codes in the order of ORDER BY code (the database's collation). */
static int
code_cmp(const ListCell *a, const ListCell *b)
{
	const char *x = lfirst(a);
	const char *y = lfirst(b);

	return varstr_cmp(x, strlen(x), y, strlen(y), DEFAULT_COLLATION_OID);
}

/* A code held (RESERVED or IN_USE), the only ones with an expires_at. */
static bool
is_held(PskWriter *w)
{
	return psk_slot_text_equals(w->code_slot, w->code_att[CODE_STATUS],
								"RESERVED") ||
		   psk_slot_text_equals(w->code_slot, w->code_att[CODE_STATUS],
								"IN_USE");
}

/*
 * The holds due now, from the index of them: the first limit in index
 * (expires_at) order, sorted by expires_at, id; *more when the scan stopped
 * at the limit, so more may be due.
 */
static Overdue *
find_overdue(PskWriter *w, int limit, int *n, bool *more)
{
	Relation codes = w->codes->ri_RelationDesc;
	Relation idx =
		index_open(psk_relation("codes_expires_idx"), AccessShareLock);
	ScanKeyData	  key;
	IndexScanDesc scan;
	int			  size = 16;
	Overdue		 *due = palloc(size * sizeof(Overdue));
	bool		  isnull;

	*n = 0;
	*more = false;
	ScanKeyInit(&key, 1, BTLessEqualStrategyNumber, F_TIMESTAMPTZ_LE,
				TimestampTzGetDatum(w->now));
	scan = index_beginscan(codes, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, w->code_slot))
	{
		if (!is_held(w))
			continue;
		if (*n == limit)
		{
			*more = true;
			break;
		}
		if (*n == size)
			due = repalloc(due, (size *= 2) * sizeof(Overdue));
		due[*n].tid = w->code_slot->tts_tid;
		due[*n].expires_at = DatumGetTimestampTz(
			slot_getattr(w->code_slot, w->code_att[CODE_EXPIRES_AT], &isnull));
		due[*n].id = psk_slot_int8(w->code_slot, w->code_att[CODE_ID], &isnull);
		(*n)++;
	}
	index_endscan(scan);
	index_close(idx, NoLock);
	qsort(due, *n, sizeof(Overdue), overdue_cmp);
	return due;
}

/*
 * Return at most limit overdue holds, RESERVED or IN_USE, to their pool, the
 * longest overdue first, as SELECT ... ORDER BY expires_at LIMIT limit FOR
 * UPDATE SKIP LOCKED would find them: a row someone holds locked (a holder
 * releasing, confirming or renewing right now) is skipped, and the next
 * sweep sees it again.  The audit rows follow in code id order; the actor of
 * EXPIRED is the holder.  *more: the batch was full, more may be due.
 * Returns the codes expired, in code order.
 */
List *
psk_expire_overdue(int limit, bool *more)
{
	PskWriter w;
	Overdue	 *due;
	Expired	 *expired;
	int		  ndue;
	int		  n = 0;
	List	 *codes = NIL;

	psk_writer_begin(&w);
	due = find_overdue(&w, limit, &ndue, more);
	expired = palloc(Max(ndue, 1) * sizeof(Expired));

	for (int i = 0; i < ndue; i++)
	{
		Relation rel = w.codes->ri_RelationDesc;
		Expired *e = &expired[n];
		Datum	 expires_at;
		bool	 isnull;

		if (!table_tuple_fetch_row_version(rel, &due[i].tid,
										   GetActiveSnapshot(), w.code_slot) ||
			!psk_lock_row(rel, w.code_slot, LockTupleExclusive, false))
			continue;

		/* The locked version may be newer than the one scanned: re-check. */
		expires_at =
			slot_getattr(w.code_slot, w.code_att[CODE_EXPIRES_AT], &isnull);
		if (!is_held(&w) || isnull || DatumGetTimestampTz(expires_at) > w.now)
			continue;

		e->id = psk_slot_int8(w.code_slot, w.code_att[CODE_ID], &isnull);
		e->code = psk_slot_cstring(w.code_slot, w.code_att[CODE_CODE]);
		e->pool = psk_slot_cstring(w.code_slot, w.code_att[CODE_POOL]);
		e->holder_id =
			psk_slot_int8(w.code_slot, w.code_att[CODE_HOLDER], &isnull);
		e->tester = psk_slot_cstring(w.code_slot, w.code_att[CODE_TESTER]);
		n++;

		psk_code_change(&w);
		psk_code_free(&w, "CAN_BE_USED");
		psk_code_update(&w);
	}

	qsort(expired, n, sizeof(Expired), expired_cmp);
	for (int i = 0; i < n; i++)
	{
		PskUser holder;

		psk_audit_begin(&w);
		psk_audit_set(&w, LOG_CODE, CStringGetTextDatum(expired[i].code));
		psk_audit_set(&w, LOG_CODE_TYPE, CStringGetTextDatum(expired[i].pool));
		if (psk_lookup_user_id(expired[i].holder_id, &holder))
			psk_audit_actor(&w, &holder);
		if (expired[i].tester != NULL)
			psk_audit_set(&w, LOG_TESTER,
						  CStringGetTextDatum(expired[i].tester));
		psk_audit_append(&w, "EXPIRED");
		codes = lappend(codes, expired[i].code);
	}
	psk_writer_end(&w);

	list_sort(codes, code_cmp);
	return codes;
}

/*
 * psk_expire_reservations(): the sweep, for a scheduler instead of the
 * worker.  A function cannot commit, so it sweeps one batch of at most
 * psk.expiry_batch holds in the caller's transaction; a call that returns
 * that many rows may have left more, and is called again (README, Expiry).
 * Also forgets one batch of lapsed request_ids, so that
 * psk.reserve_requests stays bounded without the worker too.
 */
Datum
psk_expire_reservations(PG_FUNCTION_ARGS)
{
	bool	  more;
	List	 *codes = psk_expire_overdue(psk_expiry_batch, &more);
	ListCell *lc;

	psk_forget_requests(PSK_FORGET_BATCH);

	psk_result_set(fcinfo);
	foreach (lc, codes)
	{
		Datum value = CStringGetTextDatum(lfirst(lc));
		bool  isnull = false;

		psk_return_row(fcinfo, &value, &isnull);
	}
	return (Datum) 0;
}

/*
 * Shared memory: one flag per worker, set when its database turned out not
 * to exist.  A worker that cannot connect exits with a FATAL error and the
 * postmaster starts it again 10 s later, for ever; with the flag set it
 * leaves quietly instead (exit code 0: not started again) until the server
 * restarts.
 */
typedef struct ExpiryShared
{
	int	 nworkers;
	bool gone[FLEXIBLE_ARRAY_MEMBER];
} ExpiryShared;

static int			 expiry_nworkers = 0;
static ExpiryShared *expiry_shared = NULL;

void
psk_expiry_shmem_request(void)
{
	RequestAddinShmemSpace(offsetof(ExpiryShared, gone) +
						   Max(expiry_nworkers, 1) * sizeof(bool));
}

void
psk_expiry_shmem_startup(void)
{
	bool found;
	Size size =
		offsetof(ExpiryShared, gone) + Max(expiry_nworkers, 1) * sizeof(bool);

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	expiry_shared = ShmemInitStruct("psk expiry workers", size, &found);
	if (!found)
	{
		memset(expiry_shared, 0, size);
		expiry_shared->nworkers = expiry_nworkers;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
psk_register_expiry_workers(void)
{
	char	 *raw = pstrdup(psk_databases ? psk_databases : "");
	List	 *names;
	ListCell *lc;

	if (!SplitGUCList(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("psk.database is not a valid list of database names")));

	/*
	 * No default database: a worker in the wrong one (it used to be
	 * postgres) sweeps nothing, while reservations in the right one never
	 * expire, and it blocks CREATE DATABASE with that template.
	 */
	/* the workers' liveness for psk.metrics() (metrics.c) */
	psk_metrics_shmem_register();

	if (names == NIL)
		ereport(LOG,
				(errmsg("psk: psk.database is not set, so no expiry worker "
						"runs"),
				 errhint(
					 "Set psk.database to the databases where psk is "
					 "installed, or sweep with psk_expire_reservations().")));

	foreach (lc, names)
	{
		const char		*dbname = lfirst(lc);
		BackgroundWorker worker;

		if (strlen(dbname) >= BGW_EXTRALEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("psk.database: name \"%s\" is too long", dbname)));

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags =
			BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		/* On a standby: started by the postmaster once it is promoted. */
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = 10;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "psk");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "psk_expiry_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "psk expiry worker for %s",
				 dbname);
		snprintf(worker.bgw_type, BGW_MAXLEN, "psk expiry worker");
		strlcpy(worker.bgw_extra, dbname, BGW_EXTRALEN);
		worker.bgw_main_arg = Int32GetDatum(expiry_nworkers++);
		RegisterBackgroundWorker(&worker);
	}
}

/*
 * Forget the request_ids of reserves older than 24 hours: batches of
 * PSK_FORGET_BATCH rows, each in a transaction of its own (no long
 * transaction holding back vacuum), until a batch comes back short.
 */
static uint64
forget_once(void)
{
	uint64 total = 0;
	uint64 n;

	do
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "psk: forget request ids");
		n = 0;
		if (OidIsValid(get_extension_oid("psk", true)))
			n = psk_forget_requests(PSK_FORGET_BATCH);
		PopActiveSnapshot();
		CommitTransactionCommand();
		total += n;
	} while (n == PSK_FORGET_BATCH);
	return total;
}

/*
 * One sweep, in batches of psk.expiry_batch holds, each in a transaction of
 * its own (locks, WAL and the xmin that holds back vacuum stay bounded),
 * until a batch is not full or returns nothing (the rest are locked by
 * their holders: the next sweep).  Quiet when psk is not installed.
 */
static void
expire_once(void)
{
	int	   expired = 0;
	int	   n;
	bool   more;
	uint64 forgotten;

	do
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "psk: expire reservations");
		n = 0;
		more = false;
		if (OidIsValid(get_extension_oid("psk", true)))
			n = list_length(psk_expire_overdue(psk_expiry_batch, &more));
		PopActiveSnapshot();
		CommitTransactionCommand();
		expired += n;
		CHECK_FOR_INTERRUPTS();
	} while (more && n > 0);

	forgotten = forget_once();
	/* the transition totals and code counts of psk.metrics(), and liveness */
	psk_metrics_worker_swept();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (expired > 0)
		elog(LOG, "psk: returned %d overdue holds to their pool", expired);
	if (forgotten > 0)
		elog(LOG,
			 "psk: forgot " UINT64_FORMAT " request ids older than 24 hours",
			 forgotten);
}

/* While connecting: a database that does not exist stops this worker. */
static emit_log_hook_type prev_emit_log_hook = NULL;
static int				  expiry_index = -1;

static void
expiry_connect_failed(ErrorData *edata)
{
	if (edata->elevel == FATAL &&
		edata->sqlerrcode == ERRCODE_UNDEFINED_DATABASE && expiry_index >= 0)
	{
		expiry_shared->gone[expiry_index] = true;
		edata->detail = pstrdup("The psk expiry worker for it stops trying "
								"until the server restarts.");
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
psk_expiry_main(Datum main_arg)
{
	char dbname[BGW_EXTRALEN];

	strlcpy(dbname, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);
	expiry_index = DatumGetInt32(main_arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* Its database was found missing: leave, and be not started again. */
	if (expiry_shared == NULL || expiry_shared->gone[expiry_index])
		proc_exit(0);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = expiry_connect_failed;
	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	emit_log_hook = prev_emit_log_hook;

	/* Resolve names in pg_catalog only, whatever the database's default. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	elog(LOG, "psk expiry worker started in database \"%s\", every %d s",
		 dbname, psk_expiry_interval);
	psk_metrics_worker_started();

	for (;;)
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 psk_expiry_interval * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		expire_once();
		psk_audit_partitions_once();
		psk_audit_freeze_once();
	}
}

void
psk_worker_step_failed(MemoryContext cxt, int elevel, const char *what)
{
	ErrorData *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	ereport(elevel, (errmsg("psk: %s: %s", what, edata->message)));
	FreeErrorData(edata);
}
