/* auth.h: who is calling (bearer token, re-checked against the database) and what may they do. */
#ifndef CRM_AUTH_H
#define CRM_AUTH_H

#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"
#include "http.h"
#include "jwt.h"

/* "ADMIN" -> CRM_ROLE_ADMIN...; 0 for anything else. */
enum crm_role crm_role_parse(const char *s);

/* The API name of role ("SALES_EXECUTIVE" for CRM_ROLE_SALES). */
const char *crm_role_name(enum crm_role role);

/* What every personal API token starts with, so that secret scanners recognise leaked ones. */
#define CRM_API_TOKEN_PREFIX "crm_pat_"

/*
 * 1 when token has the shape of a personal API token (the prefix, then 43 base64url characters:
 * lib/secret.h), which the database is asked about; 0 for anything else, refused without.
 */
int crm_auth_api_token_shaped(const char *token);

/*
 * The RBAC check, one call per handler: authenticates req from its bearer token, a login's JWT
 * or a personal API token (verified, then the user re-read from the database, so deactivation,
 * role changes, logout-all, a password change and a revoked API token act at once) and requires
 * its role to be in roles (a mask of enum crm_role). Returns CRM_OK with req->who set;
 * CRM_EAUTH for no token, a bad, expired or revoked one, one of an old token epoch, or a user
 * gone or inactive; CRM_EFORBIDDEN for a role not in roles, or a read-only API token on a
 * request that is not a GET or HEAD; CRM_EUNAVAIL when the database is down.
 */
enum crm_err crm_auth_require(struct crm_req *req, unsigned roles);

/* Same, with the token given (e.g. from ?access_token=). */
enum crm_err crm_auth_token(struct crm_req *req, const char *token, unsigned roles);

/*
 * crm_auth_require in one round trip, for a handler whose one statement also re-reads the caller
 * (GET /api/leads/:id): crm_auth_claim verifies the bearer token alone and gives the user id, as
 * text, for the statement; the statement returns the user's role, active flag and token epoch
 * (lib/db.c AUTH_COLS) in columns col, col + 1 and col + 2 of its one row (no row when the user is
 * gone), and crm_auth_row applies them by
 * crm_auth_require's rules, with the same results. Deactivation and role changes still act at
 * once: the statement reads the user in the same snapshot as the data.
 */
enum crm_err crm_auth_claim(struct crm_req *req, const char **id);
enum crm_err crm_auth_row(struct crm_req *req, const PGresult *res, int col, unsigned roles);

/* crm_auth_require for any role, also giving the caller's User object (caller frees). */
enum crm_err crm_auth_me(struct crm_req *req, cJSON **user);

/* Makes a token for user id with role of token epoch epoch, valid for cfg->jwt_ttl s, into out. */
enum crm_err crm_auth_issue(const struct crm_config *cfg, int64_t id, enum crm_role role,
                            int64_t epoch, char *out, size_t outsz);

/* A User object from columns col.. col+5 of row: id, name, email, role, active, created_at. */
cJSON *crm_user_from_row(const PGresult *res, int row, int col);

#endif
