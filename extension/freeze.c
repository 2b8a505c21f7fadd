/*
 * freeze.c
 *		The background worker's freezing of the audit log, after each upkeep
 *		of its partitions (46_audit_freeze.sql says why): it sets
 *		autovacuum_freeze_min_age = 0 on any partition without it (those just
 *		made ahead), so that autovacuum freezes each as it fills; and once a
 *		partition is closed it runs VACUUM (FREEZE) on it, for the rows since
 *		the last autovacuum, then records that it was done
 *		(psk.audit_partition_frozen()).  A closed week's pages then stay
 *		all-frozen, and every later anti-wraparound autovacuum skips them
 *		instead of rereading the week.  The default partition, which the
 *		upkeep keeps empty, is frozen the same way whenever its relfrozenxid
 *		is the database's oldest (psk.audit_default_to_freeze()): otherwise
 *		it alone would hold age(datfrozenxid) back, a few pages that no
 *		autovacuum visits.
 *
 * VACUUM cannot run in a transaction block or a function (SPI refuses it),
 * so the worker calls ExecVacuum itself between transactions, as the
 * server does for a top-level VACUUM: a transaction is open on entry, and
 * VACUUM commits it, runs its own and starts a new one before returning.
 * One partition per round, so that a long freeze delays the next expiry
 * sweep only once.
 */
#include "psk.h"

#include "access/table.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/vacuum.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"

static TimestampTz retry_at = 0;

/*
 * The next closed partition to freeze (or the default partition): its oid,
 * schema, name, xid age.
 */
static bool
next_partition(MemoryContext keep, Oid *relid, char **nsp, char **rel,
			   char **age)
{
	bool found = false;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (OidIsValid(get_extension_oid("psk", true)))
	{
		SPI_connect();
		if (SPI_execute("SELECT psk.audit_partitions_freeze_as_filled()", false,
						0) != SPI_OK_SELECT)
			elog(ERROR, "psk: psk.audit_partitions_freeze_as_filled() failed");
		if (SPI_execute(
				"SELECT n.nspname, c.relname, pg_catalog.age(c.relfrozenxid),"
				"       c.oid"
				"  FROM (SELECT part, lower_bound"
				"          FROM psk.audit_partitions_to_freeze()"
				"        UNION ALL"
				"        SELECT part, NULL FROM psk.audit_default_to_freeze() part) f"
				"  JOIN pg_catalog.pg_class c ON c.oid = f.part"
				"  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
				" ORDER BY f.lower_bound NULLS LAST LIMIT 1",
				true, 1) != SPI_OK_SELECT)
			elog(ERROR, "psk: psk.audit_partitions_to_freeze() failed");
		if (SPI_processed == 1)
		{
			HeapTuple tup = SPI_tuptable->vals[0];
			bool	  isnull;
			TupleDesc desc = SPI_tuptable->tupdesc;

			*nsp = MemoryContextStrdup(keep, SPI_getvalue(tup, desc, 1));
			*rel = MemoryContextStrdup(keep, SPI_getvalue(tup, desc, 2));
			*age = MemoryContextStrdup(keep, SPI_getvalue(tup, desc, 3));
			*relid = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
			found = true;
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return found;
}

void
psk_audit_freeze_once(void)
{
	static MemoryContext portal = NULL;
	MemoryContext		 cxt = CurrentMemoryContext;
	char				*nsp = NULL;
	char				*rel = NULL;
	char				*age = NULL;
	Oid					 relid = InvalidOid;
	Relation			 r;
	BlockNumber			 all_visible = 0;
	BlockNumber			 all_frozen = 0;
	BlockNumber			 pages = 0;

	/* after a partly frozen partition: wait before the next try */
	if (GetCurrentTimestamp() < retry_at)
		return;

	/* VACUUM keeps what spans its transactions under PortalContext */
	if (portal == NULL)
		portal = AllocSetContextCreate(TopMemoryContext, "psk freeze",
									   ALLOCSET_DEFAULT_SIZES);
	PortalContext = portal;
	MemoryContextSwitchTo(portal);

	SetCurrentStatementStartTimestamp();
	pgstat_report_activity(STATE_RUNNING,
						   "psk: audit log partitions to freeze");
	PG_TRY();
	{
		if (next_partition(portal, &relid, &nsp, &rel, &age))
		{
			VacuumStmt *stmt = makeNode(VacuumStmt);
			ParseState *pstate;

			pgstat_report_activity(STATE_RUNNING,
								   psprintf("psk: VACUUM (FREEZE) %s.%s",
											quote_identifier(nsp),
											quote_identifier(rel)));
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			MemoryContextSwitchTo(portal);
			stmt->options = list_make1(makeDefElem("freeze", NULL, -1));
			stmt->rels =
				list_make1(makeVacuumRelation(makeRangeVar(nsp, rel, -1),
											  InvalidOid, NIL));
			stmt->is_vacuumcmd = true;
			pstate = make_parsestate(NULL);
			ExecVacuum(pstate, stmt, true);
			CommitTransactionCommand();

			/*
			 * The record, once every page is all-frozen: rows newer than the
			 * oldest snapshot of the database (a transaction that began
			 * before the partition closed, a long pg_dump) cannot be frozen
			 * yet, and their pages are tried again later.
			 */
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			r = table_open(relid, AccessShareLock);
			visibilitymap_count(r, &all_visible, &all_frozen);
			pages = RelationGetNumberOfBlocks(r);
			table_close(r, AccessShareLock);
			if (all_frozen == pages)
			{
				SPI_connect();
				if (SPI_execute_with_args(
						"SELECT psk.audit_partition_frozen($1)", 1,
						(Oid[]){ REGCLASSOID },
						(Datum[]){ ObjectIdGetDatum(relid) }, NULL, false,
						0) != SPI_OK_SELECT)
					elog(ERROR, "psk: psk.audit_partition_frozen() failed");
				SPI_finish();
			}
			else
				retry_at =
					TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												6000L * psk_expiry_interval);
			PopActiveSnapshot();
			CommitTransactionCommand();
			if (all_frozen == pages)
				elog(LOG,
					 "psk: audit log partition %s.%s frozen (%u pages; its "
					 "relfrozenxid was %s transactions old)",
					 nsp, rel, pages, age);
			else
				elog(LOG,
					 "psk: audit log partition %s.%s partly frozen (%u of %u "
					 "pages: newer rows than the oldest snapshot), tried again "
					 "in %d s",
					 nsp, rel, all_frozen, pages, 6 * psk_expiry_interval);
		}
	}
	PG_CATCH();
	{
		psk_worker_step_failed(cxt, WARNING, "audit log partition not frozen");
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	PortalContext = NULL;
	MemoryContextReset(portal);
	pgstat_report_activity(STATE_IDLE, NULL);
}
