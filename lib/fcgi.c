/* fcgi.c: FCGX_Accept_r loop: read the request, route, respond, log, free, repeat. */
#include "fcgi.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define CRM_MAX_WORKERS 64

static volatile sig_atomic_t stopping;
static int devnull = -1;

/*
 * Not FCGX_ShutdownPending(): raised while libfcgi 2.4.2's OS_Accept vets a fresh connection
 * (it waits up to 2 s for its first bytes, and a signal cuts that wait short), it makes
 * OS_Accept drop the connection, then loop forever on the closed descriptor (poll, close, ...)
 * without ever returning. Instead this process's fd 0 becomes /dev/null: every later accept()
 * fails at once (ENOTSOCK), so FCGX_Accept_r returns however the signal fell (in accept(),
 * while vetting, or just before accept()), and the pool's other workers keep the socket.
 */
static void
on_stop(int sig)
{
    int saved = errno;

    (void)sig;
    stopping = 1;
    if (devnull >= 0)
        dup2(devnull, 0);
    errno = saved;
}

/* Installed without SA_RESTART, so a blocked accept() returns and the loop can end. */
static void
install_signals(void)
{
    struct sigaction sa;

    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

size_t
crm_fcgi_body_max(const struct crm_app *app, const char *path)
{
    for (size_t i = 0; i < app->nbody_limits; i++)
        if (strcmp(app->body_limits[i].path, path) == 0)
            return app->body_limits[i].max;
    return CRM_BODY_MAX;
}

/* Reads the body, bounded by max. Returns CRM_OK, CRM_ETOOBIG or CRM_ENOMEM. */
static enum crm_err
read_body(FCGX_Request *r, struct crm_req *req, size_t max)
{
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", r->envp);
    long long len = 0;

    if (cl != NULL && cl[0] != '\0' && crm_parse_int(cl, 0, INT64_MAX, &len) != 0)
        return CRM_ETOOBIG;
    if ((unsigned long long)len > max)
        return CRM_ETOOBIG;
    if ((req->body = crm_arena_alloc(&req->arena, (size_t)len + 1)) == NULL)
        return CRM_ENOMEM;
    req->body_len = len > 0 ? (size_t)FCGX_GetStr(req->body, (int)len, r->in) : 0;
    return CRM_OK;
}

static enum crm_err
read_request(const struct crm_app *app, FCGX_Request *r, struct crm_req *req)
{
    crm_req_set_id(req, FCGX_GetParam("HTTP_X_REQUEST_ID", r->envp));
    req->method = FCGX_GetParam("REQUEST_METHOD", r->envp);
    req->path = FCGX_GetParam("DOCUMENT_URI", r->envp);
    req->query = FCGX_GetParam("QUERY_STRING", r->envp);
    req->content_type = FCGX_GetParam("CONTENT_TYPE", r->envp);
    req->authorization = FCGX_GetParam("HTTP_AUTHORIZATION", r->envp);
    req->if_match = FCGX_GetParam("HTTP_IF_MATCH", r->envp);
    req->remote_addr = FCGX_GetParam("REMOTE_ADDR", r->envp);
    if (req->method == NULL)
        req->method = "GET";
    if (req->path == NULL)
        req->path = "/";
    return read_body(r, req, crm_fcgi_body_max(app, req->path));
}

int
crm_fcgi_dispatch(const struct crm_app *app, struct crm_req *req, struct crm_resp *resp)
{
    const struct crm_route *route;
    enum crm_err err = crm_route_match(app->routes, app->nroutes, req, resp, &route);

    if (err != CRM_OK) {
        crm_resp_error(resp, err);
        return CRM_METRICS_UNROUTED;
    }
    route->handler(req, resp);
    return (int)(route - app->routes);
}

/* A streamed body's bytes to the client; FastCGI records of at most 64 KiB each. */
static int
put_fcgx(void *sink, const char *buf, size_t len)
{
    FCGX_Stream *out = sink;

    while (len > 0) {
        int n = len > 65535 ? 65535 : (int)len;

        if (FCGX_PutStr(buf, n, out) != n)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A HEAD's streamed body: refused at once, so the stream ends without producing the rest. */
static int
put_nowhere(void *sink, const char *buf, size_t len)
{
    (void)sink;
    (void)buf;
    (void)len;
    return -1;
}

static void
write_response(FCGX_Request *r, const struct crm_req *req, struct crm_resp *resp)
{
    char head[CRM_RESP_HEAD_MAX];
    int n = crm_resp_head(resp, req->id, head, sizeof(head));

    FCGX_PutStr(head, n, r->out);
    if (resp->stream != NULL)
        (void)resp->stream(resp, crm_req_head_only(req) ? put_nowhere : put_fcgx, r->out);
    else if (resp->body != NULL && !crm_req_head_only(req))
        FCGX_PutS(resp->body, r->out);
}

/* Answers a request whose body could not be read, saying what the limit of its path is. */
static void
body_error(const struct crm_app *app, const struct crm_req *req, struct crm_resp *resp,
           enum crm_err err)
{
    size_t max = crm_fcgi_body_max(app, req->path);

    if (err != CRM_ETOOBIG)
        crm_resp_error(resp, err);
    else if (max % (1024 * 1024) == 0)
        crm_resp_errorf(resp, err, "request body is larger than %zu MiB", max / (1024 * 1024));
    else
        crm_resp_errorf(resp, err, "request body is larger than %zu KiB", max / 1024);
}

static double
ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
serve(const struct crm_app *app, FCGX_Request *r, struct crm_req *req, struct crm_resp *resp)
{
    struct timespec t0;
    enum crm_err err;
    int route = CRM_METRICS_UNROUTED;
    double ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    crm_metrics_begin();
    crm_db_set_req(req->db, req);
    if ((err = read_request(app, r, req)) != CRM_OK) {
        body_error(app, req, resp, err);
    } else if (crm_metrics_is_scrape(req->path)) {
        route = CRM_METRICS_SCRAPE;
        crm_metrics_answer(req, resp);
    } else {
        route = crm_fcgi_dispatch(app, req, resp);
    }
    write_response(r, req, resp);
    ms = ms_since(&t0);
    crm_metrics_end(route, req->method, resp->status, ms / 1e3);
    crm_log(resp->status >= 500 ? CRM_LOG_WARN : CRM_LOG_INFO, req, "%s %s %d %.1fms user=%s",
            req->method, req->path, resp->status, ms, req->authed ? req->who.idstr : "-");
    crm_db_set_req(req->db, NULL);
}

static int
usage(const struct crm_app *app)
{
    printf("Usage: %s [--workers N]\n\n%s\n\n"
           "A FastCGI pool: it answers requests on file descriptor 0, a listening socket passed\n"
           "by spawn-fcgi (spawn-fcgi -n -s SOCKET -- %s --workers 4). It forks N workers\n"
           "(default: the number of CPUs) that share the socket, restarts any that dies, and on\n"
           "SIGTERM lets each finish the request in hand, then exits.\n\n"
           "Environment: DATABASE_URL, JWT_SECRET (32 bytes or more), JWT_TTL, BCRYPT_COST,\n"
           "CRM_ENV_FILE (an env file with the same keys; default /etc/crm/crm.env).\n",
           app->name, app->summary, app->name);
    return 0;
}

/* One worker: the accept loop, with its own database connection. Returns the exit status. */
static int
worker(const struct crm_app *app, const struct crm_config *cfg)
{
    struct crm_req req;
    struct crm_resp resp;
    struct crm_db *db;
    FCGX_Request r;

    if ((db = crm_db_open(cfg->database_url)) == NULL ||
        FCGX_InitRequest(&r, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        crm_log(CRM_LOG_ERR, NULL, "cannot initialise a worker");
        crm_db_close(db);
        return 1;
    }
    (void)crm_db_connect(db); /* early, so the first request is fast; failure is fine */
    memset(&resp, 0, sizeof(resp));
    while (!stopping && FCGX_Accept_r(&r) >= 0) {
        memset(&req, 0, sizeof(req));
        req.db = db;
        req.cfg = cfg;
        serve(app, &r, &req, &resp);
        FCGX_Finish_r(&r);
        crm_arena_reset(&req.arena);
        crm_resp_reset(&resp);
    }
    FCGX_Free(&r, 1);
    crm_db_close(db);
    return 0;
}

void
crm_fcgi_follow_pool(pid_t pool)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* After the request, not before: a pool that died before it shows here (the worker has been
     * adopted), one that dies after it sends the signal. */
    if (getppid() != pool)
        _exit(0);
}

/* Forks the worker of metrics slot i (a successor takes over the slot of the one it replaces). */
static pid_t
spawn(const struct crm_app *app, const struct crm_config *cfg, int i)
{
    pid_t pool = getpid();
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    crm_fcgi_follow_pool(pool);
    crm_metrics_attach(i);
    exit(worker(app, cfg));
}

/* The pool: keeps n workers running until asked to stop, then stops them and waits. */
static int
pool(const struct crm_app *app, const struct crm_config *cfg, int n)
{
    pid_t kids[CRM_MAX_WORKERS];
    int status;

    for (int i = 0; i < n; i++)
        kids[i] = spawn(app, cfg, i);
    while (!stopping) {
        pid_t pid = wait(&status);

        if (pid < 0 && errno != EINTR)
            break;
        for (int i = 0; pid > 0 && i < n; i++) {
            if (kids[i] != pid)
                continue;
            crm_log(CRM_LOG_ERR, NULL, "worker %ld exited (status %d), restarting", (long)pid,
                    status);
            sleep(1); /* a worker that dies at once must not make the pool spin */
            kids[i] = stopping ? -1 : spawn(app, cfg, i);
        }
    }
    for (int i = 0; i < n; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGTERM);
    while (wait(&status) > 0 || errno == EINTR)
        ;
    return 0;
}

static int
parse_workers(int argc, char **argv, int *n)
{
    long long v = sysconf(_SC_NPROCESSORS_ONLN);

    if (argc == 3 && strcmp(argv[1], "--workers") == 0) {
        if (crm_parse_int(argv[2], 1, CRM_MAX_WORKERS, &v) != 0)
            return -1;
    } else if (argc != 1) {
        return -1;
    }
    *n = v < 1 ? 1 : v > CRM_MAX_WORKERS ? CRM_MAX_WORKERS : (int)v;
    return 0;
}

int
crm_fcgi_main(const struct crm_app *app, int argc, char **argv)
{
    struct crm_config cfg;
    char why[256];
    int n, rc;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return usage(app);
    crm_log_init(app->name);
    if (parse_workers(argc, argv, &n) != 0) {
        fprintf(stderr, "%s: usage: %s [--workers 1..%d]\n", app->name, app->name, CRM_MAX_WORKERS);
        return 2;
    }
    if (crm_config_load(crm_config_default_path(), &cfg, why, sizeof(why)) != 0) {
        fprintf(stderr, "%s: %s\n", app->name, why);
        return 1;
    }
    if (FCGX_Init() != 0 || FCGX_IsCGI()) {
        fprintf(stderr, "%s: fd 0 is not a FastCGI socket (start it with spawn-fcgi)\n", app->name);
        return 1;
    }
    install_signals();
    /* Before any fork, so every worker shares the one region (lib/metrics.h). */
    if (crm_metrics_init(n, app->routes, app->nroutes, 0) != 0)
        crm_log(CRM_LOG_WARN, NULL, "no shared memory for the metrics: /metrics answers 500");
    crm_log(CRM_LOG_INFO, NULL, "started with %d workers", n);
    rc = n == 1 ? worker(app, &cfg) : pool(app, &cfg, n);
    crm_log(CRM_LOG_INFO, NULL, "stopped");
    explicit_bzero(&cfg, sizeof(cfg));
    return rc;
}
