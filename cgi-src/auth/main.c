/* crm-auth: registration, login, the caller, user and webhook administration, the health check. */
#include "fcgi.h"
#include "handlers.h"
#include "routes.h"

static const struct crm_route routes[] = {CRM_AUTH_ROUTES(CRM_ROUTE)};

int
main(int argc, char **argv)
{
    const struct crm_app app = {
        "crm-auth", "Next-Gen CRM: auth, users, webhooks and health endpoints.",
        routes,     sizeof(routes) / sizeof(routes[0]),
        NULL,       0};

    return crm_fcgi_main(&app, argc, argv);
}
