/* crm-dashboard: the analytics of ADMIN and MANAGER. */
#include "fcgi.h"
#include "handlers.h"

static const struct crm_route routes[] = {
    {"GET", "/api/dashboard/stats", dashboard_stats},
    {"GET", "/api/dashboard/leads-by-status", dashboard_by_status},
    {"GET", "/api/dashboard/top-sales", dashboard_top_sales},
};

int
main(int argc, char **argv)
{
    const struct crm_app app = {"crm-dashboard", "Next-Gen CRM: dashboard analytics.", routes,
                                sizeof(routes) / sizeof(routes[0])};

    return crm_fcgi_main(&app, argc, argv);
}
