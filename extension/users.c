/*
 * users.c
 *		Accounts: psk_create_user (with the first-admin bootstrap rule),
 *		psk_update_user, psk_delete_user and psk_users.
 *
 * Every change writes its audit row (USER_CREATED, USER_UPDATED,
 * USER_DELETED: the actor, the subject and what changed, never a password)
 * right after it, through the one audit writer (writer.c).  There is always an
 *admin: the changes that could remove the last one lock every admin row first,
 *so two of them cannot each count on the other.
 */
#include "writer.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

PG_FUNCTION_INFO_V1(psk_create_user);
PG_FUNCTION_INFO_V1(psk_update_user);
PG_FUNCTION_INFO_V1(psk_delete_user);
PG_FUNCTION_INFO_V1(psk_users);

/* One '@', something on both sides, no whitespace or control characters. */
static void
check_email(const char *email)
{
	const char *at = strchr(email, '@');

	if (at == NULL || at == email || at[1] == '\0' || strchr(at + 1, '@'))
		goto bad;
	for (const unsigned char *p = (const unsigned char *) email; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			goto bad;
	return;
bad:
	ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
					errmsg("\"%s\" is not an e-mail address", email)));
}

static void
check_password(const char *password)
{
	size_t len = strlen(password);

	if (len < PSK_MIN_PASSWORD || len > PSK_MAX_PASSWORD)
		ereport(ERROR, (errcode(ERRCODE_PSK_INVALID_INPUT),
						errmsg("password must be %d to %d bytes long",
							   PSK_MIN_PASSWORD, PSK_MAX_PASSWORD)));
}

static PskQuery lock_users = {
	"LOCK TABLE psk.users IN SHARE ROW EXCLUSIVE MODE", 0, { InvalidOid }
};

static PskQuery any_admin = { "SELECT 1 FROM psk.users WHERE is_admin LIMIT 1",
							  0,
							  { InvalidOid } };

/* The new user, and the note of its audit row. */
static PskQuery insert_user = {
	"INSERT INTO psk.users (team_name, user_name, email, password_hash,"
	"                       is_admin, pool)"
	"VALUES ($1, $2, lower($3), psk.crypt($4, psk.gen_salt('bf', $7)), $5,"
	"        COALESCE($6, psk.pool_for_team($1)))"
	"ON CONFLICT (email) DO NOTHING "
	"RETURNING id,"
	"  format('created %s (team %s, pool %s%s)', email, team_name, pool,"
	"         CASE WHEN is_admin THEN ', admin' ELSE '' END)",
	7,
	{ TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, INT4OID }
};

/*
 * The audit row of a change of user subject_id by actor (NULL: the first
 * admin making itself), and the function's result row, its id.
 */
static void
user_changed(FunctionCallInfo fcinfo, const char *action, const PskUser *actor,
			 Datum subject_id, const char *note)
{
	PskWriter w;
	bool	  isnull = false;

	psk_audit_writer_begin(&w);
	psk_audit_begin(&w);
	if (actor != NULL)
		psk_audit_actor(&w, actor);
	psk_audit_set(&w, LOG_SUBJECT, subject_id);
	psk_audit_set(&w, LOG_NOTE, CStringGetTextDatum(note));
	psk_audit_append(&w, action);
	psk_writer_end(&w);

	psk_return_row(fcinfo, &subject_id, &isnull);
}

/*
 * psk_create_user(admin_email, team_name, user_name, email, password,
 *				   is_admin, pool)
 */
