/*
 * readers.c
 *		Looking without touching: psk_my_codes, psk_recent_releases,
 *		psk_user_log, psk_log, psk_counts, psk_codes, psk_countries and
 *		psk_overdue.
 *
 * The functions without an acting user are governed by EXECUTE privileges
 * alone; those of a user (psk_my_codes, psk_user_log) show only the
 * caller's own rows.
 */
#include "psk.h"
#include "lists.h"
#include "writer.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(psk_my_codes);
PG_FUNCTION_INFO_V1(psk_recent_releases);
PG_FUNCTION_INFO_V1(psk_user_log);
PG_FUNCTION_INFO_V1(psk_log);
PG_FUNCTION_INFO_V1(psk_counts);
PG_FUNCTION_INFO_V1(psk_codes);
PG_FUNCTION_INFO_V1(psk_countries);

#define PSK_MAX_LOG_ROWS   100
#define PSK_MAX_PAGE	   1000000
#define PSK_MAX_CODES_PAGE 10000

/*
 * psk_my_codes(user_email): the caller's held codes, newest first, with
 * where they are valid.
 *
 * Read below SPI, as the writer reads: the holder index for the codes,
 * then for each code the keys of psk.code_countries and one probe each of
 * psk.countries and psk.regions.  GET /users/my is the HTTP layer's most
 * frequent read; the same query through SPI spent most of its 290,000
 * instructions a request starting and ending the executor for its plan
 * of fourteen nodes (bench/ir_cycle.sh, run g).
 */

/* Column number of name in rel; an error when there is none. */
static AttrNumber
column_of(Relation rel, const char *name)
{
	TupleDesc desc = RelationGetDescr(rel);

	for (int n = 1; n <= desc->natts; n++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, n - 1);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return n;
	}
	elog(ERROR, "psk: column %s.%s is missing", RelationGetRelationName(rel),
		 name);
	return InvalidAttrNumber;
}

/* A table with its primary key or another index, as the reader uses them. */
typedef struct Indexed
{
	Relation		rel;
	Relation		idx;
	TupleTableSlot *slot;
} Indexed;

static void
indexed_open(Indexed *t, const char *table, const char *index)
{
	t->rel = table_open(psk_relation(table), AccessShareLock);
	t->idx = index_open(psk_relation(index), AccessShareLock);
	t->slot = table_slot_create(t->rel, NULL);
}

static void
indexed_close(Indexed *t)
{
	ExecDropSingleTupleTableSlot(t->slot);
	index_close(t->idx, NoLock);
	table_close(t->rel, NoLock);
}

/*
 * A scan of t's rows whose index's first column (a bigint) is key, in the
 * active snapshot; each index_getnext_slot(scan, ..., t->slot) gives one.
 */
static IndexScanDesc
indexed_scan(Indexed *t, int64 key)
{
	ScanKeyData	  sk;
	IndexScanDesc scan;

	ScanKeyInit(&sk, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(key));
	scan = index_beginscan(t->rel, t->idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &sk, 1, NULL, 0);
	return scan;
}

/* The row of t whose index key is key, into t->slot. */
static bool
indexed_get(Indexed *t, int64 key)
{
	IndexScanDesc scan = indexed_scan(t, key);
	bool found = index_getnext_slot(scan, ForwardScanDirection, t->slot);

	index_endscan(scan);
	return found;
}

/* Text datums sorted by coll, and without repeats if unique. */
static int
sort_texts(Datum *texts, int n, Oid coll, bool unique)
{
	int kept = 0;

	for (int i = 1; i < n; i++)
		for (int j = i; j > 0; j--)
		{
			text *a = DatumGetTextPP(texts[j - 1]);
			text *b = DatumGetTextPP(texts[j]);
			Datum t;

			if (varstr_cmp(VARDATA_ANY(a), VARSIZE_ANY_EXHDR(a), VARDATA_ANY(b),
						   VARSIZE_ANY_EXHDR(b), coll) <= 0)
				break;
			t = texts[j - 1];
			texts[j - 1] = texts[j];
			texts[j] = t;
		}
	for (int i = 0; i < n; i++)
		if (!unique || kept == 0 ||
			!datumIsEqual(texts[kept - 1], texts[i], false, -1))
			texts[kept++] = texts[i];
	return kept;
}

/* code_countries, countries and regions, open for code_places. */
typedef struct Places
{
	Indexed	   cc; /* by its key (code_id, country_id) */
	Indexed	   k;  /* countries by id */
	Indexed	   r;  /* regions by id */
	AttrNumber cc_country;
	AttrNumber k_name;
	AttrNumber k_region;
	AttrNumber r_name;
	Oid		   coll; /* countries.name's: the order of both arrays */
} Places;

static void
places_open(Places *p)
{
	indexed_open(&p->cc, "code_countries", "code_countries_pkey");
	indexed_open(&p->k, "countries", "countries_pkey");
	indexed_open(&p->r, "regions", "regions_pkey");
	p->cc_country = column_of(p->cc.rel, "country_id");
	p->k_name = column_of(p->k.rel, "name");
	p->k_region = column_of(p->k.rel, "region_id");
	p->r_name = column_of(p->r.rel, "name");
	p->coll =
		TupleDescAttr(RelationGetDescr(p->k.rel), p->k_name - 1)->attcollation;
}

static void
places_close(Places *p)
{
	indexed_close(&p->r);
	indexed_close(&p->k);
	indexed_close(&p->cc);
}

/*
 * The countries (by name) and regions (by name, once each) where code_id
 * is valid, as text arrays.
 */
static void
code_places(Places *p, int64 code_id, Datum *out)
{
	int			  max = 4;
	int			  n = 0;
	Datum		 *countries = palloc(max * sizeof(Datum));
	Datum		 *regions = palloc(max * sizeof(Datum));
	IndexScanDesc scan;
	bool		  isnull;

	/* code_countries' key is (code_id, country_id) */
	scan = indexed_scan(&p->cc, code_id);
	while (index_getnext_slot(scan, ForwardScanDirection, p->cc.slot))
	{
		if (!indexed_get(&p->k,
						 psk_slot_int8(p->cc.slot, p->cc_country, &isnull)))
			continue; /* not visible to this snapshot: as the join */
		if (!indexed_get(&p->r, psk_slot_int8(p->k.slot, p->k_region, &isnull)))
			continue;
		if (n == max)
		{
			max *= 2;
			countries = repalloc(countries, max * sizeof(Datum));
			regions = repalloc(regions, max * sizeof(Datum));
		}
		countries[n] =
			datumCopy(slot_getattr(p->k.slot, p->k_name, &isnull), false, -1);
		regions[n] =
			datumCopy(slot_getattr(p->r.slot, p->r_name, &isnull), false, -1);
		n++;
	}
	index_endscan(scan);

	out[0] = PointerGetDatum(
		construct_array(countries, sort_texts(countries, n, p->coll, false),
						TEXTOID, -1, false, TYPALIGN_INT));
	out[1] = PointerGetDatum(
		construct_array(regions, sort_texts(regions, n, p->coll, true), TEXTOID,
						-1, false, TYPALIGN_INT));
}

