/*
 * auth.c: POST /api/auth/register, POST /api/auth/login, GET /api/auth/me, POST
 * /api/auth/password, POST /api/auth/logout-all, GET /api/health.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "db.h"
#include "handlers.h"
#include "log.h"
#include "password.h"
#include "valid.h"

static const char *const role_values[] = {"ADMIN", "MANAGER", "SALES_EXECUTIVE", NULL};

int
auth_token_response(struct crm_req *req, struct crm_resp *resp, int status, const PGresult *res,
                    int epoch_col)
{
    char token[CRM_JWT_MAX];
    cJSON *root = cJSON_CreateObject();
    cJSON *user = crm_user_from_row(res, 0, 0);
    int64_t id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(user, "id"));
    enum crm_role role = crm_role_parse(PQgetvalue(res, 0, 3));
    int64_t epoch = strtoll(PQgetvalue(res, 0, epoch_col), NULL, 10);

    if (root == NULL || user == NULL ||
        crm_auth_issue(req->cfg, id, role, epoch, token, sizeof(token)) != CRM_OK ||
        cJSON_AddStringToObject(root, "token", token) == NULL ||
        !cJSON_AddItemToObject(root, "user", user)) {
        cJSON_Delete(user);
        cJSON_Delete(root);
        return crm_resp_error(resp, CRM_ENOMEM);
    }
    return crm_resp_json(resp, status, root);
}

/* Public registration makes a SALES_EXECUTIVE; only an authenticated ADMIN may pick the role. */
static enum crm_err
register_role(struct crm_req *req, const cJSON *body, enum crm_role *role)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(body, "role");
    enum crm_err err;

    *role = CRM_ROLE_SALES;
    if (r == NULL)
        return CRM_OK;
    if (req->authorization == NULL)
        return CRM_EFORBIDDEN;
    if ((err = crm_auth_require(req, CRM_ROLE_ADMIN)) != CRM_OK)
        return err;
    *role = crm_role_parse(r->valuestring);
    return CRM_OK;
}

/* POST /api/auth/register */
int
auth_register(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {
        {"name", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 100, NULL},
        {"email", CRM_F_EMAIL, CRM_F_REQUIRED | CRM_F_TRIM, 0, 254, NULL},
        AUTH_NEW_PASSWORD("password"),
        {"role", CRM_F_ENUM, 0, 0, 0, role_values},
    };
    char hash[CRM_HASH_MAX];
    const char *params[4];
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    enum crm_role role;
    enum crm_err err;
    int status;

    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK && (err = register_role(req, body, &role)) == CRM_OK)
        err = crm_password_hash(cJSON_GetObjectItem(body, "password")->valuestring,
                                req->cfg->bcrypt_cost, hash, sizeof(hash));
    if (err == CRM_OK) {
        params[0] = cJSON_GetObjectItem(body, "name")->valuestring;
        params[1] = cJSON_GetObjectItem(body, "email")->valuestring;
        params[2] = hash;
        params[3] = crm_role_name(role);
        err = crm_db_exec(req->db, "user_register", 4, params, &res);
    }
    cJSON_Delete(body);
    if (err == CRM_ECONFLICT)
        return crm_resp_errorf(resp, err, "email: already registered");
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    status = auth_token_response(req, resp, 201, res, 7);
    crm_log(CRM_LOG_INFO, req, "registered user %s as %s", PQgetvalue(res, 0, 0),
            crm_role_name(role));
    PQclear(res);
    return status;
}

/*
 * A hash to check wrong e-mails against, so an unknown address costs the same time as a wrong
 * password and response timing does not tell which accounts exist.
 */
static const char *
dummy_hash(int cost)
{
    static char hash[CRM_HASH_MAX];

    if (hash[0] == '\0' && crm_password_hash("not-a-password", cost, hash, sizeof(hash)) != CRM_OK)
        hash[0] = '\0';
    return hash;
}

/*
 * The per-account limit (README "Login limits"): CRM_OK when the password may be checked, the
 * attempt then counted as a failure until a success clears it; CRM_ERATE with the seconds left
 * in *wait while the e-mail is locked out.
 */
