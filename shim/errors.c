/*
 * errors.c
 *		SQLSTATE to HTTP status, as the contract lists them.
 */
#include "shim.h"

#include <stdlib.h>
#include <string.h>

static const struct
{
	const char *sqlstate;
	int			status;
	const char *kind;
} psk_errors[] = {
	{ "PK001", 404, "no_codes_available" },
	{ "PK002", 404, "not_found" },
	{ "PK003", 403, "not_allowed" },
	{ "PK004", 409, "wrong_state" },
	{ "PK005", 409, "token_mismatch" },
	{ "PK006", 410, "reservation_expired" },
	{ "PK007", 400, "invalid_input" },
	{ "PK008", 401, "unauthorized" },
	{ "PK009", 409, "conflict" },
	{ "PK010", 429, "locked_out" },
	{ "PK011", 409, "quota_exceeded" },
};

/*
 * Retry-After of locked_out: the first number in the detail or else the
 * message ("try again in 842 seconds"); a refusal without one is short-lived.
 */
static int
retry_after_from(const char *text)
{
	for (const char *p = text; p != NULL && *p; p++)
	{
		if (*p >= '0' && *p <= '9')
		{
			long v = strtol(p, NULL, 10);

			return v > 0 && v < 86400 * 365 ? (int) v : 1;
		}
	}
	return 0;
}

HttpError
http_error_from_result(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	HttpError	e = { 500, "internal", "internal server error", NULL, 0 };

	if (state == NULL)
		state = "";
	if (message == NULL)
		message = "";

	for (size_t i = 0; i < sizeof(psk_errors) / sizeof(psk_errors[0]); i++)
	{
		if (strcmp(state, psk_errors[i].sqlstate) == 0)
		{
			e.status = psk_errors[i].status;
			e.kind = psk_errors[i].kind;
			e.message = message;
			if (e.status == 429)
			{
				e.retry_after = retry_after_from(detail);
				if (e.retry_after == 0)
					e.retry_after = retry_after_from(message);
				if (e.retry_after == 0)
					e.retry_after = 5;
			}
			return e;
		}
	}

	/* class 22, data exception: a malformed value (e.g. a body that is not
	 * JSON) */
	if (strncmp(state, "22", 2) == 0)
	{
		e.status = 400;
		e.kind = "invalid_input";
		e.message = message;
		e.detail = detail;
		return e;
	}

	/*
	 * class 54, program limit exceeded: the request went past a limit of
	 * the server, e.g. a JSON body nested deeper than the parser's stack
	 * allows (54001).  The client's input, not a fault: say so, without the
	 * server's hint about its settings.
	 */
	if (strncmp(state, "54", 2) == 0)
	{
		e.status = 400;
		e.kind = "invalid_input";
		e.message =
			"the request is too complex (too deeply nested or too large)";
		return e;
	}

	/*
	 * The database is going away, refuses more connections, did not answer
	 * within the statement timeout, or is a standby (read-only, 25006: a
	 * change must wait for a primary): unavailable, try again.
	 */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
		strncmp(state, "57", 2) == 0 || strncmp(state, "40", 2) == 0 ||
		strcmp(state, "25006") == 0)
	{
		e.status = 503;
		e.kind = "unavailable";
		e.message = strcmp(state, "57014") == 0
						? "the database did not answer in time"
					: strcmp(state, "25006") == 0
						? "the database is read-only (a standby): try again "
						  "when a primary answers"
						: "the database is unavailable";
		return e;
	}

	/* a real fault: log it whole, answer without internals */
	shim_log("unexpected database error %s: %s", state[0] ? state : "(none)",
			 message);
	return e;
}

const char *
http_reason(int status)
{
	switch (status)
	{
		case 200:
			return "OK";
		case 400:
			return "Bad Request";
		case 401:
			return "Unauthorized";
		case 403:
			return "Forbidden";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 409:
			return "Conflict";
		case 410:
			return "Gone";
		case 413:
			return "Payload Too Large";
		case 415:
			return "Unsupported Media Type";
		case 429:
			return "Too Many Requests";
		case 500:
			return "Internal Server Error";
		case 503:
			return "Service Unavailable";
	}
	return "Error";
}
