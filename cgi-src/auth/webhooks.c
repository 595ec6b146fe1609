/*
 * webhooks.c: /api/webhooks, the endpoints crm-webhooks delivers events to (ADMIN only). A URL
 * is checked when it is registered (lib/webhook.c: http or https, and no loopback, private or
 * link-local address unless WEBHOOK_ALLOW_NETS allows it); the secret that signs deliveries is
 * made here and shown once, in the answer to the POST.
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
#include "webhook.h"

/* The event types an endpoint may subscribe to: every type of the events table. */
static const char *const event_types[] = {
    "lead.created",   "lead.updated", "lead.status_changed",
    "lead.assigned",  "lead.deleted", "activity.created",
    "task.created",   "task.updated", "task.completed",
    "task.reopened",  "task.deleted", "task.due",
    "leads.imported", NULL,
};

#define EVENT_TYPES (sizeof(event_types) / sizeof(event_types[0]) - 1)

static const struct crm_field create_rules[] = {
    {"url", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 8, 2000, NULL},
    {"events", CRM_F_ENUMS, CRM_F_REQUIRED, 1, EVENT_TYPES, event_types},
};

static const struct crm_field update_rules[] = {
    {"url", CRM_F_STRING, CRM_F_TRIM, 8, 2000, NULL},
    {"events", CRM_F_ENUMS, 0, 1, EVENT_TYPES, event_types},
    {"active", CRM_F_BOOL, 0, 0, 0, NULL},
};

/*
 * Checks the body against rules and its url (when there) against the addresses webhooks may
 * reach; writes its events (when there) as a PostgreSQL text[] literal into events ("" when
 * absent). Returns CRM_OK with *body; else the error, with *fields for CRM_EINVAL.
 */
static enum crm_err
read_webhook(struct crm_req *req, const struct crm_field *rules, size_t n, cJSON **body,
             char events[256], cJSON **fields)
{
    const cJSON *url, *list, *e;
    char why[256];
    size_t len = 0;
    enum crm_err err;

    if ((err = crm_valid_body(req, rules, n, body, fields)) != CRM_OK)
        return err;
    url = cJSON_GetObjectItemCaseSensitive(*body, "url");
    if (url != NULL && crm_webhook_url_check(url->valuestring, req->cfg->webhook_allow_nets, why,
                                             sizeof(why)) != 0) {
        cJSON_Delete(*body);
        *body = NULL;
        *fields = cJSON_CreateObject();
        cJSON_AddStringToObject(*fields, "url", why + strlen("url: "));
        return CRM_EINVAL;
    }
    events[0] = '\0';
    list = cJSON_GetObjectItemCaseSensitive(*body, "events");
    /* Known types only (checked above), so nothing in them needs quoting. */
    cJSON_ArrayForEach(e, list) len +=
        (size_t)snprintf(events + len, 256 - len, "%c%s", len == 0 ? '{' : ',', e->valuestring);
    if (len > 0)
        snprintf(events + len, 256 - len, "}");
    return CRM_OK;
}

/* {"webhook": column 0 of res}, with "secret" when it is not NULL; err as it was. */
static int
respond_webhook(struct crm_resp *resp, int status, enum crm_err err, PGresult *res,
                const char *secret)
{
    cJSON *root = NULL, *hook;

    if (err == CRM_OK && PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    if (err == CRM_OK) {
        hook = cJSON_Parse(PQgetvalue(res, 0, 0));
        root = cJSON_CreateObject();
        if (hook == NULL || root == NULL || !cJSON_AddItemToObject(root, "webhook", hook) ||
            (secret != NULL && cJSON_AddStringToObject(hook, "secret", secret) == NULL))
            err = CRM_ENOMEM;
        if (root == NULL)
            cJSON_Delete(hook);
    }
    PQclear(res);
    if (err != CRM_OK) {
        cJSON_Delete(root);
        return crm_resp_error(resp, err);
    }
    return crm_resp_json(resp, status, root);
}

/* POST /api/webhooks {"url", "events"}: 201 with the secret, which is never shown again. */
int
webhooks_create(struct crm_req *req, struct crm_resp *resp)
{
    char events[256], secret[6 + 64 + 1] = "whsec_";
    const char *params[4] = {NULL, events, secret, req->who.idstr};
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((err = read_webhook(req, create_rules, 2, &body, events, &fields)) != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    params[0] = cJSON_GetObjectItemCaseSensitive(body, "url")->valuestring;
    if (crm_random_hex(secret + 6, sizeof(secret) - 6, 32) != 0)
        err = CRM_ENOMEM;
    else
        err = crm_db_exec(req->db, "webhook_create", 4, params, &res);
    cJSON_Delete(body);
    if (err == CRM_OK)
        crm_log(CRM_LOG_INFO, req, "webhook registered");
    err = respond_webhook(resp, 201, err, res, secret);
    explicit_bzero(secret, sizeof(secret));
    return err;
}

/* GET /api/webhooks?limit&offset */
int
webhooks_list(struct crm_req *req, struct crm_resp *resp)
{
    char lbuf[21], obuf[21];
    const char *params[2] = {lbuf, obuf};
    PGresult *res = NULL;
    long limit, offset;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN)) != CRM_OK ||
        (err = crm_req_page(req, &limit, &offset)) != CRM_OK)
        return crm_resp_error(resp, err);
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    err = crm_db_exec(req->db, "webhook_page", 2, params, &res);
    return crm_resp_page(resp, err, res, limit, offset);
}

