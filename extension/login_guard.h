/*
 * login_guard.h
 *		Recording failed logins in a transaction of their own (login_guard.c).
 */
#ifndef PSK_LOGIN_GUARD_H
#define PSK_LOGIN_GUARD_H

typedef struct PskLoginGuard PskLoginGuard;

/*
 * Start the worker that will record the outcome of one login attempt for
 * email (already lower-cased).  Raises locked_out when no worker can be
 * started: the caller must not look at the password then.
 */
extern PskLoginGuard *psk_guard_start(const char *email);

/*
 * Tell the worker whether the attempt failed and wait for it to finish.
 * True when it did what it was told (a failure is committed); false when it
 * could not, and the caller must refuse the login whatever the password.
 */
extern bool psk_guard_finish(PskLoginGuard *guard, bool failed);

/* On an error path: let the worker go without recording anything. */
extern void psk_guard_abandon(PskLoginGuard *guard);

#endif /* PSK_LOGIN_GUARD_H */
