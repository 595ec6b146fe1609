/* crm-auth: registration, login, the caller, user administration and the health check. */
#include "fcgi.h"
#include "handlers.h"

static const struct crm_route routes[] = {
    {"POST", "/api/auth/register", auth_register},
    {"POST", "/api/auth/login", auth_login},
    {"GET", "/api/auth/me", auth_me},
    {"GET", "/api/users", users_list},
    {"PATCH", "/api/users/:id", users_update},
    {"GET", "/api/health", auth_health},
};

int
main(int argc, char **argv)
{
    const struct crm_app app = {"crm-auth", "Next-Gen CRM: auth, users and health endpoints.",
                                routes, sizeof(routes) / sizeof(routes[0])};

    return crm_fcgi_main(&app, argc, argv);
}
