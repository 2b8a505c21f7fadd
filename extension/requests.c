/*
 * requests.c
 *		Reserves that do not reserve twice: what the first successful
 *		psk_reserve with a request_id returned, kept per user in
 *		psk.reserve_requests for 24 hours, returned again to a retry, and
 *		forgotten after (psk_forget_requests, from the expiry worker).
 *
 * The row is written by the reserve itself, below SPI (writer.c), in its
 * transaction: a call that fails leaves none.  The reserve holds the
 * user's row locked (reserve.c) from before it looks here until it
 * commits, so a second call with the same request_id waits, then finds
 * the first one's row (if it committed) or none (if it rolled back) and
 * reserves itself; the primary key never sees two.
 */
#include "writer.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* How long a request_id is remembered. */
#define PSK_REQUEST_TTL_USEC ((int64) 24 * USECS_PER_HOUR)

PskRequestFound
psk_request_find(PskWriter *w, int64 user_id, const char *request_id)
{
	Relation rel = w->requests->ri_RelationDesc;
	Relation pkey =
		index_open(psk_relation("reserve_requests_pkey"), AccessShareLock);
	Snapshot	  now = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyData	  key[2];
	IndexScanDesc scan;
	bool		  found;
	bool		  isnull;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(user_id));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(request_id));
	key[1].sk_collation = pkey->rd_indcollation[1];
	scan = index_beginscan(rel, pkey, now, 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, w->request_slot);
	index_endscan(scan);
	UnregisterSnapshot(now);
	index_close(pkey, NoLock);

	if (!found)
		return PSK_REQUEST_NONE;
	slot_getallattrs(w->request_slot);
	if (DatumGetTimestampTz(slot_getattr(w->request_slot,
										 w->request_att[REQ_MADE_AT],
										 &isnull)) +
			PSK_REQUEST_TTL_USEC <=
		w->now)
		return PSK_REQUEST_LAPSED;
	return PSK_REQUEST_KNOWN;
}

/* A text column of the found row against a value; NULL equals NULL. */
static bool
same_text(PskWriter *w, int col, const char *value)
{
	char *stored = psk_slot_cstring(w->request_slot, w->request_att[col]);

	if (stored == NULL || value == NULL)
		return stored == NULL && value == NULL;
	return strcmp(stored, value) == 0;
}

bool
psk_request_same(PskWriter *w, const char *tester, const char *country,
				 const char *code_type, int how_many)
{
	bool isnull;

	return same_text(w, REQ_TESTER, tester) &&
		   same_text(w, REQ_COUNTRY, country) &&
		   same_text(w, REQ_CODE_TYPE, code_type) &&
		   DatumGetInt32(slot_getattr(w->request_slot,
									  w->request_att[REQ_HOW_MANY], &isnull)) ==
			   how_many;
}

/* An array column of the found row, deconstructed. */
static int
array_column(PskWriter *w, int col, Oid elemtype, int elemlen, bool byval,
			 char align, Datum **elems)
{
	bool  isnull;
	bool *nulls;
	int	  n;

	deconstruct_array(DatumGetArrayTypeP(slot_getattr(w->request_slot,
													  w->request_att[col],
													  &isnull)),
					  elemtype, elemlen, byval, align, elems, &nulls, &n);
	return n;
}

int
psk_request_replay(PskWriter *w, PskReserved *out, int max)
{
	Datum	   *codes;
	Datum	   *pools;
	Datum	   *tokens;
	int			n;
	bool		isnull;
	TimestampTz reserved_at;
	Datum		expires_at;

	n = array_column(w, REQ_CODES, TEXTOID, -1, false, TYPALIGN_INT, &codes);
	if (array_column(w, REQ_CODE_TYPES, TEXTOID, -1, false, TYPALIGN_INT,
					 &pools) != n ||
		array_column(w, REQ_TOKENS, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
					 &tokens) != n ||
		n > max)
		elog(ERROR, "psk: psk.reserve_requests row of %d codes is malformed",
			 n);
	reserved_at = DatumGetTimestampTz(
		slot_getattr(w->request_slot, w->request_att[REQ_RESERVED_AT],
					 &isnull));
	expires_at =
		slot_getattr(w->request_slot, w->request_att[REQ_EXPIRES_AT], &isnull);
	for (int i = 0; i < n; i++)
	{
		out[i].code = TextDatumGetCString(codes[i]);
		out[i].pool = psk_pool_name(TextDatumGetCString(pools[i]));
		memcpy(out[i].token.data, DatumGetUUIDP(tokens[i])->data, UUID_LEN);
		out[i].reserved_at = reserved_at;
		out[i].expires = !isnull;
		out[i].expires_at = isnull ? 0 : DatumGetTimestampTz(expires_at);
	}
	return n;
}

