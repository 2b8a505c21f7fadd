/*
 * places.c
 *		Regions and countries: psk_add_region, psk_add_country.
 */
#include "psk.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(psk_add_region);
PG_FUNCTION_INFO_V1(psk_add_country);

static PskQuery insert_region = {
	"INSERT INTO psk.regions (name) VALUES (btrim($1))"
	" ON CONFLICT ((lower(name))) DO NOTHING RETURNING id, name",
	1,
	{ TEXTOID }
};

static PskQuery find_region = {
	"SELECT r.id FROM psk.regions r WHERE " PSK_PLACE_NAMED("r", "$1"),
	1,
	{ TEXTOID }
};

static PskQuery insert_country = {
	"INSERT INTO psk.countries (name, region_id) VALUES (btrim($1), $2)"
	" ON CONFLICT ((lower(name))) DO NOTHING RETURNING id, name",
	2,
	{ TEXTOID, INT8OID }
};

/* psk_add_region(admin_email, name) */
Datum
psk_add_region(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	char   *name;
	PskUser admin;
	Datum	arg;

	psk_require_writable("psk_add_region");
	SPI_connect();
	/* who may call it first, then the arguments */
	psk_require_admin(admin_email, &admin);
	name = psk_text_arg(fcinfo, 1, "name", true, PSK_MAX_NAME_LEN);
	arg = CStringGetTextDatum(name);
	if (psk_execute(&insert_region, &arg, NULL, false) == 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_CONFLICT),
						errmsg("region \"%s\" exists already", name)));
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/* psk_add_country(admin_email, name, region) */
Datum
psk_add_country(PG_FUNCTION_ARGS)
{
	char *admin_email =
		psk_text_arg(fcinfo, 0, "admin_email", true, PSK_MAX_EMAIL_LEN);
	char   *name;
	char   *region;
	PskUser admin;
	Datum	values[2];
	bool	isnull;

	psk_require_writable("psk_add_country");
	SPI_connect();
	/* who may call it first, then the arguments */
	psk_require_admin(admin_email, &admin);
	name = psk_text_arg(fcinfo, 1, "name", true, PSK_MAX_NAME_LEN);
	region = psk_text_arg(fcinfo, 2, "region", true, PSK_MAX_NAME_LEN);
	values[0] = CStringGetTextDatum(region);
	if (psk_execute(&find_region, values, NULL, false) == 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_NOT_FOUND),
						errmsg("unknown region \"%s\"", region)));
	values[1] = psk_result(0, 1, &isnull);
	values[0] = CStringGetTextDatum(name);
	if (psk_execute(&insert_country, values, NULL, false) == 0)
		ereport(ERROR, (errcode(ERRCODE_PSK_CONFLICT),
						errmsg("country \"%s\" exists already", name)));
	psk_return_tuptable(fcinfo);
	SPI_finish();
	return (Datum) 0;
}
