/* test_router.c: pattern matching, parameters, HEAD, 404 and 405 with Allow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "router.h"

static int
h_a(struct crm_req *req, struct crm_resp *resp)
{
    (void)req;
    (void)resp;
    return 1;
}

static int
h_b(struct crm_req *req, struct crm_resp *resp)
{
    (void)req;
    (void)resp;
    return 2;
}

static const struct crm_route routes[] = {
    {"GET", "/api/users", h_a},
    {"PATCH", "/api/users/:id", h_b},
    {"GET", "/api/leads/:id/activities", h_a},
    {"DELETE", "/api/users/:id", h_a},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Routes method path; allow gets the response's extra headers ("" or "Allow: ...\r\n"). */
static enum crm_err
route(struct crm_req *req, const char *method, const char *path, const struct crm_route **out,
      char *allow)
{
    struct crm_resp resp = {0};
    enum crm_err err;

    crm_arena_reset(&req->arena);
    req->method = method;
    req->path = path;
    err = crm_route_match(routes, NROUTES, req, &resp, out);
    memcpy(allow, resp.headers, resp.hlen + 1);
    return err;
}

static void
test_router_exact_match(void **state)
{
    struct crm_req req = {0};
    const struct crm_route *r = NULL;
    char allow[1024];

    (void)state;
    assert_int_equal(route(&req, "GET", "/api/users", &r, allow), CRM_OK);
    assert_ptr_equal(r, &routes[0]);
    assert_int_equal(req.nparams, 0);
    crm_arena_reset(&req.arena);
}

static void
test_router_param(void **state)
{
    struct crm_req req = {0};
    const struct crm_route *r = NULL;
    char allow[1024];
    int64_t id = 0;

    (void)state;
    assert_int_equal(route(&req, "GET", "/api/leads/42/activities", &r, allow), CRM_OK);
    assert_ptr_equal(r, &routes[2]);
    assert_int_equal(crm_req_param_id(&req, "id", &id), 0);
    assert_int_equal(id, 42);
    crm_arena_reset(&req.arena);
}

static void
test_router_param_not_id(void **state)
{
    struct crm_req req = {0};
    const struct crm_route *r = NULL;
    char allow[1024];
    int64_t id = 0;

    (void)state;
    assert_int_equal(route(&req, "PATCH", "/api/users/abc", &r, allow), CRM_OK);
    assert_int_equal(crm_req_param_id(&req, "id", &id), -1);
    crm_arena_reset(&req.arena);
}

static void
test_router_method_not_allowed_lists_allow(void **state)
{
    struct crm_req req = {0};
    const struct crm_route *r = NULL;
    char allow[1024];

    (void)state;
    assert_int_equal(route(&req, "GET", "/api/users/7", &r, allow), CRM_EMETHOD);
    assert_string_equal(allow, "Allow: PATCH, DELETE\r\n");
    assert_int_equal(route(&req, "HEAD", "/api/users/7", &r, allow), CRM_EMETHOD);
    assert_string_equal(allow, "Allow: PATCH, DELETE\r\n");
    /* A GET route allows HEAD too. */
    assert_int_equal(route(&req, "POST", "/api/leads/1/activities", &r, allow), CRM_EMETHOD);
    assert_string_equal(allow, "Allow: GET, HEAD\r\n");
    crm_arena_reset(&req.arena);
}

static void
test_router_head_takes_the_get_route(void **state)
{
    struct crm_req req = {0};
    const struct crm_route *r = NULL;
    char allow[1024];

    (void)state;
    assert_int_equal(route(&req, "HEAD", "/api/users", &r, allow), CRM_OK);
    assert_ptr_equal(r, &routes[0]);
    assert_string_equal(allow, "");
    crm_arena_reset(&req.arena);
}

static void
test_router_not_found(void **state)
{
    struct crm_req req = {0};
    const struct crm_route *r = NULL;
    char allow[1024];

    (void)state;
    assert_int_equal(route(&req, "GET", "/api/nope", &r, allow), CRM_ENOTFOUND);
    assert_int_equal(route(&req, "GET", "/api/users/", &r, allow), CRM_ENOTFOUND);
    assert_int_equal(route(&req, "GET", "/api/users/1/x", &r, allow), CRM_ENOTFOUND);
    assert_int_equal(route(&req, "GET", "/api/leads//activities", &r, allow), CRM_ENOTFOUND);
    assert_int_equal(route(&req, "GET", "/api", &r, allow), CRM_ENOTFOUND);
    crm_arena_reset(&req.arena);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_exact_match),
        cmocka_unit_test(test_router_param),
        cmocka_unit_test(test_router_param_not_id),
        cmocka_unit_test(test_router_method_not_allowed_lists_allow),
        cmocka_unit_test(test_router_head_takes_the_get_route),
        cmocka_unit_test(test_router_not_found),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