/* The :id of the route, for an ADMIN; else the error to answer. */
static enum crm_err
admin_and_id(struct crm_req *req)
{
    enum crm_err err;
    int64_t id;

    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN)) != CRM_OK)
        return err;
    return crm_req_param_id(req, "id", &id) == 0 ? CRM_OK : CRM_ENOTFOUND;
}

/* GET /api/webhooks/:id */
int
webhooks_get(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[1];
    PGresult *res = NULL;
    enum crm_err err;

    if ((err = admin_and_id(req)) != CRM_OK)
        return crm_resp_error(resp, err);
    params[0] = req->param_val[0];
    err = crm_db_exec(req->db, "webhook_get", 1, params, &res);
    return respond_webhook(resp, 200, err, res, NULL);
}

/*
 * PATCH /api/webhooks/:id {"url"?, "events"?, "active"?}: "active": true enables a disabled
 * endpoint again, its failures forgotten and its queue tried at once.
 */
int
webhooks_update(struct crm_req *req, struct crm_resp *resp)
{
    char events[256];
    const char *params[4] = {NULL, NULL, events, NULL};
    cJSON *body = NULL, *fields = NULL, *item;
    PGresult *res = NULL;
    enum crm_err err;

    if ((err = admin_and_id(req)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((err = read_webhook(req, update_rules, 3, &body, events, &fields)) != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    params[0] = req->param_val[0];
    if ((item = cJSON_GetObjectItemCaseSensitive(body, "url")) != NULL)
        params[1] = item->valuestring;
    if (events[0] == '\0')
        params[2] = NULL;
    if ((item = cJSON_GetObjectItemCaseSensitive(body, "active")) != NULL)
        params[3] = cJSON_IsTrue(item) ? "true" : "false";
    err = crm_db_exec(req->db, "webhook_update", 4, params, &res);
    cJSON_Delete(body);
    return respond_webhook(resp, 200, err, res, NULL);
}

/* DELETE /api/webhooks/:id: its pending deliveries go with it. */
int
webhooks_delete(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[1];
    PGresult *res = NULL;
    enum crm_err err;

    if ((err = admin_and_id(req)) != CRM_OK)
        return crm_resp_error(resp, err);
    params[0] = req->param_val[0];
    if ((err = crm_db_exec(req->db, "webhook_delete", 1, params, &res)) == CRM_OK &&
        PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    PQclear(res);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    crm_log(CRM_LOG_INFO, req, "webhook %s deleted", params[0]);
    return crm_resp_empty(resp, 204);
}

/* GET /api/webhooks/:id/deliveries?status&limit&offset: newest first. */
int
webhooks_deliveries(struct crm_req *req, struct crm_resp *resp)
{
    static const char *const states[] = {"pending", "delivered", NULL};
    char lbuf[21], obuf[21];
    const char *params[4] = {NULL, NULL, lbuf, obuf};
    PGresult *res = NULL;
    long limit, offset;
    enum crm_err err;

    if ((err = admin_and_id(req)) != CRM_OK || (err = crm_req_page(req, &limit, &offset)) != CRM_OK)
        return crm_resp_error(resp, err);
    if (crm_req_query(req, "status", &params[1]) != CRM_OK ||
        (params[1] != NULL && !crm_valid_enum(params[1], strlen(params[1]), states)))
        return crm_resp_errorf(resp, CRM_EQUERY, "status must be pending or delivered");
    params[0] = req->param_val[0];
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    if ((err = crm_db_exec(req->db, "webhook_delivery_page", 4, params, &res)) == CRM_OK &&
        PQntuples(res) == 0)
        err = CRM_ENOTFOUND;
    return crm_resp_page(resp, err, res, limit, offset);
}
