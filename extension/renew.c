/*
 * renew.c
 *		The holder's heartbeat: psk_renew_code (for psk_renew and the HTTP
 *		layer) and psk_renew.  A held code's expires_at starts again from
 *		the call (the statement's start): a RESERVED code's by
 *		psk.reservation_ttl, an IN_USE code's by psk.in_use_ttl (either 0:
 *		no expiry).
 *
 * Below SPI (writer.c), as confirm is: the caller first (a non-admin
 * user), then the arguments, then the code, locked as FOR NO KEY UPDATE
 * would (the sweep's lock conflicts with it, so a renew and the sweep of
 * the same hold are serialised), checked and changed, with its audit row
 * (RENEWED).
 */
#include "writer.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "partitioning/partdesc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(psk_renew);

/*
 * Was the hold that the user had on this code (not held now) swept when it
 * lapsed?  Then the code's last audit row is EXPIRED, with that user as
 * actor: nothing has happened to the code since.  Read as committed now:
 * the code's row was locked in its newest version, which may be newer than
 * the call's snapshot (a sweep that committed while the lock waited).
 */
/* The newest audit row of code in one relation of the log, by id. */
static void
last_row_of_code(Relation log, const char *code, Snapshot snap, int64 *last_id,
				 bool *swept, int64 user_id)
{
	char			idx_name[NAMEDATALEN];
	Relation		code_idx;
	TupleTableSlot *slot = table_slot_create(log, NULL);
	AttrNumber		id_att = get_attnum(RelationGetRelid(log), "id");
	AttrNumber		action_att = get_attnum(RelationGetRelid(log), "action");
	AttrNumber		user_att = get_attnum(RelationGetRelid(log), "user_id");
	ScanKeyData		key;
	IndexScanDesc	scan;
	bool			isnull;

	/* each partition's own index (audit_partition_create names it) */
	snprintf(idx_name, sizeof(idx_name), "%s_code_idx",
			 RelationGetRelationName(log));
	code_idx = index_open(psk_relation(idx_name), AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(code));
	key.sk_collation = code_idx->rd_indcollation[0];
	scan = index_beginscan(log, code_idx, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		int64 id = psk_slot_int8(slot, id_att, &isnull);

		if (id > *last_id)
		{
			*last_id = id;
			*swept = psk_slot_text_equals(slot, action_att, "EXPIRED") &&
					 psk_slot_int8(slot, user_att, &isnull) == user_id &&
					 !isnull;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(code_idx, NoLock);
}

/*
 * Was the hold that the user had on this code (not held now) swept when it
 * lapsed?  Then the code's last audit row is EXPIRED, with that user as
 * actor: nothing has happened to the code since.  Read as committed now:
 * the code's row was locked in its newest version, which may be newer than
 * the call's snapshot (a sweep that committed while the lock waited).  The
 * log is partitioned by logged_at, which is a transaction's start, so the
 * row with the highest id may be in any partition: each is looked at (one
 * index probe each).
 */
static bool
hold_was_swept(PskWriter *w, const char *code, int64 user_id)
{
	Relation log = w->log->ri_RelationDesc;
	Snapshot now = RegisterSnapshot(GetLatestSnapshot());
	int64	 last_id = 0;
	bool	 swept = false;

	if (log->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		PartitionDesc parts = RelationGetPartitionDesc(log, true);

		for (int i = 0; i < parts->nparts; i++)
		{
			Relation part = table_open(parts->oids[i], AccessShareLock);

			last_row_of_code(part, code, now, &last_id, &swept, user_id);
			table_close(part, NoLock);
		}
	}
	else
		last_row_of_code(log, code, now, &last_id, &swept, user_id);
	UnregisterSnapshot(now);
	return swept;
}

static void
refuse_expired(const char *code)
{
	ereport(ERROR, (errcode(ERRCODE_PSK_RESERVATION_EXPIRED),
					errmsg("the hold of code \"%s\" has expired", code)));
}

void
psk_renew_code(const PskCaller *caller, const char *code,
			   const pg_uuid_t *token, PskRenewed *out)
{
	PskWriter  w;
	PskUser	   user;
	bool	   found;
	bool	   isnull = true;
	char	  *status = NULL;
	int64	   holder = 0;
	char	  *stored;
	Datum	   expires_at;
	pg_uuid_t *held_token;
	int		   ttl;

	psk_writer_begin(&w);
	/* who may call it: a non-admin user */
	psk_require_caller(caller, &user);

	/* then the arguments */
	code = psk_check_text(unconstify(char *, code), "code", true,
						  PSK_MAX_CODE_LEN);
	if (token == NULL)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("reservation_token is required")));

	/* then the code: its holder, status, token and expiry, in that order */
	found = psk_lock_code(&w, code, LockTupleNoKeyExclusive);
	if (found)
	{
		status = psk_slot_cstring(w.code_slot, w.code_att[CODE_STATUS]);
		holder = psk_slot_int8(w.code_slot, w.code_att[CODE_HOLDER], &isnull);
		stored = psk_slot_cstring(w.code_slot, w.code_att[CODE_CODE]);
		/* its hold lapsed and was swept: expired, as if not swept yet */
		if (isnull && hold_was_swept(&w, stored, user.id))
			refuse_expired(code);
	}
	psk_check_holder(code, status, !isnull, holder, user.id);
	held_token = DatumGetUUIDP(
		slot_getattr(w.code_slot, w.code_att[CODE_TOKEN], &isnull));
	if (memcmp(held_token->data, token->data, UUID_LEN) != 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_TOKEN_MISMATCH),
			 errmsg(
				 "reservation_token does not match the reservation of code \"%s\"",
				 code)));
	/* lapsed by the statement's clock, as confirm has it */
	expires_at =
		slot_getattr(w.code_slot, w.code_att[CODE_EXPIRES_AT], &isnull);
	if (!isnull &&
		DatumGetTimestampTz(expires_at) <= GetCurrentStatementStartTimestamp())
		refuse_expired(code);

	ttl = strcmp(status, "IN_USE") == 0 ? psk_in_use_ttl : psk_reservation_ttl;
	out->code = psk_slot_cstring(w.code_slot, w.code_att[CODE_CODE]);
	out->status = strcmp(status, "IN_USE") == 0 ? "IN_USE" : "RESERVED";
	/*
	 * From the statement's clock too: a hold renewed late in a long
	 * transaction still ends ttl after the call, never before it.
	 */
	out->expires = ttl > 0;
	out->expires_at =
		out->expires
			? TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(),
										  (int64) ttl * 1000)
			: 0;

	psk_code_change(&w);
	psk_code_set(&w, CODE_EXPIRES_AT, TimestampTzGetDatum(out->expires_at),
				 !out->expires);
	psk_code_update(&w);

	psk_audit_code(&w, &user);
	psk_audit_append(&w, "RENEWED");

	psk_writer_end(&w);
}

