/* handlers.h: the routes of crm-auth (auth, users, health). */
#ifndef CRM_AUTH_HANDLERS_H
#define CRM_AUTH_HANDLERS_H

#include "http.h"

int auth_register(struct crm_req *req, struct crm_resp *resp);
int auth_login(struct crm_req *req, struct crm_resp *resp);
int auth_me(struct crm_req *req, struct crm_resp *resp);
int auth_health(struct crm_req *req, struct crm_resp *resp);
int users_list(struct crm_req *req, struct crm_resp *resp);
int users_update(struct crm_req *req, struct crm_resp *resp);

#endif
