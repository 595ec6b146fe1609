/*
 * notifications.c: the caller's notification inbox. schema.sql fills it from the events, in each
 * event's transaction (crm_event_notifications says whom an event concerns); a notification's
 * id is its event's. Every statement reads the caller's own rows only, whatever its role: an
 * inbox is personal, and another user's notification is "not found", so ids do not leak.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cursor.h"
#include "db.h"
#include "handlers.h"
#include "util.h"

/* The query a cursor pages, which its MAC binds it to: the caller's inbox and the filter. */
static const char *
cursor_bind(struct crm_req *req, int unread)
{
    size_t n = strlen(req->who.idstr) + 32;
    char *bind = crm_arena_alloc(&req->arena, n);

    if (bind != NULL)
        snprintf(bind, n, "notifications\x1f%s\x1f%d", req->who.idstr, unread);
    return bind;
}

/* {"data": the first limit rows' column 0, "page": {limit, next_cursor}}; NULL: out of memory. */
static cJSON *
page_json(struct crm_req *req, const PGresult *rows, long limit, const char *bind)
{
    cJSON *body = cJSON_CreateObject(), *data, *page;
    char cursor[CRM_CURSOR_MAX];
    int n = PQntuples(rows);

    if (body == NULL || (data = cJSON_AddArrayToObject(body, "data")) == NULL ||
        (page = cJSON_AddObjectToObject(body, "page")) == NULL ||
        cJSON_AddNumberToObject(page, "limit", (double)limit) == NULL)
        goto oom;
    for (int i = 0; i < n && i < limit; i++)
        if (!cJSON_AddItemToArray(data, crm_db_json(rows, i, 0)))
            goto oom;
    /* The row past the page (the statement asks for one more) says there is a next one. */
    if (n <= limit && cJSON_AddNullToObject(page, "next_cursor") == NULL)
        goto oom;
    /* Its sort key is its id: the cursor holds the last row's id twice. */
    if (n > limit &&
        (crm_cursor_make((const unsigned char *)req->cfg->jwt_secret, req->cfg->jwt_secret_len,
                         bind, PQgetvalue(rows, (int)limit - 1, 1),
                         PQgetvalue(rows, (int)limit - 1, 1), cursor, sizeof(cursor)) != 0 ||
         cJSON_AddStringToObject(page, "next_cursor", cursor) == NULL))
        goto oom;
    return body;
oom:
    cJSON_Delete(body);
    return NULL;
}

/* GET /api/notifications?unread=1&limit&cursor: the caller's inbox, newest first. */
int
notifications_list(struct crm_req *req, struct crm_resp *resp)
{
    char lbuf[21];
    const char *params[3] = {NULL, lbuf, NULL}, *unread, *cursor, *bind, *key;
    PGresult *rows = NULL;
    cJSON *body = NULL;
    enum crm_err err;
    long limit;
    int only_unread;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = crm_req_limit(req, 20, &limit)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_query(req, "unread", &unread) != CRM_OK ||
        (unread != NULL && strcmp(unread, "0") != 0 && strcmp(unread, "1") != 0))
        return crm_resp_errorf(resp, CRM_EQUERY, "unread must be 1 (unread only) or 0 (all)");
    params[0] = req->who.idstr;
    only_unread = unread != NULL && *unread == '1';
    if ((bind = cursor_bind(req, only_unread)) == NULL)
        return crm_resp_error(resp, CRM_ENOMEM);
    if (crm_req_query(req, "cursor", &cursor) != CRM_OK ||
        (cursor != NULL &&
         crm_cursor_read((const unsigned char *)req->cfg->jwt_secret, req->cfg->jwt_secret_len,
                         bind, cursor, &req->arena, &key, &params[2]) != 0))
        return crm_resp_errorf(resp, CRM_EQUERY,
                               "cursor is invalid, or was made for another filter or user");
    snprintf(lbuf, sizeof(lbuf), "%ld", limit + 1);
    if ((err = crm_db_exec(req->db, only_unread ? "notification_unread_page" : "notification_page",
                           3, params, &rows)) == CRM_OK &&
        (body = page_json(req, rows, limit, bind)) == NULL)
        err = CRM_ENOMEM;
    PQclear(rows);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    return crm_resp_json(resp, 200, body);
}

/* Responds {name: the count in res} or with err; frees res. */
static int
count_respond(struct crm_resp *resp, enum crm_err err, PGresult *res, const char *name)
{
    cJSON *body = NULL;

    if (err == CRM_OK &&
        ((body = cJSON_CreateObject()) == NULL ||
         !cJSON_AddItemToObject(body, name, cJSON_CreateRaw(PQgetvalue(res, 0, 0)))))
        err = CRM_ENOMEM;
    PQclear(res);
    if (err != CRM_OK) {
        cJSON_Delete(body);
        return crm_resp_error(resp, err);
    }
    return crm_resp_json(resp, 200, body);
}

/* GET /api/notifications/unread-count: {"unread": N}. */
int
notifications_unread(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[1];
    PGresult *res = NULL;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    params[0] = req->who.idstr;
    err = crm_db_exec(req->db, "notification_unread", 1, params, &res);
    return count_respond(resp, err, res, "unread");
}

/* POST /api/notifications/:id/read: {"notification"}, read (again: as it was). */
int
notifications_read(struct crm_req *req, struct crm_resp *resp)
{
    static const char *const key[] = {"notification"};
    const char *params[2];
    PGresult *res = NULL;
    enum crm_err err;
    int64_t id;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_param_id(req, "id", &id) != 0)
        return crm_resp_error(resp, CRM_ENOTFOUND);
    params[0] = req->who.idstr;
    params[1] = req->param_val[0];
    if ((err = crm_db_exec(req->db, "notification_read", 2, params, &res)) == CRM_OK &&
        PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    return lead_respond(resp, 200, err, res, key, 1);
}

/*
 * POST /api/notifications/read-all?up_to=: every unread notification read, or those up to the
 * newest id the client has shown (so one that arrives meanwhile stays unread); {"marked": N}.
 */
int
notifications_read_all(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[2];
    PGresult *res = NULL;
    enum crm_err err;
    int64_t up_to;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_query(req, "up_to", &params[1]) != CRM_OK ||
        (params[1] != NULL && crm_parse_id(params[1], &up_to) != 0))
        return crm_resp_errorf(resp, CRM_EQUERY, "up_to must be a notification's id");
    params[0] = req->who.idstr;
    err = crm_db_exec(req->db, "notification_read_all", 2, params, &res);
    return count_respond(resp, err, res, "marked");
}
