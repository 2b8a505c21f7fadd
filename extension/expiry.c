/*
 * expiry.c
 *		Returning overdue reservations to their pool: psk_expire_reservations()
 *		and the background workers that call it every psk.expiry_interval when
 *		psk is in shared_preload_libraries (one per database in psk.database).
 */
#include "psk.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(psk_expire_reservations);

PGDLLEXPORT void psk_expiry_main(Datum main_arg);
void		psk_register_expiry_workers(void);

/*
 * Skip rows someone holds locked (a holder releasing or confirming right
 * now): the next sweep sees them again.  The actor of EXPIRED is the holder.
 */
static PskQuery expire_overdue = {
	"WITH overdue AS ("
	"  SELECT id, holder_id, tester_name FROM psk.codes"
	"   WHERE status = 'RESERVED' AND expires_at <= now()"
	"   ORDER BY expires_at, id FOR UPDATE SKIP LOCKED"
	"), expired AS ("
	"  UPDATE psk.codes c"
	"     SET status = 'CAN_BE_USED', holder_id = NULL, tester_name = NULL,"
	"         reserved_at = NULL, expires_at = NULL, confirmed_at = NULL,"
	"         reservation_token = NULL, freed_at = now()"
	"    FROM overdue o WHERE c.id = o.id"
	"  RETURNING c.id, c.code, c.pool, o.holder_id, o.tester_name"
	"), logged AS ("
	"  INSERT INTO psk.audit_log (action, code, code_type, user_id, user_name,"
	"                             contact_email, tester_name)"
	"  SELECT 'EXPIRED', e.code, e.pool, u.id, u.user_name, u.email, e.tester_name"
	"    FROM expired e LEFT JOIN psk.users u ON u.id = e.holder_id"
	"   ORDER BY e.id"
	")"
	"SELECT code FROM expired ORDER BY code",
	0, {InvalidOid}
};

/* Inside SPI: expire what is overdue; the codes are in SPI_tuptable. */
uint64
psk_expire_overdue(void)
{
	return psk_execute(&expire_overdue, NULL, NULL, false);
}

Datum
psk_expire_reservations(PG_FUNCTION_ARGS)
{
	SPI_connect();
	psk_expire_overdue();
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

void
psk_register_expiry_workers(void)
{
	char	   *raw = pstrdup(psk_databases ? psk_databases : "");
	List	   *names;
	ListCell   *lc;

	if (!SplitGUCList(raw, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("psk.database is not a valid list of database names")));

	foreach(lc, names)
	{
		const char *dbname = lfirst(lc);
		BackgroundWorker worker;

		if (strlen(dbname) >= BGW_EXTRALEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("psk.database: name \"%s\" is too long", dbname)));

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
			BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = 10;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "psk");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "psk_expiry_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "psk expiry worker for %s", dbname);
		snprintf(worker.bgw_type, BGW_MAXLEN, "psk expiry worker");
		strlcpy(worker.bgw_extra, dbname, BGW_EXTRALEN);
		RegisterBackgroundWorker(&worker);
	}
}

/* One sweep in its own transaction; quiet when psk is not installed. */
static void
expire_once(void)
{
	uint64		expired = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "psk: expire reservations");

	if (OidIsValid(get_extension_oid("psk", true)))
		expired = psk_expire_overdue();

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);

	if (expired > 0)
		elog(LOG, "psk: returned %llu overdue reservations to their pool",
			 (unsigned long long) expired);
}

void
psk_expiry_main(Datum main_arg)
{
	char		dbname[BGW_EXTRALEN];

	strlcpy(dbname, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(dbname, NULL, 0);
	/* Resolve names in pg_catalog only, whatever the database's default. */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	elog(LOG, "psk expiry worker started in database \"%s\", every %d s",
		 dbname, psk_expiry_interval);

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
	}
}