static Datum
psk_create_user_work(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", false, PSK_MAX_EMAIL_LEN);
	bool		is_admin = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
	char	   *team;
	char	   *name;
	char	   *email;
	char	   *password;
	const char *pool;
	PskUser		admin;
	bool		bootstrap = admin_email == NULL;
	Datum		values[7];
	bool		nulls[7] = { 0 };
	bool		isnull;

	psk_require_writable("psk_create_user");

	/* who may call it first (strings below live until SPI_finish) */
	SPI_connect();
	if (admin_email == NULL)
	{
		/* Bootstrap: only an admin, only while there is none. */
		if (!is_admin)
			ereport(
				ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("admin_email is required"),
				 errhint(
					 "Without admin_email only the first admin can be created.")));
		psk_execute(&lock_users, NULL, NULL, false);
		if (psk_execute(&any_admin, NULL, NULL, false) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_PSK_NOT_ALLOWED),
					 errmsg(
						 "an admin exists already: admin_email is required")));
	}
	else
		psk_require_admin(admin_email, &admin);

	/* then the arguments */
	team = psk_text_arg(fcinfo, 1, "team_name", true, PSK_MAX_NAME_LEN);
	name = psk_text_arg(fcinfo, 2, "user_name", true, PSK_MAX_NAME_LEN);
	email = psk_text_arg(fcinfo, 3, "email", true, PSK_MAX_EMAIL_LEN);
	password = psk_text_arg(fcinfo, 4, "password", true, PSK_MAX_PASSWORD);
	pool =
		psk_pool_name(psk_text_arg(fcinfo, 6, "pool", false, PSK_MAX_NAME_LEN));
	check_email(email);
	check_password(password);

	values[0] = CStringGetTextDatum(team);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(email);
	values[3] = CStringGetTextDatum(password);
	values[4] = BoolGetDatum(is_admin);
	nulls[5] = pool == NULL;
	values[5] = pool ? CStringGetTextDatum(pool) : (Datum) 0;
	values[6] = Int32GetDatum(PSK_BCRYPT_COST);

	if (psk_execute(&insert_user, values, nulls, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_CONFLICT),
				 errmsg("a user with e-mail \"%s\" exists already", email)));
	user_changed(fcinfo, "USER_CREATED", bootstrap ? NULL : &admin,
				 psk_result(0, 1, &isnull), psk_result_cstring(0, 2));
	SPI_finish();
	return (Datum) 0;
}

/* A password in the statement stays out of the log, whatever fails. */
Datum
psk_create_user(PG_FUNCTION_ARGS)
{
	return psk_call_hiding_statement(psk_create_user_work, fcinfo);
}

/*
 * An optional argument that must be valid when given: NULL means "leave
 * unchanged", an empty or over-long value is invalid_input.
 */
static char *
optional_arg(FunctionCallInfo fcinfo, int argno, const char *name, int maxlen)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return psk_text_arg(fcinfo, argno, name, true, maxlen);
}

static int64
user_id_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT), errmsg("id is required")));
	return PG_GETARG_INT64(argno);
}

/*
 * Run a kept statement in a subtransaction.  False when it failed with
 * SQLSTATE expected (the subtransaction is rolled back); any other error
 * is raised again.  Turns the violation of a constraint that a concurrent
 * transaction made true under our feet into the contract's error.
 */
static bool
execute_unless(PskQuery *query, Datum *values, const bool *nulls, int expected)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool done = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		psk_execute(query, values, nulls, false);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		done = true;
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != expected)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return done;
}

/* The user row, locked: waits for reserves of that user in flight. */
static PskQuery lock_user = {
	"SELECT is_admin FROM psk.users WHERE id = $1 FOR UPDATE", 1, { INT8OID }
};

/* Every admin row, locked in id order. */
static PskQuery lock_admins = {
	"SELECT id FROM psk.users WHERE is_admin ORDER BY id FOR UPDATE",
	0,
	{ InvalidOid }
};

static PskQuery count_held = {
	"SELECT count(*)::int FROM psk.codes WHERE holder_id = $1", 1, { INT8OID }
};

/* Lock user id; not_found when there is none.  Returns whether an admin. */
static bool
lock_user_row(int64 id)
{
	Datum arg = Int64GetDatum(id);
	bool  isnull;

	if (psk_execute(&lock_user, &arg, NULL, false) == 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_FOUND),
						errmsg("unknown user id %lld", (long long) id)));
	return DatumGetBool(psk_result(0, 1, &isnull));
}

/*
 * Before a change that may take admin rights from user id: lock every admin
 * row, in id order, before the user's own (so that such changes run one
 * after the other, without deadlock); check that the actor is still an
 * admin and that, if user id is one, another admin remains.
 */
static void
keep_an_admin(int64 id, int64 actor_id)
{
	uint64 n = psk_execute(&lock_admins, NULL, NULL, false);
	bool   actor_found = false;
	bool   id_found = false;

	for (uint64 i = 0; i < n; i++)
	{
		bool  isnull;
		int64 admin_id = DatumGetInt64(psk_result(i, 1, &isnull));

		actor_found |= admin_id == actor_id;
		id_found |= admin_id == id;
	}
	if (!actor_found)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_NOT_ALLOWED),
			 errmsg(
				 "permission denied: the acting user is no longer an admin")));
	if (id_found && n == 1)
		ereport(ERROR, (errcode(ERRCODE_PSK_CONFLICT),
						errmsg("user %lld is the last admin", (long long) id)));
}

static int32
held_codes(int64 id)
{
	Datum arg = Int64GetDatum(id);
	bool  isnull;

	psk_execute(&count_held, &arg, NULL, false);
	return DatumGetInt32(psk_result(0, 1, &isnull));
}

