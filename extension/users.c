/*
 * users.c
 *		Accounts: psk_create_user (with the first-admin bootstrap rule).
 */
#include "psk.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(psk_create_user);

/* Cost of the bcrypt hashes we make (2^10 rounds). */
#define PSK_BCRYPT_COST		10
#define PSK_MIN_PASSWORD	8
#define PSK_MAX_PASSWORD	72		/* bcrypt ignores bytes past 72 */

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
	ereport(ERROR,
			(errcode(ERRCODE_PSK_INVALID_INPUT),
			 errmsg("\"%s\" is not an e-mail address", email)));
}

static void
check_password(const char *password)
{
	size_t		len = strlen(password);

	if (len < PSK_MIN_PASSWORD || len > PSK_MAX_PASSWORD)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_INVALID_INPUT),
				 errmsg("password must be %d to %d bytes long",
						PSK_MIN_PASSWORD, PSK_MAX_PASSWORD)));
}

static PskQuery lock_users = {
	"LOCK TABLE psk.users IN SHARE ROW EXCLUSIVE MODE", 0, {InvalidOid}
};

static PskQuery any_admin = {
	"SELECT 1 FROM psk.users WHERE is_admin LIMIT 1", 0, {InvalidOid}
};

/* $7..$9: the actor (NULL when the first admin makes itself). */
static PskQuery insert_user = {
	"WITH created AS ("
	"  INSERT INTO psk.users (team_name, user_name, email, password_hash,"
	"                         is_admin, pool)"
	"  VALUES ($1, $2, lower($3), psk.crypt($4, psk.gen_salt('bf', $10)), $5,"
	"          COALESCE($6, psk.pool_for_team($1)))"
	"  ON CONFLICT (email) DO NOTHING"
	"  RETURNING id, email, team_name, pool, is_admin"
	"), logged AS ("
	"  INSERT INTO psk.audit_log (action, user_id, user_name, contact_email,"
	"                             subject_user_id, note)"
	"  SELECT 'USER_CREATED', $7, $8, $9, id,"
	"         format('created %s (team %s, pool %s%s)', email, team_name, pool,"
	"                CASE WHEN is_admin THEN ', admin' ELSE '' END)"
	"    FROM created"
	")"
	"SELECT id FROM created",
	10, {TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID,
		INT8OID, TEXTOID, TEXTOID, INT4OID}
};

/*
 * psk_create_user(admin_email, team_name, user_name, email, password,
 *				   is_admin, pool)
 */
Datum
psk_create_user(PG_FUNCTION_ARGS)
{
	char	   *admin_email = psk_text_arg(fcinfo, 0, "admin_email", false, PSK_MAX_EMAIL_LEN);
	char	   *team = psk_text_arg(fcinfo, 1, "team_name", true, PSK_MAX_NAME_LEN);
	char	   *name = psk_text_arg(fcinfo, 2, "user_name", true, PSK_MAX_NAME_LEN);
	char	   *email = psk_text_arg(fcinfo, 3, "email", true, PSK_MAX_EMAIL_LEN);
	char	   *password = psk_text_arg(fcinfo, 4, "password", true, PSK_MAX_PASSWORD);
	bool		is_admin = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
	const char *pool = psk_pool_name(psk_text_arg(fcinfo, 6, "pool", false, PSK_MAX_NAME_LEN));
	PskUser		admin;
	Datum		values[10];
	bool		nulls[10] = {0};

	check_email(email);
	check_password(password);

	SPI_connect();
	if (admin_email == NULL)
	{
		/* Bootstrap: only an admin, only while there is none. */
		if (!is_admin)
			ereport(ERROR,
					(errcode(ERRCODE_PSK_INVALID_INPUT),
					 errmsg("admin_email is required"),
					 errhint("Without admin_email only the first admin can be created.")));
		psk_execute(&lock_users, NULL, NULL, false);
		if (psk_execute(&any_admin, NULL, NULL, false) > 0)
			ereport(ERROR,
					(errcode(ERRCODE_PSK_NOT_ALLOWED),
					 errmsg("an admin exists already: admin_email is required")));
		nulls[6] = nulls[7] = nulls[8] = true;
	}
	else
	{
		psk_require_admin(admin_email, &admin);
		values[6] = Int64GetDatum(admin.id);
		values[7] = CStringGetTextDatum(admin.user_name);
		values[8] = CStringGetTextDatum(admin.email);
	}

	values[0] = CStringGetTextDatum(team);
	values[1] = CStringGetTextDatum(name);
	values[2] = CStringGetTextDatum(email);
	values[3] = CStringGetTextDatum(password);
	values[4] = BoolGetDatum(is_admin);
	nulls[5] = pool == NULL;
	values[5] = pool ? CStringGetTextDatum(pool) : (Datum) 0;
	values[9] = Int32GetDatum(PSK_BCRYPT_COST);

	if (psk_execute(&insert_user, values, nulls, false) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_CONFLICT),
				 errmsg("a user with e-mail \"%s\" exists already", email)));
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}
