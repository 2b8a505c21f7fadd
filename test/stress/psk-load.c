/*
 * psk-load.c
 *		Concurrent clients against psk, each writing down every answer it
 *		gets, for test/stress/invariants.sql to hold against the audit log
 *		and the tables.
 *
 * Client 0 is the expirer (psk_expire_reservations every few hundred ms),
 * clients 1..admins are admins (disassociate, restore, mark non-usable any
 * code) and the rest are users c<NN>@stress.test, each acting on the codes
 * it reserved itself: reserve (one or several, with or without a country,
 * own pool or another), confirm with its token, release, mark non-usable,
 * now and then a confirm with a wrong token.  Some users reserve with a
 * short TTL and leave part of their codes alone, so that they expire.
 * Each client has its own connection, its own random stream (seed + client
 * number) and its own acknowledgement file; see write_ack for the format.
 *
 * With -J it is the janitor instead: one admin session that frees every
 * held code and restores every non-usable one, so that the next round
 * starts from full pools.
 *
 * With -D http the users and admins go through psk-shim (driver-http.c);
 * the expirer and the janitor stay on SQL.  With -R the front end (the
 * shim) is expected to crash, not the database: a client whose call is
 * lost comes back, once, as its second account (c<NN>b), logged in anew.
 * What the lost call may have done thus stays the last act of the first
 * account, as invariants.sql expects of a cut-off call, and the first
 * account's reservations stay where they are, for check 11 to find them
 * still held at the end.
 *
 * Usage: psk-load -r ROUND -o DIR [-c clients] [-a admins] [-n ops]
 *                 [-s seed] [-L ttl] [-T seconds] [-x] [-J] [-D driver] [-R]
 */
#include "load.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum Op
{
	OP_RESERVE,
	OP_CONFIRM,
	OP_CONFIRM_BAD, /* confirm with a wrong token, on purpose */
	OP_RELEASE,
	OP_MARK, /* mark non-usable, as the holder */
	OP_ADMIN_MARK,
	OP_DISASSOCIATE,
	OP_RESTORE,
	OP_EXPIRE,
	OP_LIST, /* an admin looks at the codes; changes nothing */
	NUM_OPS
} Op;

static const char *const op_names[NUM_OPS] = {
	"reserve",	  "confirm",	  "confirm_bad", "release", "mark",
	"admin_mark", "disassociate", "restore",	 "expire",	"list"
};

/*
 * The refusals each call may meet under this load, and why.  Anything else
 * is a failure; invariants.sql holds the same list.
 */
static const char *const expected[NUM_OPS] = {
	[OP_RESERVE] = "PK001", /* pools run dry */
	/* expired; swept or taken away, then free or someone else's */
	[OP_CONFIRM] = "PK006 PK004 PK003",
	[OP_CONFIRM_BAD] = "PK005 PK004 PK003",
	[OP_RELEASE] = "PK004 PK003",
	[OP_MARK] = "PK004 PK003",
	[OP_ADMIN_MARK] = "PK004",	 /* non-usable already */
	[OP_DISASSOCIATE] = "PK004", /* freed meanwhile */
	[OP_RESTORE] = "PK004",		 /* restored meanwhile */
	[OP_EXPIRE] = "",
	[OP_LIST] = "",
};

typedef enum Role
{
	ROLE_EXPIRER,
	ROLE_ADMIN,
	ROLE_USER,
	ROLE_JANITOR
} Role;

/* A code a user believes it holds. */
typedef struct Held
{
	char	code[LOAD_MAX_CODE];
	char	token[LOAD_MAX_TOKEN];
	bool	confirmed;
	bool	parked;		/* left alone, to let it expire */
	int64_t revisit_at; /* parked: not before (us) */
} Held;

#define MAX_HELD	   512
#define MAX_STATES	   32
#define MAX_UNEXPECTED 10

typedef struct StateCount
{
	char sqlstate[6];
	long n;
} StateCount;

