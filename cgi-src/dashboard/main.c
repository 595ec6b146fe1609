/* crm-dashboard: the analytics of ADMIN and MANAGER. */
#include "fcgi.h"
#include "handlers.h"
#include "routes.h"

static const struct crm_route routes[] = {CRM_DASHBOARD_ROUTES(CRM_ROUTE)};

int
main(int argc, char **argv)
{
    const struct crm_app app = {"crm-dashboard",
                                "Next-Gen CRM: dashboard analytics.",
                                routes,
                                sizeof(routes) / sizeof(routes[0]),
                                NULL,
                                0};

    return crm_fcgi_main(&app, argc, argv);
}
