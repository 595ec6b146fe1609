/*
 * fuzz_router.c: request paths and methods through crm_route_match against every program's real
 * routing table (cgi-src/.../routes.h), then the ":id" parameter through crm_req_param_id.
 * Input: the method, a newline, the path (as DOCUMENT_URI gives it, a C string).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "router.h"
#include "util.h"

#include "cgi-src/auth/routes.h"
#include "cgi-src/dashboard/routes.h"
#include "cgi-src/events/routes.h"
#include "cgi-src/leads/routes.h"

/* The tables as the programs build them; the handlers are never called here. */
#define FUZZ_ROUTE(method, pattern, handler) {method, pattern, NULL},
static const struct crm_route routes[] = {CRM_AUTH_ROUTES(FUZZ_ROUTE) CRM_DASHBOARD_ROUTES(
    FUZZ_ROUTE) CRM_EVENTS_ROUTES(FUZZ_ROUTE) CRM_LEADS_ROUTES(FUZZ_ROUTE)};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* The path a match implies: the pattern with each ":name" replaced by its value. */
static void
check_params(const struct crm_route *r, const struct crm_req *req)
{
    char rebuilt[8192];
    const char *p = r->pattern;
    size_t o = 0;
    int k = 0;

    while (*p != '\0') {
        size_t plen = strcspn(p, "/");

        if (p[0] == ':' && plen > 1) {
            const char *v;

            fuzz_check(k < req->nparams, "a value for every parameter");
            v = req->param_val[k];
            fuzz_check(strlen(req->param_name[k]) == plen - 1 &&
                           memcmp(req->param_name[k], p + 1, plen - 1) == 0,
                       "parameter named as in the pattern");
            fuzz_check(v[0] != '\0' && strchr(v, '/') == NULL, "parameter is one segment");
            if (o + strlen(v) < sizeof(rebuilt)) {
                memcpy(rebuilt + o, v, strlen(v));
                o += strlen(v);
            }
            k++;
        } else if (o + plen < sizeof(rebuilt)) {
            memcpy(rebuilt + o, p, plen);
            o += plen;
        }
        p += plen;
        if (*p == '/' && o + 1 < sizeof(rebuilt))
            rebuilt[o++] = *p++;
    }
    rebuilt[o] = '\0';
    fuzz_check(k == req->nparams, "no parameter left over");
    if (strlen(req->path) < sizeof(rebuilt) - 1)
        fuzz_check(strcmp(rebuilt, req->path) == 0, "the match spells the path");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    struct crm_req req;
    struct crm_resp resp;
    const struct crm_route *found = NULL;
    char *method, *path;
    enum crm_err err;
    int64_t id;

    if (nl == NULL)
        return 0;
    method = fuzz_cstr(data, (size_t)(nl - data));
    path = fuzz_cstr(nl + 1, size - (size_t)(nl - data) - 1);
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.method = method;
    req.path = path;
    err = crm_route_match(routes, NROUTES, &req, &resp, &found);
    if (err == CRM_OK) {
        fuzz_check(found != NULL, "a match names its route");
        check_params(found, &req);
        if (crm_req_param_id(&req, "id", &id) == 0)
            fuzz_check(id > 0, "an id is positive");
    } else if (err == CRM_EMETHOD) {
        fuzz_check(strncmp(resp.headers, "Allow: ", 7) == 0, "a 405 says what is allowed");
    } else {
        fuzz_check(err == CRM_ENOTFOUND, "a 404 otherwise");
    }
    crm_resp_reset(&resp);
    crm_arena_reset(&req.arena);
    free(method);
    free(path);
    return 0;
}
