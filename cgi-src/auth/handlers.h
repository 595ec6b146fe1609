/* handlers.h: the routes of crm-auth (auth, users, webhooks, health). */
#ifndef CRM_AUTH_HANDLERS_H
#define CRM_AUTH_HANDLERS_H

#include <libpq-fe.h>

#include "http.h"
#include "valid.h"

/* The rule of a new password, wherever one is set: bcrypt reads 72 bytes. */
#define AUTH_NEW_PASSWORD(name)                                                                    \
    {                                                                                              \
        name, CRM_F_BYTES, CRM_F_REQUIRED, 8, 72, NULL                                             \
    }

/*
 * {"token", "user"} with status for the user in row 0 of res (a User from column 0, its token
 * epoch in column epoch_col): the answer of every route that signs a user in.
 */
int auth_token_response(struct crm_req *req, struct crm_resp *resp, int status, const PGresult *res,
                        int epoch_col);

/*
 * The per-account limit on password checks (README "Login limits"): CRM_OK when the password of
 * email may be checked, the attempt then counted as a failure until login_succeeded clears it;
 * CRM_ERATE with the seconds left in *wait while it is locked out.
 */
enum crm_err auth_login_allowed(struct crm_req *req, const char *email, long *wait);

/* 429 for a locked-out account, with the seconds left in Retry-After. */
int auth_locked_out(struct crm_resp *resp, long wait);

int auth_register(struct crm_req *req, struct crm_resp *resp);
int auth_login(struct crm_req *req, struct crm_resp *resp);
int auth_me(struct crm_req *req, struct crm_resp *resp);
int auth_password(struct crm_req *req, struct crm_resp *resp);
int auth_logout_all(struct crm_req *req, struct crm_resp *resp);
int auth_reset_request(struct crm_req *req, struct crm_resp *resp);
int auth_reset_confirm(struct crm_req *req, struct crm_resp *resp);
int auth_health(struct crm_req *req, struct crm_resp *resp);
int tokens_create(struct crm_req *req, struct crm_resp *resp);
int tokens_list(struct crm_req *req, struct crm_resp *resp);
int tokens_delete(struct crm_req *req, struct crm_resp *resp);
int users_list(struct crm_req *req, struct crm_resp *resp);
int users_update(struct crm_req *req, struct crm_resp *resp);
int webhooks_create(struct crm_req *req, struct crm_resp *resp);
int webhooks_list(struct crm_req *req, struct crm_resp *resp);
int webhooks_get(struct crm_req *req, struct crm_resp *resp);
int webhooks_update(struct crm_req *req, struct crm_resp *resp);
int webhooks_delete(struct crm_req *req, struct crm_resp *resp);
int webhooks_deliveries(struct crm_req *req, struct crm_resp *resp);

#endif