typedef struct Client
{
	int			  index;
	Role		  role;
	char		  name[32];	 /* in the ack file */
	char		  email[64]; /* the account; empty for the expirer */
	int			  ttl;		 /* reservation TTL of its session, s */
	uint64_t	  rng;
	const Driver *driver;
	void		 *session;
	FILE		 *acks;
	int			  seq;
	bool		  gone;	  /* lost its connection, for good */
	int			  losses; /* calls lost */

	Held held[MAX_HELD];
	int	 nheld;

	long	   count[NUM_OPS][3]; /* by Outcome */
	StateCount states[MAX_STATES];
	int		   nstates;
	long	   unexpected;
	char	   complaints[MAX_UNEXPECTED][320];
	int		   ncomplaints;

	Reply	  reply;
	pthread_t thread;
} Client;

/* Settings. */
static int		   round_no = 0;
static const char *outdir = NULL;
static int		   nclients = 32;
static int		   nadmins = 2;
static int		   nops = 300;
static uint64_t	   seed = 0;
static int		   ttl = 1;
static int		   max_seconds = 60;
static bool		   crash_mode = false;
static bool		   janitor_mode = false;
static bool		   come_back = false; /* -R: after a loss, the second account */
static const Driver *front = &sql_driver; /* users' and admins' driver */
static int			 think_us = 2000;
static int			 expire_ms = 300;

