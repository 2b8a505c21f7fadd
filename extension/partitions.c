/*
 * partitions.c
 *		The background worker's upkeep of the audit log's weekly partitions:
 *		psk_audit_maintain() (45_audit_partitions.sql) at most once a minute,
 *		in a transaction of its own.  It makes partitions ahead and drops
 *		those past psk.audit_retention; a failure is logged and tried again
 *		at the next round, never the end of the worker (the default
 *		partition takes any row meanwhile).
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

#define PARTITIONS_EVERY_MS (60 * 1000)

void
psk_audit_partitions_once(void)
{
	static TimestampTz last = 0;
	TimestampTz		   now = GetCurrentTimestamp();
	MemoryContext	   cxt = CurrentMemoryContext;

	if (last != 0 &&
		!TimestampDifferenceExceeds(last, now, PARTITIONS_EVERY_MS))
		return;
	last = now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "psk: audit log partitions");
	PG_TRY();
	{
		if (OidIsValid(get_extension_oid("psk", true)))
		{
			SPI_connect();
			if (SPI_execute("SELECT partition_name, action, n"
							"  FROM psk.psk_audit_maintain()",
							false, 0) != SPI_OK_SELECT)
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
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(WARNING, (errmsg("psk: audit log partitions not maintained: %s",
								 edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
}
