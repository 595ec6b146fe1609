/* handlers.h: the routes of crm-auth (auth, users, webhooks, health). */
#ifndef CRM_AUTH_HANDLERS_H
#define CRM_AUTH_HANDLERS_H

#include "http.h"

int auth_register(struct crm_req *req, struct crm_resp *resp);
int auth_login(struct crm_req *req, struct crm_resp *resp);
int auth_me(struct crm_req *req, struct crm_resp *resp);
int auth_health(struct crm_req *req, struct crm_resp *resp);
int users_list(struct crm_req *req, struct crm_resp *resp);
int users_update(struct crm_req *req, struct crm_resp *resp);
int webhooks_create(struct crm_req *req, struct crm_resp *resp);
int webhooks_list(struct crm_req *req, struct crm_resp *resp);
int webhooks_get(struct crm_req *req, struct crm_resp *resp);
int webhooks_update(struct crm_req *req, struct crm_resp *resp);
int webhooks_delete(struct crm_req *req, struct crm_resp *resp);
int webhooks_deliveries(struct crm_req *req, struct crm_resp *resp);

#endif
