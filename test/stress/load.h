/*
 * load.h
 *		psk-load: concurrent clients against psk, one driver per way in.
 *
 * The load generator (psk-load.c) decides what each client does and writes
 * down every answer it gets; a driver (driver-sql.c, driver-http.c)
 * only carries one call to psk and brings back its outcome.  Outcomes are
 * SQLSTATEs whatever the driver, so the checks downstream do not care how
 * the calls travelled.
 */
#ifndef PSK_LOAD_H
#define PSK_LOAD_H

#include <stddef.h>

#define LOAD_MAX_CODE  129	/* 128 characters and the NUL */
#define LOAD_MAX_TOKEN 37	/* a uuid as text */
#define LOAD_MAX_ROWS  1024 /* rows one reply can carry */

/* How a call ended. */
typedef enum Outcome
{
	OUT_OK,	 /* committed: the reply rows are the result */
	OUT_ERR, /* refused with sqlstate; nothing changed */
	OUT_LOST /* the connection died: may or may not have
			  * committed */
} Outcome;

/* One row of a reply: a code, with its token, pool and status if any. */
typedef struct Row
{
	char code[LOAD_MAX_CODE];
	char token[LOAD_MAX_TOKEN];
	char pool[8];
	char status[16];
} Row;

typedef struct Reply
{
	Outcome outcome;
	char	sqlstate[6];
	char	message[256];
	int		nrows;
	Row		rows[LOAD_MAX_ROWS];
} Reply;

/*
 * A driver: one connection (session) per client, acting as one account.
 * Every call fills *r; a driver never exits the process.
 */
typedef struct Driver
{
	const char *name;

	/*
	 * Open a session for email (NULL: no account, the expirer).  ttl > 0:
	 * reservations made on it expire after ttl seconds.  NULL on failure,
	 * with the reason in err.
	 */
	void *(*open)(const char *email, int ttl, char *err, size_t errlen);
	void (*close)(void *session);

	void (*reserve)(void *s, const char *email, const char *tester,
					const char *country, const char *code_type, int how_many,
					Reply *r);
	void (*confirm)(void *s, const char *email, const char *code,
					const char *token, Reply *r);
	void (*release)(void *s, const char *email, const char *code, Reply *r);
	void (*mark)(void *s, const char *email, const char *code,
				 const char *reason, Reply *r);
	void (*disassociate)(void *s, const char *admin, const char *code,
						 Reply *r);
	void (*restore)(void *s, const char *admin, const char *code, Reply *r);
	/* rows: the codes expired now */
	void (*expire)(void *s, Reply *r);
	/* rows: every code with its status (an admin's view) */
	void (*list)(void *s, const char *admin, Reply *r);
} Driver;

extern const Driver sql_driver;
extern const Driver http_driver; /* driver-http.c: through psk-shim */

#endif /* PSK_LOAD_H */