static void
request_set(PskWriter *w, int col, Datum value, bool isnull)
{
	w->new_request->tts_values[w->request_att[col] - 1] = value;
	w->new_request->tts_isnull[w->request_att[col] - 1] = isnull;
}

static Datum
text_or_null(const char *value, bool *isnull)
{
	*isnull = value == NULL;
	return value ? CStringGetTextDatum(value) : (Datum) 0;
}

void
psk_request_remember(PskWriter *w, PskRequestFound found, int64 user_id,
					 const char *request_id, const char *tester,
					 const char *country, const char *code_type, int how_many,
					 const PskReserved *got, int n)
{
	TupleTableSlot *slot = w->new_request;
	Relation		rel = w->requests->ri_RelationDesc;
	Datum		   *codes = palloc(n * sizeof(Datum));
	Datum		   *pools = palloc(n * sizeof(Datum));
	Datum		   *tokens = palloc(n * sizeof(Datum));
	bool			isnull;
	Datum			d;

	for (int i = 0; i < n; i++)
	{
		codes[i] = CStringGetTextDatum(got[i].code);
		pools[i] = CStringGetTextDatum(got[i].pool);
		tokens[i] = UUIDPGetDatum(&got[i].token);
	}

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true,
		   slot->tts_tupleDescriptor->natts * sizeof(bool));
	request_set(w, REQ_USER_ID, Int64GetDatum(user_id), false);
	request_set(w, REQ_REQUEST_ID, CStringGetTextDatum(request_id), false);
	request_set(w, REQ_MADE_AT, TimestampTzGetDatum(w->now), false);
	request_set(w, REQ_TESTER, CStringGetTextDatum(tester), false);
	d = text_or_null(country, &isnull);
	request_set(w, REQ_COUNTRY, d, isnull);
	d = text_or_null(code_type, &isnull);
	request_set(w, REQ_CODE_TYPE, d, isnull);
	request_set(w, REQ_HOW_MANY, Int32GetDatum(how_many), false);
	request_set(w, REQ_CODES,
				PointerGetDatum(construct_array(codes, n, TEXTOID, -1, false,
												TYPALIGN_INT)),
				false);
	request_set(w, REQ_CODE_TYPES,
				PointerGetDatum(construct_array(pools, n, TEXTOID, -1, false,
												TYPALIGN_INT)),
				false);
	request_set(w, REQ_TOKENS,
				PointerGetDatum(construct_array(tokens, n, UUIDOID, UUID_LEN,
												false, TYPALIGN_CHAR)),
				false);
	request_set(w, REQ_RESERVED_AT, TimestampTzGetDatum(got[0].reserved_at),
				false);
	request_set(w, REQ_EXPIRES_AT, TimestampTzGetDatum(got[0].expires_at),
				!got[0].expires);
	ExecStoreVirtualTuple(slot);
	ResetPerTupleExprContext(w->estate);

	/*
	 * A lapsed row of the same key is overwritten, unless the worker has
	 * deleted it meanwhile (then the key is free).
	 */
	if (found == PSK_REQUEST_LAPSED &&
		psk_lock_row(rel, w->request_slot, LockTupleExclusive, true))
		ExecSimpleRelationUpdate(w->requests, w->estate, NULL, w->request_slot,
								 slot);
	else
		ExecSimpleRelationInsert(w->requests, w->estate, slot);
}

/*
 * Forget request_ids made more than 24 hours ago, oldest first, at most max
 * of them; rows a reserve holds locked (it is overwriting one) are left to
 * the next call.
 */
static PskQuery forget = {
	"DELETE FROM psk.reserve_requests"
	" WHERE (user_id, request_id) IN ("
	"   SELECT user_id, request_id FROM psk.reserve_requests"
	"    WHERE made_at <= now() - interval '24 hours'"
	"    ORDER BY made_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
	1,
	{ INT4OID }
};

uint64
psk_forget_requests(int max)
{
	Datum  arg = Int32GetDatum(max);
	uint64 n;

	if (!OidIsValid(get_relname_relid("reserve_requests",
									  get_namespace_oid("psk", false))))
		return 0;
	SPI_connect();
	n = psk_execute(&forget, &arg, NULL, false);
	SPI_finish();
	return n;
}
