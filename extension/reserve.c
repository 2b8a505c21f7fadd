/*
 * reserve.c
 *		Reserving codes: psk_reserve_codes (for psk_reserve and the HTTP
 *		layer) and psk_reserve.
 *
 * Below SPI (writer.c): an ordered scan of the pool's free codes, taking
 * each candidate as FOR NO KEY UPDATE SKIP LOCKED would, so that
 * concurrent reserves never wait on each other and never hand out one code
 * twice.  The requested pool first; what it cannot supply comes from
 * COMMON; all or none.
 *
 * Two things serialise one user's reserves on the user's row (locked as
 * FOR NO KEY UPDATE, which KEY SHARE lockers do not wait for): a quota
 * (psk.max_held_per_user), so that the codes held are counted with no
 * reserve of that user in flight, and a request_id, so that a second call
 * with it waits for the first and then sees what it did (requests.c).
 * Without either, a user's reserves run side by side as before.
 */
#include "writer.h"

#include "access/genam.h"
#include "access/itup.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/reltrigger.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "free_hint.h"

PG_FUNCTION_INFO_V1(psk_reserve);

/* Is code_id valid in country_id?  One probe of code_countries' key. */
static bool
code_in_country(Relation cc, Relation cc_key, TupleTableSlot *slot,
				int64 code_id, int64 country_id)
{
	ScanKeyData	  key[2];
	IndexScanDesc scan;
	bool		  found;

	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(code_id));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(country_id));
	scan = index_beginscan(cc, cc_key, GetActiveSnapshot(), 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	return found;
}

/* What psk_reserve_codes asks for. */
typedef struct Request
{
	const char *tester;
	int			how_many;
	bool		has_country;
	int64		country_id;
	const char *country;
	const char *region;
} Request;

/* The country check of one reserve_from_pool call. */
typedef struct CountryCheck
{
	Relation		cc;
	Relation		cc_key;
	TupleTableSlot *slot;
} CountryCheck;

/* Is the code in w->code_slot free in pool (and valid in the country)? */
static bool
code_free(PskWriter *w, const char *pool, const Request *req, CountryCheck *cc)
{
	const AttrNumber *att = w->code_att;
	bool			  isnull;

	return psk_slot_text_equals(w->code_slot, att[CODE_STATUS],
								"CAN_BE_USED") &&
		   psk_slot_text_equals(w->code_slot, att[CODE_POOL], pool) &&
		   (cc == NULL ||
			code_in_country(cc->cc, cc->cc_key, cc->slot,
							psk_slot_int8(w->code_slot, att[CODE_ID], &isnull),
							req->country_id));
}

/* The new version of the code in w->code_slot, reserved as *r says. */
static void
reserved_version(PskWriter *w, const PskUser *user, const Request *req,
				 const PskReserved *r)
{
	psk_code_change(w);
	psk_code_set(w, CODE_STATUS, CStringGetTextDatum("RESERVED"), false);
	psk_code_set(w, CODE_HOLDER, Int64GetDatum(user->id), false);
	psk_code_set(w, CODE_TESTER, CStringGetTextDatum(req->tester), false);
	psk_code_set(w, CODE_RESERVED_AT, TimestampTzGetDatum(w->now), false);
	psk_code_set(w, CODE_RELEASED_AT, (Datum) 0, true);
	psk_code_set(w, CODE_EXPIRES_AT, TimestampTzGetDatum(r->expires_at),
				 !r->expires);
	psk_code_set(w, CODE_TOKEN, UUIDPGetDatum(&r->token), false);
}

/*
 * Take the code in w->code_slot (visible to the scan's snapshot) for user
 * if it can be had: valid in the country, not locked by another caller,
 * still free in pool in its newest version.  Stores it in *r.
 *
 * Most candidates nobody else touches: the update is tried on the version
 * scanned, without a row lock first (psk_code_try_update), and succeeds
 * when that version is still the newest and unlocked.  Otherwise the row
 * is locked as FOR NO KEY UPDATE SKIP LOCKED would and looked at again.
 */
