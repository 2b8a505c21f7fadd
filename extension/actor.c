/*
 * actor.c
 *		Who is calling: the user named by e-mail, or by a session token
 *		(one lookup, below SPI, whatever the caller; an HTTP route's
 *		session lookup is the engine's too), and the checks of who may do
 *		what.
 */
#include "writer.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* A text column of the user's row, in the caller's context (spi) or here. */
static char *
user_string(TupleTableSlot *slot, AttrNumber att, bool spi)
{
	char *s = psk_slot_cstring(slot, att);

	return spi ? psk_spi_strdup(s) : s;
}

/* The user in slot, a version of a users row, into *user. */
static void
read_user(TupleTableSlot *slot, const AttrNumber *att, bool spi, PskUser *user)
{
	bool isnull; /* id and is_admin are NOT NULL */

	user->id = psk_slot_int8(slot, att[USER_ID], &isnull);
	user->is_admin =
		DatumGetBool(slot_getattr(slot, att[USER_IS_ADMIN], &isnull));
	user->email = user_string(slot, att[USER_EMAIL], spi);
	user->user_name = user_string(slot, att[USER_NAME], spi);
	user->pool = user_string(slot, att[USER_POOL], spi);
	user->team_name = user_string(slot, att[USER_TEAM], spi);
	user->tid = slot->tts_tid;
}

/*
 * The user with e-mail email (lower-cased already) or, when email is NULL,
 * with id id, in the active snapshot; with lock, locked in mode: FOR KEY
 * SHARE, which keeps the user from being deleted while the caller's
 * transaction makes it a holder (in place of a foreign key check on
 * psk.codes.holder_id: holders.c), or stronger to serialise one user's
 * reserves (reserve.c).
 * spi: inside SPI, strings allocated outside it.
 */
static bool
fetch_user(const char *email, int64 id, bool lock, LockTupleMode mode,
		   LOCKMODE rellock, bool spi, PskUser *user)
{
	Relation rel = table_open(psk_relation("users"), rellock);
	Relation idx =
		index_open(psk_relation(email ? "users_email_key" : "users_pkey"),
				   AccessShareLock);
	const AttrNumber *att = psk_user_columns(rel);
	TupleTableSlot	 *slot = table_slot_create(rel, NULL);
	ScanKeyData		  key;
	IndexScanDesc	  scan;
	bool			  found;

	if (email != NULL)
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
					CStringGetTextDatum(email));
	else
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
					Int64GetDatum(id));
	key.sk_collation = idx->rd_indcollation[0];
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);

	/* The locked version may have a new e-mail: look again. */
	if (found && lock)
		found = psk_lock_row(rel, slot, mode, true) &&
				(email == NULL ||
				 psk_slot_text_equals(slot, att[USER_EMAIL], email));

	if (found)
		read_user(slot, att, spi, user);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return found;
}

bool
psk_lookup_user(const char *email, bool lock, PskUser *user)
{
	return email != NULL &&
		   fetch_user(psk_lower(email), 0, lock, LockTupleKeyShare,
					  RowShareLock, false, user);
}

bool
psk_lookup_user_locked(const char *email, LockTupleMode mode, PskUser *user)
{
	return email != NULL && fetch_user(psk_lower(email), 0, true, mode,
									   RowShareLock, false, user);
}

bool
psk_lookup_user_id(int64 id, PskUser *user)
{
	return fetch_user(NULL, id, false, LockTupleKeyShare, AccessShareLock,
					  false, user);
}

/*
 * The user of the live session whose token hashes to token_hash (a bytea):
 * one probe of psk.sessions' primary key and one of psk.users', in the
 * active snapshot.  Every HTTP request but a login starts here, so this is
 * on the hot path and stays below SPI.  "Live" is not revoked and not past
 * expires_at by the statement's clock.
 */
bool
psk_lookup_session_user(Datum token_hash, PskUser *user)
{
	Relation rel = table_open(psk_relation("sessions"), AccessShareLock);
	Relation idx = index_open(psk_relation("sessions_pkey"), AccessShareLock);
	const AttrNumber *att = psk_session_columns(rel);
	TupleTableSlot	 *slot = table_slot_create(rel, NULL);
	ScanKeyData		  key;
	IndexScanDesc	  scan;
	bool			  live = false;
	int64			  user_id = 0;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_BYTEAEQ, token_hash);
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		not_revoked;
		bool		isnull; /* user_id and expires_at are NOT NULL */
		TimestampTz expires_at;

		(void) slot_getattr(slot, att[SESSION_REVOKED_AT], &not_revoked);
		expires_at = DatumGetTimestampTz(
			slot_getattr(slot, att[SESSION_EXPIRES_AT], &isnull));
		live = not_revoked && expires_at > GetCurrentStatementStartTimestamp();
		if (live)
			user_id = psk_slot_int8(slot, att[SESSION_USER_ID], &isnull);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);

	return live && fetch_user(NULL, user_id, false, LockTupleKeyShare,
							  AccessShareLock, false, user);
}

