/* crm-events: Server-Sent Events for every change to the leads a caller may see. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "events.h"
#include "log.h"

static int
usage(void)
{
    printf("Usage: crm-events\n\n"
           "Next-Gen CRM real-time notifications: answers GET /api/events with a Server-Sent\n"
           "Events stream per client, all on one event loop, fed by PostgreSQL LISTEN crm_events.\n"
           "It answers FastCGI on file descriptor 0, a listening socket passed by spawn-fcgi\n"
           "(spawn-fcgi -n -s SOCKET -- crm-events); nginx passes /api/events to it unbuffered.\n"
           "Each event is sent in id order, once, to every stream whose user may see its lead;\n"
           "Last-Event-ID (or ?last_event_id=) replays what a client missed, for 24 hours, after\n"
           "which crm-events purges events. SIGTERM ends every stream and exits.\n\n"
           "Environment: DATABASE_URL, JWT_SECRET (32 bytes or more), SSE_MAX_STREAMS (default\n"
           "10000, then 503), SSE_MAX_STREAMS_PER_USER (default 16, then 429 for that user),\n"
           "CRM_ENV_FILE (an env file with the same keys; default /etc/crm/crm.env).\n");
    return 0;
}

/* One descriptor per stream: take all the kernel allows this process. */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int
main(int argc, char **argv)
{
    struct crm_config cfg;
    char why[256];
    int rc;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return usage();
    if (argc > 1) {
        fprintf(stderr, "crm-events: usage: crm-events [--help]\n");
        return 2;
    }
    crm_log_init("crm-events");
    if (crm_config_load(crm_config_default_path(), &cfg, why, sizeof(why)) != 0) {
        fprintf(stderr, "crm-events: %s\n", why);
        return 1;
    }
    raise_nofile();
    crm_log(CRM_LOG_INFO, NULL, "started, at most %d streams, %d a user", cfg.sse_max_streams,
            cfg.sse_max_streams_per_user);
    rc = events_run(&cfg);
    crm_log(CRM_LOG_INFO, NULL, "stopped");
    explicit_bzero(&cfg, sizeof(cfg));
    return rc;
}
