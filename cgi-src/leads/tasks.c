/*
 * tasks.c: follow-up tasks on leads. A task belongs to a lead and to the user who is to do it
 * (default: the lead's owner). Row security is in SQL (lib/db.c TASK_OWN_2): a SALES_EXECUTIVE
 * sees and changes the tasks on its own leads and the tasks assigned to it, and assigns tasks
 * to itself only; ADMIN and MANAGER see and assign all. Every write writes its task.* event in
 * its transaction; completing one also writes a TASK_COMPLETED activity on the lead. Reminders
 * are crm-mailer's (src/mailer.c).
 */
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

/* The editable members of a Task; title and due_at are required on create only. */
#define TASK_RULES(required)                                                                       \
    {"title", CRM_F_STRING, (required) | CRM_F_TRIM, 1, 200, NULL},                                \
        {"notes", CRM_F_STRING, CRM_F_NULLABLE, 0, 10000, NULL},                                   \
        {"due_at", CRM_F_TIME, (required), 0, 0, NULL},                                            \
    {                                                                                              \
        "user_id", CRM_F_ID, 0, 0, 0, NULL                                                         \
    }

/* GET /api/tasks?filter= */
static const char *const task_filters[] = {"open", "upcoming", "overdue", "today",
                                           "done", "all",      NULL};
static const char *const task_key[] = {"task", "activity"};

/*
 * The body's user_id (the assignee) into buf and *user, or *user NULL when it has none. A
 * SALES_EXECUTIVE may name itself only: CRM_EFORBIDDEN.
 */
static enum crm_err
assignee(const struct crm_req *req, const cJSON *body, char *buf, size_t sz, const char **user)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "user_id");

    *user = NULL;
    if (!cJSON_IsNumber(u))
        return CRM_OK;
    crm_fmt_id(buf, sz, (int64_t)u->valuedouble);
    *user = buf;
    if (req->who.role == CRM_ROLE_SALES && strcmp(buf, req->who.idstr) != 0)
        return CRM_EFORBIDDEN;
    return CRM_OK;
}

/* POST /api/leads/:id/tasks {"title", "due_at", "notes"?, "user_id"?} */
int
tasks_create(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {TASK_RULES(CRM_F_REQUIRED)};
    char user[21], location[64];
    const char *params[5];
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    char *text = NULL;
    enum crm_err err;
    int64_t id;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK && crm_req_param_id(req, "id", &id) != 0)
        err = CRM_ENOTFOUND;
    if (err == CRM_OK)
        err = assignee(req, body, user, sizeof(user), &params[3]);
    if (err == CRM_OK && (text = cJSON_PrintUnformatted(body)) == NULL)
        err = CRM_ENOMEM;
    cJSON_Delete(body);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    params[0] = req->param_val[0];
    params[1] = req->who.owner;
    params[2] = text;
    params[4] = req->who.idstr;
    err = crm_db_exec(req->db, "task_create", 5, params, &res);
    free(text);
    if (err == CRM_OK && PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    if (err == CRM_OK && PQgetisnull(res, 0, 1)) { /* the lead, but no task: no such assignee */
        PQclear(res);
        return crm_resp_invalid_field(resp, "user_id", "must be an active user");
    }
    if (err == CRM_OK) {
        snprintf(location, sizeof(location), "/api/tasks/%s", PQgetvalue(res, 0, 1));
        crm_resp_header(resp, "Location", location);
        crm_log(CRM_LOG_INFO, req, "task %s created on lead %s", PQgetvalue(res, 0, 1), params[0]);
    }
    return lead_respond(resp, 201, err, res, task_key, 1);
}

/* GET /api/leads/:id/tasks?limit&offset: a lead's tasks (the caller must see the lead). */
int
tasks_of_lead(struct crm_req *req, struct crm_resp *resp)
{
    char lbuf[21], obuf[21];
    const char *params[4] = {NULL, NULL, lbuf, obuf};
    PGresult *res = NULL;
    long limit, offset;
    enum crm_err err;
    int64_t id;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = crm_req_page(req, &limit, &offset)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_param_id(req, "id", &id) != 0)
        return crm_resp_error(resp, CRM_ENOTFOUND);
    params[0] = req->param_val[0];
    params[1] = req->who.owner;
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    if ((err = crm_db_exec(req->db, "task_lead_page", 4, params, &res)) == CRM_OK &&
        PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    return crm_resp_page(resp, err, res, limit, offset);
}

/*
 * GET /api/tasks?filter&user_id&limit&offset: the tasks assigned to the caller, or, for ADMIN
 * and MANAGER, to user_id. A SALES_EXECUTIVE asking for another user's is 403.
 */
