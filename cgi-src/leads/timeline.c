/* timeline.c: status changes, assignment and activities: each writes the lead's timeline. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "db.h"
#include "handlers.h"
#include "log.h"
#include "util.h"
#include "valid.h"

/* PATCH /api/leads/:id/status {"status", "note"?} */
int
leads_status(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {
        {"status", CRM_F_ENUM, CRM_F_REQUIRED, 0, 0, lead_statuses},
        {"note", CRM_F_STRING, CRM_F_NULLABLE, 1, 10000, NULL},
    };
    struct lead_lock lock;
    const char *params[4];
    cJSON *body = NULL, *fields = NULL, *note;
    PGresult *res = NULL;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK)
        err = lead_begin(req, &lock);
    if (err != CRM_OK) {
        cJSON_Delete(body);
        return crm_resp_fail(resp, err, fields);
    }
    params[0] = lock.id;
    params[1] = cJSON_GetObjectItemCaseSensitive(body, "status")->valuestring;
    note = cJSON_GetObjectItemCaseSensitive(body, "note");
    params[2] = cJSON_IsString(note) ? note->valuestring : NULL;
    params[3] = req->who.idstr;
    if (strcmp(lock.status, params[1]) == 0) {
        cJSON_Delete(body);
        return lead_unchanged(req, resp, &lock);
    }
    err = lead_commit(req, "lead_status", 4, params, &res);
    if (err == CRM_OK)
        crm_log(CRM_LOG_INFO, req, "lead %s: %s -> %s", lock.id, lock.status, params[1]);
    cJSON_Delete(body);
    return lead_respond(resp, 200, err, res, lead_change_keys, 2);
}

/* PATCH /api/leads/:id/assign {"owner_id"} (ADMIN, MANAGER) */
int
leads_assign(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {
        {"owner_id", CRM_F_ID, CRM_F_REQUIRED, 0, 0, NULL},
    };
    struct lead_lock lock;
    char owner[21];
    const char *params[3] = {NULL, owner, req->who.idstr};
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    enum crm_err err;
    int64_t to;

    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN | CRM_ROLE_MANAGER)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    to = (int64_t)cJSON_GetObjectItemCaseSensitive(body, "owner_id")->valuedouble;
    cJSON_Delete(body);
    crm_fmt_id(owner, sizeof(owner), to);
    if ((err = lead_begin(req, &lock)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (lock.owner == to)
        return lead_unchanged(req, resp, &lock);
    params[0] = lock.id;
    err = lead_commit(req, "lead_assign", 3, params, &res);
    if (err == CRM_EINVAL)
        return crm_resp_invalid_field(resp, "owner_id", "must be an active user");
    if (err == CRM_OK)
        crm_log(CRM_LOG_INFO, req, "lead %s assigned to %s", lock.id, owner);
    return lead_respond(resp, 200, err, res, lead_change_keys, 2);
}

/* POST /api/leads/:id/activity {"type", "content", "occurred_at"?} */
int
activity_add(struct crm_req *req, struct crm_resp *resp)
{
    static const char *const types[] = {"NOTE", "CALL", "MEETING", "EMAIL", NULL};
    static const struct crm_field rules[] = {
        {"type", CRM_F_ENUM, CRM_F_REQUIRED, 0, 0, types},
        {"content", CRM_F_STRING, CRM_F_REQUIRED, 1, 10000, NULL},
        {"occurred_at", CRM_F_TIME, CRM_F_NULLABLE, 0, 0, NULL},
    };
    static const char *const key[] = {"activity"};
    const char *params[6];
    cJSON *body = NULL, *fields = NULL, *at;
    PGresult *res = NULL;
    enum crm_err err;
    int64_t id;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK && crm_req_param_id(req, "id", &id) != 0)
        err = CRM_ENOTFOUND;
    if (err != CRM_OK) {
        cJSON_Delete(body);
        return crm_resp_fail(resp, err, fields);
    }
    params[0] = req->param_val[0];
    params[1] = req->who.owner;
    params[2] = cJSON_GetObjectItemCaseSensitive(body, "type")->valuestring;
    params[3] = cJSON_GetObjectItemCaseSensitive(body, "content")->valuestring;
    at = cJSON_GetObjectItemCaseSensitive(body, "occurred_at");
    params[4] = cJSON_IsString(at) ? at->valuestring : NULL;
    params[5] = req->who.idstr;
    err = crm_db_exec(req->db, "activity_add", 6, params, &res);
    cJSON_Delete(body);
    if (err == CRM_OK && PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    return lead_respond(resp, 201, err, res, key, 1);
}

/* Every activity type, and the fields whose changes activities record (crm_lead_changes). */
static const char *const activity_types[] = {"NOTE",           "CALL",       "MEETING", "EMAIL",
                                             "STATUS_CHANGE",  "ASSIGNMENT", "CREATED", "UPDATED",
                                             "TASK_COMPLETED", NULL};
static const char *const history_fields[] = {"name",   "email", "phone", "company",  "source",
                                             "status", "value", "notes", "owner_id", NULL};

/* Query parameter name, absent or one of values; anything else is a 400. */
static enum crm_err
query_enum(struct crm_req *req, const char *name, const char *const *values, const char **out)
{
    if (crm_req_query(req, name, out) != CRM_OK ||
        (*out != NULL && !crm_valid_enum(*out, strlen(*out), values)))
        return CRM_EQUERY;
    return CRM_OK;
}

/* GET /api/leads/:id/activities?before_id=&limit=&type=&field=: the timeline, newest first. */
int
activity_list(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[6];
    char lbuf[21];
    long limit;
    int64_t id, before;
    PGresult *res = NULL;
    cJSON *root = NULL, *page;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_query(req, "before_id", &params[2]) != CRM_OK ||
        (params[2] != NULL && crm_parse_id(params[2], &before) != 0) ||
        crm_req_limit(req, 20, &limit) != CRM_OK ||
        query_enum(req, "type", activity_types, &params[4]) != CRM_OK ||
        query_enum(req, "field", history_fields, &params[5]) != CRM_OK)
        return crm_resp_error(resp, CRM_EQUERY);
    if (crm_req_param_id(req, "id", &id) != 0)
        return crm_resp_error(resp, CRM_ENOTFOUND);
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    params[0] = req->param_val[0];
    params[1] = req->who.owner;
    params[3] = lbuf;
    if ((err = crm_db_exec(req->db, "activity_page", 6, params, &res)) == CRM_OK &&
        PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    if (err == CRM_OK && ((root = cJSON_CreateObject()) == NULL ||
                          !cJSON_AddItemToObject(root, "data", crm_db_json(res, 0, 0)) ||
                          (page = cJSON_AddObjectToObject(root, "page")) == NULL ||
                          !cJSON_AddNumberToObject(page, "limit", (double)limit) ||
                          !cJSON_AddItemToObject(page, "next_before_id",
                                                 strtoll(PQgetvalue(res, 0, 1), NULL, 10) == limit
                                                     ? crm_db_json(res, 0, 2)
                                                     : cJSON_CreateNull())))
        err = CRM_ENOMEM;
    PQclear(res);
    if (err != CRM_OK) {
        cJSON_Delete(root);
        return crm_resp_error(resp, err);
    }
    return crm_resp_json(resp, 200, root);
}
