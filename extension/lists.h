/*
 * lists.h
 *		The pools, the code statuses and the audit actions: the one list of
 *		each (lists.c), which argument checks and readers follow.
 *
 * SQL cannot include a header, so the schema's CHECK constraints
 * (sql/00_schema.sql) spell the lists out again; sql/lists.sql reads those
 * constraints from the catalog and compares them with psk.lists(), these
 * lists as the extension sees them, so that neither changes alone.
 */
#ifndef PSK_LISTS_H
#define PSK_LISTS_H

#include "postgres.h"

/* A list of names, in the order readers show them. */
typedef struct PskList
{
	const char		  *what; /* "pool", "status", "action" */
	int				   n;
	const char *const *names;
} PskList;

extern const PskList psk_pools;	   /* as users.pool and codes.pool */
extern const PskList psk_statuses; /* as codes.status */
extern const PskList psk_actions;  /* as audit_log.action */

/*
 * value as spelled in list (matched case-insensitively), or invalid_input
 * naming the list; NULL in, NULL out.
 */
extern const char *psk_list_name(const PskList *list, const char *value);

/* The list as a text[] Datum, for a statement's argument. */
extern Datum psk_list_array(const PskList *list);

#endif /* PSK_LISTS_H */