/* Newest first: reserved_at, then id, both descending. */
static int
held_code_cmp(const void *a, const void *b)
{
	const PskHeldCode *x = a;
	const PskHeldCode *y = b;
	TimestampTz		   tx = DatumGetTimestampTz(x->values[HELD_RESERVED_AT]);
	TimestampTz		   ty = DatumGetTimestampTz(y->values[HELD_RESERVED_AT]);

	if (x->nulls[HELD_RESERVED_AT] != y->nulls[HELD_RESERVED_AT])
		return x->nulls[HELD_RESERVED_AT] ? -1 : 1; /* NULLS FIRST, as DESC */
	if (!x->nulls[HELD_RESERVED_AT] && tx != ty)
		return tx > ty ? -1 : 1;
	return x->id > y->id ? -1 : (x->id < y->id ? 1 : 0);
}

int
psk_held_codes(int64 user_id, PskHeldCode **out)
{
	static const int code_col[HELD_NCOLS - 2] = {
		CODE_CODE,		  CODE_POOL,	   CODE_STATUS, CODE_TESTER,
		CODE_RESERVED_AT, CODE_EXPIRES_AT, CODE_TOKEN,	CODE_NOTE
	};
	Indexed			  codes;
	Places			  places;
	const AttrNumber *att;
	IndexScanDesc	  scan;
	int				  max = 4;
	int				  n = 0;
	PskHeldCode		 *held = palloc(max * sizeof(PskHeldCode));
	bool			  isnull;

	indexed_open(&codes, "codes", "codes_holder_idx");
	att = psk_code_columns(codes.rel);
	scan = indexed_scan(&codes, user_id);
	while (index_getnext_slot(scan, ForwardScanDirection, codes.slot))
	{
		PskHeldCode *h;

		if (n == max)
		{
			max *= 2;
			held = repalloc(held, max * sizeof(PskHeldCode));
		}
		h = &held[n++];
		h->id = psk_slot_int8(codes.slot, att[CODE_ID], &isnull);
		for (int i = 0; i < HELD_NCOLS - 2; i++)
		{
			Form_pg_attribute a = TupleDescAttr(RelationGetDescr(codes.rel),
												att[code_col[i]] - 1);

			h->values[i] =
				slot_getattr(codes.slot, att[code_col[i]], &h->nulls[i]);
			if (!h->nulls[i])
				h->values[i] = datumCopy(h->values[i], a->attbyval, a->attlen);
		}
	}
	index_endscan(scan);
	indexed_close(&codes);

	if (n > 0)
	{
		places_open(&places);
		for (int i = 0; i < n; i++)
		{
			code_places(&places, held[i].id, &held[i].values[HELD_COUNTRIES]);
			held[i].nulls[HELD_COUNTRIES] = held[i].nulls[HELD_REGIONS] = false;
		}
		places_close(&places);
		qsort(held, n, sizeof(PskHeldCode), held_code_cmp);
	}
	*out = held;
	return n;
}

Datum
psk_my_codes(PG_FUNCTION_ARGS)
{
	char *email =
		psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	PskUser		 user;
	PskHeldCode *held;
	int			 n;

	SPI_connect();
	psk_require_user(email, &user);
	SPI_finish();
	n = psk_held_codes(user.id, &held);
	psk_result_set(fcinfo);
	for (int i = 0; i < n; i++)
		psk_return_row(fcinfo, held[i].values, held[i].nulls);
	return (Datum) 0;
}

/*
 * psk_recent_releases(n, code_type): the last n RELEASED rows, newest
 * first, read backwards along the partial index of releases.
 */
static PskQuery recent_releases = {
	"SELECT code, code_type, logged_at, contact_email, note"
	"  FROM psk.audit_log"
	" WHERE action = 'RELEASED' AND ($2::text IS NULL OR code_type = $2)"
	" ORDER BY id DESC LIMIT $1",
	2,
	{ INT4OID, TEXTOID }
};

