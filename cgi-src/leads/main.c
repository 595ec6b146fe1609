/* crm-leads: leads, their activity timeline, status changes and assignment. */
#include "fcgi.h"
#include "handlers.h"

static const struct crm_route routes[] = {
    {"POST", "/api/leads", leads_create},
    {"GET", "/api/leads", leads_list},
    {"GET", "/api/leads/:id", leads_get},
    {"PATCH", "/api/leads/:id", leads_update},
    {"DELETE", "/api/leads/:id", leads_delete},
    {"PATCH", "/api/leads/:id/status", leads_status},
    {"PATCH", "/api/leads/:id/assign", leads_assign},
    {"POST", "/api/leads/:id/activity", activity_add},
    {"GET", "/api/leads/:id/activities", activity_list},
};

int
main(int argc, char **argv)
{
    const struct crm_app app = {"crm-leads", "Next-Gen CRM: leads and their activity timeline.",
                                routes, sizeof(routes) / sizeof(routes[0])};

    return crm_fcgi_main(&app, argc, argv);
}
