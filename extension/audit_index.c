/*
 * audit_index.c
 *		The codes and the actors' names that the audit log holds, one row
 *		each (psk.audit_codes, psk.audit_names), kept by the one audit
 *		writer, so that psk_log's code filter (a prefix or a suffix) and
 *		user_name filter (a substring) find the few codes or users they mean
 *		in a small table and then read the log through its code and user
 *		indexes, instead of matching text against every row of the log.
 *
 * A code enters the log with its ADDED row (every way in writes one), so the
 * writer remembers the codes of ADDED rows, in one statement at the end of
 * the call: an import of a million codes adds one INSERT per batch, and
 * reserve and release add nothing.  (psk_migrate_legacy, whose moved log
 * may name codes without an ADDED row, asks for every code.)  A name enters
 * the log with the first row its user writes under it: the writer keeps the
 * name last remembered for each user in this backend and writes a pair it
 * has not seen; the hot path pays one hash lookup.  Rows inserted by SQL
 * (a superuser, COPY into psk.audit_log) are remembered by a statement
 * trigger (psk.audit_log_remember, 00_schema.sql), which the writer's
 * row inserts do not fire.
 *
 * A pair remembered by a transaction or subtransaction that then aborts is
 * gone from the table: only pairs whose writer committed stay known here,
 * and an abort forgets those not yet committed.  Rows of partitions dropped
 * past retention leave their codes and names behind, which costs a reader
 * an index probe that finds nothing.
 */
#include "writer.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

/* The name this backend last remembered for a user (0: rows without one). */
typedef struct KnownName
{
	int64 user_id; /* hash key */
	char *name;	   /* in TopMemoryContext */
	bool  committed;
} KnownName;

static HTAB *known_names = NULL;
static int	 uncommitted_names = 0;
static bool	 callbacks_registered = false;

static PskQuery remember_name = {
	"INSERT INTO psk.audit_names (user_id, user_name) VALUES ($1, $2)"
	" ON CONFLICT DO NOTHING",
	2,
	{ INT8OID, TEXTOID }
};

static PskQuery remember_codes = {
	"INSERT INTO psk.audit_codes (code)"
	" SELECT DISTINCT c FROM pg_catalog.unnest($1::text[]) c"
	" ON CONFLICT DO NOTHING",
	1,
	{ TEXTARRAYOID }
};

/* Forget what an aborted (sub)transaction remembered, or keep it. */
static void
settle_names(bool commit)
{
	HASH_SEQ_STATUS scan;
	KnownName	   *k;

	if (uncommitted_names == 0)
		return;
	hash_seq_init(&scan, known_names);
	while ((k = hash_seq_search(&scan)) != NULL)
	{
		if (k->committed)
			continue;
		if (commit)
			k->committed = true;
		else
		{
			pfree(k->name);
			hash_search(known_names, &k->user_id, HASH_REMOVE, NULL);
		}
	}
	uncommitted_names = 0;
}

static void
names_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
		settle_names(true);
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		settle_names(false);
}

/*
 * A subtransaction that aborts may have written a pair: forget every pair
 * not yet committed (the next row writes it again, ON CONFLICT DO NOTHING).
 */
static void
names_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		settle_names(false);
}

static void
remember_user_name(bool has_id, int64 user_id, Datum name)
{
	int64	   key = has_id ? user_id : 0;
	KnownName *k;
	bool	   found;
	char	  *s = TextDatumGetCString(name);
	Datum	   values[2];

	if (known_names == NULL)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(KnownName);
		known_names =
			hash_create("psk audit names", 256, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	if (!callbacks_registered)
	{
		RegisterXactCallback(names_xact_callback, NULL);
		RegisterSubXactCallback(names_subxact_callback, NULL);
		callbacks_registered = true;
	}

	k = hash_search(known_names, &key, HASH_FIND, NULL);
	if (k != NULL && strcmp(k->name, s) == 0)
		return;

	/* an older release's objects, until ALTER EXTENSION UPDATE */
	if (!OidIsValid(psk_relation_if_exists("audit_names")))
		return;
	values[0] = Int64GetDatum(key);
	values[1] = name;
	SPI_connect();
	psk_execute(&remember_name, values, NULL, false);
	SPI_finish();

	k = hash_search(known_names, &key, HASH_ENTER, &found);
	if (found)
		pfree(k->name);
	k->name = MemoryContextStrdup(TopMemoryContext, s);
	k->committed = false;
	uncommitted_names++;
}

void
psk_audit_remember(PskWriter *w, const char *action)
{
	TupleTableSlot *row = w->log_row;
	int				code = w->log_att[LOG_CODE] - 1;
	int				user_id = w->log_att[LOG_USER_ID] - 1;
	int				name = w->log_att[LOG_USER_NAME] - 1;

	if (!row->tts_isnull[name])
		remember_user_name(!row->tts_isnull[user_id],
						   DatumGetInt64(row->tts_values[user_id]),
						   row->tts_values[name]);

	if (!row->tts_isnull[code] &&
		(w->remember_every_code || strcmp(action, "ADDED") == 0))
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