static bool
take_code(PskWriter *w, const PskUser *user, const Request *req,
		  const char *pool, CountryCheck *cc, PskReserved *r)
{
	Relation		  codes = w->codes->ri_RelationDesc;
	const AttrNumber *att = w->code_att;
	bool			  isnull;

	if (!code_free(w, pool, req, cc))
		return false;

	r->pool = pool;
	if (!pg_strong_random(r->token.data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random reservation token")));
	r->token.data[6] = (r->token.data[6] & 0x0f) | 0x40; /* version 4 */
	r->token.data[8] = (r->token.data[8] & 0x3f) | 0x80; /* RFC 4122 */
	r->reserved_at = w->now;
	r->expires = psk_reservation_ttl > 0;
	r->expires_at =
		r->expires
			? TimestampTzPlusMilliseconds(w->now,
										  (int64) psk_reservation_ttl * 1000)
			: 0;

	reserved_version(w, user, req, r);
	if (!psk_code_try_update(w))
	{
		/* The locked version may be newer than the one scanned: re-check. */
		if (!psk_lock_row(codes, w->code_slot, LockTupleNoKeyExclusive,
						  false) ||
			!code_free(w, pool, req, cc))
			return false;
		reserved_version(w, user, req, r);
		psk_code_update(w);
	}
	r->code = TextDatumGetCString(
		slot_getattr(w->code_slot, att[CODE_CODE], &isnull));

	psk_audit_code(w, user);
	psk_audit_set(w, LOG_TESTER, CStringGetTextDatum(req->tester));
	if (req->has_country)
	{
		psk_audit_set(w, LOG_COUNTRY, CStringGetTextDatum(req->country));
		psk_audit_set(w, LOG_REGION, CStringGetTextDatum(req->region));
	}
	psk_audit_append(w, "RESERVED");
	return true;
}

/*
 * The stretches of pool's part of the free-code index from start on, as
 * scan keys on (pool, freed_at NULLS FIRST, id): a btree scan starts at a
 * bound on one column, so a start inside the never-used codes (freed_at
 * NULL) is "NULL, id >= x" then "NOT NULL", and one among the freed codes
 * is "= t, id >= x" then "> t".  Returns how many stretches.
 */
static int
stretches(Relation free_idx, const char *pool, const PskFreeKey *start,
		  ScanKeyData keys[2][3], int nkeys[2])
{
	for (int s = 0; s < 2; s++)
	{
		ScanKeyInit(&keys[s][0], 1, BTEqualStrategyNumber, F_TEXTEQ,
					CStringGetTextDatum(pool));
		keys[s][0].sk_collation = free_idx->rd_indcollation[0];
		nkeys[s] = 3;
	}
	if (psk_free_key_cmp(start, &psk_free_key_min) == 0)
	{
		nkeys[0] = 1;
		return 1;
	}
	if (!start->freed)
	{
		ScanKeyEntryInitialize(&keys[0][1], SK_ISNULL | SK_SEARCHNULL, 2,
							   InvalidStrategy, InvalidOid, InvalidOid,
							   InvalidOid, (Datum) 0);
		ScanKeyEntryInitialize(&keys[1][1], SK_ISNULL | SK_SEARCHNOTNULL, 2,
							   InvalidStrategy, InvalidOid, InvalidOid,
							   InvalidOid, (Datum) 0);
		nkeys[1] = 2;
	}
	else
	{
		ScanKeyInit(&keys[0][1], 2, BTEqualStrategyNumber, F_TIMESTAMPTZ_EQ,
					TimestampTzGetDatum(start->freed_at));
		ScanKeyInit(&keys[1][1], 2, BTGreaterStrategyNumber, F_TIMESTAMPTZ_GT,
					TimestampTzGetDatum(start->freed_at));
		nkeys[1] = 2;
	}
	ScanKeyInit(&keys[0][2], 3, BTGreaterEqualStrategyNumber, F_INT8GE,
				Int64GetDatum(start->id));
	return 2;
}

/*
 * May reserves use the hints?  Only while the statement trigger that resets
 * them after plain SQL on psk.codes is there and enabled: not between
 * loading a new psk library and ALTER EXTENSION psk UPDATE, nor while the
 * table's triggers are disabled (then the hints go back to the head).
 */
static bool
hints_kept(Relation codes)
{
	TriggerDesc *td = codes->trigdesc;

	for (int i = 0; td != NULL && i < td->numtriggers; i++)
		if (strcmp(td->triggers[i].tgname, "codes_free_hints_reset") == 0 &&
			td->triggers[i].tgenabled != TRIGGER_DISABLED)
			return true;
	psk_free_hint_reset();
	return false;
}

/* The position of the index entry the scan returned last. */
static PskFreeKey
entry_key(IndexScanDesc scan)
{
	PskFreeKey k;
	bool	   isnull;
	Datum	   d;

	d = index_getattr(scan->xs_itup, 2, scan->xs_itupdesc, &isnull);
	k.freed = !isnull;
	k.freed_at = isnull ? 0 : DatumGetTimestampTz(d);
	d = index_getattr(scan->xs_itup, 3, scan->xs_itupdesc, &isnull);
	k.id = DatumGetInt64(d);
	return k;
}

/*
 * Reserve up to how_many codes of pool for user, least recently used
 * first: an ordered scan of the free-codes index, skipping rows others hold
 * locked.  Returns how many, stored in out[].
 *
 * The scan starts at the pool's hint (free_hint.c: why that gives the same
 * codes as a scan from the head) and raises it to the first entry it finds
 * that is not dead to every future snapshot.
 */
static int
reserve_from_pool(PskWriter *w, const PskUser *user, const Request *req,
				  const char *pool, int how_many, PskReserved *out)
{
	Relation codes = w->codes->ri_RelationDesc;
	Relation free_idx =
		index_open(psk_relation("codes_free_lru_idx"), AccessShareLock);
	Oid			  relfilenode = free_idx->rd_node.relNode;
	CountryCheck  country;
	CountryCheck *cc = NULL;
	ScanKeyData	  keys[2][3];
	int			  nkeys[2];
	int			  n;
	PskFreeKey	  start;
	PskFreeKey	  stop = { 0 };
	uint64		  gen = 0;
	bool		  hinted;
	bool		  stopped = false;
	bool		  seen = false;
	int			  got = 0;

	if (req->has_country && strcmp(pool, "COMMON") != 0)
	{
		cc = &country;
		cc->cc = table_open(psk_relation("code_countries"), AccessShareLock);
		cc->cc_key =
			index_open(psk_relation("code_countries_pkey"), AccessShareLock);
		cc->slot = table_slot_create(cc->cc, NULL);
	}

	/* After the snapshot is taken (psk_writer_begin), never before. */
	hinted = hints_kept(codes) &&
			 psk_free_hint_read(pool, relfilenode, &start, &gen);
	n = stretches(free_idx, pool, hinted ? &start : &psk_free_key_min, keys,
				  nkeys);

	for (int s = 0; s < n && got < how_many; s++)
	{
		IndexScanDesc scan =
			index_beginscan(codes, free_idx, GetActiveSnapshot(), nkeys[s], 0);
		ItemPointer tid;

		scan->xs_want_itup = hinted; /* for entry_key */
		index_rescan(scan, keys[s], nkeys[s], NULL, 0);
		while (got < how_many &&
			   (tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
		{
			bool taken = false;

			if (index_fetch_heap(scan, w->code_slot))
				taken = take_code(w, user, req, pool, cc, &out[got]);
			if (taken)
				got++;

			/*
			 * Until the first entry not dead to the future: ours (this
			 * transaction may abort), live, locked, or in progress.
			 */
			if (hinted && !stopped)
			{
				stop = entry_key(scan);
				if (taken || !psk_free_entry_dead(codes, tid))
					stopped = true;
				else
					seen = true;
			}
		}
		index_endscan(scan);
	}

	/* Scanned to the end with only dead entries: just past the last one. */
	if (hinted && !stopped && seen)
		stop.id++;
	if (hinted && (stopped || seen))
		psk_free_hint_raise(pool, relfilenode, gen, &stop);

	index_close(free_idx, NoLock);
	if (cc != NULL)
	{
		ExecDropSingleTupleTableSlot(cc->slot);
		index_close(cc->cc_key, NoLock);
		table_close(cc->cc, NoLock);
	}
	return got;
}

/* The country a name means: id, name and region. */
static PskQuery find_country = {
	"SELECT c.id, c.name, r.name FROM psk.countries c"
	"  JOIN psk.regions r ON r.id = c.region_id"
	" WHERE " PSK_PLACE_NAMED("c", "$1"),
	1,
	{ TEXTOID }
};

/* Inside a writer call: SPI reads in the writer's snapshot. */
static void
lookup_country(const char *country, Request *req)
{
	Datum arg = CStringGetTextDatum(country);
	bool  isnull;

	SPI_connect();
	if (psk_execute(&find_country, &arg, NULL, true) == 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("unknown country \"%s\"", country)));
	req->has_country = true;
	req->country_id = DatumGetInt64(psk_result(0, 1, &isnull));
	req->country = psk_result_cstring(0, 2);
	req->region = psk_result_cstring(0, 3);
	SPI_finish();
}

/*
 * A request_id: 1 to PSK_MAX_REQUEST_ID characters, compared as given (an
 * empty one is refused, not taken for none: a retry must not lose it).
 */
static const char *
check_request_id(const char *id, const char *name)
{
	if (id == NULL)
		return NULL;
	if (id[0] == '\0' ||
		strlen(id) > (Size) PSK_MAX_REQUEST_ID * MAX_MULTIBYTE_CHAR_LEN ||
		pg_mbstrlen(id) > PSK_MAX_REQUEST_ID)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("%s must be 1 to %d characters",
						name ? name : "request_id", PSK_MAX_REQUEST_ID)));
	return id;
}

/*
 * How many codes the user holds, RESERVED and IN_USE (only held codes have
 * a holder), as committed now: the caller holds the user's row locked, so
 * the reserves of this user that committed while it waited are counted.
 */
static int64
held_codes(PskWriter *w, int64 user_id)
{
	Relation holder_idx =
		index_open(psk_relation("codes_holder_idx"), AccessShareLock);
	Snapshot	  now = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyData	  key;
	IndexScanDesc scan;
	int64		  n = 0;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(user_id));
	scan = index_beginscan(w->codes->ri_RelationDesc, holder_idx, now, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, w->code_slot))
		n++;
	index_endscan(scan);
	UnregisterSnapshot(now);
	index_close(holder_idx, NoLock);
	return n;
}

