/*
 * holders.c
 *		A user who holds codes stays: the users side of what the holder_id
 *		foreign key of psk.codes used to check.
 *
 * The codes side of that key needs no check of its own: every call that
 * makes a user a holder (reserve; migrate, for the users it has just made)
 * has that user's row locked first, in at least the KEY SHARE mode the
 * key's check took, so the user exists until the call's transaction ends
 * and cannot be deleted under it.  The key's check was therefore a second
 * statement on every reserve that could never fail (about a sixteenth of
 * a reserve + release cycle's instructions).
 *
 * What is left is this trigger, BEFORE DELETE OR UPDATE OF id ON
 * psk.users: the row is locked for the change before it fires (so a
 * reserve of that user in flight has ended and later ones wait for us),
 * and it looks for the user's codes in a snapshot taken now, as the key's
 * check did under REPEATABLE READ, so a hold committed since the
 * transaction's snapshot refuses the change too.  Its error is the key's:
 * foreign_key_violation (23503).
 */
#include "writer.h"

#include "commands/trigger.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(psk_users_keep_holders);

static PskQuery holds_any = {
	"SELECT 1 FROM psk.codes WHERE holder_id = $1 LIMIT 1", 1, { INT8OID }
};

static int64
user_id_of(HeapTuple tuple, TupleDesc desc, AttrNumber attnum)
{
	bool  isnull;
	Datum id = heap_getattr(tuple, attnum, desc, &isnull);

	return isnull ? 0 : DatumGetInt64(id);
}

Datum
psk_users_keep_holders(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;
	TupleDesc	 desc;
	AttrNumber	 id_att;
	HeapTuple	 result;
	Datum		 id;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigger->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigger->tg_event) ||
		TRIGGER_FIRED_BY_INSERT(trigger->tg_event))
		elog(ERROR, "psk_users_keep_holders: not a BEFORE ROW DELETE or "
					"UPDATE trigger");

	desc = RelationGetDescr(trigger->tg_relation);
	id_att = psk_user_columns(trigger->tg_relation)[USER_ID];

	id = Int64GetDatum(user_id_of(trigger->tg_trigtuple, desc, id_att));
	result = trigger->tg_trigtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
	{
		result = trigger->tg_newtuple;
		if (user_id_of(result, desc, id_att) == DatumGetInt64(id))
			return PointerGetDatum(result);
	}

	SPI_connect();
	if (psk_execute_latest(&holds_any, &id, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("user %lld still holds codes",
						(long long) DatumGetInt64(id)),
				 errdetail("A user is deleted, or its id changed, only once "
						   "every code it holds is released."),
				 errtable(trigger->tg_relation)));
	SPI_finish();
	return PointerGetDatum(result);
}
