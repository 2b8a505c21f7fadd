/*
 * login_guard.c
 *		Recording a failed login so that the record survives the rollback of
 *		the call that failed: one long-lived guard worker per database, fed
 *		through shared memory.
 *
 * psk_login raises an error when the credentials are wrong, and the error
 * rolls back whatever its transaction wrote.  A failure count that must
 * outlive that rollback has to be committed by another transaction, and
 * PostgreSQL runs another transaction only in another backend.
 *
 * Up to 0.2.1 that backend was a dynamic background worker per login.  A
 * flood of logins then held most of max_worker_processes (shared with
 * parallel query, logical replication and the expiry worker) and logins
 * were refused for want of a slot.  Now each database with logins has one
 * guard, a worker started by the first login that needs it and kept while
 * logins come (it leaves after GUARD_IDLE_EXIT_MS without any, so that it
 * does not hold a database nobody logs into, or at once when a login into
 * another database finds every worker slot taken): a flood costs one
 * worker slot, and a failure costs a row in a batch the guard commits for
 * every failure queued meanwhile, not a process.
 *
 * Why a worker and a queue rather than counters in shared memory: counters
 * would hold every typed e-mail of a flood (bounded memory must then drop
 * some, and an attacker could drop a victim's), would be lost at every
 * restart and failover, and would not be in a backup; rows in
 * psk.login_failures are none of that.  Both need psk preloaded
 * (shared_preload_libraries), for the queue; without it psk_login refuses.
 *
 * The queue is one place per backend (its BackendId), in shared memory.  A
 * login takes its place before the password is checked, having made sure
 * that its database's guard runs: when none can be started, the login is
 * refused before the password is looked at, so an attempt is never
 * evaluated without being counted (the guard fails closed).  A failure is
 * then handed to the guard, which commits it (with any others queued) and
 * says so; the login waits for that before it answers.  A good login just
 * gives its place back: the guard does nothing for it.
 */
#include "psk.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "login_guard.h"

PGDLLEXPORT void psk_login_guard_main(Datum main_arg);

/* Databases that may have a guard at the same time. */
#define GUARD_MAX_DBS 64
/* Starting a worker: tries, and the pause between them. */
#define GUARD_START_TRIES	 20
#define GUARD_START_PAUSE_MS 50
/* How long a login waits for its database's guard to come up. */
#define GUARD_UP_WAIT_MS 3000
/* How long a login waits for its failure to be committed. */
#define GUARD_RECORD_WAIT_MS 10000
/* A guard without work for this long leaves. */
#define GUARD_IDLE_EXIT_MS 30000

typedef enum SlotState
{
	SLOT_FREE,
	SLOT_HELD,	   /* a login is checking its password */
	SLOT_RECORD,   /* ... which failed: the guard is to commit it */
	SLOT_TAKEN,	   /* the guard is committing it */
	SLOT_DONE,	   /* committed */
	SLOT_FAILED,   /* not committed, or the guard went away */
	SLOT_ABANDONED /* the login stopped waiting while TAKEN */
} SlotState;

/* A backend's place in the queue. */
typedef struct GuardSlot
{
	SlotState	state;
	Oid			dboid;
	int			lockout; /* the login's psk.login_lockout, seconds */
	Latch	   *caller_latch;
	PskLoginKey key;
} GuardSlot;

/* A database's guard. */
typedef struct GuardDb
{
	Oid			dboid; /* InvalidOid: unused */
	int			pid;   /* 0 while it starts */
	Latch	   *latch;
	TimestampTz start_requested;
	bool		leave_if_idle; /* another database needs its worker slot */
} GuardDb;

typedef struct GuardShared
{
	LWLock	 *lock; /* everything below */
	int		  nslots;
	GuardDb	  dbs[GUARD_MAX_DBS];
	GuardSlot slots[FLEXIBLE_ARRAY_MEMBER];
} GuardShared;

static GuardShared *guard_shared = NULL;

/* This backend's slot, once it has logged in (or tried to). */
static GuardSlot *my_slot = NULL;

static Size
guard_shmem_size(void)
{
	return add_size(offsetof(GuardShared, slots),
					mul_size(MaxBackends, sizeof(GuardSlot)));
}

void
psk_guard_shmem_request(void)
{
	RequestAddinShmemSpace(guard_shmem_size());
	RequestNamedLWLockTranche("psk login guard", 1);
}