int
tasks_mine(struct crm_req *req, struct crm_resp *resp)
{
    char lbuf[21], obuf[21];
    const char *params[5] = {NULL, NULL, NULL, lbuf, obuf}, *user;
    PGresult *res = NULL;
    long limit, offset;
    enum crm_err err;
    int64_t id = 0;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = crm_req_page(req, &limit, &offset)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_query(req, "user_id", &user) != CRM_OK ||
        (user != NULL && crm_parse_id(user, &id) != 0))
        return crm_resp_errorf(resp, CRM_EQUERY, "user_id must be a user's id");
    if (crm_req_query(req, "filter", &params[2]) != CRM_OK ||
        (params[2] != NULL && !crm_valid_enum(params[2], strlen(params[2]), task_filters)))
        return crm_resp_errorf(resp, CRM_EQUERY,
                               "filter must be one of open, upcoming, overdue, today, done, all");
    if (user != NULL && req->who.role == CRM_ROLE_SALES && id != req->who.id)
        return crm_resp_error(resp, CRM_EFORBIDDEN);
    params[0] = user != NULL ? user : req->who.idstr;
    params[1] = req->who.owner;
    if (params[2] == NULL)
        params[2] = "open";
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    err = crm_db_exec(req->db, "task_page", 5, params, &res);
    return crm_resp_page(resp, err, res, limit, offset);
}

/* GET /api/tasks/:id */
int
tasks_get(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[2];
    PGresult *res = NULL;
    enum crm_err err;
    int64_t id;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_param_id(req, "id", &id) != 0)
        return crm_resp_error(resp, CRM_ENOTFOUND);
    params[0] = req->param_val[0];
    params[1] = req->who.owner;
    err = crm_db_exec(req->db, "task_get", 2, params, &res);
    if (err == CRM_OK && PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    return lead_respond(resp, 200, err, res, task_key, 1);
}

/* Opens the transaction of a write to task :id; *done says whether it is done. */
static enum crm_err
task_begin(struct crm_req *req, const char **id, int *done)
{
    PGresult *row;
    enum crm_err err = write_begin(req, "task_lock", id, &row);

    if (err == CRM_OK) {
        *done = *PQgetvalue(row, 0, 1) == 't';
        PQclear(row);
    }
    return err;
}

/* PATCH /api/tasks/:id: the members present change; notes null clears them. */
int
tasks_update(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {TASK_RULES(0)};
    const char *params[3], *id, *user;
    char ubuf[21];
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    char *text = NULL;
    enum crm_err err;
    int done;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK && body->child == NULL) {
        err = CRM_EINVAL;
        fields = cJSON_CreateObject();
        cJSON_AddStringToObject(fields, "body", "has no field to change");
    }
    if (err == CRM_OK)
        err = assignee(req, body, ubuf, sizeof(ubuf), &user);
    if (err == CRM_OK && (text = cJSON_PrintUnformatted(body)) == NULL)
        err = CRM_ENOMEM;
    cJSON_Delete(body);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    if ((err = task_begin(req, &id, &done)) == CRM_OK) {
        params[0] = id;
        params[1] = text;
        params[2] = req->who.idstr;
        err = lead_commit(req, "task_update", 3, params, &res);
    }
    free(text);
    if (err == CRM_EINVAL)
        return crm_resp_invalid_field(resp, "user_id", "must be an active user");
    return lead_respond(resp, 200, err, res, task_key, 1);
}

/*
 * Completes (stmt task_complete) or reopens (task_reopen) task :id. A task already so is answered
 * as it is, with activity null: nothing is written.
 */
static int
set_done(struct crm_req *req, struct crm_resp *resp, const char *stmt, int to_done)
{
    const char *params[2], *id;
    PGresult *res = NULL;
    enum crm_err err;
    int done;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((err = task_begin(req, &id, &done)) != CRM_OK)
        return crm_resp_error(resp, err);
    params[0] = id;
    if (done == to_done) {
        params[1] = req->who.owner;
        if ((err = crm_db_exec(req->db, "task_get", 2, params, &res)) == CRM_OK)
            err = lead_end(req);
        else
            crm_db_rollback(req->db);
    } else {
        params[1] = req->who.idstr;
        err = lead_commit(req, stmt, 2, params, &res);
        if (err == CRM_OK)
            crm_log(CRM_LOG_INFO, req, "task %s %s", id, to_done ? "completed" : "reopened");
    }
    /* Only a completion writes an activity: task_complete's column 1. */
    return change_respond(resp, err, res, task_key, to_done && !done);
}

/* POST /api/tasks/:id/complete: done now; a TASK_COMPLETED activity on the lead's timeline. */
int
tasks_complete(struct crm_req *req, struct crm_resp *resp)
{
    return set_done(req, resp, "task_complete", 1);
}

/* POST /api/tasks/:id/reopen */
int
tasks_reopen(struct crm_req *req, struct crm_resp *resp)
{
    return set_done(req, resp, "task_reopen", 0);
}

/* DELETE /api/tasks/:id */
int
tasks_delete(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[2], *id;
    PGresult *res = NULL;
    enum crm_err err;
    int done;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((err = task_begin(req, &id, &done)) != CRM_OK)
        return crm_resp_error(resp, err);
    params[0] = id;
    params[1] = req->who.idstr;
    if ((err = lead_commit(req, "task_delete", 2, params, &res)) != CRM_OK)
        return crm_resp_error(resp, err);
    PQclear(res);
    crm_log(CRM_LOG_INFO, req, "task %s deleted", id);
    return crm_resp_empty(resp, 204);
}