int
psk_reserve_codes(const PskCaller *caller, const PskReserveArgs *args,
				  PskReserved **outp)
{
	Request			req = { 0 };
	PskWriter		w;
	PskUser			user;
	const char	   *country;
	const char	   *code_type;
	const char	   *pool;
	const char	   *request_id;
	PskRequestFound remembered = PSK_REQUEST_NONE;
	int				quota = psk_max_held_per_user;
	bool			serialise;
	PskReserved	   *out;
	int				how_many;
	int				got;

	/* Who may call it at all, first: a non-admin user. */
	serialise = args->request_id != NULL || quota > 0;
	if (args->request_id != NULL)
		psk_writer_begin_requests(&w);
	else
		psk_writer_begin(&w);
	psk_require_caller_locked(caller,
							  serialise ? LockTupleNoKeyExclusive
										: LockTupleKeyShare,
							  &user);

	/* Then the arguments, in their order. */
	req.tester = psk_check_text(unconstify(char *, args->tester), "tester_name",
								true, PSK_MAX_NAME_LEN);
	country = psk_check_text(unconstify(char *, args->country), "country",
							 false, PSK_MAX_NAME_LEN);
	code_type =
		psk_pool_name(psk_check_text(unconstify(char *, args->code_type),
									 "code_type", false, PSK_MAX_NAME_LEN));
	if (args->how_many < 1 || args->how_many > PSK_MAX_HOW_MANY)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("how_many must be between %d and %d", 1,
							   PSK_MAX_HOW_MANY)));
	how_many = req.how_many = (int) args->how_many;
	request_id = check_request_id(args->request_id, args->request_id_name);
	if (country != NULL)
		lookup_country(country, &req);
	pool = code_type ? code_type : psk_pool_name(user.pool);
	out = *outp = palloc(how_many * sizeof(PskReserved));

	/* A request_id made before: the same rows again, nothing reserved. */
	if (request_id != NULL)
	{
		remembered = psk_request_find(&w, user.id, request_id);
		if (remembered == PSK_REQUEST_KNOWN)
		{
			if (!psk_request_same(&w, req.tester, req.country, code_type,
								  how_many))
				ereport(ERROR,
						(errcode(ERRCODE_PSK_CONFLICT),
						 errmsg("%s \"%s\" was used with other "
								"arguments",
								args->request_id_name ? args->request_id_name
													  : "request_id",
								request_id)));
			got = psk_request_replay(&w, out, how_many);
			psk_writer_end(&w);
			return got;
		}
	}

	if (quota > 0)
	{
		int64 held = held_codes(&w, user.id);

		if (held + how_many > quota)
			ereport(ERROR, (errcode(ERRCODE_PSK_QUOTA_EXCEEDED),
							errmsg("quota exceeded: \"%s\" holds " INT64_FORMAT
								   " code(s) and asks for %d more; "
								   "psk.max_held_per_user is %d",
								   user.email, held, how_many, quota)));
	}

	/* The requested pool first; what it cannot supply comes from COMMON. */
	got = reserve_from_pool(&w, &user, &req, pool, how_many, out);
	if (got < how_many && strcmp(pool, "COMMON") != 0)
		got += reserve_from_pool(&w, &user, &req, "COMMON", how_many - got,
								 out + got);

	/* All or none: the error rolls back what was taken. */
	if (got < how_many)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_NO_CODES_AVAILABLE),
			 how_many == 1
				 ? errmsg("no codes available in pool %s", pool)
				 : errmsg("only %d of %d codes available in pool %s and COMMON",
						  got, how_many, pool)));

	if (request_id != NULL)
		psk_request_remember(&w, remembered, user.id, request_id, req.tester,
							 req.country, code_type, how_many, out, got);
	psk_writer_end(&w);
	return got;
}