void
psk_guard_shmem_startup(void)
{
	bool found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	guard_shared =
		ShmemInitStruct("psk login guard", guard_shmem_size(), &found);
	if (!found)
	{
		memset(guard_shared, 0, guard_shmem_size());
		guard_shared->lock = &(GetNamedLWLockTranche("psk login guard"))->lock;
		guard_shared->nslots = MaxBackends;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* The guard of dboid, or NULL; under the lock. */
static GuardDb *
find_db(Oid dboid)
{
	for (int i = 0; i < GUARD_MAX_DBS; i++)
		if (guard_shared->dbs[i].dboid == dboid)
			return &guard_shared->dbs[i];
	return NULL;
}

static GuardDb *
new_db(Oid dboid)
{
	GuardDb *db = find_db(InvalidOid);

	if (db != NULL)
	{
		db->dboid = dboid;
		db->pid = 0;
		db->latch = NULL;
		db->start_requested = GetCurrentTimestamp();
		db->leave_if_idle = false;
	}
	return db;
}

/*
 * Give this backend's slot back; under the lock.  A failure the guard is
 * committing right now is left to it (it frees the slot when done).
 */
static void
release_slot(GuardSlot *slot)
{
	if (slot->state == SLOT_TAKEN)
		slot->state = SLOT_ABANDONED;
	else if (slot->state != SLOT_ABANDONED)
		slot->state = SLOT_FREE;
}

/* A backend that exits mid-login gives its slot back. */
static void
release_slot_at_exit(int code, Datum arg)
{
	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	release_slot(my_slot);
	LWLockRelease(guard_shared->lock);
}

static void
refuse(const char *message)
{
	ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					errmsg("login refused: %s, try again later", message),
					errhidestmt(true)));
}

/*
 * Every worker slot is taken: the guards of other databases that have
 * nothing to do leave now rather than after GUARD_IDLE_EXIT_MS, giving
 * theirs back (logins into many databases would otherwise hold a slot
 * each).
 */
static void
ask_idle_guards_to_leave(void)
{
	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < GUARD_MAX_DBS; i++)
	{
		GuardDb *db = &guard_shared->dbs[i];

		if (db->dboid != InvalidOid && db->dboid != MyDatabaseId &&
			db->pid != 0)
		{
			db->leave_if_idle = true;
			SetLatch(db->latch);
		}
	}
	LWLockRelease(guard_shared->lock);
}

/* Register the guard worker of this database (outside the lock). */
static bool
register_guard(void)
{
	BackgroundWorker		worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags =
		BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "psk");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "psk_login_guard_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "psk login guard for database %u",
			 MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "psk login guard");
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);

	for (int attempt = 1; attempt <= GUARD_START_TRIES; attempt++)
	{
		if (RegisterDynamicBackgroundWorker(&worker, &handle))
			return true;
		if (attempt == 1)
			ask_idle_guards_to_leave();
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 GUARD_START_PAUSE_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	return false;
}

