/*
 * login_guard.c
 *		Recording a failed login so that the record survives the rollback of
 *		the call that failed.
 *
 * psk_login raises an error when the credentials are wrong, and the error
 * rolls back whatever its transaction wrote.  A failure count that must
 * outlive that rollback has to be committed by another transaction, and
 * PostgreSQL runs another transaction only in another backend: here, a
 * short-lived dynamic background worker (which needs no
 * shared_preload_libraries).
 *
 * The worker is started before the password is checked.  When none can be
 * started (every max_worker_processes slot taken), the login is refused
 * before the password is looked at, so an attempt is never evaluated
 * without being counted: the guard fails closed.  The worker connects to
 * the database while the caller runs bcrypt, then waits for the verdict
 * (record a failure, or nothing), acts on it and exits; the caller waits for
 * the exit and reads what was done from a small dynamic shared memory
 * segment, which also carries the e-mail (longer than bgw_extra allows).
 */
#include "psk.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "login_guard.h"

PGDLLEXPORT void psk_login_guard_main(Datum main_arg);

/* Starting a worker: tries, and the pause between them. */
#define GUARD_START_TRIES	 20
#define GUARD_START_PAUSE_MS 50

/* How long a worker waits for a verdict from a caller that is still there. */
#define GUARD_VERDICT_WAIT_MS (60 * 1000)

typedef enum GuardVerdict
{
	GUARD_PENDING,
	GUARD_RECORD,
	GUARD_DISCARD
} GuardVerdict;

typedef enum GuardOutcome
{
	GUARD_NOTHING_DONE,
	GUARD_RECORDED,
	GUARD_DISCARDED
} GuardOutcome;

/* The segment shared by the caller and its worker. */
typedef struct GuardShared
{
	slock_t		 mutex;		   /* protects the three fields below */
	Latch		*worker_latch; /* set by the worker as it starts */
	GuardVerdict verdict;	   /* set by the caller */
	GuardOutcome outcome;	   /* set by the worker */
	/* set by the caller before the worker starts, read-only after */
	Oid	 dboid;
	int	 caller_pid;
	int	 lockout; /* the caller's psk.login_lockout, seconds */
	char email[FLEXIBLE_ARRAY_MEMBER];
} GuardShared;

struct PskLoginGuard
{
	dsm_segment			   *seg;
	GuardShared			   *shared;
	BackgroundWorkerHandle *handle;
};

PskLoginGuard *
psk_guard_start(const char *email)
{
	PskLoginGuard	*guard = palloc(sizeof(PskLoginGuard));
	size_t			 len = strlen(email);
	BackgroundWorker worker;
	GuardShared		*shared;

	guard->seg = dsm_create(offsetof(GuardShared, email) + len + 1, 0);
	guard->shared = shared = dsm_segment_address(guard->seg);
	SpinLockInit(&shared->mutex);
	shared->worker_latch = NULL;
	shared->verdict = GUARD_PENDING;
	shared->outcome = GUARD_NOTHING_DONE;
	shared->dboid = MyDatabaseId;
	shared->caller_pid = MyProcPid;
	shared->lockout = psk_login_lockout;
	memcpy(shared->email, email, len + 1);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags =
		BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "psk");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "psk_login_guard_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "psk login guard for PID %d",
			 MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "psk login guard");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(guard->seg));
	worker.bgw_notify_pid = MyProcPid;

	for (int attempt = 1;
		 !RegisterDynamicBackgroundWorker(&worker, &guard->handle); attempt++)
	{
		if (attempt == GUARD_START_TRIES)
		{
			dsm_detach(guard->seg);
			ereport(
				ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg(
					 "login refused: no background worker is free to guard it, try again later"),
				 errhint("Raise max_worker_processes."), errhidestmt(true)));
		}
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 GUARD_START_PAUSE_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return guard;
}

