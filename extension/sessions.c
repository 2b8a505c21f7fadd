/*
 * sessions.c
 *		Logging in and out: psk_login, psk_session_user and psk_logout, and
 *		psk_session_find, the session lookup of the HTTP layer.
 *
 * A session token is 32 bytes from pg_strong_random, handed to the caller
 * once as base64url (43 characters, no padding).  psk.sessions keeps only
 * the SHA-256 of the token, so a copy of the table lets nobody in, and a
 * token is resolved by one probe of the table's primary key.
 *
 * The brute-force guard counts failed logins per lower-cased e-mail, whether
 * or not an account has it: a wrong e-mail and a wrong password take the
 * same path (bcrypt runs against a dummy hash of the same cost when there is
 * no account) and raise the same error.  Failures are committed by a
 * background worker (login_guard.c) so that they survive the rollback of
 * the failing call.
 */
#include "psk.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "login_guard.h"

PG_FUNCTION_INFO_V1(psk_login);
PG_FUNCTION_INFO_V1(psk_session_user);
PG_FUNCTION_INFO_V1(psk_logout);
PG_FUNCTION_INFO_V1(psk_login_dummy_hash);

#define TOKEN_BYTES 32
#define TOKEN_CHARS 43 /* base64url of 32 bytes, without padding */

static const char base64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
encode_token(const uint8 *raw, char *out)
{
	uint32 bits = 0;
	int	   nbits = 0;
	char  *p = out;

	for (int i = 0; i < TOKEN_BYTES; i++)
	{
		bits = (bits << 8) | raw[i];
		nbits += 8;
		while (nbits >= 6)
		{
			nbits -= 6;
			*p++ = base64url[(bits >> nbits) & 0x3f];
		}
	}
	if (nbits > 0)
		*p++ = base64url[(bits << (6 - nbits)) & 0x3f];
	*p = '\0';
	Assert(p - out == TOKEN_CHARS);
}

/* Could len bytes at token be a token we made?  Cheap and in constant time. */
static bool
token_is_well_formed(const char *token, size_t len)
{
	bool ok = (len == TOKEN_CHARS);

	for (size_t i = 0; ok && i < len; i++)
	{
		char c = token[i];

		ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			 (c >= '0' && c <= '9') || c == '-' || c == '_';
	}
	return ok;
}

/* SHA-256 of the token's text, as the bytea stored in psk.sessions. */
static Datum
token_hash(const char *token, size_t len)
{
	bytea			  *hash = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) token, len) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(hash),
							PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "psk: could not compute SHA-256: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	SET_VARSIZE(hash, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return PointerGetDatum(hash);
}

/*
 * The hash of a token, or false when it cannot be one of ours (NULL, the
 * wrong length or alphabet): such a token is simply unknown.
 */
static bool
token_text_hash(text *token, Datum *hash)
{
	if (token == NULL ||
		!token_is_well_formed(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token)))
		return false;
	*hash = token_hash(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token));
	return true;
}

static bool
token_arg(FunctionCallInfo fcinfo, Datum *hash)
{
	return token_text_hash(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), hash);
}

/*
 * Serialise the logins of one e-mail (so that concurrent wrong guesses
 * cannot all slip under the limit) on its row of psk.login_slots, which no
 * caller can lock (an advisory lock, any role could), and return the e-mail
 * lower-cased as the database lower-cases the stored ones.
 */
static PskQuery lock_login = {
	"SELECT e FROM pg_catalog.lower($1) e, psk.login_slots s"
	" WHERE s.slot = pg_catalog.hashtext(e) & 1023"
	" FOR NO KEY UPDATE OF s",
	1,
	{ TEXTOID }
};

/*
 * The same in a schema of 0.2.1 or before, which this library serves until
 * ALTER EXTENSION psk UPDATE: the advisory lock those versions took.
 */
static PskQuery lock_login_advisory = {
	"SELECT e, pg_catalog.pg_advisory_xact_lock(1347636993, pg_catalog.hashtext(e))"
	"  FROM pg_catalog.lower($1) e",
	1,
	{ TEXTOID }
};

static bool
have_login_slots(void)
{
	return OidIsValid(
		get_relname_relid("login_slots", get_namespace_oid("psk", false)));
}

/*
 * The e-mail's failures within the window, at most the limit, and the
 * seconds until the oldest of them leaves the window.
 */
static PskQuery recent_failures = {
	"SELECT pg_catalog.count(*)::int,"
	"       pg_catalog.ceil(extract(epoch FROM pg_catalog.min(failed_at)"
	"           + $2 * interval '1 second' - pg_catalog.statement_timestamp()))::int"
	"  FROM (SELECT failed_at FROM psk.login_failures"
	"         WHERE email = $1"
	"           AND failed_at > pg_catalog.statement_timestamp() - $2 * interval '1 second'"
	"         ORDER BY failed_at DESC LIMIT $3) f",
	3,
	{ TEXTOID, INT4OID, INT4OID }
};