void
psk_guard_start(const PskLoginKey *key)
{
	GuardDb	   *db;
	bool		need_start = false;
	TimestampTz requested = 0;
	TimestampTz deadline;

	if (guard_shared == NULL)
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("psk_login needs psk in shared_preload_libraries"),
			 errhint(
				 "Add psk to shared_preload_libraries and restart the server: "
				 "failed logins are counted by a worker that needs it."),
			 errhidestmt(true)));
	if (MyBackendId < 1 || MyBackendId > guard_shared->nslots)
		elog(ERROR, "psk: no login guard place for backend %d", MyBackendId);
	if (my_slot == NULL)
	{
		my_slot = &guard_shared->slots[MyBackendId - 1];
		before_shmem_exit(release_slot_at_exit, 0);
	}

	/* A failure of an earlier login of ours may still be being committed. */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   GUARD_RECORD_WAIT_MS);
	for (;;)
	{
		LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
		if (my_slot->state != SLOT_TAKEN && my_slot->state != SLOT_ABANDONED)
			break; /* with the lock */
		LWLockRelease(guard_shared->lock);
		if (GetCurrentTimestamp() >= deadline)
			refuse("an earlier failed login of this session is still being "
				   "counted");
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	my_slot->state = SLOT_HELD;
	my_slot->dboid = MyDatabaseId;
	my_slot->lockout = psk_login_lockout;
	my_slot->caller_latch = MyLatch;
	memcpy(&my_slot->key, key, sizeof(PskLoginKey));

	/* No guard yet, or one asked for that never came: start one. */
	db = find_db(MyDatabaseId);
	if (db == NULL)
	{
		db = new_db(MyDatabaseId);
		if (db == NULL)
		{
			my_slot->state = SLOT_FREE;
			LWLockRelease(guard_shared->lock);
			refuse("too many databases have logins at once");
		}
		need_start = true;
	}
	else if (db->pid == 0 && TimestampDifferenceExceeds(db->start_requested,
														GetCurrentTimestamp(),
														GUARD_UP_WAIT_MS))
	{
		db->start_requested = GetCurrentTimestamp();
		need_start = true;
	}
	requested = db->start_requested;
	LWLockRelease(guard_shared->lock);

	if (need_start && !register_guard())
	{
		LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
		db = find_db(MyDatabaseId);
		if (db != NULL && db->pid == 0 && db->start_requested == requested)
			db->dboid = InvalidOid;
		my_slot->state = SLOT_FREE;
		LWLockRelease(guard_shared->lock);
		refuse("no background worker is free to guard it");
	}

	/* Wait for the guard to be up (it wakes us as it comes). */
	deadline =
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), GUARD_UP_WAIT_MS);
	for (;;)
	{
		bool up;

		LWLockAcquire(guard_shared->lock, LW_SHARED);
		db = find_db(MyDatabaseId);
		up = db != NULL && db->pid != 0;
		LWLockRelease(guard_shared->lock);
		if (up)
			return;
		if (GetCurrentTimestamp() >= deadline)
			refuse("the login guard did not start");
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

bool
psk_guard_finish(bool failed)
{
	GuardDb	   *db;
	Latch	   *latch;
	SlotState	state;
	TimestampTz deadline;

	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	if (!failed || my_slot->state != SLOT_HELD)
	{
		/* A failure but a guard gone meanwhile (SLOT_FAILED): not counted. */
		state = my_slot->state;
		my_slot->state = SLOT_FREE;
		LWLockRelease(guard_shared->lock);
		return !failed || state == SLOT_DONE;
	}
	db = find_db(MyDatabaseId);
	if (db == NULL || db->pid == 0)
	{
		my_slot->state = SLOT_FREE;
		LWLockRelease(guard_shared->lock);
		return false;
	}
	my_slot->state = SLOT_RECORD;
	latch = db->latch;
	LWLockRelease(guard_shared->lock);
	SetLatch(latch);

	/*
	 * No CHECK_FOR_INTERRUPTS while waiting: the failure is being committed
	 * and a cancel would leave the caller not knowing it.  The wait is
	 * bounded, and the guard's own statements by its lock_timeout.
	 */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   GUARD_RECORD_WAIT_MS);
	for (;;)
	{
		LWLockAcquire(guard_shared->lock, LW_SHARED);
		state = my_slot->state;
		LWLockRelease(guard_shared->lock);
		if (state == SLOT_DONE || state == SLOT_FAILED ||
			GetCurrentTimestamp() >= deadline)
			break;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	state = my_slot->state;
	release_slot(my_slot);
	LWLockRelease(guard_shared->lock);
	return state == SLOT_DONE;
}

void
psk_guard_abandon(void)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	release_slot(my_slot);
	LWLockRelease(guard_shared->lock);
}

/* --- the guard worker --------------------------------------------------- */

/* A failure the guard took from the queue. */
typedef struct Taken
{
	int			slot;
	int			lockout;
	PskLoginKey key;
} Taken;

static Oid	guard_dboid = InvalidOid;
static bool guard_claimed = false; /* we are our database's guard */

/* Wake the logins of our database waiting for us; under the lock. */
static void
wake_waiting(void)
{
	for (int i = 0; i < guard_shared->nslots; i++)
	{
		GuardSlot *s = &guard_shared->slots[i];

		if (s->dboid == guard_dboid && s->state != SLOT_FREE)
			SetLatch(s->caller_latch);
	}
}

/*
 * As the guard exits, whatever it leaves: what it was told to commit fails,
 * and a login holding a place learns that its failure cannot be counted.
 */
