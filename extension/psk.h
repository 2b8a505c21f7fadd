/*
 * psk.h
 *		Shared declarations of the psk extension: error codes, limits,
 *		settings, the small SPI toolkit (query.c), argument checks (args.c),
 *		the acting user (actor.c) and the C API of the HTTP layer.
 */
#ifndef PSK_H
#define PSK_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/lockoptions.h"
#include "storage/itemptr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/*
 * Error kinds of the contract (shared/spec/API.md), one SQLSTATE each.
 */
#define ERRCODE_PSK_NO_CODES_AVAILABLE	MAKE_SQLSTATE('P', 'K', '0', '0', '1')
#define ERRCODE_PSK_NOT_FOUND			MAKE_SQLSTATE('P', 'K', '0', '0', '2')
#define ERRCODE_PSK_NOT_ALLOWED			MAKE_SQLSTATE('P', 'K', '0', '0', '3')
#define ERRCODE_PSK_WRONG_STATE			MAKE_SQLSTATE('P', 'K', '0', '0', '4')
#define ERRCODE_PSK_TOKEN_MISMATCH		MAKE_SQLSTATE('P', 'K', '0', '0', '5')
#define ERRCODE_PSK_RESERVATION_EXPIRED MAKE_SQLSTATE('P', 'K', '0', '0', '6')
#define ERRCODE_PSK_INVALID_INPUT		MAKE_SQLSTATE('P', 'K', '0', '0', '7')
#define ERRCODE_PSK_UNAUTHORIZED		MAKE_SQLSTATE('P', 'K', '0', '0', '8')
#define ERRCODE_PSK_CONFLICT			MAKE_SQLSTATE('P', 'K', '0', '0', '9')
#define ERRCODE_PSK_LOCKED_OUT			MAKE_SQLSTATE('P', 'K', '0', '1', '0')
#define ERRCODE_PSK_QUOTA_EXCEEDED		MAKE_SQLSTATE('P', 'K', '0', '1', '1')

/* Input limits (characters) */
#define PSK_MAX_CODE_LEN   128
#define PSK_MAX_NAME_LEN   128
#define PSK_MAX_EMAIL_LEN  254
#define PSK_MAX_TEXT_LEN   1000
#define PSK_MAX_HOW_MANY   100
#define PSK_MAX_REQUEST_ID 255 /* psk_reserve's request_id: 1 to 255 */

/*
 * Passwords: every hash psk makes is bcrypt of this cost (2^10 rounds),
 * users' (users.c) and the dummy one of a login without an account
 * (sessions.c), so that both kinds of failed login take one bcrypt of it.
 * bcrypt reads at most 72 bytes.
 */
#define PSK_BCRYPT_COST	 10
#define PSK_MIN_PASSWORD 8
#define PSK_MAX_PASSWORD 72

/*
 * Which region or country a name means: the one of that name whatever the
 * case, the name trimmed (regions_name_key and countries_name_key keep
 * names unique that way).  A condition for a statement, on the columns of
 * the places p and a name; the one definition for every statement that
 * looks a place up (reserve.c, codes.c, places.c).
 */
#define PSK_PLACE_NAMED(p, name)                                             \
	"pg_catalog.lower(" p ".name) = pg_catalog.lower(pg_catalog.btrim(" name \
	"))"

/* Settings (psk.c); durations are in seconds. */
extern int	 psk_reservation_ttl;
extern int	 psk_in_use_ttl;
extern int	 psk_max_held_per_user;
extern int	 psk_session_ttl;
extern int	 psk_login_max_failures;
extern int	 psk_login_lockout;
extern int	 psk_expiry_interval;
extern int	 psk_expiry_batch;
extern int	 psk_audit_retention;
extern int	 psk_audit_partition_width;
extern char *psk_databases;
extern char *psk_display_timezone;

/* metrics.c: the expiry workers' liveness, and their metrics refresh */
extern void psk_metrics_shmem_register(void);
extern void psk_metrics_worker_started(void);
extern void psk_metrics_worker_swept(void);

