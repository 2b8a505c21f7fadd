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
 * The brute-force guard counts failed logins per account, and per e-mail
 * for an e-mail without one: a wrong e-mail and a wrong password take the
 * same path (bcrypt runs against a dummy hash of the same cost when there is
 * no account) and raise the same error.  No typed text is stored: a
 * failure is kept against the account's id, or against a keyed hash of the
 * e-mail (a password typed into the e-mail field is not readable from
 * psk.login_failures).  Failures are committed by the login guard
 * (login_guard.c) so that they survive the rollback of the failing call.
 */
#include "psk.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
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

/* Does schema psk have this table (it depends on the schema's version)? */
static bool
have_table(const char *name)
{
	return OidIsValid(get_relname_relid(name, get_namespace_oid("psk", false)));
}

/*
 * The key of the keyed hash that stands for an e-mail without an account in
 * psk.login_failures, and the e-mail as hashed: trimmed and lower-cased.
 */
static PskQuery login_key = {
	"SELECT k.key, pg_catalog.lower(pg_catalog.btrim($1)) FROM psk.login_key k",
	1,
	{ TEXTOID }
};

/* HMAC-SHA256 of the e-mail under psk.login_key: no typed text is kept. */
static void
email_hmac(const char *email, uint8 *out)
{
	Datum		 arg = CStringGetTextDatum(email);
	bool		 isnull;
	bytea		*key;
	char		*message;
	pg_hmac_ctx *ctx;

	if (psk_execute(&login_key, &arg, NULL, true) != 1)
		elog(ERROR, "psk: psk.login_key does not hold one key");
	key = DatumGetByteaPP(psk_result(0, 1, &isnull));
	message = psk_result_cstring(0, 2);
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL ||
		pg_hmac_init(ctx, (uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) <
			0 ||
		pg_hmac_update(ctx, (uint8 *) message, strlen(message)) < 0 ||
		pg_hmac_final(ctx, out, PSK_LOGIN_HMAC_LEN) < 0)
		elog(ERROR, "psk: could not compute HMAC-SHA256: %s",
			 ctx ? pg_hmac_error(ctx) : "out of memory");
	pg_hmac_free(ctx);
}

/*
 * The failures within the window of what a login is counted against (the
 * account, the keyed hash of an e-mail without one, or before 0.3.0 the
 * e-mail), at most the limit, and the seconds until the oldest of them
 * leaves the window.
 */
#define RECENT_FAILURES(cond)                                                                \
	"SELECT pg_catalog.count(*)::int,"                                                       \
	"       pg_catalog.ceil(extract(epoch FROM pg_catalog.min(failed_at)"                    \
	"           + $2 * interval '1 second' - pg_catalog.statement_timestamp()))::int"        \
	"  FROM (SELECT failed_at FROM psk.login_failures"                                       \
	"         WHERE " cond                                                                   \
	"           AND failed_at > pg_catalog.statement_timestamp() - $2 * interval '1 second'" \
	"         ORDER BY failed_at DESC LIMIT $3) f"

static PskQuery recent_by_user = { RECENT_FAILURES("user_id = $1"),
								   3,
								   { INT8OID, INT4OID, INT4OID } };
static PskQuery recent_by_hmac = { RECENT_FAILURES("email_hmac = $1"),
								   3,
								   { BYTEAOID, INT4OID, INT4OID } };
static PskQuery recent_by_email = { RECENT_FAILURES("email = $1"),
									3,
									{ TEXTOID, INT4OID, INT4OID } };

/* A good login, or a new password, clears the account's failures. */
static PskQuery clear_by_user = {
	"DELETE FROM psk.login_failures WHERE user_id = $1", 1, { INT8OID }
};
static PskQuery clear_by_email = {
	"DELETE FROM psk.login_failures"
	" WHERE email = (SELECT email FROM psk.users WHERE id = $1)",
	1,
	{ INT8OID }
};

void
psk_clear_login_failures(int64 user_id)
{
	Datum arg = Int64GetDatum(user_id);

	psk_execute(have_table("login_key") ? &clear_by_user : &clear_by_email,
				&arg, NULL, false);
}

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

/* A good login sweeps a few ended sessions and starts a new one. */
static PskQuery start_session = {
	"WITH swept AS ("
	"  DELETE FROM psk.sessions WHERE token_hash = ANY (ARRAY("
	"    SELECT token_hash FROM psk.sessions"
	"     WHERE expires_at <= pg_catalog.statement_timestamp()"
	"     ORDER BY expires_at LIMIT 100 FOR UPDATE SKIP LOCKED))"
	")"
	"INSERT INTO psk.sessions (token_hash, user_id, created_at, expires_at)"
	"VALUES ($1, $2, pg_catalog.statement_timestamp(),"
	"        pg_catalog.statement_timestamp() + $3 * interval '1 second')",
	3,
	{ BYTEAOID, INT8OID, INT4OID }
};

/*
 * psk_execute for a read that must see what other transactions committed
 * until now, whatever our isolation level: the failures are committed by
 * the guard while our transaction runs.
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
 * What a failed login of this e-mail is counted against (login_guard.h),
 * and the query of its recent failures, with values[0] set for it.
 */