/*
 * The caller's users row locked in mode, from the version the HTTP layer's
 * session lookup read in this statement: its newest version, as a lookup
 * by e-mail would lock it, or false when the user was deleted since.
 */
static bool
lock_known_user(const PskUser *known, LockTupleMode mode, PskUser *user)
{
	Relation		  rel = table_open(psk_relation("users"), RowShareLock);
	const AttrNumber *att = psk_user_columns(rel);
	TupleTableSlot	 *slot = table_slot_create(rel, NULL);
	bool			  found;
	bool			  isnull;

	slot->tts_tid = known->tid;
	found = psk_lock_row(rel, slot, mode, true) &&
			psk_slot_int8(slot, att[USER_ID], &isnull) == known->id;
	if (found)
		read_user(slot, att, false, user);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return found;
}

void
psk_require_caller(const PskCaller *caller, PskUser *user)
{
	bool found = true;

	if (caller->user != NULL)
		*user = *caller->user;
	else
		found = psk_lookup_user(caller->email, false, user);
	psk_check_user(caller->email, found ? user : NULL);
}

void
psk_require_caller_locked(const PskCaller *caller, LockTupleMode mode,
						  PskUser *user)
{
	bool found = caller->user != NULL
					 ? lock_known_user(caller->user, mode, user)
					 : psk_lookup_user_locked(caller->email, mode, user);

	psk_check_user(caller->email, found ? user : NULL);
}

/*
 * Inside SPI, as a statement run there would see it: what this transaction
 * did before, and in READ COMMITTED a fresh snapshot.  Strings are
 * allocated outside SPI.
 */
bool
psk_find_user(const char *email, PskUser *user)
{
	bool found;

	if (email == NULL)
		return false;
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	found = fetch_user(psk_lower(email), 0, false, LockTupleKeyShare,
					   AccessShareLock, true, user);
	PopActiveSnapshot();
	return found;
}

void
psk_require_user(const char *email, PskUser *user)
{
	psk_check_user(email, psk_find_user(email, user) ? user : NULL);
}

/* The refusals of psk_require_user; user is NULL when none was found. */
void
psk_check_user(const char *email, const PskUser *user)
{
	if (user == NULL)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("unknown user \"%s\"", email ? email : "")));
	if (user->is_admin)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("users only: \"%s\" is an admin", user->email)));
}

void
psk_require_admin(const char *email, PskUser *user)
{
	psk_check_admin(email, psk_find_user(email, user) ? user : NULL);
}

/* The refusal of psk_require_admin; user is NULL when none was found. */
void
psk_check_admin(const char *email, const PskUser *user)
{
	if (user == NULL || !user->is_admin)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("permission denied: \"%s\" is not an admin",
							   email ? email : "")));
}

/*
 * Refuse unless user_id holds code: unknown code (status NULL), a code that
 * is not held, or someone else's.  user_id 0 is nobody (ids start at 1).
 */
void
psk_check_holder(const char *code, const char *status, bool held,
				 int64 holder_id, int64 user_id)
{
	if (status == NULL)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_FOUND),
						errmsg("unknown code \"%s\"", code)));
	if (!held)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_WRONG_STATE),
				 errmsg("code \"%s\" is %s, not reserved", code, status)));
	if (holder_id != user_id)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_ALLOWED),
						errmsg("code \"%s\" is held by another user", code)));
}

/*
 * In a writer call, for a user already checked (psk_check_user): the code
 * it holds, locked in mode (waiting for others) and left in w->code_slot;
 * refused unless that user holds it.
 */
void
psk_lock_held_code(PskWriter *w, const char *code, LockTupleMode mode,
				   const PskUser *user)
{
	bool  found;
	bool  isnull = true;
	char *status = NULL;
	int64 holder = 0;

	found = psk_lock_code(w, code, mode);
	if (found)
	{
		status = psk_slot_cstring(w->code_slot, w->code_att[CODE_STATUS]);
		holder = psk_slot_int8(w->code_slot, w->code_att[CODE_HOLDER], &isnull);
	}
	psk_check_holder(code, status, !isnull, holder, user->id);
}

bool
psk_find_held_code(PskWriter *w, const char *code, const PskUser *user)
{
	bool isnull;

	return psk_find_code(w, code) &&
		   psk_slot_int8(w->code_slot, w->code_att[CODE_HOLDER], &isnull) ==
			   user->id &&
		   !isnull;
}
