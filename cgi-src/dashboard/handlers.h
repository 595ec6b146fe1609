/* handlers.h: the routes of crm-dashboard. */
#ifndef CRM_DASHBOARD_HANDLERS_H
#define CRM_DASHBOARD_HANDLERS_H

#include "http.h"

int dashboard_stats(struct crm_req *req, struct crm_resp *resp);
int dashboard_by_status(struct crm_req *req, struct crm_resp *resp);
int dashboard_top_sales(struct crm_req *req, struct crm_resp *resp);

#endif
