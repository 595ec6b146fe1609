/* auth.c: bearer tokens to principals, and the role check every handler starts with. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "db.h"
#include "secret.h"
#include "util.h"

static const char *const role_names[] = {"ADMIN", "MANAGER", "SALES_EXECUTIVE"};

enum crm_role
crm_role_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s != NULL && strcmp(s, role_names[i]) == 0)
            return (enum crm_role)(1 << i);
    return 0;
}

const char *
crm_role_name(enum crm_role role)
{
    switch (role) {
    case CRM_ROLE_ADMIN:
        return role_names[0];
    case CRM_ROLE_MANAGER:
        return role_names[1];
    default:
        return role_names[2];
    }
}

/* Verifies the JWT token and takes its user id and epoch into req->who. */
static enum crm_err
claim_jwt(struct crm_req *req, const char *token)
{
    struct crm_jwt_claims c;

    if (crm_jwt_verify((const unsigned char *)req->cfg->jwt_secret, req->cfg->jwt_secret_len, token,
                       (int64_t)time(NULL), &c) != CRM_OK)
        return CRM_EAUTH;
    req->who.id = c.sub;
    req->who.exp = c.exp;
    req->who.epoch = c.ep;
    return CRM_OK;
}

int
crm_auth_api_token_shaped(const char *token)
{
    size_t n = strlen(CRM_API_TOKEN_PREFIX);

    return strncmp(token, CRM_API_TOKEN_PREFIX, n) == 0 && strlen(token + n) == 43 &&
           strspn(token + n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               43;
}

/*
 * Finds the API token by its hash (token_use: neither revoked nor expired) and takes its user
 * id, epoch, scope and expiry into req->who.
 */
static enum crm_err
claim_api_token(struct crm_req *req, const char *token)
{
    char hash[CRM_SECRET_HASH];
    const char *params[1] = {hash};
    PGresult *res;
    enum crm_err err;

    /* Anything else is refused without a round trip to the database. */
    if (!crm_auth_api_token_shaped(token) || crm_secret_hash(token, hash) != 0)
        return CRM_EAUTH;
    if ((err = crm_db_exec(req->db, "token_use", 1, params, &res)) != CRM_OK)
        return err;
    if (PQntuples(res) != 1 || crm_parse_id(PQgetvalue(res, 0, 0), &req->who.token_id) != 0 ||
        crm_parse_id(PQgetvalue(res, 0, 1), &req->who.id) != 0)
        err = CRM_EAUTH;
    else {
        req->who.epoch = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        req->who.read_only = strcmp(PQgetvalue(res, 0, 3), "read") == 0;
        req->who.exp =
            PQgetisnull(res, 0, 4) ? INT64_MAX : strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    }
    PQclear(res);
    return err;
}

/*
 * Takes the caller that token names into req->who: an API token (CRM_API_TOKEN_PREFIX) from the
 * database, a login's JWT by its signature. The user is not yet known to exist, nor the token
 * to be of the user's current epoch, so req->authed stays 0 until crm_auth_row.
 */
static enum crm_err
claim(struct crm_req *req, const char *token)
{
    enum crm_err err;

    if (token == NULL || token[0] == '\0')
        return CRM_EAUTH;
    err = strncmp(token, CRM_API_TOKEN_PREFIX, strlen(CRM_API_TOKEN_PREFIX)) == 0
              ? claim_api_token(req, token)
              : claim_jwt(req, token);
    if (err == CRM_OK && crm_fmt_id(req->who.idstr, sizeof(req->who.idstr), req->who.id) != 0)
        err = CRM_EAUTH;
    return err;
}

/* Whether req only reads: all a read-only API token may do. */
static int
reads_only(const struct crm_req *req)
{
    return req->method != NULL &&
           (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0);
}

/*
 * Only active users exist for auth, and only with a token of their current epoch (logout-all
 * and a password change move it on); roles decides what they may do, and a read-only API token
 * may only read.
 */
enum crm_err
crm_auth_row(struct crm_req *req, const PGresult *res, int col, unsigned roles)
{
    enum crm_role role;

    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, col + 1), "t") != 0 ||
        (role = crm_role_parse(PQgetvalue(res, 0, col))) == 0 ||
        strtoll(PQgetvalue(res, 0, col + 2), NULL, 10) != req->who.epoch)
        return CRM_EAUTH;
    req->who.role = role;
    req->who.owner = role == CRM_ROLE_SALES ? req->who.idstr : NULL;
    req->authed = 1;
    if (req->who.read_only && !reads_only(req))
        return CRM_EFORBIDDEN;
    return (role & roles) != 0 ? CRM_OK : CRM_EFORBIDDEN;
}

