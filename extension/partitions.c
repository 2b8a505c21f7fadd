/*
 * partitions.c
 *		The background worker's upkeep of the audit log's weekly partitions:
 *		psk_audit_maintain() (45_audit_partitions.sql) after every sweep, in
 *		a transaction of its own: when there is nothing to make, move or
 *		drop, that is two catalog reads and no lock beyond AccessShare.  It
 *makes partitions ahead and drops those past psk.audit_retention; a failure is
 *logged and tried again at the next round, never the end of the worker (the
 *default partition takes any row meanwhile).
 */
#include "psk.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

void
psk_audit_partitions_once(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "psk: audit log partitions");
	PG_TRY();
	{
		Oid ext = get_extension_oid("psk", true);

		if (OidIsValid(ext))
		{
			char *sql;

			/* psk_* functions live in the extension's schema, any schema */
			SPI_connect();
			if (SPI_execute("SELECT e.extnamespace::pg_catalog.regnamespace"
							"  FROM pg_catalog.pg_extension e"
							" WHERE e.extname = 'psk'",
							true, 1) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "psk: the extension's schema is not found");
			sql = psprintf("SELECT partition_name, action, n"
						   "  FROM %s.psk_audit_maintain()",
						   SPI_getvalue(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1));
			if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "psk: psk_audit_maintain() failed");
			for (uint64 i = 0; i < SPI_processed; i++)
				elog(LOG, "psk: audit log partition %s %s (%s rows)",
					 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  1),
					 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  2),
					 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  3));
			SPI_finish();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		psk_worker_step_failed(cxt, WARNING,
							   "audit log partitions not maintained");
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}
