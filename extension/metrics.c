/*
 * metrics.c
 *		What psk.metrics() needs from C: the expiry worker's liveness in
 *		shared memory (psk.expiry_worker_state()), and the worker's call of
 *		psk.metrics_refresh() after each sweep (75_metrics.sql), which folds
 *		new audit rows into the transition totals and recounts the codes.
 *
 * The shared memory exists only when psk is preloaded (there is no worker
 * otherwise); psk.expiry_worker_state() then says that no worker runs.
 */
#include "psk.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(psk_expiry_worker_state);

/* one slot per database with a worker (psk.database lists them) */
#define PSK_WORKER_SLOTS 32

typedef struct PskWorkerSlot
{
	Oid			dboid; /* InvalidOid: free */
	int			pid;   /* 0: not running (it exited, or never started) */
	TimestampTz started_at;
	TimestampTz last_sweep_at; /* 0: none yet */
	int64		sweeps;
} PskWorkerSlot;

typedef struct PskWorkerShared
{
	slock_t		  mutex;
	PskWorkerSlot slots[PSK_WORKER_SLOTS];
} PskWorkerShared;

static PskWorkerShared		  *worker_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static int					   my_slot = -1;

static void
metrics_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(sizeof(PskWorkerShared));
}

static void
metrics_shmem_startup(void)
{
	bool found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	worker_shared =
		ShmemInitStruct("psk worker liveness", sizeof(PskWorkerShared), &found);
	if (!found)
	{
		memset(worker_shared, 0, sizeof(PskWorkerShared));
		SpinLockInit(&worker_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init while psk is preloaded (psk_register_expiry_workers). */
void
psk_metrics_shmem_register(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = metrics_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = metrics_shmem_startup;
}

/* The worker exits (or dies with an ERROR): it no longer runs. */
static void
worker_exit(int code, Datum arg)
{
	if (worker_shared == NULL || my_slot < 0)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->slots[my_slot].pid = 0;
	SpinLockRelease(&worker_shared->mutex);
}

/* The expiry worker of this database has started. */
void
psk_metrics_worker_started(void)
{
	if (worker_shared == NULL)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	for (int i = 0; i < PSK_WORKER_SLOTS && my_slot < 0; i++)
		if (worker_shared->slots[i].dboid == MyDatabaseId)
			my_slot = i;
	for (int i = 0; i < PSK_WORKER_SLOTS && my_slot < 0; i++)
		if (worker_shared->slots[i].dboid == InvalidOid)
			my_slot = i;
	if (my_slot >= 0)
	{
		PskWorkerSlot *s = &worker_shared->slots[my_slot];

		s->dboid = MyDatabaseId;
		s->pid = MyProcPid;
		s->started_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&worker_shared->mutex);
	if (my_slot >= 0)
		on_shmem_exit(worker_exit, (Datum) 0);
}

/*
 * After a sweep: refresh the metrics' tables in a transaction of their
 * own (an error there must not stop the sweeps), then note the sweep.
 * recount_every: the worker's interval, the least time between counts of
 * the codes (psk.metrics_refresh stretches it when counting is slow).
 */
void
psk_metrics_worker_swept(void)
{
	MemoryContext oldcontext = CurrentMemoryContext;

	if (!RecoveryInProgress())
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "psk: refresh metrics");
		PG_TRY();
		{
			if (OidIsValid(get_extension_oid("psk", true)))
			{
				char sql[128];

				snprintf(sql, sizeof(sql),
						 "SELECT psk.metrics_refresh('%d s'::interval)",
						 psk_expiry_interval);
				SPI_connect();
				SPI_execute(sql, false, 0);
				SPI_finish();
			}
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		PG_CATCH();
		{
			psk_worker_step_failed(oldcontext, LOG, "metrics refresh failed");
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcontext);
	}

	if (worker_shared == NULL || my_slot < 0)
		return;
	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->slots[my_slot].last_sweep_at = GetCurrentTimestamp();
	worker_shared->slots[my_slot].sweeps++;
	SpinLockRelease(&worker_shared->mutex);
}

/*
 * psk.expiry_worker_state(): the expiry worker of this database, one row:
 * (preloaded, running, pid, started_at, last_sweep_at, sweeps).
 */
Datum
psk_expiry_worker_state(PG_FUNCTION_ARGS)
{
	PskWorkerSlot slot;
	bool		  have = false;
	Datum		  values[6];
	bool		  nulls[6] = { false };

	memset(&slot, 0, sizeof(slot));
	if (worker_shared != NULL)
	{
		SpinLockAcquire(&worker_shared->mutex);
		for (int i = 0; i < PSK_WORKER_SLOTS; i++)
			if (worker_shared->slots[i].dboid == MyDatabaseId)
			{
				slot = worker_shared->slots[i];
				have = true;
				break;
			}
		SpinLockRelease(&worker_shared->mutex);
	}

	psk_result_set(fcinfo);
	values[0] = BoolGetDatum(worker_shared != NULL);
	values[1] = BoolGetDatum(have && slot.pid != 0);
	values[2] = Int32GetDatum(slot.pid);
	nulls[2] = !have || slot.pid == 0;
	values[3] = TimestampTzGetDatum(slot.started_at);
	nulls[3] = !have;
	values[4] = TimestampTzGetDatum(slot.last_sweep_at);
	nulls[4] = !have || slot.last_sweep_at == 0;
	values[5] = Int64GetDatum(slot.sweeps);
	psk_return_row(fcinfo, values, nulls);
	return (Datum) 0;
}