static atomic_int  users_left;
static atomic_bool time_is_up;
static int64_t	   deadline_us;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* splitmix64: small, fast, and good enough to pick operations. */
static uint64_t
next_random(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static int
rnd(Client *c, int n)
{
	return (int) (next_random(&c->rng) % (uint64_t) n);
}

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* What the client saw */

static void complain(Client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* An outcome this load cannot explain: count it, keep the first few. */
static void
complain(Client *c, const char *fmt, ...)
{
	va_list args;

	c->unexpected++;
	if (c->ncomplaints == MAX_UNEXPECTED)
		return;
	va_start(args, fmt);
	vsnprintf(c->complaints[c->ncomplaints++], sizeof(c->complaints[0]), fmt,
			  args);
	va_end(args);
}

static void
count_state(Client *c, const char *sqlstate)
{
	int i;

	for (i = 0; i < c->nstates; i++)
		if (strcmp(c->states[i].sqlstate, sqlstate) == 0)
			break;
	if (i == c->nstates)
	{
		if (c->nstates == MAX_STATES)
			return;
		snprintf(c->states[c->nstates++].sqlstate, 6, "%s", sqlstate);
	}
	c->states[i].n++;
}

static bool
is_expected(Op op, const char *sqlstate)
{
	return sqlstate[0] != '\0' && strstr(expected[op], sqlstate) != NULL;
}

/* A call about to be made, for the ack file. */
typedef struct Call
{
	Op			op;
	const char *code;
	const char *token;
	const char *req_pool;
	const char *country;
	int			how_many;
	int64_t		t_send;
	int64_t		t_recv;
} Call;

static void
field(FILE *f, const char *value, bool last)
{
	fputs(value && value[0] ? value : "\\N", f);
	fputc(last ? '\n' : '\t', f);
}

/*
 * One line per acknowledged fact, tab-separated, \N for none (COPY's text
 * format): round, client, actor, seq, sub, op, result (ok, err, lost),
 * sqlstate, code, token, code_pool, how_many, req_pool, country, ttl (of
 * the session, s), t_send, t_recv (CLOCK_MONOTONIC, microseconds).  A call
 * that returns codes (reserve, expire) gets one line per code, sub 1..n;
 * one that returns none gets no line for ok.  Reads (list) get none.
 */
static void
write_line(Client *c, const Call *call, int sub, const char *result,
		   const char *sqlstate, const char *code, const char *token,
		   const char *pool)
{
	FILE *f = c->acks;
	char  num[32];

	fprintf(f, "%d\t%s\t", round_no, c->name);
	field(f, c->email, false);
	fprintf(f, "%d\t%d\t%s\t%s\t", c->seq, sub, op_names[call->op], result);
	field(f, sqlstate, false);
	field(f, code, false);
	field(f, token, false);
	field(f, pool, false);
	snprintf(num, sizeof(num), "%d", call->how_many);
	field(f, call->how_many > 0 ? num : NULL, false);
	field(f, call->req_pool, false);
	field(f, call->country, false);
	fprintf(f, "%d\t%" PRId64 "\t%" PRId64 "\n", c->ttl, call->t_send,
			call->t_recv);
}

/* Write down how the call ended, count it, and judge it. */
static void
record(Client *c, const Call *call)
{
	Reply *r = &c->reply;

	c->seq++;
	c->count[call->op][r->outcome]++;
	switch (r->outcome)
	{
		case OUT_OK:
			if (call->op == OP_LIST)
				break;
			if (call->op == OP_RESERVE || call->op == OP_EXPIRE)
				for (int i = 0; i < r->nrows; i++)
					write_line(c, call, i + 1, "ok", NULL, r->rows[i].code,
							   r->rows[i].token, r->rows[i].pool);
			else
				write_line(c, call, 1, "ok", NULL, call->code, call->token,
						   NULL);
			if (call->op == OP_CONFIRM_BAD)
				complain(c, "confirm with a wrong token succeeded on %s",
						 call->code);
			if (call->op == OP_RESERVE && r->nrows != call->how_many)
				complain(c, "reserve of %d returned %d codes", call->how_many,
						 r->nrows);
			break;
		case OUT_ERR:
			count_state(c, r->sqlstate);
			if (call->op != OP_LIST)
				write_line(c, call, 1, "err", r->sqlstate, call->code,
						   call->token, NULL);
			if (!is_expected(call->op, r->sqlstate))
				complain(c, "%s: %s", op_names[call->op], r->message);
			break;
		case OUT_LOST:
			count_state(c, "lost");
			write_line(c, call, 1, "lost", r->sqlstate, call->code, call->token,
					   NULL);
			c->losses++;
			c->gone = true;
			if (!crash_mode && !come_back)
				complain(c, "%s: connection lost: %s", op_names[call->op],
						 r->message);
			break;
	}
	fflush(c->acks);
}

/* ------------------------------------------------------------------ */
/* Users */

static Held *
find_held(Client *c, const char *code)
{
	for (int i = 0; i < c->nheld; i++)
		if (strcmp(c->held[i].code, code) == 0)
			return &c->held[i];
	return NULL;
}

static void
forget(Client *c, Held *h)
{
	*h = c->held[--c->nheld];
}

/* A random held code, parked (and due) or not; NULL when there is none. */
static bool
pickable(const Held *h, bool parked, int64_t now)
{
	return parked ? h->parked && h->revisit_at <= now : !h->parked;
}

static Held *
pick_held(Client *c, bool parked)
{
	int64_t now = now_us();
	int		n = 0;
	int		k;

	for (int i = 0; i < c->nheld; i++)
		n += pickable(&c->held[i], parked, now);
	if (n == 0)
		return NULL;
	k = rnd(c, n);
	for (int i = 0; i < c->nheld; i++)
		if (pickable(&c->held[i], parked, now) && k-- == 0)
			return &c->held[i];
	return NULL;
}

static void
user_reserve(Client *c)
{
	static const char *const countries[] = { NULL, NULL, NULL, NULL, NULL,
											 "UK", "UK", "DE", "DE", "IN" };
	static const char *const pools[] = { NULL, NULL, NULL,	NULL,  NULL,
										 NULL, NULL, "OSV", "HSV", "COMMON" };
	Call					 call = { .op = OP_RESERVE };
	Reply					*r = &c->reply;

	call.how_many = rnd(c, 10) < 7 ? 1 : 2 + rnd(c, 4);
	call.country = countries[rnd(c, 10)];
	call.req_pool = pools[rnd(c, 10)];
	call.t_send = now_us();
	c->driver->reserve(c->session, c->email, "stress", call.country,
					   call.req_pool, call.how_many, r);
	call.t_recv = now_us();
	record(c, &call);
	if (r->outcome == OUT_ERR)
		sleep_us(rnd(c, 4 * think_us + 1)); /* dry: give others a turn */
	if (r->outcome != OUT_OK)
		return;
	for (int i = 0; i < r->nrows; i++)
	{
		Held *h = find_held(c, r->rows[i].code);

		if (h == NULL)
		{
			if (c->nheld == MAX_HELD)
				continue;
			h = &c->held[c->nheld++];
		}
		memset(h, 0, sizeof(*h));
		snprintf(h->code, sizeof(h->code), "%s", r->rows[i].code);
		snprintf(h->token, sizeof(h->token), "%s", r->rows[i].token);
		/*
		 * Short-TTL users leave some codes alone until past their expiry,
		 * give or take the expirer's interval: then a confirm is refused as
		 * expired (not swept yet) or not held (swept).
		 */
		h->parked = c->ttl > 0 && rnd(c, 10) < 3;
		h->revisit_at = call.t_recv + c->ttl * INT64_C(1000000) +
						rnd(c, 2 * expire_ms * 1000 + 1);
	}
}

static void
user_confirm(Client *c, Held *h, bool wrong_token)
{
	Call   call = { .op = wrong_token ? OP_CONFIRM_BAD : OP_CONFIRM };
	char   token[LOAD_MAX_TOKEN];
	Reply *r = &c->reply;

	snprintf(token, sizeof(token), "%s", h->token);
	if (wrong_token)
		token[0] = token[0] == '0' ? '1' : '0';
	call.code = h->code;
	call.token = token;
	call.t_send = now_us();
	c->driver->confirm(c->session, c->email, h->code, token, r);
	call.t_recv = now_us();
	record(c, &call);
	if (r->outcome == OUT_OK)
		h->confirmed = true;
	else if (r->outcome == OUT_ERR && (strcmp(r->sqlstate, "PK006") == 0 ||
									   strcmp(r->sqlstate, "PK005") == 0))
	{
		/* still ours (until swept): release it later */
		h->parked = true;
		h->revisit_at = call.t_recv;
	}
	else
		forget(c, h); /* taken away meanwhile, or lost */
}

static void
user_release(Client *c, Held *h)
{
	Call call = { .op = OP_RELEASE, .code = h->code, .token = h->token };

	call.t_send = now_us();
	c->driver->release(c->session, c->email, h->code, &c->reply);
	call.t_recv = now_us();
	record(c, &call);
	forget(c, h);
}

static void
user_mark(Client *c, Held *h)
{
	Call call = { .op = OP_MARK, .code = h->code, .token = h->token };

	call.t_send = now_us();
	c->driver->mark(c->session, c->email, h->code, "stress: broken", &c->reply);
	call.t_recv = now_us();
	record(c, &call);
	forget(c, h);
}

/*
 * One step of a user: reserve more while it holds few codes, else act on a
 * code it holds.
 */
static void
user_step(Client *c)
{
	int	  active = 0;
	int	  p_reserve;
	Held *h;
	int	  r;

	for (int i = 0; i < c->nheld; i++)
		active += !c->held[i].parked;
	p_reserve = active == 0 ? 100 : active < 2 ? 40 : active < 4 ? 20 : 5;

	/* Come back to a parked code once it is due: late confirm or release. */
	if ((h = pick_held(c, true)) != NULL)
	{
		if (!h->confirmed && rnd(c, 2) == 0)
			user_confirm(c, h, false);
		else
			user_release(c, h);
		return;
	}

	h = pick_held(c, false);
	if (h == NULL || rnd(c, 100) < p_reserve)
	{
		user_reserve(c);
		return;
	}
	r = rnd(c, 100);
	if (r < 45)
	{
		if (!h->confirmed)
			user_confirm(c, h, false);
		else
			user_release(c, h);
	}
	else if (r < 48 && !h->confirmed)
		user_confirm(c, h, true);
	else if (r < 50)
		user_mark(c, h);
	else
		user_release(c, h);
}

/* ------------------------------------------------------------------ */
/* Admins, the expirer, the janitor */

/* A random code of the list (in one of the statuses, or any: NULL). */
static const char *
pick_listed(Client *c, const Reply *list, const char *s1, const char *s2)
{
	int n = 0;
	int k;

	for (int i = 0; i < list->nrows; i++)
		n += s1 == NULL || strcmp(list->rows[i].status, s1) == 0 ||
			 (s2 && strcmp(list->rows[i].status, s2) == 0);
	if (n == 0)
		return NULL;
	k = rnd(c, n);
	for (int i = 0; i < list->nrows; i++)
		if ((s1 == NULL || strcmp(list->rows[i].status, s1) == 0 ||
			 (s2 && strcmp(list->rows[i].status, s2) == 0)) &&
			k-- == 0)
			return list->rows[i].code;
	return NULL;
}

static void
admin_call(Client *c, Op op, const char *code)
{
	Call call = { .op = op, .code = code };

	call.t_send = now_us();
	if (op == OP_DISASSOCIATE)
		c->driver->disassociate(c->session, c->email, code, &c->reply);
	else if (op == OP_RESTORE)
		c->driver->restore(c->session, c->email, code, &c->reply);
	else
		c->driver->mark(c->session, c->email, code, "stress: admin", &c->reply);
	call.t_recv = now_us();
	record(c, &call);
}

/* Look at the codes, then disassociate, restore or mark one of them. */
static void
admin_step(Client *c)
{
	Reply	   *mine = &c->reply;
	Call		call = { .op = OP_LIST };
	char		code[LOAD_MAX_CODE];
	const char *pick;
	int			nonusable = 0;
	int			r;

	c->driver->list(c->session, c->email, mine);
	record(c, &call);
	if (mine->outcome != OUT_OK)
		return;

	/* Restore first when the pools fill up with non-usable codes. */
	for (int i = 0; i < mine->nrows; i++)
		nonusable += strcmp(mine->rows[i].status, "NON_USABLE") == 0;
	r = nonusable > 8 ? 40 : rnd(c, 100);
	if (r < 30 && (pick = pick_listed(c, mine, "RESERVED", "IN_USE")) != NULL)
	{
		snprintf(code, sizeof(code), "%s", pick);
		admin_call(c, OP_DISASSOCIATE, code);
	}
	else if (r < 75 &&
			 (pick = pick_listed(c, mine, "NON_USABLE", NULL)) != NULL)
	{
		snprintf(code, sizeof(code), "%s", pick);
		admin_call(c, OP_RESTORE, code);
	}
	else if (r < 85 && (pick = pick_listed(c, mine, NULL, NULL)) != NULL)
	{
		snprintf(code, sizeof(code), "%s", pick);
		admin_call(c, OP_ADMIN_MARK, code);
	}
	else if ((pick = pick_listed(c, mine, NULL, NULL)) != NULL)
	{
		/* any code: often not held any more, the refusal is the point */
		snprintf(code, sizeof(code), "%s", pick);
		admin_call(c, OP_DISASSOCIATE, code);
	}
}

static void
expire_step(Client *c)
{
	Call call = { .op = OP_EXPIRE };

	call.t_send = now_us();
	c->driver->expire(c->session, &c->reply);
	call.t_recv = now_us();
	record(c, &call);
}

/* Free every held code, restore every non-usable one. */
static void
janitor(Client *c)
{
	Reply *list = malloc(sizeof(Reply));
	Call   call = { .op = OP_LIST };

	c->driver->list(c->session, c->email, list);
	c->reply = *list;
	record(c, &call);
	for (int i = 0; list->outcome == OUT_OK && i < list->nrows && !c->gone; i++)
	{
		const char *status = list->rows[i].status;

		if (strcmp(status, "RESERVED") == 0 || strcmp(status, "IN_USE") == 0)
			admin_call(c, OP_DISASSOCIATE, list->rows[i].code);
		else if (strcmp(status, "NON_USABLE") == 0)
			admin_call(c, OP_RESTORE, list->rows[i].code);
	}
	free(list);
}

/* ------------------------------------------------------------------ */
/* Threads */

/*
 * -R: the front end crashed under the client's last call.  Come back, once,
 * as the client's second account, knowing nothing: the first account's
 * codes stay as the lost call left them.
 */
static void
revive(Client *c)
{
	char err[256];

	if (!come_back || !c->gone || c->losses != 1 || c->session == NULL)
		return;
	c->driver->close(c->session);
	strcat(c->name, "b");
	snprintf(c->email, sizeof(c->email), "%s@stress.test", c->name);
	c->nheld = 0;
	c->session = c->driver->open(c->email, c->ttl, err, sizeof(err));
	if (c->session == NULL)
		complain(c, "cannot come back: %s", err);
	else
		c->gone = false;
}

/*
 * Once its calls are done, a user comes back to the codes it left parked,
 * each when it falls due.  Without this, a fast enough server let a round
 * end before any parked code was due, and no late confirm (PK006) was ever
 * refused.
 */
static void
user_finish(Client *c)
{
	for (;;)
	{
		bool  any = false;
		Held *h;

		for (int i = 0; i < c->nheld; i++)
			any |= c->held[i].parked;
		if (!any || c->gone || now_us() > deadline_us)
			return;
		if ((h = pick_held(c, true)) == NULL)
		{
			sleep_us(10000);
			continue;
		}
		if (!h->confirmed && rnd(c, 2) == 0)
			user_confirm(c, h, false);
		else
			user_release(c, h);
		revive(c);
	}
}

static void *
client_main(void *arg)
{
	Client *c = arg;
	char	err[256];

	c->session = c->driver->open(c->role == ROLE_EXPIRER ? NULL : c->email,
								 c->ttl, err, sizeof(err));
	if (c->session == NULL)
	{
		complain(c, "cannot connect: %s", err);
		c->gone = true;
	}

	switch (c->role)
	{
		case ROLE_USER:
			for (int i = 0; i < nops && !c->gone; i++)
			{
				if (now_us() > deadline_us)
				{
					atomic_store(&time_is_up, true);
					break;
				}
				user_step(c);
				revive(c);
				sleep_us(rnd(c, think_us + 1));
			}
			user_finish(c);
			atomic_fetch_sub(&users_left, 1);
			break;
		case ROLE_ADMIN:
			/*
			 * As long as the users run, at a slower pace; when a crash is
			 * coming, until it comes.
			 */
			while (!c->gone && (crash_mode || atomic_load(&users_left) > 0) &&
				   now_us() < deadline_us)
			{
				admin_step(c);
				revive(c);
				sleep_us(2000 + rnd(c, 4 * think_us + 1));
			}
			break;
		case ROLE_EXPIRER:
			/* As long as the users run and once more after, or until the crash.
			 */
			while (!c->gone)
			{
				bool last = !crash_mode && atomic_load(&users_left) == 0;

				expire_step(c);
				if (last || now_us() > deadline_us)
					break;
				sleep_us(expire_ms * 1000L);
			}
			break;
		case ROLE_JANITOR:
			if (!c->gone)
				janitor(c);
			break;
	}
	if (c->session)
		c->driver->close(c->session);
	return NULL;
}

static void
usage(void)
{
	fprintf(
		stderr,
		"usage: psk-load -r ROUND -o DIR [-c clients] [-a admins] [-n ops]\n"
		"                [-s seed] [-L ttl_s] [-T max_s] [-w think_us]\n"
		"                [-e expire_ms] [-x (crash expected)] [-J (janitor)]\n"
		"                [-D sql|http] [-R (the shim may crash: come back)]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int		   opt;
	Client	  *clients;
	int		   n;
	long	   total[3] = { 0 };
	long	   unexpected = 0;
	long	   lost_clients = 0;
	StateCount states[MAX_STATES];
	int		   nstates = 0;
	int64_t	   started;
	double	   elapsed;

	seed = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 16);
	while ((opt = getopt(argc, argv, "r:o:c:a:n:s:L:T:w:e:xJD:R")) != -1)
	{
		switch (opt)
		{
			case 'r':
				round_no = atoi(optarg);
				break;
			case 'o':
				outdir = optarg;
				break;
			case 'c':
				nclients = atoi(optarg);
				break;
			case 'a':
				nadmins = atoi(optarg);
				break;
			case 'n':
				nops = atoi(optarg);
				break;
			case 's':
				seed = strtoull(optarg, NULL, 10);
				break;
			case 'L':
				ttl = atoi(optarg);
				break;
			case 'T':
				max_seconds = atoi(optarg);
				break;
			case 'w':
				think_us = atoi(optarg);
				break;
			case 'e':
				expire_ms = atoi(optarg);
				break;
			case 'x':
				crash_mode = true;
				break;
			case 'J':
				janitor_mode = true;
				break;
			case 'D':
				if (strcmp(optarg, "http") == 0)
					front = &http_driver;
				else if (strcmp(optarg, "sql") != 0)
					usage();
				break;
			case 'R':
				come_back = true;
				break;
			default:
				usage();
		}
	}
	if (outdir == NULL || round_no < 1 || nclients < nadmins + 2 ||
		nadmins < 0 || nops < 0 || think_us < 0 || expire_ms < 1)
		usage();

	n = janitor_mode ? 1 : nclients;
	clients = calloc(n, sizeof(Client));
	if (clients == NULL)
	{
		perror("calloc");
		return 2;
	}
	for (int i = 0; i < n; i++)
	{
		Client *c = &clients[i];
		char	path[1024];

		c->index = i;
		c->driver = &sql_driver;
		c->rng = seed + UINT64_C(0x9E3779B97F4A7C15) * (uint64_t) (i + 1);
		if (janitor_mode)
		{
			c->role = ROLE_JANITOR;
			snprintf(c->name, sizeof(c->name), "janitor");
			snprintf(c->email, sizeof(c->email), "janitor@stress.test");
		}
		else
		{
			c->role = i == 0		 ? ROLE_EXPIRER
					  : i <= nadmins ? ROLE_ADMIN
									 : ROLE_USER;
			/* no endpoint sweeps expiries: the expirer stays on SQL */
			if (c->role != ROLE_EXPIRER)
				c->driver = front;
			snprintf(c->name, sizeof(c->name), "c%02d", i);
			if (i > 0)
				snprintf(c->email, sizeof(c->email), "c%02d@stress.test", i);
			/* a third of the users, spread over the pools (i % 3) */
			if (c->role == ROLE_USER && (i / 3) % 3 == 0)
				c->ttl = ttl;
		}
		snprintf(path, sizeof(path), "%s/r%d-%s.tsv", outdir, round_no,
				 c->name);
		c->acks = fopen(path, "w");
		if (c->acks == NULL)
		{
			perror(path);
			return 2;
		}
	}

	printf("psk-load: round %d, driver %s, seed %" PRIu64 ", ", round_no,
		   janitor_mode ? sql_driver.name : front->name, seed);
	if (janitor_mode)
		printf("janitor\n");
	else
		printf(
			"%d clients (1 expirer, %d admins, %d users, TTL %d s on a third), "
			"%d operations per user%s\n",
			nclients, nadmins, nclients - nadmins - 1, ttl, nops,
			crash_mode ? ", until the server goes away" : "");
	fflush(stdout);

	started = now_us();
	deadline_us = started + (int64_t) max_seconds * 1000000;
	atomic_store(&users_left, janitor_mode ? 0 : nclients - 1 - nadmins);
	for (int i = 0; i < n; i++)
		if (pthread_create(&clients[i].thread, NULL, client_main,
						   &clients[i]) != 0)
		{
			perror("pthread_create");
			return 2;
		}
	for (int i = 0; i < n; i++)
		pthread_join(clients[i].thread, NULL);
	elapsed = (now_us() - started) / 1e6;

	/* The figures. */
	for (int op = 0; op < NUM_OPS; op++)
	{
		long k[3] = { 0 };

		for (int i = 0; i < n; i++)
			for (int o = 0; o < 3; o++)
				k[o] += clients[i].count[op][o];
		if (k[0] + k[1] + k[2] == 0)
			continue;
		printf("  %-12s %6ld ok %6ld refused %3ld lost\n", op_names[op], k[0],
			   k[1], k[2]);
		for (int o = 0; o < 3; o++)
			total[o] += k[o];
	}
	for (int i = 0; i < n; i++)
	{
		Client *c = &clients[i];

		unexpected += c->unexpected;
		lost_clients += c->losses > 0;
		for (int k = 0; k < c->ncomplaints; k++)
			fprintf(stderr, "%s: %s\n", c->name, c->complaints[k]);
		for (int s = 0; s < c->nstates; s++)
		{
			int j;

			for (j = 0; j < nstates; j++)
				if (strcmp(states[j].sqlstate, c->states[s].sqlstate) == 0)
					break;
			if (j == nstates && nstates < MAX_STATES)
				states[nstates++] = (StateCount){ .n = 0 };
			if (j < MAX_STATES)
			{
				memcpy(states[j].sqlstate, c->states[s].sqlstate, 6);
				states[j].n += c->states[s].n;
			}
		}
		fclose(c->acks);
	}
	printf(
		"  operations %ld in %.1f s (%.0f/s): %ld ok, %ld refused, %ld lost\n",
		total[0] + total[1] + total[2], elapsed,
		(total[0] + total[1] + total[2]) / (elapsed > 0 ? elapsed : 1),
		total[0], total[1], total[2]);
	printf("  sqlstates:");
	for (int j = 0; j < nstates; j++)
		printf(" %s %ld", states[j].sqlstate, states[j].n);
	printf("%s\n", nstates ? "" : " none");
	printf("  clients that lost their connection: %ld\n", lost_clients);
	printf("  unexpected outcomes: %ld\n", unexpected);
	if (atomic_load(&time_is_up))
		printf("  stopped at the time limit of %d s\n", max_seconds);
	return unexpected == 0 ? 0 : 1;
}
