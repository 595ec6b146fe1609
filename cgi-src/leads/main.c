/*
 * crm-leads: leads, their activity timeline, status changes, assignment, follow-up tasks, and
 * the notification inbox of what happened to them.
 */
#include "fcgi.h"
#include "handlers.h"
#include "routes.h"

static const struct crm_route routes[] = {CRM_LEADS_ROUTES(CRM_ROUTE)};

/* A CSV import is a file, not a JSON body: nginx allows the same for its location. */
static const struct crm_body_limit body_limits[] = {{"/api/leads/import", LEAD_IMPORT_MAX}};

int
main(int argc, char **argv)
{
    const struct crm_app app = {
        "crm-leads", "Next-Gen CRM: leads, their activity timeline, tasks and notifications.",
        routes,      sizeof(routes) / sizeof(routes[0]),
        body_limits, sizeof(body_limits) / sizeof(body_limits[0])};

    return crm_fcgi_main(&app, argc, argv);
}
