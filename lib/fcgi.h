/* fcgi.h: the accept loop every FastCGI program runs; its main() is one call to this. */
#ifndef CRM_FCGI_H
#define CRM_FCGI_H

#include <stddef.h>
#include <sys/types.h>

#include "router.h"

/* A path whose request bodies may be larger than CRM_BODY_MAX (a CSV import), and how large. */
struct crm_body_limit {
    const char *path;
    size_t max;
};

struct crm_app {
    const char *name;    /* program name, for logs and --help */
    const char *summary; /* one line for --help */
    const struct crm_route *routes;
    size_t nroutes;
    const struct crm_body_limit *body_limits; /* the exceptions to CRM_BODY_MAX, or NULL */
    size_t nbody_limits;
};

/* The largest body app reads for path: its body_limits entry, else CRM_BODY_MAX. */
size_t crm_fcgi_body_max(const struct crm_app *app, const char *path);

/*
 * Loads the configuration (refusing to start, with a one-line reason, when it is unsafe), then
 * answers FastCGI requests on fd 0 (as spawn-fcgi passes it) until SIGTERM or SIGINT, after
 * which it finishes the request in hand, frees everything and returns the exit status.
 */
int crm_fcgi_main(const struct crm_app *app, int argc, char **argv);

/*
 * Handles one request already read into req: routes it and runs its handler, filling resp.
 * Returns the index of the route in app's table, or CRM_METRICS_UNROUTED (-1) when none matched.
 * Exposed so tests can drive the router and error paths without a socket.
 */
int crm_fcgi_dispatch(const struct crm_app *app, struct crm_req *req, struct crm_resp *resp);

/*
 * In a worker just forked by the pool whose pid is pool: asks for SIGTERM when its parent dies,
 * so that it never outlives the pool, and exits at once if the parent is no longer pool (it died
 * before the request was made, and no signal would ever come). Exposed for the tests.
 */
void crm_fcgi_follow_pool(pid_t pool);

#endif