enum crm_err
auth_login_allowed(struct crm_req *req, const char *email, long *wait)
{
    char max[12], first[21], most[21];
    const char *params[4] = {email, max, first, most};
    PGresult *res;
    enum crm_err err;

    snprintf(max, sizeof(max), "%d", req->cfg->login_max_failures);
    snprintf(first, sizeof(first), "%ld", req->cfg->login_lockout);
    snprintf(most, sizeof(most), "%ld", req->cfg->login_lockout_max);
    if ((err = crm_db_exec(req->db, "login_attempt", 4, params, &res)) != CRM_OK)
        return err;
    *wait = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return *wait > 0 ? CRM_ERATE : CRM_OK;
}

int
auth_locked_out(struct crm_resp *resp, long wait)
{
    char secs[21];

    snprintf(secs, sizeof(secs), "%ld", wait);
    crm_resp_header(resp, "Retry-After", secs);
    return crm_resp_errorf(
        resp, CRM_ERATE,
        "too many failed logins or password checks for this account, try again in %ld s", wait);
}

/* POST /api/auth/login */
int
auth_login(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {
        {"email", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 254, NULL},
        {"password", CRM_F_BYTES, CRM_F_REQUIRED, 1, 1024, NULL},
    };
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    const char *params[1];
    enum crm_err err;
    int found = 0, ok = 0, status;
    long wait = 0;

    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err != CRM_OK)
        return crm_resp_fail(resp, err, fields);
    params[0] = cJSON_GetObjectItem(body, "email")->valuestring;
    /* A locked-out e-mail's password is not checked at all: else the lockout would be no limit. */
    if ((err = auth_login_allowed(req, params[0], &wait)) == CRM_OK &&
        (err = crm_db_exec(req->db, "user_login", 1, params, &res)) == CRM_OK) {
        found = PQntuples(res) == 1;
        ok = crm_password_verify(cJSON_GetObjectItem(body, "password")->valuestring,
                                 found ? PQgetvalue(res, 0, 6) : dummy_hash(req->cfg->bcrypt_cost));
        if (found && ok)
            err = crm_db_run(req->db, "login_succeeded", 1, params);
    }
    cJSON_Delete(body);
    if (err == CRM_ERATE)
        status = auth_locked_out(resp, wait);
    else if (err != CRM_OK)
        status = crm_resp_error(resp, err);
    else if (!found || !ok)
        status = crm_resp_error(resp, CRM_ECRED);
    else if (strcmp(PQgetvalue(res, 0, 4), "t") != 0)
        status = crm_resp_errorf(resp, CRM_EAUTH, "this account is deactivated");
    else
        status = auth_token_response(req, resp, 200, res, 7);
    PQclear(res);
    return status;
}

/* GET /api/auth/me: the user row that authenticated the request, not a second query. */
int
auth_me(struct crm_req *req, struct crm_resp *resp)
{
    cJSON *root, *user = NULL;
    enum crm_err err;

    if ((err = crm_auth_me(req, &user)) != CRM_OK)
        return crm_resp_error(resp, err);
    root = cJSON_CreateObject();
    if (root == NULL || !cJSON_AddItemToObject(root, "user", user)) {
        cJSON_Delete(user);
        cJSON_Delete(root);
        return crm_resp_error(resp, CRM_ENOMEM);
    }
    return crm_resp_json(resp, 200, root);
}

/*
 * Checks the caller's current password under the per-account limit of logins (a stolen session
 * must not be a way to guess it). CRM_OK when it is right; CRM_EINVAL when it is wrong; CRM_ERATE
 * with *wait while the account is locked out. *hash gets the hash it was checked against.
 */
