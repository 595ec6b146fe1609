/*
 * write.c: the one shape of every change to an existing lead or task: lock, check If-Match,
 * write, commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "handlers.h"
#include "util.h"

enum crm_err
write_begin(struct crm_req *req, const char *stmt, const char **id, PGresult **row)
{
    const char *params[2];
    long long want;
    int64_t num;
    enum crm_err err;
    int cond = crm_req_if_match(req, &want);

    *row = NULL;
    if (crm_req_param_id(req, "id", &num) != 0)
        return CRM_ENOTFOUND;
    *id = params[0] = req->param_val[0];
    params[1] = req->who.owner;
    if ((err = crm_db_begin(req->db)) != CRM_OK)
        return err;
    if ((err = crm_db_exec(req->db, stmt, 2, params, row)) == CRM_OK) {
        if (PQntuples(*row) == 0)
            err = CRM_ENOTFOUND;
        else if (cond < 0 || (cond > 0 && want != strtoll(PQgetvalue(*row, 0, 0), NULL, 10)))
            err = CRM_EPRECOND;
    }
    if (err != CRM_OK) {
        crm_db_rollback(req->db);
        PQclear(*row);
        *row = NULL;
    }
    return err;
}

enum crm_err
lead_begin(struct crm_req *req, struct lead_lock *lock)
{
    PGresult *res;
    enum crm_err err = write_begin(req, "lead_lock", &lock->id, &res);

    if (err == CRM_OK) {
        snprintf(lock->status, sizeof(lock->status), "%s", PQgetvalue(res, 0, 1));
        lock->owner = PQgetisnull(res, 0, 2) ? 0 : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        PQclear(res);
    }
    return err;
}

enum crm_err
lead_finish(struct crm_req *req, enum crm_err err, PGresult **res)
{
    if (err == CRM_OK && PQntuples(*res) == 0)
        err = CRM_EINVAL;
    if (err == CRM_OK)
        err = crm_db_commit(req->db);
    else
        crm_db_rollback(req->db);
    if (err != CRM_OK && *res != NULL) {
        PQclear(*res);
        *res = NULL;
    }
    return err;
}

enum crm_err
lead_commit(struct crm_req *req, const char *name, int n, const char *const *params, PGresult **res)
{
    return lead_finish(req, crm_db_exec(req->db, name, n, params, res), res);
}

enum crm_err
lead_end(struct crm_req *req)
{
    return crm_db_commit(req->db);
}

const char *const lead_change_keys[] = {"lead", "activity"};

int
lead_unchanged(struct crm_req *req, struct crm_resp *resp, const struct lead_lock *lock)
{
    const char *params[2] = {lock->id, req->who.idstr};
    PGresult *res = NULL;
    enum crm_err err = crm_db_exec(req->db, "lead_get", 2, params, &res);

    if (err == CRM_OK)
        err = lead_end(req);
    else
        crm_db_rollback(req->db);
    return change_respond(resp, err, res, lead_change_keys, 0);
}

int
change_respond(struct crm_resp *resp, enum crm_err err, PGresult *res, const char *const *keys,
               int activity)
{
    cJSON *obj = NULL;

    if (err == CRM_OK &&
        ((obj = crm_db_json_object(res, 0, keys, 1)) == NULL ||
         !cJSON_AddItemToObject(obj, keys[1],
                                activity ? crm_db_json(res, 0, 1) : cJSON_CreateNull())))
        err = CRM_ENOMEM;
    if (err == CRM_OK)
        lead_etag(resp, res);
    PQclear(res);
    if (err != CRM_OK) {
        cJSON_Delete(obj);
        return crm_resp_error(resp, err);
    }
    return crm_resp_json(resp, 200, obj);
}

void
lead_etag(struct crm_resp *resp, const PGresult *res)
{
    cJSON *lead = cJSON_Parse(PQgetvalue(res, 0, 0));
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(lead, "version");
    char tag[32];

    if (cJSON_IsNumber(version)) {
        snprintf(tag, sizeof(tag), "\"%.0f\"", version->valuedouble);
        (void)crm_resp_header(resp, "ETag", tag);
    }
    cJSON_Delete(lead);
}

int
lead_respond(struct crm_resp *resp, int status, enum crm_err err, PGresult *res,
             const char *const *keys, int n)
{
    cJSON *obj = NULL;

    if (err == CRM_OK && (obj = crm_db_json_object(res, 0, keys, n)) == NULL)
        err = CRM_ENOMEM;
    if (err == CRM_OK && (strcmp(keys[0], "lead") == 0 || strcmp(keys[0], "task") == 0))
        lead_etag(resp, res);
    PQclear(res);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    return crm_resp_json(resp, status, obj);
}
