/*
 * search_path.c
 *		The search_path psk's statements are written for, pinned in C by
 *		the functions called most often.
 *
 * Every SECURITY DEFINER function of psk must resolve names in its own
 * statements the same way whoever calls it and whatever search_path the
 * caller set: pg_catalog only, never pg_temp (any caller can make objects
 * there) nor a schema of the caller's, where an operator "=" of a caller
 * would otherwise run with the owner's rights.  Most functions say so in
 * their definition (SET search_path = pg_catalog, pg_temp).  That clause
 * makes each call save and restore the settings, and at the function's exit
 * AtEOXact_GUC walks all of them: about a twentieth of the backend's CPU in
 * a reserve + release cycle.  The hot functions (psk_reserve, psk_release,
 * psk_confirm, psk_renew and every HTTP route) are defined without it and
 * push this path instead, for the call: namespace.c's override stack, which
 * a (sub)transaction's abort pops if an error leaves the call early.
 */
#include "psk.h"

#include "catalog/namespace.h"

void
psk_pin_search_path(void)
{
	OverrideSearchPath path = { 0 };

	path.schemas = NIL;
	path.addCatalog = true;
	path.addTemp = false;
	PushOverrideSearchPath(&path);
}

void
psk_unpin_search_path(void)
{
	PopOverrideSearchPath();
}