Datum
psk_recent_releases(PG_FUNCTION_ARGS)
{
	int32		n = psk_int_arg(fcinfo, 0, "n", 5, 1, PSK_MAX_LOG_ROWS);
	const char *pool = psk_pool_name(
		psk_text_arg(fcinfo, 1, "code_type", false, PSK_MAX_NAME_LEN));
	Datum values[2];
	bool  nulls[2] = { 0 };

	values[0] = Int32GetDatum(n);
	nulls[1] = pool == NULL;
	values[1] = pool ? CStringGetTextDatum(pool) : (Datum) 0;

	SPI_connect();
	psk_execute(&recent_releases, values, nulls, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * psk_user_log(user_email, n): the caller's own audit rows, newest first.
 */
static PskQuery user_log = {
	"SELECT id, logged_at, action, code, tester_name, country, region, note"
	"  FROM psk.audit_log"
	" WHERE user_id = $1"
	" ORDER BY logged_at DESC, id DESC LIMIT $2",
	2,
	{ INT8OID, INT4OID }
};

Datum
psk_user_log(PG_FUNCTION_ARGS)
{
	char *email =
		psk_text_arg(fcinfo, 0, "user_email", true, PSK_MAX_EMAIL_LEN);
	int32	n;
	PskUser user;
	Datum	values[2];

	SPI_connect();
	/* who may call it first, then the arguments */
	psk_require_user(email, &user);
	n = psk_int_arg(fcinfo, 1, "n", 20, 1, PSK_MAX_LOG_ROWS);
	values[0] = Int64GetDatum(user.id);
	values[1] = Int32GetDatum(n);
	psk_execute(&user_log, values, NULL, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * psk_log(page, page_size, code, user_name, action, since, until): one page
 * of the whole audit trail, newest first, with the number of matching rows
 * and whether that number is an estimate.
 *
 * The code filter is normalised like a code and matches as a prefix or a
 * suffix; user_name matches as a case-insensitive substring.  Wildcards in
 * either are taken literally ('!' escapes them: no backslashes in the SQL,
 * whatever standard_conforming_strings says).
 *
 * The page is read week by week, newest first, each weekly partition only
 * when the page reaches it (audit_log_page), the rows before it skipped
 * (at most PSK_MAX_PAGE pages).  The total is
 * counted up to PSK_LOG_EXACT_COUNT + 1 rows; past that it is the
 * planner's estimate (never below that), flagged by total_is_estimate:
 * counting 50M rows for a page of 20 would take seconds.
 */
#define PSK_LOG_EXACT_COUNT 10000

/*
 * The code filter's two halves.  A prefix is a range of each partition's
 * code index, which is C-collated for that (45_audit_partitions.sql); a
 * suffix is no range of any index of the log, so the codes it means are
 * looked up in psk.audit_codes (its reversed index), and the log read by
 * its code index for those.  The export, one statement over the log,
 * matches at most PSK_LOG_NARROW_CODES of them as codes, more by the text.
 * A user_name filter that matches at most PSK_LOG_NARROW_USERS users reads
 * the log by its user index (audit_index.c); one that matches more
 * matches so much of the log that reading it newest first, filtering,
 * reaches a page soon.
 */
#define PSK_LOG_NARROW_CODES 10000
#define PSK_LOG_NARROW_USERS 1000

/*
 * $3 to $7: psk_log's filters, normalised and their wildcards escaped in
 * f.  $10: the codes the code filter means as a suffix only (not as a
 * prefix too; NULL: too many, match the text).  $11: the users the
 * user_name filter means, all of whose names in the log match it; $12:
 * those with other names too, whose rows are matched by name as well (0
 * stands for rows without a user_id); both NULL: match the text.  Each
 * call is planned for its values, so a CASE keeps one branch and a test of
 * a constant array folds away: one user is "user_id = id", which the user
 * index returns newest first.  The code index is C-collated: every
 * comparison with it says COLLATE "C" (the same equality; any other
 * collation would not be matched to the index).
 */
#define AUDIT_LOG_F                                                      \
	"       (SELECT replace(replace(replace(psk.normalize_code($3),"     \
	"                       '!', '!!'), '%', '!%'), '_', '!_') AS code," \
	"               replace(replace(replace($4,"                         \
	"                       '!', '!!'), '%', '!%'), '_', '!_') AS user_name) f"
#define AUDIT_LOG_PREFIX "a.code COLLATE \"C\" LIKE f.code || '%' ESCAPE '!'"
#define AUDIT_LOG_OTHER                                                        \
	"   AND (f.user_name IS NULL OR"                                           \
	"        CASE WHEN $11::int8[] IS NULL"                                    \
	"             THEN a.user_name ILIKE '%' || f.user_name || '%' ESCAPE '!'" \
	"             ELSE (pg_catalog.cardinality($11) > 0"                       \
	"                   AND a.user_id = ANY($11)"                              \
	"                   AND (pg_catalog.cardinality($11) <> 1"                 \
	"                        OR a.user_id = $11[1]))"                          \
	"               OR (pg_catalog.cardinality($12::int8[]) > 0"               \
	"                   AND (a.user_id = ANY($12)"                             \
	"                        OR (0 = ANY($12) AND a.user_id IS NULL))"         \
	"                   AND a.user_name ILIKE '%' || f.user_name || '%'"       \
	"                       ESCAPE '!') END)"                                  \
	"   AND ($5::text IS NULL OR a.action = $5)"                               \
	"   AND ($6::timestamptz IS NULL OR a.logged_at >= $6)"                    \
	"   AND ($7::timestamptz IS NULL OR a.logged_at < $7)"
#define AUDIT_LOG_WHERE                                                       \
	" WHERE (f.code IS NULL OR " AUDIT_LOG_PREFIX                             \
	"        OR CASE WHEN pg_catalog.cardinality($10::text[]) = 0 THEN false" \
	"                WHEN $10 IS NULL"                                        \
	"                THEN a.code LIKE '%' || f.code ESCAPE '!'"               \
	"                ELSE a.code COLLATE \"C\" = ANY($10) END)" AUDIT_LOG_OTHER
#define AUDIT_LOG_FILTER "  FROM psk.audit_log a," AUDIT_LOG_F AUDIT_LOG_WHERE
/* the codes c of psk.audit_codes with the filter $3 as a suffix only */
#define AUDIT_LOG_SUFFIX_ONLY                                   \
	"pg_catalog.reverse(c.code) OPERATOR(pg_catalog.^@)"        \
	" pg_catalog.reverse(psk.normalize_code($3) COLLATE \"C\")" \
	" AND NOT c.code OPERATOR(pg_catalog.^@)"                   \
	" (psk.normalize_code($3) COLLATE \"C\")"

#define AUDIT_LOG_NARGS 12
#define AUDIT_LOG_ARGTYPES                                                \
	{                                                                     \
		INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,      \
			TIMESTAMPTZOID, INT8OID, BOOLOID, TEXTARRAYOID, INT8ARRAYOID, \
			INT8ARRAYOID                                                  \
	}

/*
 * The log's codes with $1 (normalised) as a suffix but not as a prefix:
 * up to $2 of them.
 */
static PskQuery audit_log_codes = {
	"SELECT pg_catalog.count(*), pg_catalog.array_agg(code::text) FROM ("
	"  SELECT code FROM psk.audit_codes"
	"   WHERE pg_catalog.reverse(code) OPERATOR(pg_catalog.^@)"
	"         pg_catalog.reverse(psk.normalize_code($1) COLLATE \"C\")"
	"     AND NOT code OPERATOR(pg_catalog.^@)"
	"             (psk.normalize_code($1) COLLATE \"C\")"
	"  LIMIT $2) s",
	2,
	{ TEXTOID, INT4OID },
	false,
	true
};

/*
 * The users with a name in the log that has $1 in it: how many, those all
 * of whose names do, and the others (the small table, read whole).
 */
static PskQuery audit_log_users = {
	"SELECT pg_catalog.count(*),"
	"       pg_catalog.array_agg(user_id) FILTER (WHERE all_match AND user_id <> 0),"
	"       pg_catalog.array_agg(user_id) FILTER (WHERE NOT all_match OR user_id = 0)"
	"  FROM (SELECT user_id, pg_catalog.bool_and(m) AS all_match"
	"          FROM (SELECT user_id, user_name ILIKE '%' ||"
	"                       replace(replace(replace($1, '!', '!!'), '%', '!%'),"
	"                               '_', '!_') || '%' ESCAPE '!' AS m"
	"                  FROM psk.audit_names) n"
	"         GROUP BY user_id HAVING pg_catalog.bool_or(m)) u",
	1,
	{ TEXTOID }
};

/* Column col of SPI's row 0, an array of type, outside SPI ({} for NULL). */
static Datum
result_array(int col, Oid type)
{
	bool  isnull;
	Datum d = psk_result(0, col, &isnull);

	return isnull ? PointerGetDatum(construct_empty_array(type))
				  : SPI_datumTransfer(d, false, -1);
}

/*
 * values[9..11] ($10 to $12) from the code and user_name filters in
 * values[2] and values[3]: the codes (if codes) and users they mean, when
 * few enough.  Returns whether the 0.3.0 objects are there (psk.audit_codes
 * and the partitions' functions).  Inside SPI.
 */
static bool
audit_log_narrow(Datum *values, bool *nulls, bool codes)
{
	bool isnull;

	nulls[9] = nulls[10] = nulls[11] = true;
	/* an older release's objects, until ALTER EXTENSION UPDATE */
	if (!OidIsValid(psk_relation_if_exists("audit_codes")) ||
		!OidIsValid(psk_relation_if_exists("audit_names")))
		return false;
	if (codes && !nulls[2])
	{
		Datum args[2] = { values[2], Int32GetDatum(PSK_LOG_NARROW_CODES + 1) };

		psk_execute(&audit_log_codes, args, NULL, true);
		if (DatumGetInt64(psk_result(0, 1, &isnull)) <= PSK_LOG_NARROW_CODES)
		{
			values[9] = result_array(2, TEXTOID);
			nulls[9] = false;
		}
	}
	if (!nulls[3])
	{
		psk_execute(&audit_log_users, &values[3], NULL, true);
		if (DatumGetInt64(psk_result(0, 1, &isnull)) <= PSK_LOG_NARROW_USERS)
		{
			values[10] = result_array(2, INT8OID);
			values[11] = result_array(3, INT8OID);
			nulls[10] = nulls[11] = false;
		}
	}
	return true;
}

/*
 * The total (audit_log_total), up to $1 + 1 rows, each half of the code
 * filter along an index: the rows whose code has it as a prefix (a range
 * of the code index), then those of each code of psk.audit_codes that has
 * it as a suffix only (its reversed index), one code at a time along the
 * code index, until enough.  A suffix that many codes end with is thus
 * read code by code too, never the whole log: at worst one probe of each
 * partition's code index per such code (codes of partitions dropped past
 * retention find nothing).
 */
static PskQuery audit_log_count_prefix = {
	"SELECT count(*) FROM (SELECT FROM psk.audit_log a," AUDIT_LOG_F
	" WHERE " AUDIT_LOG_PREFIX AUDIT_LOG_OTHER " LIMIT $1 + 1) s",
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

static PskQuery audit_log_count_suffix = {
	"SELECT count(*) FROM ("
	"  SELECT FROM psk.audit_codes c,"
	"       LATERAL (SELECT FROM psk.audit_log a," AUDIT_LOG_F
	"                 WHERE a.code COLLATE \"C\" = c.code" AUDIT_LOG_OTHER
	"                 LIMIT $1 + 1) l"
	"   WHERE " AUDIT_LOG_SUFFIX_ONLY "  LIMIT $1 + 1) s",
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

/*
 * Probing code by code costs a probe of every partition per code, and a
 * suffix that 100,000 codes end with may need thousands of them before
 * 10,001 rows (a few rows a code).  When more than PSK_LOG_DENSE_CODES
 * codes end with it, the first PSK_LOG_DENSE_ROWS rows of the log (in no
 * order, as they lie: a bounded amount of work) are matched as text
 * first: a suffix that common usually has over 10,000 of its rows there,
 * and then the total is an estimate anyway.  If not, the codes are
 * probed.
 */
#define PSK_LOG_DENSE_CODES 1000
#define PSK_LOG_DENSE_ROWS	200000

/*
 * How many codes have the filter as a suffix only, up to one past the most
 * that a page probes one by one.
 */
static PskQuery audit_log_suffix_codes = {
	"SELECT count(*) FROM (SELECT FROM psk.audit_codes c"
	" WHERE " AUDIT_LOG_SUFFIX_ONLY
	" LIMIT " CppAsString2(PSK_LOG_NARROW_CODES) " + 1) s",
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

static PskQuery audit_log_count_dense = {
	"SELECT count(*) FROM (SELECT * FROM psk.audit_log"
	"  LIMIT " CppAsString2(
		PSK_LOG_DENSE_ROWS) ") a," AUDIT_LOG_F
							" WHERE a.code LIKE '%' || f.code ESCAPE '!'"
							"   AND NOT " AUDIT_LOG_PREFIX AUDIT_LOG_OTHER,
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

/* Without a code filter (no suffix half to plan). */
static PskQuery audit_log_count_all = {
	"SELECT count(*) FROM (SELECT FROM psk.audit_log a," AUDIT_LOG_F
	" WHERE true" AUDIT_LOG_OTHER " LIMIT $1 + 1) s",
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

/* The same under an older release's objects: matching the text. */
static PskQuery audit_log_count_0_2 = {
	"SELECT count(*) FROM (SELECT" AUDIT_LOG_FILTER " LIMIT $1 + 1) s",
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

/*
 * The partitions of the log that may hold rows of [$1, $2) (NULL: no
 * bound), newest first, the default one last: it may hold any time.
 */
static PskQuery audit_log_parts = {
	"SELECT p.part::text, p.lower_bound, p.upper_bound"
	"  FROM psk.audit_partitions() p"
	" WHERE ($1::timestamptz IS NULL OR p.upper_bound > $1)"
	"   AND ($2::timestamptz IS NULL OR p.lower_bound < $2)"
	" UNION ALL"
	" SELECT 'psk.audit_log_default', NULL, NULL"
	" ORDER BY 2 DESC NULLS LAST",
	2,
	{ TIMESTAMPTZOID, TIMESTAMPTZOID },
	false,
	true
};

/* The page's columns (but total_count and total_is_estimate) */
#define AUDIT_LOG_COLS                                                   \
	"a.id, a.logged_at, a.action, a.code, a.user_name, a.contact_email," \
	" a.tester_name, a.country, a.region, a.note"
#define AUDIT_LOG_NCOLS 10

/*
 * The suffix half's rows of table t, the first $8 of them newest first if
 * top.  window 0: those of each code of psk.audit_codes with the suffix
 * only, each looked up in t's code index: a bounded number of probes,
 * whatever the planner expects (left to choose, it may read a whole week
 * newest first, looking each row's code up, where none of those codes has
 * a row).  Else those among the newest window rows of t, matched as text,
 * for a suffix that so many codes end with that probing them all would
 * cost more (audit_log_part_rows).
 */
static void
audit_log_suffix_sql(StringInfo sql, const char *t, int64 window, bool top)
{
	if (window == 0 && !top)
	{
		/*
		 * All their rows (audit_log_few_rows: at most PSK_LOG_EXACT_COUNT):
		 * the codes as one array, which each partition's code index reads
		 * in order, in one scan; a lateral probe of every partition for
		 * each code cost 700 index descents for 50 codes in 14 weeks
		 * (162 ms at 50M rows, against 13 ms so).  Without a LIMIT no time
		 * order tempts the planner away from the code index.
		 */
		appendStringInfoString(sql, "SELECT " AUDIT_LOG_COLS " FROM ");
		appendStringInfoString(sql, t);
		appendStringInfoString(
			sql,
			" a," AUDIT_LOG_F " WHERE a.code COLLATE \"C\" = ANY (ARRAY("
			"SELECT c.code FROM psk.audit_codes c WHERE " AUDIT_LOG_SUFFIX_ONLY
			"))" AUDIT_LOG_OTHER);
	}
	else if (window == 0)
	{
		appendStringInfoString(sql,
							   "SELECT l.* FROM psk.audit_codes c,"
							   " LATERAL (SELECT " AUDIT_LOG_COLS " FROM ");
		appendStringInfoString(sql, t);
		appendStringInfoString(
			sql, " a," AUDIT_LOG_F
				 " WHERE a.code COLLATE \"C\" = c.code" AUDIT_LOG_OTHER);
		if (top)
			appendStringInfoString(
				sql, " ORDER BY a.logged_at DESC, a.id DESC LIMIT $8");
		appendStringInfoString(sql, ") l WHERE " AUDIT_LOG_SUFFIX_ONLY);
		if (top)
			appendStringInfoString(
				sql, " ORDER BY l.logged_at DESC, l.id DESC LIMIT $8");
	}
	else
	{
		appendStringInfoString(sql, "SELECT " AUDIT_LOG_COLS
									" FROM (SELECT * FROM ");
		appendStringInfoString(sql, t);
		appendStringInfoString(
			sql, " w ORDER BY w.logged_at DESC, w.id DESC LIMIT ");
		appendStringInfo(sql, INT64_FORMAT, window);
		appendStringInfoString(sql,
							   ") a," AUDIT_LOG_F
							   " WHERE a.code LIKE '%' || f.code ESCAPE '!'"
							   " AND NOT " AUDIT_LOG_PREFIX AUDIT_LOG_OTHER);
		if (top)
			appendStringInfoString(
				sql, " ORDER BY a.logged_at DESC, a.id DESC LIMIT $8");
	}
}

/*
 * One partition's rows of a page: the first $8 of them.  The code filter's
 * two halves apart, each planned as its matches in this partition
 * suggest: the prefix (a range of the code index, or the partition newest
 * first along the time index), and the suffix (audit_log_suffix_sql; none
 * when suffix is false).
 */
static char *
audit_log_part_sql(const char *part, bool suffix, int64 window)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT * FROM ((SELECT " AUDIT_LOG_COLS " FROM ");
	appendStringInfoString(&sql, part);
	appendStringInfoString(&sql, " a," AUDIT_LOG_F
								 " WHERE (f.code IS NULL OR " AUDIT_LOG_PREFIX
								 ")" AUDIT_LOG_OTHER
								 " ORDER BY a.logged_at DESC, a.id DESC"
								 " LIMIT $8)");
	if (suffix)
	{
		appendStringInfoString(&sql, " UNION ALL (");
		audit_log_suffix_sql(&sql, part, window, true);
		appendStringInfoString(&sql, ")");
	}
	appendStringInfoString(&sql,
						   ") p ORDER BY p.logged_at DESC, p.id DESC LIMIT $8");
	return sql.data;
}

/* Whether row a of ta comes before row b of tb (newest first). */
static bool
audit_log_newer(SPITupleTable *ta, uint64 a, SPITupleTable *tb, uint64 b)
{
	bool		isnull;
	TimestampTz at = DatumGetTimestampTz(
		SPI_getbinval(ta->vals[a], ta->tupdesc, 2, &isnull));
	TimestampTz bt = DatumGetTimestampTz(
		SPI_getbinval(tb->vals[b], tb->tupdesc, 2, &isnull));

	if (at != bt)
		return at > bt;
	return DatumGetInt64(SPI_getbinval(ta->vals[a], ta->tupdesc, 1, &isnull)) >
		   DatumGetInt64(SPI_getbinval(tb->vals[b], tb->tupdesc, 1, &isnull));
}

/* Run sql with values, the first limit rows. */
static SPITupleTable *
audit_log_run(const char *sql, Datum *values, bool *nulls, int64 limit)
{
	static const Oid types[AUDIT_LOG_NARGS] = AUDIT_LOG_ARGTYPES;
	char			 nflags[AUDIT_LOG_NARGS];

	values[7] = Int64GetDatum(limit);
	nulls[7] = false;
	for (int k = 0; k < AUDIT_LOG_NARGS; k++)
		nflags[k] = nulls[k] ? 'n' : ' ';
	if (SPI_execute_with_args(sql, AUDIT_LOG_NARGS, (Oid *) types, values,
							  nflags, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "psk: reading the log failed");
	return SPI_tuptable;
}

/*
 * The first limit rows of part (a partition) that match.  A suffix that
 * more than PSK_LOG_NARROW_CODES codes end with: its rows among the
 * partition's newest (50 times the rows wanted, from 20,000 to 200,000)
 * when they hold as many as wanted (a common suffix: no older row can come
 * before them) or are the whole partition, else each code probed.
 */
static SPITupleTable *
audit_log_part_rows(const char *part, Datum *values, bool *nulls, int64 limit,
					int64 suffix_codes)
{
	int64 window = 0;
	bool  isnull;

	if (suffix_codes > PSK_LOG_NARROW_CODES)
	{
		StringInfoData sql;

		window = Min(Max(20000, 50 * limit), 200000);
		initStringInfo(&sql);
		appendStringInfoString(
			&sql, "SELECT count(*) FILTER (WHERE a.code LIKE '%' || f.code"
				  " ESCAPE '!' AND NOT " AUDIT_LOG_PREFIX AUDIT_LOG_OTHER
				  "), count(*) FROM (SELECT * FROM ");
		appendStringInfoString(&sql, part);
		appendStringInfoString(
			&sql, " w ORDER BY w.logged_at DESC, w.id DESC LIMIT ");
		appendStringInfo(&sql, INT64_FORMAT, window);
		appendStringInfoString(&sql, ") a," AUDIT_LOG_F);
		audit_log_run(sql.data, values, nulls, limit);
		if (DatumGetInt64(psk_result(0, 1, &isnull)) < limit &&
			DatumGetInt64(psk_result(0, 2, &isnull)) == window)
			window = 0;
	}
	return audit_log_run(audit_log_part_sql(part, suffix_codes > 0, window),
						 values, nulls, limit);
}

/*
 * All the rows (at most PSK_LOG_EXACT_COUNT, counted) that a code filter
 * matches, whatever the page, then the first limit of them: read along
 * the code index (the prefix's range, the suffix's codes) without a LIMIT
 * the planner could take for a reason to read the log newest first
 * instead, hoping to meet matching rows soon (there are few).
 */
static SPITupleTable *
audit_log_few_rows(Datum *values, bool *nulls, int64 limit, int64 suffix_codes)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH m AS MATERIALIZED ("
								 " SELECT " AUDIT_LOG_COLS
								 " FROM psk.audit_log a," AUDIT_LOG_F
								 " WHERE " AUDIT_LOG_PREFIX AUDIT_LOG_OTHER);
	if (suffix_codes > 0)
	{
		appendStringInfoString(&sql, " UNION ALL ");
		audit_log_suffix_sql(&sql, "psk.audit_log", 0, false);
	}
	appendStringInfoString(
		&sql, ") SELECT * FROM m ORDER BY logged_at DESC, id DESC LIMIT $8");
	return audit_log_run(sql.data, values, nulls, limit);
}

/*
 * The page of psk_log under this version's objects: skip rows, then return
 * up to n, of the log newest first, values[7] and values[8] the
 * total_count and total_is_estimate of each row.
 *
 * Each weekly partition is read by a statement of its own, newest first,
 * for the rows the page still needs, until it has them: so a partition is
 * read only when the page reaches it, and each is planned alone, by its
 * own estimate of the rows the filters match there.  A filter that
 * matches few rows of a week reads them along the code (or user) index
 * and sorts them; one that matches many reads the week newest first
 * along its time index, filtering.  In one statement over the
 * partitioned log the planner can do neither: its Merge Append (the
 * default partition may hold any time) takes the first matching row of
 * every partition before returning one, a whole week read backwards when
 * none matches there, and it plans every partition the same way.  The
 * default partition (rows that found no partition, normally none) is
 * read first, whole up to the page, and merged in.  When the filters
 * match at most PSK_LOG_EXACT_COUNT rows (counted, not estimated), the
 * partitions are read until that many; and with a code filter, one
 * statement over the whole log reads them along indexes and sorts them
 * (audit_log_few_rows): no plan for each of the partitions they may be in.
 */
static void
audit_log_page(FunctionCallInfo fcinfo, Datum *values, bool *nulls, int64 skip,
			   int32 n, int64 suffix_codes)
{
	Datum		   row[AUDIT_LOG_NCOLS + 2];
	bool		   rownulls[AUDIT_LOG_NCOLS + 2] = { 0 };
	int64		   need = skip + n;
	int64		   done = 0; /* rows of the page passed or returned */
	SPITupleTable *parts;
	uint64		   nparts;
	SPITupleTable *def;
	uint64		   ndef;
	uint64		   di = 0;

	row[0] = values[7];
	row[AUDIT_LOG_NCOLS + 1] = values[8];
	psk_result_set(fcinfo);
	/* all there are, counted: no partition past the last of them */
	if (!DatumGetBool(values[8]))
		need = Min(need, DatumGetInt64(values[7]));
	if (need <= skip)
		return;
	/* a code filter's few rows (counted): one statement, sorting them */
	if (!DatumGetBool(values[8]) && !nulls[2])
	{
		SPITupleTable *rows =
			audit_log_few_rows(values, nulls, need, suffix_codes);
		uint64 nrows = SPI_processed;

		for (uint64 r = skip; r < nrows; r++)
		{
			heap_deform_tuple(rows->vals[r], rows->tupdesc, &row[1],
							  &rownulls[1]);
			psk_return_row(fcinfo, row, rownulls);
		}
		return;
	}
	psk_execute(&audit_log_parts, &values[5], &nulls[5], true);
	parts = SPI_tuptable;
	nparts = SPI_processed;
	/* the default partition, the last row: whole, up to the page */
	def = audit_log_part_rows(SPI_getvalue(parts->vals[nparts - 1],
										   parts->tupdesc, 1),
							  values, nulls, need, suffix_codes);
	ndef = SPI_processed;

	for (uint64 p = 0; p + 1 < nparts && done < need; p++)
	{
		SPITupleTable *rows =
			audit_log_part_rows(SPI_getvalue(parts->vals[p], parts->tupdesc, 1),
								values, nulls, need - done, suffix_codes);
		uint64 nrows = SPI_processed;

		for (uint64 r = 0; r < nrows && done < need; done++)
		{
			HeapTuple from;
			TupleDesc fromdesc;

			/* a row of the default partition where it comes */
			if (di < ndef && audit_log_newer(def, di, rows, r))
			{
				from = def->vals[di++];
				fromdesc = def->tupdesc;
			}
			else
			{
				from = rows->vals[r++];
				fromdesc = rows->tupdesc;
			}
			if (done < skip)
				continue;
			heap_deform_tuple(from, fromdesc, &row[1], &rownulls[1]);
			psk_return_row(fcinfo, row, rownulls);
		}
		SPI_freetuptable(rows);
	}
	/* those of the default partition older than every partition's */
	for (; di < ndef && done < need; di++, done++)
	{
		if (done < skip)
			continue;
		heap_deform_tuple(def->vals[di], def->tupdesc, &row[1], &rownulls[1]);
		psk_return_row(fcinfo, row, rownulls);
	}
}

/*
 * The page under an older release's objects (one unpartitioned table), as
 * 0.2.1 declared psk_log (without total_is_estimate): this library runs
 * under the old declaration from its installation to the ALTER EXTENSION
 * UPDATE.
 */
static PskQuery audit_log_page_0_2 = {
	"SELECT $8, " AUDIT_LOG_COLS AUDIT_LOG_FILTER
	" ORDER BY a.logged_at DESC, a.id DESC OFFSET $1 LIMIT $2",
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

/*
 * The planner's estimate of the rows matching the filters of values (the
 * top line of EXPLAIN).  Not read_only: SPI takes EXPLAIN for a statement
 * that may write (EXPLAIN ANALYZE could); this one only plans.
 */
static int64
audit_log_estimate(Datum *values, const bool *nulls)
{
	static const Oid types[AUDIT_LOG_NARGS] = AUDIT_LOG_ARGTYPES;
	char			 n[AUDIT_LOG_NARGS];
	const char		*line;
	const char		*rows;

	for (int i = 0; i < AUDIT_LOG_NARGS; i++)
		n[i] = nulls[i] ? 'n' : ' ';
	if (SPI_execute_with_args("EXPLAIN SELECT" AUDIT_LOG_FILTER,
							  AUDIT_LOG_NARGS, (Oid *) types, values, n, false,
							  1) != SPI_OK_UTILITY ||
		SPI_processed < 1)
		return 0;
	line = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	rows = line ? strstr(line, " rows=") : NULL;
	return rows ? strtoll(rows + 6, NULL, 10) : 0;
}

/*
 * The rows matching the filters in values, counted up to
 * PSK_LOG_EXACT_COUNT + 1 (values[0]).  current: this version's objects.
 */
static int64
audit_log_total(Datum *values, bool *nulls, bool current, int64 suffix_codes)
{
	int64 n;
	int64 dense;
	bool  isnull;

	if (!current || nulls[2])
	{
		psk_execute(current ? &audit_log_count_all : &audit_log_count_0_2,
					values, nulls, true);
		return DatumGetInt64(psk_result(0, 1, &isnull));
	}
	psk_execute(&audit_log_count_prefix, values, nulls, true);
	n = DatumGetInt64(psk_result(0, 1, &isnull));
	if (n > PSK_LOG_EXACT_COUNT)
		return n;
	if (suffix_codes == 0)
		return n;
	if (suffix_codes > PSK_LOG_DENSE_CODES)
	{
		psk_execute(&audit_log_count_dense, values, nulls, true);
		dense = DatumGetInt64(psk_result(0, 1, &isnull));
		if (n + dense > PSK_LOG_EXACT_COUNT)
			return n + dense;
	}
	/* the suffix's rows, up to those that bring the total past the limit */
	values[0] = Int64GetDatum(PSK_LOG_EXACT_COUNT - n);
	psk_execute(&audit_log_count_suffix, values, nulls, true);
	values[0] = Int64GetDatum(PSK_LOG_EXACT_COUNT);
	return n + DatumGetInt64(psk_result(0, 1, &isnull));
}

Datum
psk_log(PG_FUNCTION_ARGS)
{
	int32 page = psk_int_arg(fcinfo, 0, "page", 1, 1, PSK_MAX_PAGE);
	int32 page_size =
		psk_int_arg(fcinfo, 1, "page_size", 20, 1, PSK_MAX_LOG_ROWS);
	char *code = psk_text_arg(fcinfo, 2, "code", false, PSK_MAX_CODE_LEN);
	char *user_name =
		psk_text_arg(fcinfo, 3, "user_name", false, PSK_MAX_NAME_LEN);
	const char *action =
		psk_list_name(&psk_actions, psk_text_arg(fcinfo, 4, "action", false,
												 PSK_MAX_NAME_LEN));
	Datum		   values[AUDIT_LOG_NARGS];
	bool		   nulls[AUDIT_LOG_NARGS] = { 0 };
	int64		   total;
	int64		   suffix_codes = -1;
	bool		   isnull;
	bool		   current;
	ReturnSetInfo *rsinfo;

	if (!PG_ARGISNULL(5) && !PG_ARGISNULL(6) &&
		PG_GETARG_TIMESTAMPTZ(5) > PG_GETARG_TIMESTAMPTZ(6))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("since must not be later than until")));

	values[0] = Int64GetDatum(PSK_LOG_EXACT_COUNT);
	values[1] = Int32GetDatum(page_size);
	nulls[2] = code == NULL;
	values[2] = code ? CStringGetTextDatum(code) : (Datum) 0;
	nulls[3] = user_name == NULL;
	values[3] = user_name ? CStringGetTextDatum(user_name) : (Datum) 0;
	nulls[4] = action == NULL;
	values[4] = action ? CStringGetTextDatum(action) : (Datum) 0;
	nulls[5] = PG_ARGISNULL(5);
	values[5] = nulls[5] ? (Datum) 0 : PG_GETARG_DATUM(5);
	nulls[6] = PG_ARGISNULL(6);
	values[6] = nulls[6] ? (Datum) 0 : PG_GETARG_DATUM(6);
	values[7] = Int64GetDatum(0);
	values[8] = BoolGetDatum(false);

	SPI_connect();
	current = audit_log_narrow(values, nulls, false);
	if (current && !nulls[2])
	{
		psk_execute(&audit_log_suffix_codes, values, nulls, true);
		suffix_codes = DatumGetInt64(psk_result(0, 1, &isnull));
	}
	total = audit_log_total(values, nulls, current, suffix_codes);
	if (total > PSK_LOG_EXACT_COUNT)
	{
		total = Max(total, audit_log_estimate(values, nulls));
		values[8] = BoolGetDatum(true);
	}
	values[0] = Int64GetDatum((int64) (page - 1) * page_size);
	values[7] = Int64GetDatum(total);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (current && !(rsinfo != NULL && rsinfo->expectedDesc != NULL &&
					 rsinfo->expectedDesc->natts == AUDIT_LOG_NCOLS + 1))
		audit_log_page(fcinfo, values, nulls, (int64) (page - 1) * page_size,
					   page_size, suffix_codes);
	else
	{
		psk_execute(&audit_log_page_0_2, values, nulls, true);
		psk_return_tuptable(fcinfo);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * psk_counts(): every pool and status, zeros included, in the order of
 * their lists.  $1 the pools, $2 the statuses.
 */
static PskQuery counts = {
	"SELECT p.pool, s.status, COALESCE(n.n, 0)"
	"  FROM unnest($1) WITH ORDINALITY p(pool, o)"
	" CROSS JOIN unnest($2) WITH ORDINALITY s(status, o)"
	"  LEFT JOIN (SELECT pool, status, count(*) AS n FROM psk.codes"
	"              GROUP BY pool, status) n"
	"         ON n.pool = p.pool AND n.status = s.status"
	" ORDER BY p.o, s.o",
	2,
	{ TEXTARRAYOID, TEXTARRAYOID }
};

Datum
psk_counts(PG_FUNCTION_ARGS)
{
	Datum values[2];

	values[0] = psk_list_array(&psk_pools);
	values[1] = psk_list_array(&psk_statuses);
	SPI_connect();
	psk_execute(&counts, values, NULL, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * psk_codes(code_type, status, after, page_size): keyset paging in code
 * order.  Two statements, so that the next page starts with an index range
 * scan at `after` rather than a filter.
 */
#define CODE_COUNTRIES                                     \
	"ARRAY(SELECT k.name FROM psk.code_countries cc"       \
	"        JOIN psk.countries k ON k.id = cc.country_id" \
	"       WHERE cc.code_id = c.id ORDER BY k.name)"
/* the codes of pool $1 and status $2 (NULL: any) */
#define CODES_MATCHING                                               \
	"  FROM psk.codes c LEFT JOIN psk.users u ON u.id = c.holder_id" \
	" WHERE ($1::text IS NULL OR c.pool = $1)"                       \
	"   AND ($2::text IS NULL OR c.status = $2)"
#define CODES_PAGE(after_filter)                                              \
	"SELECT c.code, c.pool, c.status, u.email, c.tester_name, c.reserved_at," \
	"       c.expires_at, c.released_at, c.note, " CODE_COUNTRIES             \
		CODES_MATCHING after_filter " ORDER BY c.code LIMIT $3"

static PskQuery codes_first_page = { CODES_PAGE(""),
									 3,
									 { TEXTOID, TEXTOID, INT4OID } };

static PskQuery codes_next_page = {
	CODES_PAGE("   AND c.code > psk.normalize_code($4)"),
	4,
	{ TEXTOID, TEXTOID, INT4OID, TEXTOID }
};

Datum
psk_codes(PG_FUNCTION_ARGS)
{
	const char *pool = psk_pool_name(
		psk_text_arg(fcinfo, 0, "code_type", false, PSK_MAX_NAME_LEN));
	const char *status =
		psk_list_name(&psk_statuses, psk_text_arg(fcinfo, 1, "status", false,
												  PSK_MAX_NAME_LEN));
	char *after = psk_text_arg(fcinfo, 2, "after", false, PSK_MAX_CODE_LEN);
	int32 page_size =
		psk_int_arg(fcinfo, 3, "page_size", 1000, 1, PSK_MAX_CODES_PAGE);
	Datum values[4];
	bool  nulls[4] = { 0 };

	nulls[0] = pool == NULL;
	values[0] = pool ? CStringGetTextDatum(pool) : (Datum) 0;
	nulls[1] = status == NULL;
	values[1] = status ? CStringGetTextDatum(status) : (Datum) 0;
	values[2] = Int32GetDatum(page_size);

	SPI_connect();
	if (after == NULL)
		psk_execute(&codes_first_page, values, nulls, true);
	else
	{
		values[3] = CStringGetTextDatum(after);
		psk_execute(&codes_next_page, values, nulls, true);
	}
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * psk_countries(): every country with its region.
 */
static PskQuery countries = {
	"SELECT k.id, k.name, r.name FROM psk.countries k"
	"  JOIN psk.regions r ON r.id = k.region_id ORDER BY k.id",
	0,
	{ InvalidOid }
};

Datum
psk_countries(PG_FUNCTION_ARGS)
{
	SPI_connect();
	psk_execute(&countries, NULL, NULL, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(psk_overdue);

/*
 * psk_overdue(older_than, code_type): the held codes reserved at least
 * older_than ago, longest held first, read from the partial index of held
 * codes by reserved_at (codes_held_since_idx), not from every code.  $1 the
 * cutoff (now() - older_than), $2 the pool or NULL.
 */
static PskQuery overdue = {
	"SELECT c.code, c.pool, c.status, u.email, c.tester_name, c.reserved_at,"
	"       c.expires_at, now() - c.reserved_at"
	"  FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id"
	" WHERE c.status IN ('RESERVED', 'IN_USE') AND c.reserved_at <= $1"
	"   AND ($2::text IS NULL OR c.pool = $2)"
	" ORDER BY c.reserved_at, c.id",
	2,
	{ TIMESTAMPTZOID, TEXTOID }
};

/* now() - older_than, or invalid_input for an interval out of range. */
static TimestampTz
overdue_cutoff(Interval *older_than)
{
	MemoryContext		 caller = CurrentMemoryContext;
	volatile TimestampTz cutoff = 0;
	volatile bool		 bad = false;

	PG_TRY();
	{
		cutoff = DatumGetTimestampTz(
			DirectFunctionCall2(timestamptz_mi_interval,
								TimestampTzGetDatum(
									GetCurrentTransactionStartTimestamp()),
								IntervalPGetDatum(older_than)));
	}
	PG_CATCH();
	{
		ErrorData *e;

		MemoryContextSwitchTo(caller);
		e = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(e->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		bad = true;
	}
	PG_END_TRY();
	if (bad)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("older_than is out of range")));
	return cutoff;
}

Datum
psk_overdue(PG_FUNCTION_ARGS)
{
	Interval   *older_than;
	Interval	zero = { 0 };
	const char *pool;
	Datum		values[2];
	bool		nulls[2] = { 0 };

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("older_than is required")));
	older_than = PG_GETARG_INTERVAL_P(0);
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(older_than),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("older_than must not be negative")));
	pool = psk_pool_name(
		psk_text_arg(fcinfo, 1, "code_type", false, PSK_MAX_NAME_LEN));

	values[0] = TimestampTzGetDatum(overdue_cutoff(older_than));
	nulls[1] = pool == NULL;
	values[1] = pool ? CStringGetTextDatum(pool) : (Datum) 0;

	SPI_connect();
	psk_execute(&overdue, values, nulls, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * The exports (GET /admin/codes/export and /admin/logs/export): the rows of
 * psk_codes and psk_log, unpaged, as a cursor, which bulk.c reads in parts
 * into the export's result.  Every column is text as the CSV has it (but
 * the log's id): timestamps as the JSON replies write them (ISO 8601 with
 * offset, in the session's time zone), countries joined with ';'.
 */
#define ISO_8601(ts) "pg_catalog.to_json(" ts ") OPERATOR(pg_catalog.#>>) '{}'"

static PskQuery codes_export = {
	"SELECT c.code::text AS code, c.pool AS code_type, c.status,"
	"       u.email AS holder,"
	"       c.tester_name, " ISO_8601(
		"c.reserved_at") " AS reserved_at,"
						 "       " ISO_8601(
							 "c.expires_at") " AS expires_at,"
											 "       " ISO_8601(
												 "c.released_at") " AS released_at, c.note,"
																  "       NULLIF(pg_catalog.array_to_string(" CODE_COUNTRIES
																  ", ';'), '')"
																  "         AS countries" CODES_MATCHING
																  " ORDER BY c.code",
	2,
	{ TEXTOID, TEXTOID }
};

Portal
psk_open_codes_cursor(const char *pool, const char *status)
{
	Datum values[2];
	bool  nulls[2] = { pool == NULL, status == NULL };

	values[0] = pool ? CStringGetTextDatum(pool) : (Datum) 0;
	values[1] = status ? CStringGetTextDatum(status) : (Datum) 0;
	return psk_open_cursor(&codes_export, NULL, values, nulls);
}

/*
 * AUDIT_LOG_FILTER reads its filters from $3 to $7 (psk_log's) and what
 * they mean from $10 to $12 (audit_log_narrow); $1, $2, $8 and $9 are
 * unused here, always NULL.  Planned for each call's values, as
 * psk_log's queries are: the filters then prune the weekly partitions.
 */
static PskQuery log_export = {
	"SELECT a.id, " ISO_8601(
		"a.logged_at") " AS logged_at, a.action, a.code,"
					   "       a.user_name, a.contact_email, a.tester_name, a.country, a.region,"
					   "       a.note" AUDIT_LOG_FILTER
					   " ORDER BY a.logged_at, a.id",
	AUDIT_LOG_NARGS, AUDIT_LOG_ARGTYPES, false, true
};

Portal
psk_open_log_cursor(const char *code, const char *user_name, const char *action,
					const TimestampTz *since, const TimestampTz *until)
{
	Datum values[AUDIT_LOG_NARGS] = { 0 };
	bool  nulls[AUDIT_LOG_NARGS] = { true,
									 true,
									 code == NULL,
									 user_name == NULL,
									 action == NULL,
									 since == NULL,
									 until == NULL,
									 true,
									 true };

	values[2] = code ? CStringGetTextDatum(code) : (Datum) 0;
	values[3] = user_name ? CStringGetTextDatum(user_name) : (Datum) 0;
	values[4] = action ? CStringGetTextDatum(action) : (Datum) 0;
	values[5] = since ? TimestampTzGetDatum(*since) : (Datum) 0;
	values[6] = until ? TimestampTzGetDatum(*until) : (Datum) 0;
	audit_log_narrow(values, nulls, true);
	return psk_open_cursor(&log_export, NULL, values, nulls);
}
