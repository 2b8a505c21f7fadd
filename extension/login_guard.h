/*
 * login_guard.h
 *		Recording failed logins in a transaction of their own (login_guard.c).
 */
#ifndef PSK_LOGIN_GUARD_H
#define PSK_LOGIN_GUARD_H

#include "mb/pg_wchar.h"

#define PSK_LOGIN_HMAC_LEN 32 /* HMAC-SHA256 */

/*
 * What a failure is counted against (sessions.c): the account, when the
 * e-mail has one; else a keyed hash of the e-mail, so that no typed text is
 * stored; in a schema before 0.3.0 (until ALTER EXTENSION psk UPDATE), the
 * lower-cased e-mail itself, as those versions stored it.
 */
typedef enum PskLoginKeyKind
{
	PSK_LOGIN_USER,
	PSK_LOGIN_UNKNOWN,
	PSK_LOGIN_LEGACY
} PskLoginKeyKind;

typedef struct PskLoginKey
{
	PskLoginKeyKind kind;
	int64			user_id;
	uint8			hmac[PSK_LOGIN_HMAC_LEN];
	char			email[PSK_MAX_EMAIL_LEN * MAX_MULTIBYTE_CHAR_LEN + 1];
} PskLoginKey;

/* From _PG_init when psk is preloaded: the shared memory of the guard. */
extern void psk_guard_shmem_request(void);
extern void psk_guard_shmem_startup(void);

/*
 * Before the password is looked at: make sure this database's guard runs,
 * and hold this backend's place in its queue for one failure of key.
 * Raises insufficient_resources when no guard can be started, and
 * object_not_in_prerequisite_state when psk is not preloaded: the caller
 * must not look at the password then.
 */
extern void psk_guard_start(const PskLoginKey *key);

/*
 * After the password was checked: for a failure, have the guard commit it
 * and wait until it has.  True when done (or nothing was to be done); false
 * when the failure could not be committed, and the caller must refuse the
 * login whatever the password.
 */
extern bool psk_guard_finish(bool failed);

/* On an error path: give the place back without recording anything. */
extern void psk_guard_abandon(void);

#endif /* PSK_LOGIN_GUARD_H */
