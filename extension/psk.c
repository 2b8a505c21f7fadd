/*
 * psk.c
 *		Module entry: the psk.* settings and, when preloaded, the shared
 *		memory of the login guard, the expiry workers and the free-code
 *		hints.
 */
#include "psk.h"

#include <limits.h>

#include "miscadmin.h"
#include "pgtime.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "free_hint.h"
#include "login_guard.h"

PG_MODULE_MAGIC;

int	  psk_reservation_ttl = 0;
int	  psk_in_use_ttl = 0;
int	  psk_max_held_per_user = 0;
int	  psk_session_ttl = 8 * 3600;
int	  psk_login_max_failures = 5;
int	  psk_login_lockout = 15 * 60;
int	  psk_expiry_interval = 10;
int	  psk_expiry_batch = 1000;
int	  psk_audit_retention = 0;
int	  psk_audit_partition_width = 7 * 86400;
char *psk_databases = NULL;
char *psk_display_timezone = NULL;

void _PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
psk_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	psk_guard_shmem_request();
	psk_expiry_shmem_request();
	psk_free_hint_shmem_request();
}

static void
psk_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	psk_guard_shmem_startup();
	psk_expiry_shmem_startup();
	psk_free_hint_shmem_startup();
}

/*
 * psk.audit_partition_width: a whole fraction of a week, so that the
 * partitions of every width start on Monday 00:00 UTC and tile each week.
 */
static bool
check_audit_partition_width(int *newval, void **extra, GucSource source)
{
	if ((7 * 86400) % *newval != 0)
	{
		GUC_check_errdetail("%d s does not divide a week (604800 s) evenly.",
							*newval);
		return false;
	}
	return true;
}

/* psk.display_timezone: a zone name the tz database knows ("Asia/Kolkata") */
static bool
check_display_timezone(char **newval, void **extra, GucSource source)
{
	pg_tz *tz = *newval != NULL ? pg_tzset(*newval) : NULL;

	if (tz == NULL || !pg_tz_acceptable(tz))
	{
		GUC_check_errdetail("\"%s\" is not a time zone name.",
							*newval ? *newval : "");
		return false;
	}
	return true;
}

void
_PG_init(void)
{
	/* Only a superuser (or ALTER SYSTEM/DATABASE/ROLE) may change these. */
	DefineCustomIntVariable(
		"psk.reservation_ttl",
		"How long a reservation is held before it may expire (0: until released).",
		NULL, &psk_reservation_ttl, 0, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S, NULL,
		NULL, NULL);
	DefineCustomIntVariable(
		"psk.in_use_ttl",
		"How long a code in use is held before it may expire (0: until released).",
		"Confirm sets expires_at; psk_renew extends it.", &psk_in_use_ttl, 0, 0,
		INT_MAX, PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"psk.max_held_per_user",
		"Most codes one user may hold, reserved or in use (0: no limit).", NULL,
		&psk_max_held_per_user, 0, 0, INT_MAX, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("psk.session_ttl",
							"Lifetime of a session token made by psk_login.",
							NULL, &psk_session_ttl, 8 * 3600, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"psk.login_max_failures",
		"Failed logins of one account within psk.login_lockout before login is refused.",
		NULL, &psk_login_max_failures, 5, 1, 1000000, PGC_SUSET, 0, NULL, NULL,
		NULL);
	DefineCustomIntVariable(
		"psk.login_lockout",
		"Window of the brute-force guard, and how long it locks an account out.",
		NULL, &psk_login_lockout, 15 * 60, 1, INT_MAX, PGC_SUSET, GUC_UNIT_S,
		NULL, NULL, NULL);
	DefineCustomIntVariable(
		"psk.audit_retention", "How long audit rows are kept (0: for ever).",
		"Whole weekly partitions of the audit log older than this are "
		"dropped by the background worker or psk_audit_maintain().",
		&psk_audit_retention, 0, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S, NULL, NULL,
		NULL);
	DefineCustomIntVariable(
		"psk.audit_partition_width",
		"Time span of each partition of the audit log made from now on.",
		"A week by default; shorter ones (down to a minute) let tests and the "
		"soak of make bench-scale see retention at work within minutes.",
		&psk_audit_partition_width, 7 * 86400, 60, 7 * 86400, PGC_SUSET,
		GUC_UNIT_S, check_audit_partition_width, NULL, NULL);
	DefineCustomIntVariable(
		"psk.expiry_interval",
		"How often the background worker returns overdue holds to their pool.",
		NULL, &psk_expiry_interval, 10, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, NULL,
		NULL, NULL);
	DefineCustomIntVariable(
		"psk.expiry_batch",
		"Most overdue holds one sweep transaction returns to their pool.",
		"The worker commits after each batch; psk_expire_reservations() "
		"sweeps one batch per call.",
		&psk_expiry_batch, 1000, 1, 1000000, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable(
		"psk.display_timezone",
		"Time zone of logged_at_str in the log items of GET /users/logs and GET /admin/logs.",
		"The old service showed Asia/Kolkata.", &psk_display_timezone, "UTC",
		PGC_SUSET, 0, check_display_timezone, NULL, NULL);

	/* The workers exist only when psk is preloaded; so does their setting. */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable(
			"psk.database",
			"Comma-separated databases in which the expiry worker runs.",
			"Empty (the default): no worker runs.", &psk_databases, "",
			PGC_POSTMASTER, GUC_LIST_INPUT, NULL, NULL, NULL);
		psk_register_expiry_workers();

		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = psk_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = psk_shmem_startup;
	}
	MarkGUCPrefixReserved("psk");
}
