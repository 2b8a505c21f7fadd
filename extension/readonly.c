/*
 * readonly.c
 *		Changes refused where they cannot be made: in a read-only
 *		transaction, and on a hot standby.
 *
 * The engine writes below SPI (writer.c), where nothing checks whether the
 * transaction may write: on a standby the first change failed deep inside
 * the heap code (XX000, "cannot assign TransactionIds during recovery"),
 * and in a READ ONLY transaction on a primary a code row was updated before
 * the audit row's nextval noticed.  Every function that changes state asks
 * here first, as a statement's executor would, and gets PostgreSQL's own
 * error (SQLSTATE 25006), which the shim answers 503 unavailable.
 */
#include "psk.h"

#include "access/xlog.h"
#include "miscadmin.h"

void
psk_require_writable(const char *what)
{
	if (RecoveryInProgress())
		ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
						errmsg("cannot execute %s during recovery", what),
						errhint("Call it on the primary.")));
	PreventCommandIfReadOnly(what);
}
