/* router.h: method + path pattern to handler, with 404 and 405 decided in one place. */
#ifndef CRM_ROUTER_H
#define CRM_ROUTER_H

#include <stddef.h>

#include "http.h"

typedef int (*crm_handler)(struct crm_req *req, struct crm_resp *resp);

/* A pattern is a path whose segments may be ":name", matching one non-empty segment. */
struct crm_route {
    const char *method;
    const char *pattern;
    crm_handler handler;
};

/* The entry of a routing table for one X(method, pattern, handler) of a program's routes.h. */
#define CRM_ROUTE(method, pattern, handler) {method, pattern, handler},

/*
 * Finds the route for req->method and req->path; a GET route answers HEAD too. Returns CRM_OK
 * with *out set and the ":name" segments stored in req's parameters; CRM_EMETHOD when the path
 * matches only under other methods, which it lists in resp's Allow header ("GET, HEAD, PATCH");
 * CRM_ENOTFOUND when no pattern matches the path.
 */
enum crm_err crm_route_match(const struct crm_route *routes, size_t n, struct crm_req *req,
                             struct crm_resp *resp, const struct crm_route **out);

#endif