/*
 * $2..$7: the new values (NULL: unchanged).  The note lists what changed
 * and nothing when nothing does; then neither the row nor the log is
 * written.  Returns the id, the note and whether the row was written.  A new
 * password also ends the user's sessions (and psk_update_user then clears
 * the account's failed logins: a reset unlocks it).
 */
static PskQuery update_user = {
	"WITH old AS ("
	"  SELECT id, team_name, user_name, email, is_admin, pool"
	"    FROM psk.users WHERE id = $1"
	"), diff AS ("
	"  SELECT id, email, concat_ws(', ',"
	"      CASE WHEN $2 <> team_name THEN format('team_name %s -> %s', team_name, $2) END,"
	"      CASE WHEN $3 <> user_name THEN format('user_name %s -> %s', user_name, $3) END,"
	"      CASE WHEN lower($4) <> email THEN format('email %s -> %s', email, lower($4)) END,"
	"      CASE WHEN $5 IS NOT NULL THEN 'password changed' END,"
	"      CASE WHEN $6 <> is_admin THEN format('is_admin %s -> %s', is_admin::text, $6::text) END,"
	"      CASE WHEN $7 <> pool THEN format('pool %s -> %s', pool, $7) END) AS note"
	"    FROM old"
	"), updated AS ("
	"  UPDATE psk.users u"
	"     SET team_name = COALESCE($2, u.team_name),"
	"         user_name = COALESCE($3, u.user_name),"
	"         email = COALESCE(lower($4), u.email),"
	"         password_hash = CASE WHEN $5 IS NULL THEN u.password_hash"
	"                         ELSE psk.crypt($5, psk.gen_salt('bf', $8)) END,"
	"         is_admin = COALESCE($6, u.is_admin),"
	"         pool = COALESCE($7, u.pool),"
	"         updated_at = now()"
	"    FROM diff WHERE u.id = diff.id AND diff.note <> ''"
	"  RETURNING u.id"
	"), ended AS ("
	"  UPDATE psk.sessions SET revoked_at = statement_timestamp()"
	"   WHERE $5 IS NOT NULL AND user_id = $1 AND revoked_at IS NULL"
	"     AND expires_at > statement_timestamp()"
	")"
	"SELECT o.id, d.note, u.id IS NOT NULL"
	"  FROM old o JOIN diff d ON d.id = o.id LEFT JOIN updated u ON u.id = o.id",
	8,
	{ INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, INT4OID }
};

/*
 * psk_update_user(admin_email, id, team_name, user_name, email, password,
 *				   is_admin, pool): NULL leaves a field as it is.  The pool
 *				   changes only when given, never with the team.
 */
static Datum
psk_update_user_work(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	int64		id;
	char	   *team;
	char	   *name;
	char	   *email;
	char	   *password;
	const char *pool;
	bool		demote = !PG_ARGISNULL(6) && !PG_GETARG_BOOL(6);
	bool		promote = !PG_ARGISNULL(6) && PG_GETARG_BOOL(6);
	PskUser		admin;
	Datum		values[8];
	bool		nulls[8] = { 0 };
	bool		isnull;
	bool		found;

	psk_require_writable("psk_update_user");

	/* who may call it first (strings below live until SPI_finish) */
	SPI_connect();
	psk_require_admin(admin_email, &admin);

	/* then the arguments */
	id = user_id_arg(fcinfo, 1);
	team = optional_arg(fcinfo, 2, "team_name", PSK_MAX_NAME_LEN);
	name = optional_arg(fcinfo, 3, "user_name", PSK_MAX_NAME_LEN);
	email = optional_arg(fcinfo, 4, "email", PSK_MAX_EMAIL_LEN);
	password = optional_arg(fcinfo, 5, "password", PSK_MAX_PASSWORD);
	pool = psk_pool_name(optional_arg(fcinfo, 7, "pool", PSK_MAX_NAME_LEN));
	if (email)
		check_email(email);
	if (password)
		check_password(password);

	if (demote)
		keep_an_admin(id, admin.id);

	/* Promoting: an admin cannot release or confirm, so it holds nothing. */
	if (!lock_user_row(id) && promote && held_codes(id) > 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_CONFLICT),
			 errmsg("user %lld still holds codes and cannot become an admin",
					(long long) id)));

	values[0] = Int64GetDatum(id);
	nulls[1] = team == NULL;
	values[1] = team ? CStringGetTextDatum(team) : (Datum) 0;
	nulls[2] = name == NULL;
	values[2] = name ? CStringGetTextDatum(name) : (Datum) 0;
	nulls[3] = email == NULL;
	values[3] = email ? CStringGetTextDatum(email) : (Datum) 0;
	nulls[4] = password == NULL;
	values[4] = password ? CStringGetTextDatum(password) : (Datum) 0;
	nulls[5] = PG_ARGISNULL(6);
	values[5] = PG_ARGISNULL(6) ? (Datum) 0 : PG_GETARG_DATUM(6);
	nulls[6] = pool == NULL;
	values[6] = pool ? CStringGetTextDatum(pool) : (Datum) 0;
	values[7] = Int32GetDatum(PSK_BCRYPT_COST);

	/* The e-mail may have been taken since we looked: still a conflict. */
	if (!execute_unless(&update_user, values, nulls, ERRCODE_UNIQUE_VIOLATION))
		ereport(ERROR,
				(errcode(ERRCODE_PSK_CONFLICT),
				 errmsg("a user with e-mail \"%s\" exists already", email)));
	psk_result_set(fcinfo);
	found = SPI_processed > 0;
	if (found && DatumGetBool(psk_result(0, 3, &isnull)))
		user_changed(fcinfo, "USER_UPDATED", &admin, psk_result(0, 1, &isnull),
					 psk_result_cstring(0, 2));
	else if (found)
	{
		Datum id = psk_result(0, 1, &isnull);

		psk_return_row(fcinfo, &id, &isnull);
	}
	if (found && password != NULL)
		psk_clear_login_failures(id);
	SPI_finish();
	return (Datum) 0;
}

