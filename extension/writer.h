/*
 * writer.h
 *		Changing codes and writing audit rows below SPI (writer.c): the
 *		calls a statement's executor would make, shared by every change of a
 *		code (reserve.c, confirm.c, release.c, codes.c, expiry.c), and the
 *		one writer of audit rows (users.c too).
 */
#ifndef PSK_WRITER_H
#define PSK_WRITER_H

#include "psk.h"

#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "nodes/lockoptions.h"
#include "utils/relcache.h"

/* Columns used below SPI, by name; their numbers are resolved per table. */
enum
{
	CODE_ID,
	CODE_CODE,
	CODE_POOL,
	CODE_STATUS,
	CODE_HOLDER,
	CODE_TESTER,
	CODE_RESERVED_AT,
	CODE_EXPIRES_AT,
	CODE_CONFIRMED_AT,
	CODE_TOKEN,
	CODE_RELEASED_AT,
	CODE_FREED_AT,
	CODE_NOTE,
	CODE_NCOLS
};

enum
{
	LOG_ID,
	LOG_LOGGED_AT,
	LOG_ACTION,
	LOG_CODE,
	LOG_CODE_TYPE,
	LOG_USER_ID,
	LOG_USER_NAME,
	LOG_EMAIL,
	LOG_TESTER,
	LOG_COUNTRY,
	LOG_REGION,
	LOG_NOTE,
	LOG_CLEARANCE,
	LOG_SUBJECT,
	LOG_NCOLS
};

enum
{
	USER_ID,
	USER_EMAIL,
	USER_NAME,
	USER_IS_ADMIN,
	USER_POOL,
	USER_TEAM,
	USER_NCOLS
};

enum
{
	SESSION_TOKEN_HASH,
	SESSION_USER_ID,
	SESSION_EXPIRES_AT,
	SESSION_REVOKED_AT,
	SESSION_NCOLS
};

/* psk.reserve_requests (requests.c) */
enum
{
	REQ_USER_ID,
	REQ_REQUEST_ID,
	REQ_MADE_AT,
	REQ_TESTER,
	REQ_COUNTRY,
	REQ_CODE_TYPE,
	REQ_HOW_MANY,
	REQ_CODES,
	REQ_CODE_TYPES,
	REQ_TOKENS,
	REQ_RESERVED_AT,
	REQ_EXPIRES_AT,
	REQ_NCOLS
};

/*
 * One call's worth of executor state: psk.codes and psk.audit_log as result
 * relations with their indexes open, as a ModifyTable node would have them
 * (and psk.reserve_requests, for a reserve with a request_id).
 */
typedef struct PskWriter
{
	EState			 *estate;
	ResultRelInfo	 *codes;
	ResultRelInfo	 *log;
	ResultRelInfo	 *requests; /* NULL unless psk_writer_begin_requests */
	const AttrNumber *code_att;
	const AttrNumber *log_att;
	const AttrNumber *request_att;
	Oid				  log_id_seq; /* audit_log.id's identity sequence */
	bool log_partitioned; /* audit_log is partitioned (as 0.3.0 makes it) */
	/* the partition audit rows went to, found by writer.c itself */
	ResultRelInfo *log_part;
	/* the executor's routing, for a row that goes elsewhere; set up then */
	struct ModifyTableState		 *log_mtstate;
	struct PartitionTupleRouting *log_proute;
	TupleTableSlot				 *code_slot; /* a code as locked */
	TupleTableSlot				 *new_code;	 /* its new version */
	TupleTableSlot				 *log_row;
	TupleTableSlot *request_slot; /* a remembered request as found */
	TupleTableSlot *new_request;  /* a row to write there */
	TimestampTz		now;
	/* audit_index.c: codes to remember at psk_writer_end */
	List *new_codes;
} PskWriter;

/*
 * Would this expression, compiled once, go stale or keep per-statement
 * state (a SQL or PL function, a hashed IN list)?  Then it is compiled per
 * call, by the executor, as usual.
 */
extern bool psk_expr_not_cacheable(Node *node);
/* index_cache.c: ExecOpenIndices(rri, false), IndexInfo built once. */
extern void psk_open_indices(ResultRelInfo *rri);

/* psk.<name>, or an error when the extension's object is missing. */
extern Oid psk_relation(const char *name);
/* The same, or InvalidOid when psk has none of that name. */
extern Oid psk_relation_if_exists(const char *name);
/* Column numbers of psk.codes (CODE_*), as open in rel. */
extern const AttrNumber *psk_code_columns(Relation rel);
/* Column numbers of psk.users (USER_*), as open in rel. */
extern const AttrNumber *psk_user_columns(Relation rel);
/* Column numbers of psk.sessions (SESSION_*), as open in rel. */
extern const AttrNumber *psk_session_columns(Relation rel);

/*
 * Start a call (see the changes made before it in this transaction, take a
 * fresh snapshot) and end it (fire the queued AFTER triggers, the foreign
 * key checks among them; clean up).  An error in between needs no cleanup.
 */
extern void psk_writer_begin(PskWriter *w);
extern void psk_writer_end(PskWriter *w);
/* The same for a change that is not a code's: audit rows only. */
extern void psk_audit_writer_begin(PskWriter *w);
/* psk_writer_begin, and psk.reserve_requests open too (requests.c). */
extern void psk_writer_begin_requests(PskWriter *w);

/*
 * Lock the row version in slot (in READ COMMITTED its newest version), as
 * FOR ... [SKIP LOCKED] would; false when it is gone, or locked by others
 * and wait is false.  Under REPEATABLE READ an updated row is 40001.
 */
