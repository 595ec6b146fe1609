/* auth.c: bearer tokens to principals, and the role check every handler starts with. */
#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "db.h"
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

/*
 * Verifies token and takes the user id it names into req->who (id, idstr, exp); the user is not
 * yet known to exist, so req->authed stays 0.
 */
static enum crm_err
claim(struct crm_req *req, const char *token)
{
    struct crm_jwt_claims c;

    if (token == NULL || token[0] == '\0')
        return CRM_EAUTH;
    if (crm_jwt_verify((const unsigned char *)req->cfg->jwt_secret, req->cfg->jwt_secret_len, token,
                       (int64_t)time(NULL), &c) != CRM_OK ||
        crm_fmt_id(req->who.idstr, sizeof(req->who.idstr), c.sub) != 0)
        return CRM_EAUTH;
    req->who.id = c.sub;
    req->who.exp = c.exp;
    return CRM_OK;
}

/* Only active users exist for auth, and roles decides what they may do. */
enum crm_err
crm_auth_row(struct crm_req *req, const PGresult *res, int col, unsigned roles)
{
    enum crm_role role;

    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, col + 1), "t") != 0 ||
        (role = crm_role_parse(PQgetvalue(res, 0, col))) == 0)
        return CRM_EAUTH;
    req->who.role = role;
    req->who.owner = role == CRM_ROLE_SALES ? req->who.idstr : NULL;
    req->authed = 1;
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
    err = crm_auth_row(req, res, 3, roles);
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
crm_auth_issue(const struct crm_config *cfg, int64_t id, enum crm_role role, char *out,
               size_t outsz)
{
    struct crm_jwt_claims c = {.sub = id, .iat = (int64_t)time(NULL)};

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