static void
guard_exit(int code, Datum arg)
{
	GuardDb *db;

	if (!guard_claimed)
		return; /* a second guard, leaving at once */
	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	db = find_db(guard_dboid);
	if (db != NULL && db->pid == MyProcPid)
		db->dboid = InvalidOid;
	for (int i = 0; i < guard_shared->nslots; i++)
	{
		GuardSlot *s = &guard_shared->slots[i];

		if (s->dboid != guard_dboid)
			continue;
		if (s->state == SLOT_ABANDONED)
			s->state = SLOT_FREE;
		else if (s->state == SLOT_HELD || s->state == SLOT_RECORD ||
				 s->state == SLOT_TAKEN)
		{
			s->state = SLOT_FAILED;
			SetLatch(s->caller_latch);
		}
	}
	LWLockRelease(guard_shared->lock);
}

/* Become the guard of our database; false when another one is. */
static bool
guard_claim(void)
{
	GuardDb *db;
	bool	 ok = true;

	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	db = find_db(guard_dboid);
	if (db == NULL)
		db = new_db(guard_dboid);
	if (db == NULL || db->pid != 0)
		ok = false;
	else
	{
		db->pid = MyProcPid;
		db->latch = MyLatch;
		guard_claimed = true;
		wake_waiting();
	}
	LWLockRelease(guard_shared->lock);
	return ok;
}

/*
 * Take the failures to commit (at most max); *busy tells whether any login
 * of our database holds a place, *asked whether a login elsewhere needs
 * our worker slot.
 */
static int
take_failures(Taken *taken, int max, bool *busy, bool *asked)
{
	int		 n = 0;
	GuardDb *db;

	*busy = false;
	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	db = find_db(guard_dboid);
	*asked = db != NULL && db->pid == MyProcPid && db->leave_if_idle;
	for (int i = 0; i < guard_shared->nslots; i++)
	{
		GuardSlot *s = &guard_shared->slots[i];

		if (s->dboid != guard_dboid || s->state == SLOT_FREE ||
			s->state == SLOT_DONE || s->state == SLOT_FAILED)
			continue;
		*busy = true;
		if (s->state == SLOT_RECORD && n < max)
		{
			s->state = SLOT_TAKEN;
			taken[n].slot = i;
			taken[n].lockout = s->lockout;
			memcpy(&taken[n].key, &s->key, sizeof(PskLoginKey));
			n++;
		}
	}
	LWLockRelease(guard_shared->lock);
	return n;
}

/* Tell the logins whether their failures were committed. */
static void
report_failures(Taken *taken, int n, bool ok)
{
	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		GuardSlot *s = &guard_shared->slots[taken[i].slot];

		if (s->state == SLOT_ABANDONED)
			s->state = SLOT_FREE;
		else if (s->state == SLOT_TAKEN)
		{
			s->state = ok ? SLOT_DONE : SLOT_FAILED;
			SetLatch(s->caller_latch);
		}
	}
	LWLockRelease(guard_shared->lock);
}

/* Leave, unless a login came meanwhile. */
static bool
guard_retire(void)
{
	bool	 busy = false;
	GuardDb *db;

	LWLockAcquire(guard_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < guard_shared->nslots && !busy; i++)
		busy = guard_shared->slots[i].dboid == guard_dboid &&
			   guard_shared->slots[i].state != SLOT_FREE;
	if (!busy)
	{
		db = find_db(guard_dboid);
		if (db != NULL && db->pid == MyProcPid)
			db->dboid = InvalidOid;
	}
	LWLockRelease(guard_shared->lock);
	return !busy;
}

static ArrayType *
array_of(Datum *values, bool *nulls, int n, Oid type)
{
	int	  dims[1] = { n };
	int	  lbs[1] = { 1 };
	int16 typlen;
	bool  typbyval;
	char  typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return construct_md_array(values, nulls, 1, dims, lbs, type, typlen,
							  typbyval, typalign);
}

/*
 * Commit the failures taken, in one transaction, and sweep a few failures
 * older than the longest window among them (skipping rows someone else is
 * deleting: never wait for them).
 */