static PskQuery *
failure_key(const char *email, const char *lowered, int64 user_id,
			PskLoginKey *key, Datum *values)
{
	memset(key, 0, sizeof(PskLoginKey));
	if (!have_table("login_key"))
	{
		key->kind = PSK_LOGIN_LEGACY;
		strlcpy(key->email, lowered, sizeof(key->email));
		values[0] = CStringGetTextDatum(lowered);
		return &recent_by_email;
	}
	if (user_id != 0)
	{
		key->kind = PSK_LOGIN_USER;
		key->user_id = user_id;
		values[0] = Int64GetDatum(user_id);
		return &recent_by_user;
	}
	key->kind = PSK_LOGIN_UNKNOWN;
	email_hmac(email, key->hmac);
	{
		bytea *h = palloc(VARHDRSZ + PSK_LOGIN_HMAC_LEN);

		SET_VARSIZE(h, VARHDRSZ + PSK_LOGIN_HMAC_LEN);
		memcpy(VARDATA(h), key->hmac, PSK_LOGIN_HMAC_LEN);
		values[0] = PointerGetDatum(h);
	}
	return &recent_by_hmac;
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
	char		  *lowered;
	const char	  *hash = NULL;
	PskLoginKey	   key;
	PskQuery	  *recent;
	Datum		   values[4];
	bool		   isnull;
	int32		   failures;
	int64		   user_id = 0;
	volatile bool  ok = false;
	uint8		   raw[TOKEN_BYTES];
	char		   token[TOKEN_CHARS + 1];
	ReturnSetInfo *rsinfo;
	Datum		   result[3];
	bool		   result_nulls[3] = { 0 };

	/* On a hot standby, or read-only: refused before any worker is asked. */
	psk_require_writable("psk_login");
	SPI_connect();

	values[0] = CStringGetTextDatum(email);
	psk_execute(have_table("login_slots") ? &lock_login : &lock_login_advisory,
				values, NULL, false);
	lowered = psk_result_cstring(0, 1);

	values[0] = CStringGetTextDatum(lowered);
	if (psk_execute(&find_account, values, NULL, false) > 0)
	{
		user_id = DatumGetInt64(psk_result(0, 1, &isnull));
		hash = psk_result_cstring(0, 2);
	}

	/* Locked out: refused before the password is looked at. */
	recent = failure_key(email, lowered, user_id, &key, values);
	values[1] = Int32GetDatum(psk_login_lockout);
	values[2] = Int32GetDatum(psk_login_max_failures);
	execute_latest(recent, values);
	failures = DatumGetInt32(psk_result(0, 1, &isnull));
	if (failures >= psk_login_max_failures)
		ereport(
			ERROR,
			(errcode(ERRCODE_PSK_LOCKED_OUT),
			 errmsg(
				 "too many failed logins for this e-mail: try again in %d seconds",
				 Max(DatumGetInt32(psk_result(0, 2, &isnull)), 1)),
			 errhidestmt(true)));

	/*
	 * No guard to count a failure: refused before the password is looked
	 * at.  A caller gone meanwhile (its statement cancelled) is stopped
	 * before bcrypt runs, or after it, before anything is recorded: it
	 * learns nothing either way.
	 */
	PG_TRY();
	{
		psk_guard_start(&key);
		CHECK_FOR_INTERRUPTS();
		if (hash == NULL)
			hash = dummy_hash();
		values[0] = CStringGetTextDatum(password);
		values[1] = CStringGetTextDatum(hash);
		psk_execute(&check_password, values, NULL, false);
		ok = DatumGetBool(psk_result(0, 1, &isnull)) && user_id != 0 &&
			 strlen(password) <= PSK_MAX_PASSWORD;
		CHECK_FOR_INTERRUPTS();
	}
	PG_CATCH();
	{
		psk_guard_abandon();
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (!psk_guard_finish(!ok))
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

	psk_clear_login_failures(user_id);
	values[0] = token_hash(token, TOKEN_CHARS);
	values[1] = Int64GetDatum(user_id);
	values[2] = Int32GetDatum(psk_session_ttl);
	psk_execute(&start_session, values, NULL, false);
	SPI_finish();

	psk_materialize(fcinfo);
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

/*
 * The user of a live session (token may be NULL), with one probe of each
 * primary key: unknown, malformed, expired and revoked tokens are all
 * unauthorized, with one message.
 */
void
psk_session_find(text *token, PskUser *user)
{
	Datum hash;

	if (!token_text_hash(token, &hash) || !psk_lookup_session_user(hash, user))
		ereport(ERROR, (errcode(ERRCODE_PSK_UNAUTHORIZED),
						errmsg("invalid or expired session token"),
						errhidestmt(true)));
}

/*
 * psk_session_user(access_token)
 */
Datum
psk_session_user(PG_FUNCTION_ARGS)
{
	PskUser		   session;
	ReturnSetInfo *rsinfo;
	Datum		   values[6];
	bool		   nulls[6] = { 0 };

	psk_session_find(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0), &session);

	psk_materialize(fcinfo);
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

	psk_require_writable("psk_logout");
	SPI_connect();
	if (!token_arg(fcinfo, &hash) ||
		psk_execute(&revoke_session, &hash, NULL, false) == 0)
		psk_execute(&not_revoked, NULL, NULL, true);
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}
