/*
 * audit_index.c
 *		The codes that the audit log holds, one row each (psk.audit_codes),
 *		so that psk_log's code filter finds the codes it means as a suffix
 *		in a small table (its reversed index) and then reads the log through
 *		its code index, instead of matching text against every row of the
 *		log (a prefix is a range of the log's C-collated code index itself).
 *
 * A code enters the log with its ADDED row (every way in writes one), so the
 * audit writer collects the codes of ADDED rows and remembers them in one
 * statement at the end of its call: an import of a million codes adds one
 * INSERT per batch, and reserve and release add nothing.  It is written in
 * the adding transaction, so an abort takes it away with the code.
 *
 * Its sibling psk.audit_names, for the user_name filter, needs nothing
 * here: every name the writer copies into a row is a user's name in
 * psk.users, which a trigger remembers when it is set (00_schema.sql).
 * Rows inserted by SQL and the old service's log (psk_migrate_legacy) are
 * remembered by a statement trigger and by the migration itself.
 */
#include "writer.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"

static PskQuery remember_codes = {
	"INSERT INTO psk.audit_codes (code)"
	" SELECT DISTINCT c FROM pg_catalog.unnest($1::text[]) c"
	" ON CONFLICT DO NOTHING",
	1,
	{ TEXTARRAYOID }
};

void
psk_audit_remember(PskWriter *w, const char *action)
{
	TupleTableSlot *row = w->log_row;
	int				code = w->log_att[LOG_CODE] - 1;

	if (!row->tts_isnull[code] && strcmp(action, "ADDED") == 0)
	{
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->new_codes = lappend(w->new_codes,
							   DatumGetPointer(datumCopy(row->tts_values[code],
														 false, -1)));
		MemoryContextSwitchTo(old);
	}
}

void
psk_audit_remember_codes(PskWriter *w)
{
	ListCell *lc;
	Datum	 *codes;
	int		  n = 0;
	Datum	  array;

	if (w->new_codes == NIL ||
		!OidIsValid(psk_relation_if_exists("audit_codes")))
		return;
	codes = palloc(sizeof(Datum) * list_length(w->new_codes));
	foreach (lc, w->new_codes)
		codes[n++] = PointerGetDatum(lfirst(lc));
	array = PointerGetDatum(
		construct_array(codes, n, TEXTOID, -1, false, TYPALIGN_INT));
	SPI_connect();
	psk_execute(&remember_codes, &array, NULL, false);
	SPI_finish();
	w->new_codes = NIL;
}