/* A password in the statement stays out of the log, whatever fails. */
Datum
psk_update_user(PG_FUNCTION_ARGS)
{
	return psk_call_hiding_statement(psk_update_user_work, fcinfo);
}

/* The user gone, and the note of its audit row. */
static PskQuery delete_user = {
	"DELETE FROM psk.users WHERE id = $1"
	" RETURNING id,"
	"  format('deleted %s (team %s, pool %s%s)', email, team_name, pool,"
	"         CASE WHEN is_admin THEN ', admin' ELSE '' END)",
	1,
	{ INT8OID }
};

/*
 * psk_delete_user(admin_email, id): refused while the user holds codes or
 * is the last admin.  Its sessions go with it (ON DELETE CASCADE); its audit
 * rows stay, they carry names.
 */
Datum
psk_delete_user(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	int64	id;
	PskUser admin;
	int32	held;
	Datum	value;
	bool	isnull;

	psk_require_writable("psk_delete_user");
	SPI_connect();
	/* who may call it first, then the arguments */
	psk_require_admin(admin_email, &admin);
	id = user_id_arg(fcinfo, 1);

	/*
	 * The user's row lock (FOR UPDATE) waits for the reserves of that user
	 * in flight, which hold KEY SHARE on it, and makes those that come later
	 * wait and then find no user: what we count next is all there is.
	 */
	keep_an_admin(id, admin.id);
	lock_user_row(id);

	held = held_codes(id);
	if (held > 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_CONFLICT),
						errmsg("user %lld still holds %d code%s",
							   (long long) id, held, held == 1 ? "" : "s")));

	value = Int64GetDatum(id);

	/*
	 * A holder our snapshot could not see (REPEATABLE READ): still held, as
	 * the trigger on psk.users finds in a fresh snapshot (holders.c).
	 */
	if (!execute_unless(&delete_user, &value, NULL,
						ERRCODE_FOREIGN_KEY_VIOLATION))
		ereport(ERROR, (errcode(ERRCODE_PSK_CONFLICT),
						errmsg("user %lld still holds codes", (long long) id)));
	psk_result_set(fcinfo);
	if (SPI_processed > 0)
		user_changed(fcinfo, "USER_DELETED", &admin, psk_result(0, 1, &isnull),
					 psk_result_cstring(0, 2));
	SPI_finish();
	return (Datum) 0;
}

static PskQuery list_users = {
	"SELECT u.id, u.user_name, u.team_name, u.email, u.is_admin, u.pool,"
	"       count(c.id)::int,"
	"       COALESCE(array_agg(c.code::text ORDER BY c.code) FILTER (WHERE c.id IS NOT NULL),"
	"                '{}')"
	"  FROM psk.users u"
	"  LEFT JOIN psk.codes c ON c.holder_id = u.id"
	"       AND c.status IN ('RESERVED', 'IN_USE')"
	" GROUP BY u.id ORDER BY u.id",
	0,
	{ InvalidOid }
};

/* psk_users(): every user, with the codes each holds. */
Datum
psk_users(PG_FUNCTION_ARGS)
{
	SPI_connect();
	psk_execute(&list_users, NULL, NULL, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}