extern bool psk_lock_row(Relation rel, TupleTableSlot *slot, LockTupleMode mode,
						 bool wait);

extern int64 psk_slot_int8(TupleTableSlot *slot, AttrNumber att, bool *isnull);
extern bool	 psk_slot_text_equals(TupleTableSlot *slot, AttrNumber att,
								  const char *s);
extern char *psk_slot_cstring(TupleTableSlot *slot, AttrNumber att);

/*
 * The code named code (as given: normalised here) into w->code_slot, as
 * the snapshot sees it; psk_lock_code then locks it in mode, waiting for
 * others, and leaves its newest version there.  false when there is none.
 */
extern bool psk_find_code(PskWriter *w, const char *code);
extern bool psk_lock_code(PskWriter *w, const char *code, LockTupleMode mode);

/*
 * A change of the code in w->code_slot: psk_code_change starts its new
 * version as a copy, psk_code_set / psk_code_free change it,
 * psk_code_update writes it (constraints, indexes, AFTER ROW triggers).
 * psk_code_try_update writes it only if the row, not locked by the caller,
 * is still the newest version and locked by no one; else false and nothing
 * written (the caller then locks the row and looks again).
 */
extern TupleTableSlot *psk_code_change(PskWriter *w);
extern void			   psk_code_update(PskWriter *w);
extern bool			   psk_code_try_update(PskWriter *w);
/* Delete the code in w->code_slot (locked); its countries go with it. */
extern void psk_code_delete(PskWriter *w);

static inline void
psk_code_set(PskWriter *w, int col, Datum value, bool isnull)
{
	w->new_code->tts_values[w->code_att[col] - 1] = value;
	w->new_code->tts_isnull[w->code_att[col] - 1] = isnull;
}

/*
 * The code stops being held, whoever held it and why: status becomes
 * status, the holder, tester, token and reservation times are cleared, and
 * a code that becomes CAN_BE_USED goes to the end of the least-recently-
 * used order (freed_at).
 */
extern void psk_code_free(PskWriter *w, const char *status);

/*
 * An audit row: psk_audit_begin, psk_audit_set for each field given (the
 * others are NULL), then psk_audit_append with the action; its id and time
 * are set there.
 */
extern void psk_audit_begin(PskWriter *w);
extern void psk_audit_append(PskWriter *w, const char *action);
/* The same at another time than now(): history moved from elsewhere. */
extern void psk_audit_append_at(PskWriter *w, const char *action,
								TimestampTz logged_at);

static inline void
psk_audit_set(PskWriter *w, int col, Datum value)
{
	w->log_row->tts_values[w->log_att[col] - 1] = value;
	w->log_row->tts_isnull[w->log_att[col] - 1] = false;
}

/*
 * psk_audit_begin for a change of the code in w->code_slot: its code and
 * pool, the actor and, when it was held, its tester (as it was: the slot
 * keeps the version the change started from).
 */
extern void psk_audit_code(PskWriter *w, const PskUser *actor);

/*
 * audit_index.c: remember the code of the audit row in w->log_row when it
 * is added (psk.audit_codes, for psk_log's code filter), written by
 * psk_audit_remember_codes, from psk_writer_end.
 */
extern void psk_audit_remember(PskWriter *w, const char *action);
extern void psk_audit_remember_codes(PskWriter *w);

/* The actor's columns (user_id, user_name, contact_email). */
extern void psk_audit_actor(PskWriter *w, const PskUser *actor);

/*
 * requests.c: a reserve's request_id.  psk_request_find looks up what the
 * user's call with that request_id returned (a registered snapshot of now:
 * the caller holds the user's row locked, so a call that committed while
 * it waited is seen) into w->request_slot; psk_request_same compares the
 * arguments, psk_request_replay returns its rows; psk_request_remember
 * writes what this call returned (over a lapsed row when there is one).
 */
typedef enum PskRequestFound
{
	PSK_REQUEST_NONE,	/* never made, or forgotten */
	PSK_REQUEST_LAPSED, /* made more than 24 hours ago: as if never made */
	PSK_REQUEST_KNOWN	/* made within 24 hours: replay it */
} PskRequestFound;

extern PskRequestFound psk_request_find(PskWriter *w, int64 user_id,
										const char *request_id);
extern bool			   psk_request_same(PskWriter *w, const char *tester,
										const char *country, const char *code_type,
										int how_many);
extern int	psk_request_replay(PskWriter *w, PskReserved *out, int max);
extern void psk_request_remember(PskWriter *w, PskRequestFound found,
								 int64 user_id, const char *request_id,
								 const char *tester, const char *country,
								 const char *code_type, int how_many,
								 const PskReserved *got, int n);

/*
 * actor.c: the user with this e-mail, locked in mode (as FOR UPDATE and the
 * like would, waiting for others); psk_lookup_user with lock takes
 * LockTupleKeyShare.
 */
extern bool psk_lookup_user_locked(const char *email, LockTupleMode mode,
								   PskUser *user);

/*
 * actor.c: the code that user (checked by psk_check_user already) holds,
 * locked in mode into w->code_slot; the refusals of psk_check_holder.
 */
extern void psk_lock_held_code(PskWriter *w, const char *code,
							   LockTupleMode mode, const PskUser *user);
/*
 * The code as the snapshot sees it into w->code_slot, not locked: does user
 * hold it there?  (For psk_code_try_update; the refusals come from the
 * locked newest version, psk_lock_held_code.)
 */
extern bool psk_find_held_code(PskWriter *w, const char *code,
							   const PskUser *user);

#endif /* PSK_WRITER_H */