/*
 * query.c: a statement prepared once per backend and kept (SPI_keepplan).
 * Declare one as a static, with its SQL and argument types; psk_execute()
 * prepares it on first use.
 */
#define PSK_MAX_ARGS 12
typedef struct PskQuery
{
	const char *sql;
	int			nargs;
	Oid			argtypes[PSK_MAX_ARGS];
	/*
	 * Plan once, never again: for hot-path statements whose generic plan is
	 * checked to be right (the planner would otherwise replan statements
	 * with a LIMIT parameter on every call).
	 */
	bool generic;
	/*
	 * Plan for each call's values: for statements whose filters are
	 * "($n IS NULL OR col op $n)", which only a plan that knows $n turns
	 * into index conditions and partition pruning.
	 */
	bool	   custom;
	SPIPlanPtr plan;
} PskQuery;

/* Run a kept statement; returns SPI_processed.  nulls may be NULL. */
extern uint64 psk_execute(PskQuery *query, Datum *values, const bool *nulls,
						  bool read_only);
/* The same, read-only, in a snapshot taken now (see query.c). */
extern uint64 psk_execute_latest(PskQuery *query, Datum *values,
								 const bool *nulls);
/*
 * Open a kept statement as a read-only cursor of the transaction (NO
 * SCROLL), named name (NULL: SPI names it), to fetch from in parts.
 */
extern Portal psk_open_cursor(PskQuery *query, const char *name, Datum *values,
							  const bool *nulls);

/*
 * Copy the result of the last psk_execute into the caller's SRF result; or
 * add one row of the declared columns to it.
 */
extern void psk_return_tuptable(FunctionCallInfo fcinfo);
/* InitMaterializedSRF, with the row type the caller expects when given. */
extern void psk_materialize(FunctionCallInfo fcinfo);
extern void psk_return_row(FunctionCallInfo fcinfo, Datum *values, bool *nulls);
/* The caller's SRF result, made if need be: for a set that may be empty. */
extern TupleDesc psk_result_set(FunctionCallInfo fcinfo);

/* Column n (1-based) of row r of the last result; *isnull set. */
extern Datum psk_result(uint64 row, int col, bool *isnull);
extern char *psk_result_cstring(uint64 row, int col);
/* Inside SPI: a copy of s in the caller's (pre-SPI_connect) context. */
extern char *psk_spi_strdup(const char *s);

/*
 * Arguments (args.c).  psk_text_arg returns NULL for a NULL or empty
 * argument when not required, raises invalid_input when required, and
 * raises invalid_input when longer than maxlen characters.
 */
extern char *psk_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
						  bool required, int maxlen);
/*
 * Argument argno as given, cut to a little over maxlen characters' bytes
 * (NULL for NULL): for a function that checks it after its caller; what is
 * cut is still too long for psk_check_text.
 */
extern char *psk_text_arg_capped(FunctionCallInfo fcinfo, int argno,
								 int maxlen);
/* The same checks on a C string (NULL allowed), for callers without fcinfo. */
extern char *psk_check_text(char *value, const char *name, bool required,
							int maxlen);
/* s without the ASCII whitespace around it (s is changed in place). */
extern char *psk_trim_space(char *s);
/* work(fcinfo) without its errors logging the statement (passwords). */
extern Datum psk_call_hiding_statement(PGFunction		work,
									   FunctionCallInfo fcinfo);
extern int32 psk_int_arg(FunctionCallInfo fcinfo, int argno, const char *name,
						 int32 defval, int32 min, int32 max);
/* lower() of the database's collation, e.g. for e-mails (stored lower-case). */
extern char *psk_lower(const char *s);
/* A code as stored (psk.normalize_code): trimmed, upper-cased. */
extern char *psk_normalize_code(const char *code, Oid collid);
/*
 * lists.c: a pool's name as spelled in psk_pools (lists.h), or
 * invalid_input; NULL in, NULL out.
 */
extern const char *psk_pool_name(const char *pool);

/*
 * actor.c: the acting user, looked up by e-mail (case-insensitive) or
 * found by its session, and who may do what.
 */
