/*
 * tokens.c: personal API tokens. POST /api/tokens, GET /api/tokens, DELETE /api/tokens/:id.
 * A token's secret is shown once, in the answer that makes it; the database keeps its SHA-256
 * only (lib/secret.h). lib/auth.c takes it as a bearer token like a login's.
 */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "db.h"
#include "handlers.h"
#include "log.h"
#include "secret.h"
#include "util.h"
#include "valid.h"

/* How much of a secret the API shows (hint): its prefix and 4 characters of its random part. */
#define HINT_LEN (sizeof(CRM_API_TOKEN_PREFIX) - 1 + 4)

/* {"api_token": Token, "secret"}: the one answer that ever holds the secret. */
static int
created(struct crm_resp *resp, const PGresult *res, const char *secret)
{
    cJSON *root = cJSON_CreateObject();

    if (root == NULL || !cJSON_AddItemToObject(root, "api_token", crm_db_json(res, 0, 0)) ||
        cJSON_AddStringToObject(root, "secret", secret) == NULL) {
        cJSON_Delete(root);
        return crm_resp_error(resp, CRM_ENOMEM);
    }
    return crm_resp_json(resp, 201, root);
}

/* POST /api/tokens {"name", "scope", "expires_at"?} */
int
tokens_create(struct crm_req *req, struct crm_resp *resp)
{
    static const char *const scopes[] = {"read", "write", NULL};
    static const struct crm_field rules[] = {
        {"name", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 100, NULL},
        {"scope", CRM_F_ENUM, CRM_F_REQUIRED, 0, 0, scopes},
        {"expires_at", CRM_F_TIME, CRM_F_NULLABLE, 0, 0, NULL},
    };
    char secret[CRM_SECRET_MAX], hash[CRM_SECRET_HASH], hint[HINT_LEN + 1], epoch[21];
    const char *params[7] = {req->who.idstr, NULL, NULL, hash, hint, epoch, NULL};
    cJSON *body = NULL, *fields = NULL;
    const cJSON *exp;
    PGresult *res = NULL;
    enum crm_err err;
    int status;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    /* A leaked token must not be a way to make more, nor ones that outlive it. */
    if (req->who.token_id != 0)
        return crm_resp_errorf(resp, CRM_EFORBIDDEN,
                               "API tokens are made with a login's token, not an API token");
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK && crm_secret_new(CRM_API_TOKEN_PREFIX, secret, sizeof(secret), hash) != 0)
        err = CRM_EINTERNAL;
    if (err == CRM_OK) {
        memcpy(hint, secret, HINT_LEN);
        hint[HINT_LEN] = '\0';
        snprintf(epoch, sizeof(epoch), "%lld", (long long)req->who.epoch);
        params[1] = cJSON_GetObjectItem(body, "name")->valuestring;
        params[2] = cJSON_GetObjectItem(body, "scope")->valuestring;
        exp = cJSON_GetObjectItem(body, "expires_at");
        params[6] = cJSON_IsString(exp) ? exp->valuestring : NULL;
        err = crm_db_exec(req->db, "token_create", 7, params, &res);
    }
    cJSON_Delete(body);
    if (err == CRM_OK && PQntuples(res) != 1)
        status = crm_resp_invalid_field(resp, "expires_at", "must be in the future");
    else if (err != CRM_OK)
        status = crm_resp_fail(resp, err, fields);
    else {
        status = created(resp, res, secret);
        crm_log(CRM_LOG_INFO, req, "API token %s made for user %s", PQgetvalue(res, 0, 1),
                req->who.idstr);
    }
    explicit_bzero(secret, sizeof(secret));
    PQclear(res);
    return status;
}

/*
 * The user whose tokens a listing shows into *user (NULL: everyone's, for an ADMIN without
 * ?user_id=). Others see their own only: CRM_EFORBIDDEN for another user's id.
 */
static enum crm_err
listed_user(struct crm_req *req, const char **user)
{
    int64_t id;

    if (crm_req_query(req, "user_id", user) != CRM_OK ||
        (*user != NULL && crm_parse_id(*user, &id) != 0))
        return CRM_EQUERY;
    if (req->who.role == CRM_ROLE_ADMIN)
        return CRM_OK;
    if (*user != NULL && id != req->who.id)
        return CRM_EFORBIDDEN;
    *user = req->who.idstr;
    return CRM_OK;
}

/* GET /api/tokens?user_id=&limit=&offset= */
int
tokens_list(struct crm_req *req, struct crm_resp *resp)
{
    char lbuf[21], obuf[21];
    const char *params[3] = {NULL, lbuf, obuf};
    PGresult *res = NULL;
    long limit, offset;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = crm_req_page(req, &limit, &offset)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((err = listed_user(req, &params[0])) == CRM_EQUERY)
        return crm_resp_errorf(resp, err, "user_id must be a user's id");
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    snprintf(obuf, sizeof(obuf), "%ld", offset);
    /* One statement, the count and the page together (was two round trips). */
    err = crm_db_exec(req->db, "token_page", 3, params, &res);
    return crm_resp_page(resp, err, res, limit, offset);
}

/* DELETE /api/tokens/:id: revoked at once. An ADMIN's any; others' their own (else 404). */
int
tokens_delete(struct crm_req *req, struct crm_resp *resp)
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
    params[1] = req->who.role == CRM_ROLE_ADMIN ? NULL : req->who.idstr;
    if ((err = crm_db_exec(req->db, "token_delete", 2, params, &res)) == CRM_OK &&
        PQntuples(res) != 1)
        err = CRM_ENOTFOUND;
    PQclear(res);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    crm_log(CRM_LOG_INFO, req, "API token %s revoked", params[0]);
    return crm_resp_empty(resp, 204);
}
