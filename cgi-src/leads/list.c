/* list.c: GET /api/leads: paging, filters and sort, all checked before any SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cursor.h"
#include "db.h"
#include "handlers.h"
#include "util.h"
#include "valid.h"

/*
 * The work a request may cost, whatever the table's size: the total is counted up to
 * COUNT_BOUND rows (past it, page.total_exact is false), and offset goes up to OFFSET_MAX
 * (deeper pages are reached with page.next_cursor). docs/API.md "Paging".
 */
#define COUNT_BOUND 1000
#define OFFSET_MAX 10000
#define NFILTERS 7

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

/*
 * q -> a LIKE pattern matching it anywhere in leads.search (lower-cased in SQL), its own % _ \
 * taken literally. A control character is refused: the search column separates its fields with
 * one, so a match never spans two fields.
 */
static const char *
like_pattern(struct crm_req *req, const char *q)
{
    char *out, *p;

    if (crm_utf8_len(q) > 200 || (out = crm_arena_alloc(&req->arena, 2 * strlen(q) + 3)) == NULL)
        return NULL;
    p = out;
    *p++ = '%';
    for (; *q != '\0'; q++) {
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            return NULL;
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
    (void)req;
    return crm_valid_enum(s, strlen(s), sorts) ? s : NULL;
}

enum crm_err
lead_filters(struct crm_req *req, const char **params, const char **sort)
{
    enum crm_err err;

    params[0] = req->who.owner;
    if ((err = filter(req, "status", &params[1], status_array)) != CRM_OK ||
        (err = filter(req, "source", &params[2], check_source)) != CRM_OK ||
        (err = filter(req, "owner_id", &params[3], check_id)) != CRM_OK ||
        (err = filter(req, "q", &params[4], like_pattern)) != CRM_OK ||
        (err = crm_req_time(req, "created_from", 0, &params[5])) != CRM_OK ||
        (err = crm_req_time(req, "created_to", 1, &params[6])) != CRM_OK ||
        (err = filter(req, "sort", sort, check_sort)) != CRM_OK)
        return err;
    if (*sort == NULL)
        *sort = "-created_at";
    return CRM_OK;
}

const char *
lead_sort_stmt(struct crm_req *req, const char *prefix, const char *sort)
{
    size_t n = strlen(prefix) + strlen(sort) + 2;
    char *name = crm_arena_alloc(&req->arena, n);

    if (name != NULL)
        snprintf(name, n, "%s:%s", prefix, sort);
    return name;
}

/*
 * The query a cursor pages, which its MAC binds it to: the sort and every filter (NULL marked
 * apart from any value), separated by a byte no value holds.
 */
static const char *
cursor_bind(struct crm_req *req, const char *stmt, const char *const *params)
{
    size_t n = strlen(stmt) + 1;
    char *out;

    for (int i = 0; i < NFILTERS; i++)
        n += (params[i] == NULL ? 1 : strlen(params[i])) + 1;
    if ((out = crm_arena_alloc(&req->arena, n)) == NULL)
        return NULL;
    strcpy(out, stmt);
    for (int i = 0; i < NFILTERS; i++) {
        strcat(out, "\x1f");
        strcat(out, params[i] == NULL ? "\x1e" : params[i]);
    }
    return out;
}

/*
 * Where the page starts: params[8] (offset) and, from a cursor, params[9] and [10]; NULL, or
 * the message of the 400 that refuses the request.
 */
static const char *
page_start(struct crm_req *req, long offset, const char *bind, const char **params, char *obuf,
           size_t osz)
{
    const char *cursor;

    params[9] = params[10] = NULL;
    if (crm_req_query(req, "cursor", &cursor) != CRM_OK)
        return "cursor is malformed";
    if (cursor != NULL && offset != 0)
        return "cursor and offset cannot be combined: a cursor page starts after its cursor";
    if (cursor != NULL &&
        crm_cursor_read((const unsigned char *)req->cfg->jwt_secret, req->cfg->jwt_secret_len, bind,
                        cursor, &req->arena, &params[9], &params[10]) != 0)
        return "cursor is invalid, or was made for another sort or other filters";
    if (offset > OFFSET_MAX)
        return "offset is at most 10000: page further with cursor (page.next_cursor)";
    snprintf(obuf, osz, "%ld", offset);
    params[8] = obuf;
    return NULL;
}

/*
 * A page's rows as a list statement answers them: from column col on, each lead's sort key and
 * id; the page's and the one past it, if any.
 */
struct page_rows {
    PGresult *res;
    int col;
};

/* Adds page.total_exact, and page.next_cursor (null on the last page) from the row past it. */
static enum crm_err
page_extend(struct crm_req *req, cJSON *body, const PGresult *count, struct page_rows rows,
            long limit, const char *bind)
{
    cJSON *page = cJSON_GetObjectItemCaseSensitive(body, "page");
    char cursor[CRM_CURSOR_MAX];
    int last = (int)limit - 1;

    if (cJSON_AddBoolToObject(page, "total_exact", *PQgetvalue(count, 0, 1) == 't') == NULL)
        return CRM_ENOMEM;
    if (PQntuples(rows.res) <= limit)
        return cJSON_AddNullToObject(page, "next_cursor") == NULL ? CRM_ENOMEM : CRM_OK;
    if (crm_cursor_make((const unsigned char *)req->cfg->jwt_secret, req->cfg->jwt_secret_len, bind,
                        PQgetvalue(rows.res, last, rows.col),
                        PQgetvalue(rows.res, last, rows.col + 1), cursor, sizeof(cursor)) != 0 ||
        cJSON_AddStringToObject(page, "next_cursor", cursor) == NULL)
        return CRM_ENOMEM;
    return CRM_OK;
}

/*
 * The total and the page's rows, by the plan that bounds their cost (lib/db.c LEAD_LIST). A
 * list counts, then reads its page by lead_few when the count found every match (at most its
 * bound), else by lead_list. A search (params[4]) counts and reads a page of every match in
 * one statement, lead_search; with more matches it walks the head of the sort's order, and
 * gathers its matches after all when that head holds too few.
 */
static enum crm_err
page_rows(struct crm_req *req, const char *sort, long limit, const char **params, PGresult **count,
          struct page_rows *rows)
{
    int search = params[4] != NULL, exact;
    const char *stmt = search ? lead_sort_stmt(req, "lead_search", sort) : "lead_count";
    char *lbuf = crm_arena_alloc(&req->arena, 21), *cbuf = crm_arena_alloc(&req->arena, 21);
    enum crm_err err;

    if (stmt == NULL || lbuf == NULL || cbuf == NULL)
        return CRM_ENOMEM;
    /* The count's bound, + 1 to tell whether there are more; the list's limit, + 1 to tell
     * whether a next page follows. lead_search takes both, as $8 and $12. */
    snprintf(cbuf, 21, "%d", COUNT_BOUND + 1);
    snprintf(lbuf, 21, "%ld", limit + 1);
    params[7] = search ? lbuf : cbuf;
    params[11] = cbuf;
    if ((err = crm_db_exec(req->db, stmt, search ? 12 : 8, params, count)) != CRM_OK)
        return err;
    if ((exact = *PQgetvalue(*count, 0, 1) == 't') && search) {
        *rows = (struct page_rows){*count, 2};
        return CRM_OK;
    }
    params[7] = lbuf;
    if ((stmt = lead_sort_stmt(req,
                               exact    ? "lead_few"
                               : search ? "lead_walk"
                                        : "lead_list",
                               sort)) == NULL)
        return CRM_ENOMEM;
    err = crm_db_exec(req->db, stmt, 11, params, &rows->res);
    if (err != CRM_OK || !search || PQntuples(rows->res) > limit)
        return err;
    /* The head of the order held too few matches for the page (or this is the last page). */
    PQclear(rows->res);
    rows->res = NULL;
    if ((stmt = lead_sort_stmt(req, "lead_few", sort)) == NULL)
        return CRM_ENOMEM;
    return crm_db_exec(req->db, stmt, 11, params, &rows->res);
}

/*
 * The leads of the page's rows (not the one past it), by lead_page from their ids; own is the
 * row filter, applied again.
 */
static enum crm_err
page_leads(struct crm_req *req, struct page_rows rows, long limit, const char *own, PGresult **out)
{
    int n = PQntuples(rows.res) < limit ? PQntuples(rows.res) : (int)limit;
    char *ids = crm_arena_alloc(&req->arena, (size_t)n * 21 + 1), *p = ids;
    const char *params[2] = {ids, own};

    if (ids == NULL)
        return CRM_ENOMEM;
    *p = '\0';
    for (int i = 0; i < n && !PQgetisnull(rows.res, i, rows.col + 1); i++)
        p += sprintf(p, "%s%s", i > 0 ? "," : "", PQgetvalue(rows.res, i, rows.col + 1));
    return crm_db_exec(req->db, "lead_page", 2, params, out);
}

/* GET /api/leads?limit&offset|cursor&status&source&owner_id&q&created_from&created_to&sort */
int
leads_list(struct crm_req *req, struct crm_resp *resp)
{
    char obuf[21];
    const char *params[12], *sort, *stmt, *bind, *refused;
    PGresult *count = NULL, *leads = NULL;
    struct page_rows rows = {NULL, 0};
    cJSON *body = NULL;
    long limit, offset;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = crm_req_page(req, &limit, &offset)) != CRM_OK ||
        (err = lead_filters(req, params, &sort)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((stmt = lead_sort_stmt(req, "lead_list", sort)) == NULL ||
        (bind = cursor_bind(req, stmt, params)) == NULL)
        return crm_resp_error(resp, CRM_ENOMEM);
    if ((refused = page_start(req, offset, bind, params, obuf, sizeof(obuf))) != NULL)
        return crm_resp_errorf(resp, CRM_EQUERY, "%s", refused);
    if ((err = page_rows(req, sort, limit, params, &count, &rows)) == CRM_OK)
        err = page_leads(req, rows, limit, params[0], &leads);
    if (err == CRM_OK &&
        ((body = crm_db_page_json(count, leads, 0, limit, offset, crm_db_json)) == NULL ||
         (err = page_extend(req, body, count, rows, limit, bind)) != CRM_OK))
        err = CRM_ENOMEM;
    PQclear(leads);
    if (rows.res != count)
        PQclear(rows.res);
    PQclear(count);
    if (err != CRM_OK) {
        cJSON_Delete(body);
        return crm_resp_error(resp, err);
    }
    return crm_resp_json(resp, 200, body);
}
