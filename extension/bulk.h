/*
 * bulk.h
 *		The handlers of the CSV routes (bulk.c), for the route table
 *		(http_routes.c).
 */
#ifndef PSK_BULK_H
#define PSK_BULK_H

#include "http.h"

extern void route_codes_import(HttpRequest *req, JsonOut *out);
extern void route_codes_export(HttpRequest *req, JsonOut *out);
extern void route_logs_export(HttpRequest *req, JsonOut *out);

#endif /* PSK_BULK_H */