static PskQuery make_hash = { "SELECT psk.crypt($1, psk.gen_salt('bf', $2))",
							  2,
							  { TEXTOID, INT4OID } };

/*
 * bcrypt of a password nobody has (random, forgotten at once) at
 * PSK_BCRYPT_COST, made once per backend: checked against when the e-mail
 * has no account, so that the answer takes as long as for a wrong password.
 * Inside SPI.
 */
static const char *
dummy_hash(void)
{
	static char *hash = NULL;

	if (hash == NULL)
	{
		uint8 raw[TOKEN_BYTES];
		char  password[TOKEN_CHARS + 1];
		Datum values[2];

		if (!pg_strong_random(raw, sizeof(raw)))
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
							errmsg("could not generate a random password")));
		encode_token(raw, password);
		values[0] = CStringGetTextDatum(password);
		values[1] = Int32GetDatum(PSK_BCRYPT_COST);
		psk_execute(&make_hash, values, NULL, true);
		hash = MemoryContextStrdup(TopMemoryContext,
								   SPI_getvalue(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1));
		explicit_bzero(password, sizeof(password));
	}
	return hash;
}

/* psk.login_dummy_hash(): the dummy hash of this backend, for the tests. */
Datum
psk_login_dummy_hash(PG_FUNCTION_ARGS)
{
	const char *hash;

	SPI_connect();
	hash = dummy_hash();
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(hash));
}

static PskQuery find_account = {
	"SELECT id, password_hash FROM psk.users WHERE email = $1", 1, { TEXTOID }
};

static PskQuery check_password = { "SELECT psk.crypt($1, $2) = $2",
								   2,
								   { TEXTOID, TEXTOID } };

/*
 * A good login clears the e-mail's failures, sweeps a few ended sessions
 * and starts a new one.
 */
static PskQuery start_session = {
	"WITH cleared AS ("
	"  DELETE FROM psk.login_failures WHERE email = $1"
	"), swept AS ("
	"  DELETE FROM psk.sessions WHERE token_hash = ANY (ARRAY("
	"    SELECT token_hash FROM psk.sessions"
	"     WHERE expires_at <= pg_catalog.statement_timestamp()"
	"     ORDER BY expires_at LIMIT 100 FOR UPDATE SKIP LOCKED))"
	")"
	"INSERT INTO psk.sessions (token_hash, user_id, created_at, expires_at)"
	"VALUES ($2, $3, pg_catalog.statement_timestamp(),"
	"        pg_catalog.statement_timestamp() + $4 * interval '1 second')",
	4,
	{ TEXTOID, BYTEAOID, INT8OID, INT4OID }
};

/*
 * psk_execute for a read that must see what other transactions committed
 * until now, whatever our isolation level: the failures are committed by
 * the guard's workers while our transaction runs.
 */