/*
 * psk_renew(user_email, code, reservation_token) -> (code, status,
 * expires_at)
 */
Datum
psk_renew(PG_FUNCTION_ARGS)
{
	PskCaller	   caller = { psk_text_arg(fcinfo, 0, "user_email", true,
										   PSK_MAX_EMAIL_LEN) };
	char		  *code = NULL;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PskRenewed	   renewed;
	Datum		   values[3];
	bool		   nulls[3] = { 0 };

	/* checked after the caller: cut a huge value first, as reserve does */
	if (!PG_ARGISNULL(1))
	{
		text *arg = PG_GETARG_TEXT_PP(1);
		Size  cap = (Size) PSK_MAX_CODE_LEN * MAX_MULTIBYTE_CHAR_LEN + 1;

		code = pnstrdup(VARDATA_ANY(arg), Min(VARSIZE_ANY_EXHDR(arg), cap));
	}
	psk_pin_search_path();
	psk_renew_code(&caller, code, PG_ARGISNULL(2) ? NULL : PG_GETARG_UUID_P(2),
				   &renewed);
	psk_unpin_search_path();

	psk_materialize(fcinfo);
	values[0] = CStringGetTextDatum(renewed.code);
	values[1] = CStringGetTextDatum(renewed.status);
	values[2] = TimestampTzGetDatum(renewed.expires_at);
	nulls[2] = !renewed.expires;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
