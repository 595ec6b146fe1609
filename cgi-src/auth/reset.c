/*
 * reset.c: password reset by e-mail. POST /api/auth/password-reset queues a one-time link through
 * the mail outbox (crm-mailer makes its secret, lib/db.c reset_request and reset_arm);
 * POST /api/auth/password-reset/confirm sets the new password with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "handlers.h"
#include "log.h"
#include "password.h"
#include "secret.h"
#include "valid.h"

/* Requests allowed in an hour per e-mail address and per client address (README "Passwords"). */
#define RESET_PER_EMAIL "3"
#define RESET_PER_ADDRESS "20"
#define RESET_WINDOW "3600"

/* The one answer of a request within the limits, whether or not the account exists. */
static int
accepted(struct crm_resp *resp)
{
    cJSON *root = cJSON_CreateObject();

    if (cJSON_AddStringToObject(root, "message",
                                "if an account has this e-mail address, a link to reset its "
                                "password is on its way") == NULL) {
        cJSON_Delete(root);
        return crm_resp_error(resp, CRM_ENOMEM);
    }
    return crm_resp_json(resp, 202, root);
}

/* POST /api/auth/password-reset {"email"} */
int
auth_reset_request(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {
        {"email", CRM_F_EMAIL, CRM_F_REQUIRED | CRM_F_TRIM, 0, 254, NULL},
    };
    const char *params[5] = {req->remote_addr != NULL ? req->remote_addr : "", NULL,
                             RESET_PER_EMAIL, RESET_PER_ADDRESS, RESET_WINDOW};
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    enum crm_err err;
    long wait = 0;
    char secs[21];

    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK) {
        params[1] = cJSON_GetObjectItem(body, "email")->valuestring;
        err = crm_db_exec(req->db, "reset_request", 5, params, &res);
    }
    cJSON_Delete(body);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    wait = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (wait <= 0)
        return accepted(resp);
    snprintf(secs, sizeof(secs), "%ld", wait);
    crm_resp_header(resp, "Retry-After", secs);
    return crm_resp_errorf(resp, CRM_ERATE, "too many password reset requests, try again in %ld s",
                           wait);
}

/*
 * POST /api/auth/password-reset/confirm {"token", "password"}: the link's token, used once within
 * its hour, sets the password and moves the token epoch on, which ends every session and API
 * token of the user; its login lockout is cleared. A token that is unknown, used or expired is
 * 422 on token, and changes nothing.
 */
int
auth_reset_confirm(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {
        {"token", CRM_F_BYTES, CRM_F_REQUIRED, 1, CRM_SECRET_MAX - 1, NULL},
        AUTH_NEW_PASSWORD("password"),
    };
    char hash[CRM_SECRET_HASH], pwhash[CRM_HASH_MAX];
    const char *params[2] = {hash, pwhash};
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    enum crm_err err;

    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK &&
        crm_secret_hash(cJSON_GetObjectItem(body, "token")->valuestring, hash) != 0)
        err = CRM_EINTERNAL;
    if (err == CRM_OK)
        err = crm_password_hash(cJSON_GetObjectItem(body, "password")->valuestring,
                                req->cfg->bcrypt_cost, pwhash, sizeof(pwhash));
    cJSON_Delete(body);
    if (err == CRM_OK)
        err = crm_db_exec(req->db, "reset_use", 2, params, &res);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return crm_resp_invalid_field(resp, "token", "is unknown, used or expired");
    }
    crm_log(CRM_LOG_INFO, req, "user %s reset its password", PQgetvalue(res, 0, 0));
    PQclear(res);
    return crm_resp_empty(resp, 204);
}