typedef struct PskUser
{
	int64			id;
	bool			is_admin;
	char		   *email;
	char		   *user_name;
	char		   *pool;
	char		   *team_name;
	ItemPointerData tid; /* the version of its row read */
} PskUser;

/*
 * Who calls an engine function (reserve.c, confirm.c, release.c,
 * renew.c, codes.c): the user named by e-mail, as the SQL functions are
 * called; or, from an HTTP route, the user its session lookup found in
 * this statement's snapshot, so that it is not looked up twice.
 */
typedef struct PskCaller
{
	const char	  *email;
	const PskUser *user; /* NULL: look email up */
} PskCaller;

/*
 * Inside SPI, seeing what a statement run there would see; strings are
 * allocated outside SPI.  false when there is no such user.
 */
extern bool psk_find_user(const char *email, PskUser *user);
/* A non-admin user, or not_allowed. */
extern void psk_require_user(const char *email, PskUser *user);
/* not_allowed unless user (NULL: not found) is a non-admin user. */
extern void psk_check_user(const char *email, const PskUser *user);
/* Below SPI: the caller as a non-admin user, or not_allowed. */
extern void psk_require_caller(const PskCaller *caller, PskUser *user);
/* The same, its users row locked in mode (as psk_lookup_user_locked). */
extern void psk_require_caller_locked(const PskCaller *caller,
									  LockTupleMode mode, PskUser *user);
/* An admin, or not_allowed; and that refusal (user NULL: not found). */
extern void psk_require_admin(const char *email, PskUser *user);
extern void psk_check_admin(const char *email, const PskUser *user);

/*
 * Below SPI, in the active snapshot (a writer.h call): the user with this
 * e-mail, with lock locked FOR KEY SHARE; or with this id.  Strings are
 * allocated in the current memory context.
 */
extern bool psk_lookup_user(const char *email, bool lock, PskUser *user);
extern bool psk_lookup_user_id(int64 id, PskUser *user);
/* The user of a live session, by the SHA-256 of its token (bytea). */
extern bool psk_lookup_session_user(Datum token_hash, PskUser *user);

/* Refuse unless user_id holds code (status NULL: unknown code). */
extern void psk_check_holder(const char *code, const char *status, bool held,
							 int64 holder_id, int64 user_id);

/*
 * The holder's cycle, for the SQL functions and the HTTP layer: reserve.c,
 * confirm.c, release.c and renew.c.  Each checks its arguments itself,
 * after the caller (who may call them at all comes first); a value that
 * passed psk_check_text already passes again unchanged.  Errors are
 * raised as by the SQL functions.  Results are allocated in the caller's
 * memory context.
 */
typedef struct PskReserved
{
	char	   *code;
	const char *pool;
	pg_uuid_t	token;
	TimestampTz reserved_at;
	TimestampTz expires_at;
	bool		expires; /* false: no expiry (psk.reservation_ttl 0) */
} PskReserved;

/* What a reserve asks for, as given (NULL: not given). */
typedef struct PskReserveArgs
{
	const char *tester;
	const char *country;
	const char *code_type;
	int64		how_many; /* 1 to PSK_MAX_HOW_MANY */
	const char *request_id;
	const char *request_id_name; /* in its error: NULL is "request_id" */
} PskReserveArgs;

/*
 * Reserve args->how_many codes, all or none, or return again what the
 * user's call with the same request_id returned: the rows into *out
 * (allocated here); returns how many.
 */
extern int psk_reserve_codes(const PskCaller	  *caller,
							 const PskReserveArgs *args, PskReserved **out);

typedef struct PskConfirmed
{
	char	   *code;
	char	   *status;
	TimestampTz confirmed_at;
} PskConfirmed;

/* psk_confirm's work; code and token as given (NULL: not given). */
extern void psk_confirm_code(const PskCaller *caller, const char *code,
							 const pg_uuid_t *token, PskConfirmed *out);

typedef struct PskReleased
{
	char	   *code;
	TimestampTz released_at;
} PskReleased;

