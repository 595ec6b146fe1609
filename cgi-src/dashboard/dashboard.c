/*
 * dashboard.c: GET /api/dashboard/{stats,leads-by-status,top-sales}, ADMIN and MANAGER only.
 * The figures and their JSON come from one statement each (db.c), read from summaries.
 */
#include <stdio.h>

#include "auth.h"
#include "db.h"
#include "handlers.h"
#include "util.h"

#define DASH_ROLES (CRM_ROLE_ADMIN | CRM_ROLE_MANAGER)

/*
 * Runs name, whose last parameter (params[n - 1], set here) is the caller's id, and responds
 * with its JSON column under key (or as the whole body if NULL). The statement re-reads the
 * caller (db.c DASH), so a role change or deactivation acts at once, in one round trip.
 */
static int
respond(struct crm_req *req, struct crm_resp *resp, const char *name, int n, const char **params,
        const char *key)
{
    PGresult *res = NULL;
    cJSON *body = NULL;
    enum crm_err err = crm_auth_claim(req, &params[n - 1]);

    if (err == CRM_OK && (err = crm_db_exec(req->db, name, n, params, &res)) == CRM_OK &&
        (err = crm_auth_row(req, res, 1, DASH_ROLES)) == CRM_OK) {
        body = key != NULL ? crm_db_json_object(res, 0, &key, 1) : crm_db_json(res, 0, 0);
        err = body != NULL ? CRM_OK : CRM_ENOMEM;
    }
    PQclear(res);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    return crm_resp_json(resp, 200, body);
}

/* GET /api/dashboard/stats */
int
dashboard_stats(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[1];

    return respond(req, resp, "dash_stats", 1, params, NULL);
}

/* GET /api/dashboard/leads-by-status: every status in pipeline order, zeros included. */
int
dashboard_by_status(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[1];

    return respond(req, resp, "dash_by_status", 1, params, "data");
}

/* GET /api/dashboard/top-sales?limit=5&from=&to= */
int
dashboard_top_sales(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[4];
    long limit;
    char lbuf[21];
    enum crm_err err, auth;

    if ((err = crm_req_limit(req, 5, &limit)) != CRM_OK ||
        (err = crm_req_time(req, "from", 0, &params[1])) != CRM_OK ||
        (err = crm_req_time(req, "to", 1, &params[2])) != CRM_OK) {
        /* A bad query is a 400 for a caller who may read the dashboard at all. */
        auth = crm_auth_require(req, DASH_ROLES);
        return crm_resp_error(resp, auth != CRM_OK ? auth : err);
    }
    snprintf(lbuf, sizeof(lbuf), "%ld", limit);
    params[0] = lbuf;
    /* All time reads the per-user summary; a period adds up its months, days and edge days. */
    if (params[1] == NULL && params[2] == NULL)
        return respond(req, resp, "dash_top_sales", 2, params, "data");
    return respond(req, resp, "dash_top_sales_period", 4, params, "data");
}
