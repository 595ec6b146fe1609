/*
 * fuzz_query.c: the query string (QUERY_STRING, a C string) through every reader the handlers
 * use: crm_req_query's URL decoding, crm_req_page and crm_req_limit, crm_req_time's bounds (RFC
 * 3339 or a date), ids through crm_parse_id, and enum lists (status=NEW,WON) item by item
 * through crm_valid_enum, as GET /api/leads, /api/users, /api/dashboard/... and
 * /api/leads/:id/activities read them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "util.h"
#include "valid.h"

static const char *const statuses[] = {"NEW",         "CONTACTED", "QUALIFIED", "PROPOSAL",
                                       "NEGOTIATION", "WON",       "LOST",      NULL};
static const char *const sorts[] = {"created_at",  "-created_at", "updated_at",
                                    "-updated_at", "value",       "-value",
                                    "name",        "-name",       NULL};

static void
check_page(struct crm_req *req)
{
    long limit = -1, offset = -1;

    if (crm_req_page(req, &limit, &offset) == CRM_OK)
        fuzz_check(limit >= 1 && limit <= 100 && offset >= 0 && offset <= 1000000000,
                   "page within its bounds");
    if (crm_req_limit(req, 5, &limit) == CRM_OK)
        fuzz_check(limit >= 1 && limit <= 100, "limit within its bounds");
}

/* A bound that is accepted is a full date-time the time parser takes (a date is expanded). */
static void
check_times(struct crm_req *req)
{
    static const char *const names[] = {"from", "to", "created_from", "created_to"};

    for (int i = 0; i < 4; i++) {
        const char *v = NULL;

        if (crm_req_time(req, names[i], i % 2, &v) == CRM_OK && v != NULL)
            fuzz_check(crm_valid_time(v, 0) == CRM_OK, "an accepted bound is a date-time");
    }
}

/* status=NEW,WON: every item of the list one of the statuses. */
static void
check_list(struct crm_req *req)
{
    const char *v = NULL;

    if (crm_req_query(req, "status", &v) != CRM_OK || v == NULL)
        return;
    for (const char *item = v;; item++) {
        size_t n = strcspn(item, ",");

        if (!crm_valid_enum(item, n, statuses))
            break;
        item += n;
        if (*item == '\0')
            break;
    }
}

/* The encoding of v that escapes every byte: decoding it gives v back. */
static void
check_roundtrip(const char *v)
{
    size_t n = strlen(v);
    char *q = malloc(3 * n + 3);
    struct crm_req req;
    const char *back = NULL;

    if (q == NULL)
        abort();
    memcpy(q, "q=", 2);
    for (size_t i = 0; i < n; i++)
        snprintf(q + 2 + 3 * i, 4, "%%%02X", (unsigned char)v[i]);
    q[2 + 3 * n] = '\0';
    memset(&req, 0, sizeof(req));
    req.query = q;
    fuzz_check(crm_req_query(&req, "q", &back) == CRM_OK && back != NULL && strcmp(back, v) == 0,
               "an escaped value decodes to itself");
    crm_arena_reset(&req.arena);
    free(q);
}

static void
check_values(struct crm_req *req)
{
    static const char *const names[] = {"q",    "source",       "owner_id",     "before_id",
                                        "sort", "access_token", "last_event_id"};
    int64_t id;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = NULL;

        if (crm_req_query(req, names[i], &v) != CRM_OK || v == NULL)
            continue;
        fuzz_check(crm_utf8_valid(v, strlen(v)), "a decoded value is UTF-8");
        if (crm_parse_id(v, &id) == 0)
            fuzz_check(id > 0 && strspn(v, "0123456789") == strlen(v), "an id is digits");
        (void)crm_valid_enum(v, strlen(v), sorts);
        if (i == 0)
            check_roundtrip(v);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crm_req req;
    char *query = fuzz_cstr(data, size);

    memset(&req, 0, sizeof(req));
    req.query = query;
    check_page(&req);
    check_times(&req);
    check_list(&req);
    check_values(&req);
    crm_arena_reset(&req.arena);
    free(query);
    return 0;
}
