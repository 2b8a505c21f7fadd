/*
 * actor.c
 *		The acting user of a call, named by e-mail, and the checks of who
 *		may call what.
 */
#include "psk.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

static PskQuery find_user = {
	"SELECT id, is_admin, email, user_name, pool FROM psk.users"
	" WHERE email = $1",
	1, {TEXTOID}, true
};

/* Must be called inside SPI; strings are allocated outside it. */
bool
psk_find_user(const char *email, PskUser *user)
{
	Datum		arg;
	bool		isnull;

	if (email == NULL)
		return false;
	arg = CStringGetTextDatum(psk_lower(email));
	if (psk_execute(&find_user, &arg, NULL, false) == 0)
		return false;
	user->id = DatumGetInt64(psk_result(0, 1, &isnull));
	user->is_admin = DatumGetBool(psk_result(0, 2, &isnull));
	user->email = psk_result_cstring(0, 3);
	user->user_name = psk_result_cstring(0, 4);
	user->pool = psk_result_cstring(0, 5);
	return true;
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
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED),
				 errmsg("unknown user \"%s\"", email ? email : "")));
	if (user->is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED),
				 errmsg("users only: \"%s\" is an admin", user->email)));
}

void
psk_require_admin(const char *email, PskUser *user)
{
	if (!psk_find_user(email, user) || !user->is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_PSK_NOT_ALLOWED),
				 errmsg("permission denied: \"%s\" is not an admin",
						email ? email : "")));
}
