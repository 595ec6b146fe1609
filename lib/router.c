/* router.c: segment-by-segment matching of request paths against route patterns. */
#include "router.h"

#include <string.h>

/* Matches path against pattern; on success stores ":name" segments in req. 1 match, 0 not. */
static int
match(const char *pattern, const char *path, struct crm_req *req)
{
    int np = 0;

    while (*pattern != '\0' && *path != '\0') {
        size_t plen = strcspn(pattern, "/"), slen = strcspn(path, "/");

        if (pattern[0] == ':' && plen > 1) {
            if (slen == 0 || np >= CRM_MAX_PARAMS)
                return 0;
            req->param_name[np] = crm_arena_strndup(&req->arena, pattern + 1, plen - 1);
            req->param_val[np] = crm_arena_strndup(&req->arena, path, slen);
            if (req->param_name[np] == NULL || req->param_val[np] == NULL)
                return 0;
            np++;
        } else if (plen != slen || memcmp(pattern, path, plen) != 0) {
            return 0;
        }
        pattern += plen;
        path += slen;
        if (*pattern == '/' && *path == '/') {
            pattern++;
            path++;
        } else if (*pattern != *path) {
            return 0;
        }
    }
    if (*pattern != '\0' || *path != '\0')
        return 0;
    req->nparams = np;
    return 1;
}

static void
allow_add(char *allow, size_t sz, const char *method)
{
    size_t len = strlen(allow), mlen = strlen(method);

    if (strstr(allow, method) != NULL || len + mlen + 3 > sz)
        return;
    if (len > 0) {
        memcpy(allow + len, ", ", 2);
        len += 2;
    }
    memcpy(allow + len, method, mlen + 1);
}

/* HEAD is GET without the body (RFC 9110 9.3.2): wherever GET is allowed, HEAD is too. */
static int
method_matches(const char *route, const char *method)
{
    return strcmp(route, method) == 0 || (strcmp(route, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

enum crm_err
crm_route_match(const struct crm_route *routes, size_t n, struct crm_req *req,
                struct crm_resp *resp, const struct crm_route **out)
{
    char allow[64] = "";

    for (size_t i = 0; i < n; i++) {
        if (!match(routes[i].pattern, req->path, req))
            continue;
        if (method_matches(routes[i].method, req->method)) {
            *out = &routes[i];
            return CRM_OK;
        }
        allow_add(allow, sizeof(allow), routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0)
            allow_add(allow, sizeof(allow), "HEAD");
    }
    if (allow[0] == '\0')
        return CRM_ENOTFOUND;
    crm_resp_header(resp, "Allow", allow);
    return CRM_EMETHOD;
}