/*
 * A text argument as given, for checks made later (after the caller): a
 * value far over any limit is cut before it is copied, still too long for
 * psk_check_text.
 */
static const char *
raw_text_arg(FunctionCallInfo fcinfo, int argno, int maxlen)
{
	text *arg;
	Size  len;
	Size  cap = (Size) maxlen * MAX_MULTIBYTE_CHAR_LEN + 1;

	if (argno >= PG_NARGS() || PG_ARGISNULL(argno))
		return NULL;
	arg = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(arg);
	return pnstrdup(VARDATA_ANY(arg), Min(len, cap));
}

/*
 * psk_reserve(user_email, tester_name, country, code_type, how_many,
 * request_id).  Called by a schema before 0.3.0 with five arguments.
 */
Datum
psk_reserve(PG_FUNCTION_ARGS)
{
	PskCaller	   caller = { psk_text_arg(fcinfo, 0, "user_email", true,
										   PSK_MAX_EMAIL_LEN) };
	PskReserveArgs args;
	PskReserved	  *got;
	int			   n;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	args.tester = raw_text_arg(fcinfo, 1, PSK_MAX_NAME_LEN);
	args.country = raw_text_arg(fcinfo, 2, PSK_MAX_NAME_LEN);
	args.code_type = raw_text_arg(fcinfo, 3, PSK_MAX_NAME_LEN);
	args.how_many = PG_ARGISNULL(4) ? 1 : PG_GETARG_INT32(4);
	args.request_id = raw_text_arg(fcinfo, 5, PSK_MAX_REQUEST_ID);
	args.request_id_name = NULL;

	/*
	 * The result set first: it looks this function up by OID, which an
	 * update that replaces psk_reserve (0.3.0 adds request_id) drops; looked
	 * up after waiting for the update's locks, it would be gone.
	 */
	psk_materialize(fcinfo);
	psk_pin_search_path();
	n = psk_reserve_codes(&caller, &args, &got);
	psk_unpin_search_path();
	for (int i = 0; i < n; i++)
	{
		Datum values[5];
		bool  nulls[5] = { 0 };

		values[0] = CStringGetTextDatum(got[i].code);
		values[1] = CStringGetTextDatum(got[i].pool);
		values[2] = UUIDPGetDatum(&got[i].token);
		values[3] = TimestampTzGetDatum(got[i].reserved_at);
		values[4] = TimestampTzGetDatum(got[i].expires_at);
		nulls[4] = !got[i].expires;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