static uint64
execute_latest(PskQuery *query, Datum *values)
{
	int rc;

	if (query->plan == NULL)
	{
		SPIPlanPtr plan =
			SPI_prepare(query->sql, query->nargs, query->argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "psk: could not prepare: %s",
				 SPI_result_code_string(SPI_result));
		query->plan = plan;
	}
	rc = SPI_execute_snapshot(query->plan, values, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 0);
	if (rc < 0)
		elog(ERROR, "psk: SPI_execute_snapshot failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * psk_login(email, password) -> (access_token, token_type, expires_in)
 *
 * Its errors do not log the statement (errhidestmt): a caller that passes
 * the password as a literal would otherwise leave it in the server log.
 */
static Datum
psk_login_work(PG_FUNCTION_ARGS)
{
	/* spaces around the e-mail are not part of it, as the old service had it */
	char *email = psk_trim_space(
		psk_text_arg(fcinfo, 0, "email", true, PSK_MAX_EMAIL_LEN));
	char *password =
		psk_text_arg(fcinfo, 1, "password", true, PSK_MAX_TEXT_LEN);
	char		  *key;
	Datum		   values[4];
	bool		   isnull;
	int32		   failures;
	PskLoginGuard *guard;
	volatile bool  ok = false;
	volatile int64 user_id = 0;
	uint8		   raw[TOKEN_BYTES];
	char		   token[TOKEN_CHARS + 1];
	ReturnSetInfo *rsinfo;
	Datum		   result[3];
	bool		   result_nulls[3] = { 0 };

	SPI_connect();

	values[0] = CStringGetTextDatum(email);
	psk_execute(have_login_slots() ? &lock_login : &lock_login_advisory, values,
				NULL, false);
	key = psk_result_cstring(0, 1);

	/* Locked out: refused before the password is looked at. */
	values[0] = CStringGetTextDatum(key);
	values[1] = Int32GetDatum(psk_login_lockout);
	values[2] = Int32GetDatum(psk_login_max_failures);
	execute_latest(&recent_failures, values);
	failures = DatumGetInt32(psk_result(0, 1, &isnull));
	if (failures >= psk_login_max_failures)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_LOCKED_OUT),
			 errmsg(
				 "too many failed logins for this e-mail: try again in %d seconds",
				 Max(DatumGetInt32(psk_result(0, 2, &isnull)), 1)),
			 errhidestmt(true)));

	/* No worker to count a failure: refused too (locked_out). */
	guard = psk_guard_start(key);
	PG_TRY();
	{
		const char *hash = dummy_hash();

		if (psk_execute(&find_account, values, NULL, false) > 0)
		{
			user_id = DatumGetInt64(psk_result(0, 1, &isnull));
			hash = psk_result_cstring(0, 2);
		}
		values[0] = CStringGetTextDatum(password);
		values[1] = CStringGetTextDatum(hash);
		psk_execute(&check_password, values, NULL, false);
		ok = DatumGetBool(psk_result(0, 1, &isnull)) && user_id != 0 &&
			 strlen(password) <= PSK_MAX_PASSWORD;
	}
	PG_CATCH();
	{
		psk_guard_abandon(guard);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (!psk_guard_finish(guard, !ok))
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_LOCKED_OUT),
			 errmsg(
				 "login refused: failed logins cannot be counted right now, try again later"),
			 errhidestmt(true)));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_UNAUTHORIZED),
				 errmsg("invalid e-mail or password"), errhidestmt(true)));

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("could not generate a random session token")));
	encode_token(raw, token);
	explicit_bzero(raw, sizeof(raw));

	values[0] = CStringGetTextDatum(key);
	values[1] = token_hash(token, TOKEN_CHARS);
	values[2] = Int64GetDatum(user_id);
	values[3] = Int32GetDatum(psk_session_ttl);
	psk_execute(&start_session, values, NULL, false);
	SPI_finish();

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	result[0] = CStringGetTextDatum(token);
	result[1] = CStringGetTextDatum("bearer");
	result[2] = Int32GetDatum(psk_session_ttl);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, result,
						 result_nulls);
	return (Datum) 0;
}

/* A password in the statement stays out of the log, whatever fails. */
Datum
psk_login(PG_FUNCTION_ARGS)
{
	return psk_call_hiding_statement(psk_login_work, fcinfo);
}

/* The user of a live session: one probe of each primary key. */
/*
 * The user of a live session (token may be NULL): unknown, malformed,
 * expired and revoked tokens are all unauthorized, with one message.
 */
void
psk_session_find(text *token, PskSession *session)
{
	Datum	hash;
	PskUser user;

	if (!token_text_hash(token, &hash) || !psk_lookup_session_user(hash, &user))
		ereport(ERROR, (errcode(ERRCODE_PSK_UNAUTHORIZED),
						errmsg("invalid or expired session token"),
						errhidestmt(true)));
	session->id = user.id;
	session->user_name = user.user_name;
	session->team_name = user.team_name;
	session->email = user.email;
	session->is_admin = user.is_admin;
	session->pool = user.pool;
}

/*
 * psk_session_user(access_token)
 */
Datum
psk_session_user(PG_FUNCTION_ARGS)
{
	PskSession	   session;
	ReturnSetInfo *rsinfo;
	Datum		   values[6];
	bool		   nulls[6] = { 0 };

	psk_session_find(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), &session);

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	values[0] = Int64GetDatum(session.id);
	values[1] = CStringGetTextDatum(session.user_name);
	values[2] = CStringGetTextDatum(session.team_name);
	values[3] = CStringGetTextDatum(session.email);
	values[4] = BoolGetDatum(session.is_admin);
	values[5] = CStringGetTextDatum(session.pool);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

static PskQuery revoke_session = {
	"UPDATE psk.sessions SET revoked_at = pg_catalog.statement_timestamp()"
	" WHERE token_hash = $1 AND revoked_at IS NULL"
	"   AND expires_at > pg_catalog.statement_timestamp()"
	" RETURNING true",
	1,
	{ BYTEAOID }
};

static PskQuery not_revoked = { "SELECT false", 0, { InvalidOid } };

/*
 * psk_logout(access_token) -> revoked: true when a live session ended now;
 * false for a token that is unknown, malformed or ended already.
 */
Datum
psk_logout(PG_FUNCTION_ARGS)
{
	Datum hash;

	SPI_connect();
	if (!token_arg(fcinfo, &hash) ||
		psk_execute(&revoke_session, &hash, NULL, false) == 0)
		psk_execute(&not_revoked, NULL, NULL, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}