static enum crm_err
current_password_ok(struct crm_req *req, const char *password, char *hash, size_t hashsz,
                    long *wait)
{
    const char *params[1] = {req->who.idstr};
    PGresult *res = NULL;
    enum crm_err err;

    if ((err = crm_db_exec(req->db, "user_password_get", 1, params, &res)) != CRM_OK)
        return err;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return CRM_EAUTH;
    }
    params[0] = PQgetvalue(res, 0, 0);
    snprintf(hash, hashsz, "%s", PQgetvalue(res, 0, 1));
    if ((err = auth_login_allowed(req, params[0], wait)) == CRM_OK)
        err = crm_password_verify(password, hash)
                  ? crm_db_run(req->db, "login_succeeded", 1, params)
                  : CRM_EINVAL;
    PQclear(res);
    return err;
}

/*
 * POST /api/auth/password {"current_password", "new_password"}: a new password, and a new token
 * epoch, which ends every session and API token of the user, this request's included; the
 * answer carries a fresh token for the caller to go on with.
 */
int
auth_password(struct crm_req *req, struct crm_resp *resp)
{
    static const struct crm_field rules[] = {
        {"current_password", CRM_F_BYTES, CRM_F_REQUIRED, 1, 1024, NULL},
        AUTH_NEW_PASSWORD("new_password"),
    };
    char old[CRM_HASH_MAX], hash[CRM_HASH_MAX];
    const char *params[3] = {req->who.idstr, hash, old};
    cJSON *body = NULL, *fields = NULL;
    PGresult *res = NULL;
    enum crm_err err;
    long wait = 0;
    int status;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    err = crm_valid_body(req, rules, sizeof(rules) / sizeof(rules[0]), &body, &fields);
    if (err == CRM_OK)
        err = current_password_ok(req, cJSON_GetObjectItem(body, "current_password")->valuestring,
                                  old, sizeof(old), &wait);
    if (err == CRM_OK)
        err = crm_password_hash(cJSON_GetObjectItem(body, "new_password")->valuestring,
                                req->cfg->bcrypt_cost, hash, sizeof(hash));
    cJSON_Delete(body);
    /* Set only if unchanged since it was checked: of two changes at once, one wins. */
    if (err == CRM_OK &&
        (err = crm_db_exec(req->db, "user_password_set", 3, params, &res)) == CRM_OK &&
        PQntuples(res) != 1)
        err = CRM_ECONFLICT;
    if (err == CRM_ERATE)
        status = auth_locked_out(resp, wait);
    else if (err == CRM_EINVAL && fields == NULL)
        status = crm_resp_invalid_field(resp, "current_password", "is wrong");
    else if (err == CRM_ECONFLICT)
        status = crm_resp_errorf(resp, err, "the password was changed meanwhile");
    else if (err != CRM_OK)
        status = crm_resp_fail(resp, err, fields);
    else {
        status = auth_token_response(req, resp, 200, res, 6);
        crm_log(CRM_LOG_INFO, req, "user %s changed its password", req->who.idstr);
    }
    PQclear(res);
    return status;
}

/* POST /api/auth/logout-all: a new token epoch ends every session and API token of the caller. */
int
auth_logout_all(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[1] = {req->who.idstr};
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = crm_db_run(req->db, "user_logout_all", 1, params)) != CRM_OK)
        return crm_resp_error(resp, err);
    crm_log(CRM_LOG_INFO, req, "user %s logged out everywhere", req->who.idstr);
    return crm_resp_empty(resp, 204);
}

/* GET /api/health: 200 when the database answers, else 503 that still says what is down. */
int
auth_health(struct crm_req *req, struct crm_resp *resp)
{
    enum crm_err err = crm_db_run(req->db, "health", 0, NULL);
    const char *state = err == CRM_OK ? "ok" : "down";
    cJSON *root = err == CRM_OK ? cJSON_CreateObject()
                                : crm_error_json(CRM_EUNAVAIL, crm_err_message(CRM_EUNAVAIL), NULL);

    if (cJSON_AddStringToObject(root, "status", state) == NULL ||
        cJSON_AddStringToObject(root, "database", state) == NULL) {
        cJSON_Delete(root);
        return crm_resp_error(resp, CRM_ENOMEM);
    }
    if (err != CRM_OK)
        return crm_resp_error_json(resp, CRM_EUNAVAIL, root);
    return crm_resp_json(resp, 200, root);
}