static void
commit_failures(Taken *taken, int n)
{
	Datum *ids = palloc(n * sizeof(Datum));
	Datum *hmacs = palloc(n * sizeof(Datum));
	Datum *emails = palloc(n * sizeof(Datum));
	bool  *id_nulls = palloc(n * sizeof(bool));
	bool  *hmac_nulls = palloc(n * sizeof(bool));
	int	   nkeyed = 0;
	int	   nlegacy = 0;
	int	   lockout = 0;
	Oid	   argtypes[2];
	Datum  values[2];

	for (int i = 0; i < n; i++)
	{
		PskLoginKey *k = &taken[i].key;

		lockout = Max(lockout, taken[i].lockout);
		if (k->kind == PSK_LOGIN_LEGACY)
		{
			emails[nlegacy++] = CStringGetTextDatum(k->email);
			continue;
		}
		id_nulls[nkeyed] = k->kind != PSK_LOGIN_USER;
		ids[nkeyed] = Int64GetDatum(k->user_id);
		hmac_nulls[nkeyed] = k->kind != PSK_LOGIN_UNKNOWN;
		if (!hmac_nulls[nkeyed])
		{
			bytea *h = palloc(VARHDRSZ + PSK_LOGIN_HMAC_LEN);

			SET_VARSIZE(h, VARHDRSZ + PSK_LOGIN_HMAC_LEN);
			memcpy(VARDATA(h), k->hmac, PSK_LOGIN_HMAC_LEN);
			hmacs[nkeyed] = PointerGetDatum(h);
		}
		nkeyed++;
	}

	if (nkeyed > 0)
	{
		argtypes[0] = INT8ARRAYOID;
		argtypes[1] = BYTEAARRAYOID;
		values[0] = PointerGetDatum(array_of(ids, id_nulls, nkeyed, INT8OID));
		values[1] =
			PointerGetDatum(array_of(hmacs, hmac_nulls, nkeyed, BYTEAOID));
		if (SPI_execute_with_args(
				"INSERT INTO psk.login_failures (user_id, email_hmac)"
				" SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))",
				2, argtypes, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "psk: could not record failed logins");
	}
	if (nlegacy > 0)
	{
		argtypes[0] = TEXTARRAYOID;
		values[0] = PointerGetDatum(array_of(emails, NULL, nlegacy, TEXTOID));
		if (SPI_execute_with_args("INSERT INTO psk.login_failures (email)"
								  " SELECT pg_catalog.unnest($1)",
								  1, argtypes, values, NULL, false,
								  0) != SPI_OK_INSERT)
			elog(ERROR, "psk: could not record failed logins");
	}

	argtypes[0] = INT4OID;
	values[0] = Int32GetDatum(lockout);
	if (SPI_execute_with_args(
			"DELETE FROM psk.login_failures"
			" WHERE ctid = ANY (ARRAY("
			"   SELECT ctid FROM psk.login_failures"
			"    WHERE failed_at <= pg_catalog.statement_timestamp()"
			"                       - $1 * interval '1 second'"
			"    LIMIT 100 FOR UPDATE SKIP LOCKED))",
			1, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "psk: could not sweep old failed logins");
}

/* One batch in its own transaction; false (logged) when it failed. */
static bool
commit_batch(Taken *taken, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "psk: record failed logins");
		commit_failures(taken, n);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
	return ok;
}

void
psk_login_guard_main(Datum main_arg)
{
	Taken	   *taken;
	TimestampTz last_work;

	guard_dboid = DatumGetObjectId(main_arg);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* As the bootstrap superuser: the table is the extension's alone. */
	BackgroundWorkerInitializeConnectionByOid(guard_dboid, InvalidOid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	/* Logins wait for us and no deadlock detector sees that wait. */
	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);

	if (guard_shared == NULL)
		proc_exit(0);
	before_shmem_exit(guard_exit, 0);
	if (!guard_claim())
		proc_exit(0); /* another guard serves this database */

	taken = MemoryContextAlloc(TopMemoryContext,
							   guard_shared->nslots * sizeof(Taken));
	last_work = GetCurrentTimestamp();
	for (;;)
	{
		bool busy;
		bool asked;
		int	 n = take_failures(taken, guard_shared->nslots, &busy, &asked);

		if (n > 0)
		{
			report_failures(taken, n, commit_batch(taken, n));
			last_work = GetCurrentTimestamp();
			continue;
		}
		if (busy)
			last_work = GetCurrentTimestamp();
		else if ((asked ||
				  TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(),
											 GUARD_IDLE_EXIT_MS)) &&
				 guard_retire())
			proc_exit(0);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
