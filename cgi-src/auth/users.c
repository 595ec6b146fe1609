/* users.c: GET /api/users (ADMIN, MANAGER) and PATCH /api/users/:id (ADMIN). */
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

/* GET /api/users?limit=&offset= */
int
users_list(struct crm_req *req, struct crm_resp *resp)
{
    char lbuf[21], obuf[21];
    const char *params[2] = {lbuf, obuf};
    PGresult *count = NULL, *rows = NULL;
    cJSON *body = NULL;
    long limit, offset;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN | CRM_ROLE_MANAGER)) != CRM_OK ||
        (err = crm_req_page(req, &limit, &offset)) != CRM_OK)
        return crm_resp_error(resp, err);
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    if ((err = crm_db_exec(req->db, "user_count", 0, NULL, &count)) == CRM_OK &&
        (err = crm_db_exec(req->db, "user_list", 2, params, &rows)) == CRM_OK &&
        (body = crm_db_page_json(count, rows, 0, limit, offset, crm_user_from_row)) == NULL)
        err = CRM_ENOMEM;
    PQclear(count);
    PQclear(rows);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    return crm_resp_json(resp, 200, body);
}

/* Whether body takes its target's ADMIN rights away, if it has them: another role, or inactive. */
static int
takes_admin_away(const cJSON *body)
{
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(body, "role");

    return (cJSON_IsString(role) && strcmp(role->valuestring, "ADMIN") != 0) ||
           cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "active"));
}

/* The 422 fields of the rule that an active ADMIN must remain, on the member that breaks it. */
static cJSON *
admin_rule_fields(const cJSON *body, const char *message)
{
    cJSON *fields = cJSON_CreateObject();
    const char *name =
        cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "active")) ? "active" : "role";

    if (cJSON_AddStringToObject(fields, name, message) == NULL) {
        cJSON_Delete(fields);
        return NULL;
    }
    return fields;
}

/*
 * user_update for a change that may take an ADMIN's rights away. It first locks the active
 * ADMINs' rows, so such changes run one at a time and each sees the one before it, and it is
 * undone (CRM_EINVAL) when no active ADMIN would remain: of two ADMINs demoting each other at
 * once, the second finds that it would leave none.
 */
static enum crm_err
update_keeping_an_admin(struct crm_db *db, const char *const *params, PGresult **res)
{
    PGresult *count = NULL;
    enum crm_err err;

    if ((err = crm_db_begin(db)) != CRM_OK)
        return err;
    if ((err = crm_db_run(db, "admin_lock", 0, NULL)) == CRM_OK &&
        (err = crm_db_exec(db, "user_update", 4, params, res)) == CRM_OK &&
        (err = crm_db_exec(db, "admin_count", 0, NULL, &count)) == CRM_OK &&
        strcmp(PQgetvalue(count, 0, 0), "0") == 0)
        err = CRM_EINVAL;
    PQclear(count);
    if (err == CRM_OK)
        return crm_db_commit(db);
    crm_db_rollback(db);
    return err;
}

/* PATCH /api/users/:id {"name"?, "role"?, "active"?} */
int
users_update(struct crm_req *req, struct crm_resp *resp)
{
    static const char *const roles[] = {"ADMIN", "MANAGER", "SALES_EXECUTIVE", NULL};
    static const struct crm_field rules[] = {
        {"name", CRM_F_STRING, CRM_F_TRIM, 1, 100, NULL},
        {"role", CRM_F_ENUM, 0, 0, 0, roles},
        {"active", CRM_F_BOOL, 0, 0, 0, NULL},
    };
    const char *params[4] = {NULL, NULL, NULL, NULL};
    cJSON *body = NULL, *fields = NULL, *root = NULL, *item;
    PGresult *res = NULL;
    enum crm_err err;
    int64_t id;

    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_param_id(req, "id", &id) != 0)
        return crm_resp_error(resp, CRM_ENOTFOUND);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    /* An ADMIN demoting or deactivating itself could leave no one able to administer. */
    if (err == CRM_OK && id == req->who.id && takes_admin_away(body)) {
        fields = admin_rule_fields(body, "an admin cannot demote or deactivate itself");
        err = CRM_EINVAL;
    }
    if (err != CRM_OK) {
        cJSON_Delete(body);
        return crm_resp_fail(resp, err, fields);
    }
    params[0] = req->param_val[0];
    if ((item = cJSON_GetObjectItemCaseSensitive(body, "name")) != NULL)
        params[1] = item->valuestring;
    if ((item = cJSON_GetObjectItemCaseSensitive(body, "role")) != NULL)
        params[2] = item->valuestring;
    if ((item = cJSON_GetObjectItemCaseSensitive(body, "active")) != NULL)
        params[3] = cJSON_IsTrue(item) ? "true" : "false";
    err = takes_admin_away(body) ? update_keeping_an_admin(req->db, params, &res)
                                 : crm_db_exec(req->db, "user_update", 4, params, &res);
    if (err == CRM_EINVAL)
        fields = admin_rule_fields(body, "at least one active admin must remain");
    cJSON_Delete(body);
    if (err == CRM_OK && PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    if (err == CRM_OK && (root = cJSON_CreateObject()) != NULL &&
        !cJSON_AddItemToObject(root, "user", crm_user_from_row(res, 0, 0)))
        err = CRM_ENOMEM;
    PQclear(res);
    if (err != CRM_OK) {
        cJSON_Delete(root);
        return crm_resp_fail(resp, err, fields);
    }
    crm_log(CRM_LOG_INFO, req, "user %" PRId64 " updated", id);
    return crm_resp_json(resp, 200, root);
}