/*
 * Authenticates token for roles, re-reading the user; when user is not NULL and the caller is
 * admitted it also gets the caller's User object, from the same row (caller frees).
 */
static enum crm_err
authenticate(struct crm_req *req, const char *token, unsigned roles, cJSON **user)
{
    const char *params[1] = {req->who.idstr};
    PGresult *res;
    enum crm_err err;

    if ((err = claim(req, token)) != CRM_OK ||
        (err = crm_db_exec(req->db, "user_get", 1, params, &res)) != CRM_OK)
        return err;
    err = crm_auth_row(req, res, 6, roles);
    if (err == CRM_OK && user != NULL && (*user = crm_user_from_row(res, 0, 0)) == NULL)
        err = CRM_ENOMEM;
    PQclear(res);
    return err;
}

/* The token of an "Authorization: Bearer" header, or NULL. */
static const char *
bearer(const struct crm_req *req)
{
    const char *h = req->authorization;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    return h + 7 + strspn(h + 7, " ");
}

enum crm_err
crm_auth_claim(struct crm_req *req, const char **id)
{
    enum crm_err err = claim(req, bearer(req));

    *id = err == CRM_OK ? req->who.idstr : NULL;
    return err;
}

enum crm_err
crm_auth_token(struct crm_req *req, const char *token, unsigned roles)
{
    return authenticate(req, token, roles, NULL);
}

enum crm_err
crm_auth_require(struct crm_req *req, unsigned roles)
{
    return authenticate(req, bearer(req), roles, NULL);
}

enum crm_err
crm_auth_me(struct crm_req *req, cJSON **user)
{
    return authenticate(req, bearer(req), CRM_ROLES_ALL, user);
}

enum crm_err
crm_auth_issue(const struct crm_config *cfg, int64_t id, enum crm_role role, int64_t epoch,
               char *out, size_t outsz)
{
    struct crm_jwt_claims c = {.sub = id, .iat = (int64_t)time(NULL), .ep = epoch};

    c.exp = c.iat + cfg->jwt_ttl;
    snprintf(c.role, sizeof(c.role), "%s", crm_role_name(role));
    return crm_jwt_sign((const unsigned char *)cfg->jwt_secret, cfg->jwt_secret_len, &c, out,
                        outsz);
}

cJSON *
crm_user_from_row(const PGresult *res, int row, int col)
{
    cJSON *u = cJSON_CreateObject();
    int64_t id;

    if (u == NULL || crm_parse_id(PQgetvalue(res, row, col), &id) != 0 ||
        cJSON_AddNumberToObject(u, "id", (double)id) == NULL ||
        cJSON_AddStringToObject(u, "name", PQgetvalue(res, row, col + 1)) == NULL ||
        cJSON_AddStringToObject(u, "email", PQgetvalue(res, row, col + 2)) == NULL ||
        cJSON_AddStringToObject(u, "role", PQgetvalue(res, row, col + 3)) == NULL ||
        cJSON_AddBoolToObject(u, "active", strcmp(PQgetvalue(res, row, col + 4), "t") == 0) ==
            NULL ||
        cJSON_AddStringToObject(u, "created_at", PQgetvalue(res, row, col + 5)) == NULL) {
        cJSON_Delete(u);
        return NULL;
    }
    return u;
}
