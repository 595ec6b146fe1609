/* list.c: GET /api/leads: paging, filters and sort, all checked before any SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "db.h"
#include "handlers.h"
#include "util.h"
#include "valid.h"

static const char *const sorts[] = {"created_at",  "-created_at", "updated_at",
                                    "-updated_at", "value",       "-value",
                                    "name",        "-name",       NULL};

/* status=NEW,WON -> the array literal {NEW,WON}; every item must be a status. */
static const char *
status_array(struct crm_req *req, const char *s)
{
    size_t len = strlen(s);
    char *out = crm_arena_alloc(&req->arena, len + 3), *p = out;

    if (out == NULL)
        return NULL;
    *p++ = '{';
    for (const char *item = s;; item++) {
        size_t n = strcspn(item, ",");

        if (!crm_valid_enum(item, n, lead_statuses))
            return NULL;
        memcpy(p, item, n);
        p += n;
        item += n;
        if (*item == '\0')
            break;
        *p++ = ',';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

/* q -> an ILIKE pattern matching it anywhere, its own % _ \ taken literally. */
static const char *
like_pattern(struct crm_req *req, const char *q)
{
    char *out, *p;

    if (crm_utf8_len(q) > 200 || (out = crm_arena_alloc(&req->arena, 2 * strlen(q) + 3)) == NULL)
        return NULL;
    p = out;
    *p++ = '%';
    for (; *q != '\0'; q++) {
        if (*q == '%' || *q == '_' || *q == '\\')
            *p++ = '\\';
        *p++ = *q;
    }
    *p++ = '%';
    *p = '\0';
    return out;
}

/* Reads one query parameter through check; a present value it refuses is a 400. */
static enum crm_err
filter(struct crm_req *req, const char *name, const char **out,
       const char *(*check)(struct crm_req *, const char *))
{
    const char *v;

    *out = NULL;
    if (crm_req_query(req, name, &v) != CRM_OK)
        return CRM_EQUERY;
    if (v == NULL || (*v == '\0' && strcmp(name, "q") == 0))
        return CRM_OK;
    return (*out = check(req, v)) == NULL ? CRM_EQUERY : CRM_OK;
}

static const char *
check_source(struct crm_req *req, const char *s)
{
    (void)req;
    return crm_valid_enum(s, strlen(s), lead_sources) ? s : NULL;
}

static const char *
check_id(struct crm_req *req, const char *s)
{
    int64_t id;

    (void)req;
    return crm_parse_id(s, &id) == 0 ? s : NULL;
}

static const char *
check_sort(struct crm_req *req, const char *s)
{
    char *name;

    if (!crm_valid_enum(s, strlen(s), sorts) ||
        (name = crm_arena_alloc(&req->arena, strlen(s) + 11)) == NULL)
        return NULL;
    sprintf(name, "lead_list:%s", s);
    return name;
}

/* params[0..6] as the lead_list statements take them; *stmt the one for the sort. */
static enum crm_err
list_params(struct crm_req *req, const char **params, const char **stmt)
{
    enum crm_err err;

    params[0] = req->who.owner;
    if ((err = filter(req, "status", &params[1], status_array)) != CRM_OK ||
        (err = filter(req, "source", &params[2], check_source)) != CRM_OK ||
        (err = filter(req, "owner_id", &params[3], check_id)) != CRM_OK ||
        (err = filter(req, "q", &params[4], like_pattern)) != CRM_OK ||
        (err = crm_req_time(req, "created_from", 0, &params[5])) != CRM_OK ||
        (err = crm_req_time(req, "created_to", 1, &params[6])) != CRM_OK ||
        (err = filter(req, "sort", stmt, check_sort)) != CRM_OK)
        return err;
    if (*stmt == NULL)
        *stmt = "lead_list:-created_at";
    return CRM_OK;
}

/* GET /api/leads?limit&offset&status&source&owner_id&q&created_from&created_to&sort */
int
leads_list(struct crm_req *req, struct crm_resp *resp)
{
    char lbuf[21], obuf[21];
    const char *params[9], *stmt;
    PGresult *count = NULL, *rows = NULL;
    cJSON *body = NULL;
    long limit, offset;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = crm_req_page(req, &limit, &offset)) != CRM_OK ||
        (err = list_params(req, params, &stmt)) != CRM_OK)
        return crm_resp_error(resp, err);
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    params[7] = lbuf;
    params[8] = obuf;
    if ((err = crm_db_exec(req->db, "lead_count", 7, params, &count)) == CRM_OK &&
        (err = crm_db_exec(req->db, stmt, 9, params, &rows)) == CRM_OK &&
        (body = crm_db_page_json(count, rows, limit, offset, crm_db_json)) == NULL)
        err = CRM_ENOMEM;
    PQclear(count);
    PQclear(rows);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    return crm_resp_json(resp, 200, body);
}