static void
set_verdict(GuardShared *shared, GuardVerdict verdict)
{
	Latch *latch;

	SpinLockAcquire(&shared->mutex);
	shared->verdict = verdict;
	latch = shared->worker_latch;
	SpinLockRelease(&shared->mutex);
	/* Not yet running: it reads the verdict as it publishes its latch. */
	if (latch != NULL)
		SetLatch(latch);
}

bool
psk_guard_finish(PskLoginGuard *guard, bool failed)
{
	GuardOutcome outcome;

	set_verdict(guard->shared, failed ? GUARD_RECORD : GUARD_DISCARD);
	(void) WaitForBackgroundWorkerShutdown(guard->handle);

	SpinLockAcquire(&guard->shared->mutex);
	outcome = guard->shared->outcome;
	SpinLockRelease(&guard->shared->mutex);
	dsm_detach(guard->seg);

	return outcome == (failed ? GUARD_RECORDED : GUARD_DISCARDED);
}

void
psk_guard_abandon(PskLoginGuard *guard)
{
	/* The segment goes with the aborting transaction's resource owner. */
	set_verdict(guard->shared, GUARD_DISCARD);
}

/*
 * The worker: the verdict, or GUARD_PENDING when the caller went away or
 * took too long.
 */
static GuardVerdict
wait_for_verdict(GuardShared *shared)
{
	for (int waited = 0; waited < GUARD_VERDICT_WAIT_MS; waited += 1000)
	{
		GuardVerdict verdict;

		SpinLockAcquire(&shared->mutex);
		verdict = shared->verdict;
		SpinLockRelease(&shared->mutex);
		if (verdict != GUARD_PENDING)
			return verdict;
		if (BackendPidGetProc(shared->caller_pid) == NULL)
			break;

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	return GUARD_PENDING;
}

/*
 * Commit one failure for email, and sweep a few failures older than the
 * window (skipping rows someone else is deleting: never wait for them).
 */
static void
record_failure(const char *email, int lockout)
{
	Oid	  argtypes[2] = { TEXTOID, INT4OID };
	Datum values[2];

	values[0] = CStringGetTextDatum(email);
	values[1] = Int32GetDatum(lockout);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "psk: record a failed login");

	if (SPI_execute_with_args(
			"INSERT INTO psk.login_failures (email) VALUES ($1)", 1, argtypes,
			values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "psk: could not record a failed login");
	if (SPI_execute_with_args(
			"DELETE FROM psk.login_failures"
			" WHERE ctid = ANY (ARRAY("
			"   SELECT ctid FROM psk.login_failures"
			"    WHERE failed_at <= statement_timestamp() - $2 * interval '1 second'"
			"    LIMIT 100 FOR UPDATE SKIP LOCKED))",
			2, argtypes, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "psk: could not sweep old failed logins");

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
psk_login_guard_main(Datum main_arg)
{
	dsm_segment *seg;
	GuardShared *shared;
	GuardVerdict verdict;
	GuardOutcome outcome = GUARD_NOTHING_DONE;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		proc_exit(0); /* the caller is gone already */
	shared = dsm_segment_address(seg);

	SpinLockAcquire(&shared->mutex);
	shared->worker_latch = MyLatch;
	SpinLockRelease(&shared->mutex);

	/* As the bootstrap superuser: the table is the extension's alone. */
	BackgroundWorkerInitializeConnectionByOid(shared->dboid, InvalidOid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	/* The caller waits for us and no deadlock detector sees that wait. */
	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);

	verdict = wait_for_verdict(shared);
	if (verdict == GUARD_RECORD)
	{
		/* An error here exits the worker (FATAL): nothing is reported done. */
		record_failure(shared->email, shared->lockout);
		outcome = GUARD_RECORDED;
	}
	else if (verdict == GUARD_DISCARD)
		outcome = GUARD_DISCARDED;

	SpinLockAcquire(&shared->mutex);
	shared->outcome = outcome;
	SpinLockRelease(&shared->mutex);
	dsm_detach(seg);
	proc_exit(0);
}