/* psk_release's work; code, clearance and note as given (NULL: not given). */
extern void psk_release_code(const PskCaller *caller, const char *code,
							 const char *clearance, const char *note,
							 PskReleased *out);

typedef struct PskRenewed
{
	char	   *code;
	const char *status;
	TimestampTz expires_at;
	bool		expires; /* false: no expiry (its setting 0) */
} PskRenewed;

/* psk_renew's work; code and token as given (NULL: not given). */
extern void psk_renew_code(const PskCaller *caller, const char *code,
						   const pg_uuid_t *token, PskRenewed *out);

/*
 * sessions.c: the user behind a live session token (NULL allowed), or
 * unauthorized.  Strings are allocated in the caller's memory context.
 */
extern void psk_session_find(text *token, PskUser *user);
/* sessions.c, inside SPI: a good login or a new password unlocks the user. */
extern void psk_clear_login_failures(int64 user_id);

/*
 * readers.c: the codes user_id holds, as psk_my_codes lists them (its
 * columns, in its order), newest first, in the active snapshot; allocated
 * in the current memory context.  Returns how many.
 */
enum
{
	HELD_CODE,
	HELD_POOL,
	HELD_STATUS,
	HELD_TESTER,
	HELD_RESERVED_AT,
	HELD_EXPIRES_AT,
	HELD_TOKEN,
	HELD_NOTE,
	HELD_COUNTRIES,
	HELD_REGIONS,
	HELD_NCOLS
};
typedef struct PskHeldCode
{
	int64 id;
	Datum values[HELD_NCOLS];
	bool  nulls[HELD_NCOLS];
} PskHeldCode;
extern int psk_held_codes(int64 user_id, PskHeldCode **held);
/*
 * readers.c: the rows of psk_codes and of psk_log (without total_count,
 * oldest first), unpaged, as a cursor (psk_open_cursor), every column text
 * as the CSV exports write it (but psk_log's id).  Arguments checked as
 * those functions check theirs; NULL: no filter.
 */
extern Portal psk_open_codes_cursor(const char *pool, const char *status);
extern Portal psk_open_log_cursor(const char *code, const char *user_name,
								  const char *action, const TimestampTz *since,
								  const TimestampTz *until);

/*
 * expiry.c: return at most limit overdue holds (reservations and codes in
 * use) to their pool, longest overdue first; the codes (char *), in code
 * order.  *more: limit were due, more may be.
 */
extern List *psk_expire_overdue(int limit, bool *more);
/*
 * requests.c: forget at most max request_ids of reserves made more than 24
 * hours ago (in the caller's transaction); returns how many.  0 when the
 * schema has no psk.reserve_requests (before ALTER EXTENSION UPDATE).
 */
extern uint64 psk_forget_requests(int max);
/* partitions.c: the audit log's partitions, from the worker's loop */
extern void psk_audit_partitions_once(void);
extern void psk_audit_freeze_once(void);
#define PSK_FORGET_BATCH 10000
/* expiry.c: from _PG_init when preloaded, one worker per psk.database. */
extern void psk_register_expiry_workers(void);
/*
 * In the PG_CATCH of one step of the worker's round (its upkeep, a freeze,
 * the metrics' refresh): back in cxt, the error copied and cleared, the
 * step's transaction aborted, and the error's message reported at elevel
 * after "psk: <what>: ", so that the round goes on.
 */
extern void psk_worker_step_failed(MemoryContext cxt, int elevel,
								   const char *what);
extern void psk_expiry_shmem_request(void);
extern void psk_expiry_shmem_startup(void);

/*
 * readonly.c: refuse a change in a read-only transaction, on a hot standby
 * too, with PostgreSQL's own read_only_sql_transaction (25006), before
 * anything is changed.  what names the function ("psk_login").
 */
extern void psk_require_writable(const char *what);

/*
 * search_path.c: pg_catalog alone as the search_path from pin to unpin (the
 * functions defined without SET search_path call these first and last;
 * an error that leaves the call early unpins at its (sub)transaction's
 * abort).
 */
extern void psk_pin_search_path(void);
extern void psk_unpin_search_path(void);

#endif /* PSK_H */
