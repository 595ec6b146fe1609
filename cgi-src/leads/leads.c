/* leads.c: create, list, read, edit and delete leads. */
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

const char *const lead_sources[] = {"WEBSITE",   "REFERRAL", "SOCIAL", "EMAIL",
                                    "COLD_CALL", "EVENT",    "OTHER",  NULL};
/* Pipeline order. */
const char *const lead_statuses[] = {"NEW",         "CONTACTED", "QUALIFIED", "PROPOSAL",
                                     "NEGOTIATION", "WON",       "LOST",      NULL};

/* The editable members of a Lead; name is required on create only. */
#define LEAD_RULES(name_flags)                                                                     \
    {"name", CRM_F_STRING, (name_flags) | CRM_F_TRIM, 1, 200, NULL},                               \
        {"email", CRM_F_EMAIL, CRM_F_NULLABLE | CRM_F_TRIM, 0, 254, NULL},                         \
        {"phone", CRM_F_STRING, CRM_F_NULLABLE | CRM_F_TRIM, 0, 40, NULL},                         \
        {"company", CRM_F_STRING, CRM_F_NULLABLE | CRM_F_TRIM, 0, 200, NULL},                      \
        {"source", CRM_F_ENUM, CRM_F_NULLABLE, 0, 0, lead_sources},                                \
        {"value", CRM_F_MONEY, CRM_F_NULLABLE, 0, 999999999999, NULL},                             \
    {                                                                                              \
        "notes", CRM_F_STRING, CRM_F_NULLABLE, 0, 10000, NULL                                      \
    }

static const char *const lead_key[] = {"lead", "activities"};

const struct crm_field lead_create_rules[LEAD_CREATE_NRULES] = {
    LEAD_RULES(CRM_F_REQUIRED),
    {"status", CRM_F_ENUM, CRM_F_NULLABLE, 0, 0, lead_statuses},
    {"owner_id", CRM_F_ID, CRM_F_NULLABLE, 0, 0, NULL},
};

/* POST /api/leads */
int
leads_create(struct crm_req *req, struct crm_resp *resp)
{
    char owner[21], location[64];
    const char *params[3];
    cJSON *body = NULL, *fields = NULL, *o;
    PGresult *res = NULL;
    char *text = NULL;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, lead_create_rules, LEAD_CREATE_NRULES, &body, &fields);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    o = cJSON_GetObjectItemCaseSensitive(body, "owner_id");
    params[2] = req->who.role == CRM_ROLE_SALES ? req->who.idstr : NULL;
    if (cJSON_IsNumber(o)) {
        crm_fmt_id(owner, sizeof(owner), (int64_t)o->valuedouble);
        params[2] = owner;
        if (req->who.role == CRM_ROLE_SALES && strcmp(owner, req->who.idstr) != 0)
            err = CRM_EFORBIDDEN;
    }
    if (err == CRM_OK && (text = cJSON_PrintUnformatted(body)) == NULL)
        err = CRM_ENOMEM;
    cJSON_Delete(body);
    params[0] = text;
    params[1] = req->who.idstr;
    if (err == CRM_OK)
        err = crm_db_exec(req->db, "lead_create", 3, params, &res);
    free(text);
    if (err == CRM_OK && PQntuples(res) == 0) {
        PQclear(res);
        return crm_resp_invalid_field(resp, "owner_id", "must be an active user");
    }
    if (err == CRM_OK) {
        snprintf(location, sizeof(location), "/api/leads/%s", PQgetvalue(res, 0, 1));
        crm_resp_header(resp, "Location", location);
        crm_log(CRM_LOG_INFO, req, "lead %s created", PQgetvalue(res, 0, 1));
    }
    return lead_respond(resp, 201, err, res, lead_key, 1);
}

/* GET /api/leads/:id: the lead and its 50 newest activities. */
int
leads_get(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[2];
    PGresult *res = NULL;
    enum crm_err err;
    int64_t id;

    /* A lead id that cannot exist is a 404 for a caller who may read leads at all. */
    if (crm_req_param_id(req, "id", &id) != 0) {
        err = crm_auth_require(req, CRM_ROLES_ALL);
        return crm_resp_error(resp, err != CRM_OK ? err : CRM_ENOTFOUND);
    }
    if ((err = crm_auth_claim(req, &params[1])) != CRM_OK)
        return crm_resp_error(resp, err);
    params[0] = req->param_val[0];
    if ((err = crm_db_exec(req->db, "lead_get", 2, params, &res)) == CRM_OK &&
        (err = crm_auth_row(req, res, 2, CRM_ROLES_ALL)) == CRM_OK && PQgetisnull(res, 0, 0))
        err = CRM_ENOTFOUND;
    return lead_respond(resp, 200, err, res, lead_key, 2);
}

/*
 * A member that has its own endpoint gets a message saying which, not "unknown field": it has
 * no rule here, so an entry in fields means the body has it.
 */
static void
redirect_field(cJSON *fields, const char *name, const char *message)
{
    if (cJSON_GetObjectItemCaseSensitive(fields, name) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(fields, name, cJSON_CreateString(message));
}

/*
 * PATCH /api/leads/:id: the members present change; null clears an optional one. The fields
 * whose values change are recorded in an UPDATED activity; a body that changes none writes
 * nothing and answers the lead as it is.
 */
int
leads_update(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {LEAD_RULES(0)};
    struct lead_lock lock;
    const char *params[3];
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    char *text = NULL;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_EINVAL) {
        redirect_field(fields, "status", "change it with PATCH /api/leads/:id/status");
        redirect_field(fields, "owner_id", "change it with PATCH /api/leads/:id/assign");
    } else if (err == CRM_OK && body->child == NULL) {
        err = CRM_EINVAL;
        fields = cJSON_CreateObject();
        cJSON_AddStringToObject(fields, "body", "has no field to change");
    }
    if (err == CRM_OK && (text = cJSON_PrintUnformatted(body)) == NULL)
        err = CRM_ENOMEM;
    cJSON_Delete(body);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    if ((err = lead_begin(req, &lock)) != CRM_OK) {
        free(text);
        return crm_resp_error(resp, err);
    }
    params[0] = lock.id;
    params[1] = text;
    params[2] = req->who.idstr;
    err = crm_db_exec(req->db, "lead_update", 3, params, &res);
    free(text);
    /* No row: every value given is the one the lead has, and nothing was written. */
    if (err == CRM_OK && PQntuples(res) == 0) {
        PQclear(res);
        return lead_unchanged(req, resp, &lock);
    }
    err = lead_finish(req, err, &res);
    return lead_respond(resp, 200, err, res, lead_change_keys, 2);
}

/* DELETE /api/leads/:id (ADMIN, MANAGER): the lead and its timeline. */
int
leads_delete(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[2];
    PGresult *res = NULL;
    enum crm_err err;
    int64_t id;
    int found;

    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN | CRM_ROLE_MANAGER)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_param_id(req, "id", &id) != 0)
        return crm_resp_error(resp, CRM_ENOTFOUND);
    params[0] = req->param_val[0];
    params[1] = req->who.idstr;
    if ((err = crm_db_exec(req->db, "lead_delete", 2, params, &res)) != CRM_OK)
        return crm_resp_error(resp, err);
    found = PQntuples(res) == 1;
    PQclear(res);
    if (!found)
        return crm_resp_error(resp, CRM_ENOTFOUND);
    crm_log(CRM_LOG_INFO, req, "lead %" PRId64 " deleted", id);
    return crm_resp_empty(resp, 204);
}
