/*
 * crm-webhooks: delivers the events queued in webhook_deliveries to the endpoints ADMINs
 * registered (README "Webhooks"). Each endpoint is leased by one daemon at a time (several may
 * run), and its deliveries go one after another in event id order, up to the newest id that is
 * final (lib/evorder: no lower id can still commit), so a receiver sees ids only increase.
 * Endpoints are served at once on one curl multi handle: one that hangs costs only its own
 * timeout. A 2xx answer marks the delivery delivered; anything else is recorded and retried
 * after an exponential backoff, and the endpoint is disabled at WEBHOOK_MAX_FAILURES failures in
 * a row. A daemon killed mid-delivery loses nothing: the lease runs out and the delivery is made
 * again (at least once; receivers skip ids they have, by X-CRM-Event-Id). Each connect checks
 * the address it is about to reach (lib/webhook.c), whatever the name resolved to before.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "db.h"
#include "evorder.h"
#include "log.h"
#include "mail.h"
#include "util.h"
#include "webhook.h"

#define MAX_JOBS 32    /* endpoints in flight at once */
#define READ_LIMIT 500 /* event ids read per step of the horizon */

struct job {
    CURL *easy;
    struct curl_slist *headers;
    char webhook[21], delivery[21], event[21], type[64];
    char *url, *secret, *body;
    int failures; /* the endpoint's failed attempts in a row */
    char error[CURL_ERROR_SIZE];
};

static volatile sig_atomic_t stopping;
static const struct crm_config *cfg;
static struct job jobs[MAX_JOBS];

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* The lease of an endpoint: longer than an attempt, with room for the statements around it. */
static long
lease_seconds(void)
{
    return 3 * cfg->webhook_timeout + 10;
}

/*
 * Moves *horizon up to the newest event id that is final, as crm-events does for its streams:
 * the same statements and lib/evorder. *started says whether the start point is known yet.
 * Returns 1 when an id may still commit below newer ones (read again soon), else 0.
 */
static int
advance(struct crm_db *db, struct crm_evorder *order, int *started)
{
    char cursor[21], limit[8];
    const char *params[2] = {cursor, limit};
    int64_t ids[READ_LIMIT];
    struct crm_snap snap;
    PGresult *res;
    size_t n, k;
    int again = 0;

    do {
        int head = !*started;

        n = 0;
        crm_fmt_id(cursor, sizeof(cursor), order->cursor);
        snprintf(limit, sizeof(limit), "%d", READ_LIMIT);
        if (crm_db_exec(db, head ? "events_head" : "events_read", head ? 0 : 2, params, &res) !=
            CRM_OK)
            return 0;
        if (crm_db_snapshot(res, &snap) != 0) {
            PQclear(res);
            return 0;
        }
        if (head) {
            *started =
                crm_evorder_start(order, &snap, strtoll(PQgetvalue(res, 0, 2), NULL, 10)) == 1;
            k = 0;
        } else {
            for (int r = 0; r < PQntuples(res) && !PQgetisnull(res, r, 2) && n < READ_LIMIT; r++)
                ids[n++] = strtoll(PQgetvalue(res, r, 2), NULL, 10);
            k = crm_evorder_next(order, &snap, ids, n, &again);
        }
        crm_snap_free(&snap);
        PQclear(res);
    } while (*started && n == READ_LIMIT && k == n);
    return again || !*started;
}

/* Refuses a connection to an address webhooks may not reach, at the moment curl makes it. */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)arg;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        crm_webhook_addr_refused(&a->addr, cfg->webhook_allow_nets))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

/* The receiver's answer is not read: only its status counts. */
static size_t
discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static void
job_free(struct job *j)
{
    if (j->easy != NULL)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->headers);
    free(j->url);
    free(j->secret);
    free(j->body);
    memset(j, 0, sizeof(*j));
}

/* Adds header "name: value" to j. Returns 0, or -1. */
static int
add_header(struct job *j, const char *name, const char *value)
{
    char line[256];
    struct curl_slist *l;

    snprintf(line, sizeof(line), "%s: %s", name, value);
    if ((l = curl_slist_append(j->headers, line)) == NULL)
        return -1;
    j->headers = l;
    return 0;
}

/* Sets up j's request: the body, signed now, and where it may connect. Returns 0, or -1. */
static int
job_request(struct job *j)
{
    char sig[68], ts[24];
    long long now = (long long)time(NULL);

    snprintf(ts, sizeof(ts), "%lld", now);
    curl_slist_free_all(j->headers);
    j->headers = NULL;
    if (crm_webhook_sign(j->secret, now, j->body, sig) != 0 ||
        add_header(j, "Content-Type", "application/json") != 0 ||
        add_header(j, "User-Agent", "Next-Gen-CRM-Webhooks") != 0 ||
        add_header(j, "X-CRM-Event", j->type) != 0 ||
        add_header(j, "X-CRM-Event-Id", j->event) != 0 ||
        add_header(j, "X-CRM-Delivery", j->delivery) != 0 ||
        add_header(j, "X-CRM-Timestamp", ts) != 0 || add_header(j, "X-CRM-Signature", sig) != 0 ||
        add_header(j, "Expect", "") != 0)
        return -1;
    if (j->easy == NULL && (j->easy = curl_easy_init()) == NULL)
        return -1;
    curl_easy_reset(j->easy);
    j->error[0] = '\0';
    curl_easy_setopt(j->easy, CURLOPT_URL, j->url);
    curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(j->easy, CURLOPT_PROXY, ""); /* no proxy from the environment */
    curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(j->easy, CURLOPT_TIMEOUT, cfg->webhook_timeout);
    curl_easy_setopt(j->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->error);
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
    return 0;
}

/*
 * Starts the delivery that statement name (webhook_next or webhook_delivered) returns for j's
 * endpoint on multi. Returns 1 when one started; 0 when there was none (the endpoint's lease is
 * released), -1 on failure (the lease runs out).
 */
static int
job_next(struct crm_db *db, CURLM *multi, struct job *j, const char *name,
         const char *const *params, int n)
{
    const char *hook[1] = {j->webhook};
    PGresult *res;

    if (crm_db_exec(db, name, n, params, &res) != CRM_OK)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        crm_db_run(db, "webhook_release", 1, hook);
        return 0;
    }
    snprintf(j->delivery, sizeof(j->delivery), "%s", PQgetvalue(res, 0, 0));
    snprintf(j->event, sizeof(j->event), "%s", PQgetvalue(res, 0, 1));
    snprintf(j->type, sizeof(j->type), "%s", PQgetvalue(res, 0, 2));
    free(j->body);
    j->body = strdup(PQgetvalue(res, 0, 3));
    PQclear(res);
    if (j->body == NULL || job_request(j) != 0 || curl_multi_add_handle(multi, j->easy) != CURLM_OK)
        return -1;
    return 1;
}

/* Claims free endpoints for the free job slots and starts their first deliveries. */
static void
claim(struct crm_db *db, CURLM *multi, int64_t horizon)
{
    char upto[21], lease[21], limit[12];
    const char *params[3] = {upto, lease, limit}, *next[2] = {NULL, upto};
    PGresult *res;
    int free_slots = 0;

    for (int i = 0; i < MAX_JOBS; i++)
        free_slots += jobs[i].url == NULL;
    if (free_slots == 0 || horizon == 0)
        return;
    crm_fmt_id(upto, sizeof(upto), horizon);
    snprintf(lease, sizeof(lease), "%ld", lease_seconds());
    snprintf(limit, sizeof(limit), "%d", free_slots);
    if (crm_db_exec(db, "webhook_claim", 3, params, &res) != CRM_OK)
        return;
    for (int r = 0, i = 0; r < PQntuples(res); r++) {
        struct job *j;

        while (jobs[i].url != NULL)
            i++;
        j = &jobs[i];
        snprintf(j->webhook, sizeof(j->webhook), "%s", PQgetvalue(res, r, 0));
        j->url = strdup(PQgetvalue(res, r, 1));
        j->secret = strdup(PQgetvalue(res, r, 2));
        j->failures = atoi(PQgetvalue(res, r, 3));
        next[0] = j->webhook;
        if (j->url == NULL || j->secret == NULL ||
            job_next(db, multi, j, "webhook_next", next, 2) != 1)
            job_free(j);
    }
    PQclear(res);
}

/* Records a failed attempt of j: the endpoint backs off, or is disabled. */
static void
failed(struct crm_db *db, struct job *j, long status)
{
    char code[24], wait[24], max[12], why[CURL_ERROR_SIZE + 32];
    const char *params[5] = {j->delivery, status > 0 ? code : NULL, why, wait, max};
    long backoff = crm_mail_backoff(j->failures + 1, cfg->webhook_retry, (rand() % 1000) / 1000.0);

    snprintf(code, sizeof(code), "%ld", status);
    if (status > 0)
        snprintf(why, sizeof(why), "HTTP %ld", status);
    else
        snprintf(why, sizeof(why), "%s", j->error[0] != '\0' ? j->error : "no answer");
    snprintf(max, sizeof(max), "%d", cfg->webhook_max_failures);
    snprintf(wait, sizeof(wait), "%ld", backoff);
    if (crm_db_run(db, "webhook_failed", 5, params) != CRM_OK)
        return;
    if (j->failures + 1 >= cfg->webhook_max_failures)
        crm_log(CRM_LOG_ERR, NULL, "webhook %s disabled after %d failures in a row: %s", j->webhook,
                j->failures + 1, why);
    else
        crm_log(CRM_LOG_WARN, NULL, "webhook %s event %s failed (%d in a row), retry in %ld s: %s",
                j->webhook, j->event, j->failures + 1, backoff, why);
}

/*
 * A finished transfer: a 2xx answer marks it delivered and starts the endpoint's next delivery
 * (none once stopping: the lease is released for another daemon); anything else is a failure.
 * The job's slot is freed when its endpoint is done for now.
 */
static void
finished(struct crm_db *db, CURLM *multi, struct job *j, CURLcode rc, int64_t horizon)
{
    char code[24], lease[24], upto[21];
    const char *params[4] = {j->delivery, code, lease, upto};
    long status = 0;

    curl_multi_remove_handle(multi, j->easy);
    if (rc == CURLE_OK)
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status < 200 || status > 299) {
        failed(db, j, status);
        job_free(j);
        return;
    }
    crm_log(CRM_LOG_INFO, NULL, "webhook %s event %s answered HTTP %ld", j->webhook, j->event,
            status);
    snprintf(code, sizeof(code), "%ld", status);
    snprintf(lease, sizeof(lease), "%ld", lease_seconds());
    crm_fmt_id(upto, sizeof(upto), stopping ? 0 : horizon);
    j->failures = 0;
    /* On a failure to record it, the lease runs out and the delivery is made again. */
    if (job_next(db, multi, j, "webhook_delivered", params, 4) != 1)
        job_free(j);
}

/* Settles the transfers that have finished. */
static void
settle(struct crm_db *db, CURLM *multi, int64_t horizon)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(multi, &left)) != NULL) {
        struct job *j = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        finished(db, multi, j, m->data.result, horizon);
    }
}

static int
in_flight(void)
{
    int n = 0;

    for (int i = 0; i < MAX_JOBS; i++)
        n += jobs[i].url != NULL;
    return n;
}

/* Frees the notifications libpq has read (they only wake the loop); how many there were. */
static int
drain(struct crm_db *db)
{
    PGconn *conn = crm_db_conn(db);
    PGnotify *n;
    int count = 0;

    if (conn == NULL || PQconsumeInput(conn) == 0)
        return 0;
    for (; (n = PQnotifies(conn)) != NULL; count++)
        PQfreemem(n);
    return count;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
usage(FILE *f)
{
    fprintf(f, "Usage: crm-webhooks\n\nNext-Gen CRM: delivers events to the webhooks ADMINs "
               "registered.\n\n"
               "Wakes on NOTIFY crm_events and every second, leases endpoints with pending\n"
               "deliveries (several daemons may run at once), POSTs each event's JSON signed\n"
               "with the endpoint's secret (X-CRM-Signature), in event id order per endpoint,\n"
               "retries failures with exponential backoff from WEBHOOK_RETRY_SECONDS, and\n"
               "disables an endpoint after WEBHOOK_MAX_FAILURES failures in a row. SIGTERM:\n"
               "finishes the deliveries in flight.\n\n"
               "Environment: DATABASE_URL, JWT_SECRET, WEBHOOK_TIMEOUT_SECONDS,\n"
               "WEBHOOK_RETRY_SECONDS, WEBHOOK_MAX_FAILURES, WEBHOOK_ALLOW_NETS, CRM_ENV_FILE\n"
               "(an env file with the same keys; default /etc/crm/crm.env).\n");
    return f == stdout ? 0 : 2;
}

int
main(int argc, char **argv)
{
    static const char *const listens[] = {"events_listen"};
    struct sigaction sa = {.sa_handler = on_signal};
    struct crm_evorder order = {0};
    struct crm_config config;
    struct crm_db *db;
    unsigned listened = 0;
    int started = 0;
    CURLM *multi;
    char why[256];

    crm_log_init("crm-webhooks");
    if (argc > 1)
        return usage(argc == 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    if (crm_config_load(crm_config_default_path(), &config, why, sizeof(why)) != 0) {
        fprintf(stderr, "crm-webhooks: %s\n", why);
        return 1;
    }
    cfg = &config;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (multi = curl_multi_init()) == NULL ||
        (db = crm_db_open(config.database_url)) == NULL)
        return 1;
    crm_log(CRM_LOG_INFO, NULL, "started");
    /*
     * New events and claimable endpoints are looked for when an event is notified, and every
     * second (retries come due, a lease runs out), every 50 ms while an id may still commit
     * below newer ones; in between, the loop only drives the transfers in flight.
     */
    for (long long last = 0, wait = 0; !stopping || in_flight() > 0;) {
        PGconn *conn;
        struct curl_waitfd pg = {.events = CURL_WAIT_POLLIN};
        int running, woken;

        if (!stopping && now_ms() - last >= wait && crm_db_listen(db, &listened, listens, 1) >= 0) {
            wait = advance(db, &order, &started) ? 50 : 1000;
            if (started)
                claim(db, multi, order.cursor);
            last = now_ms();
        }
        curl_multi_perform(multi, &running);
        settle(db, multi, order.cursor);
        conn = crm_db_conn(db);
        pg.fd = conn != NULL && PQstatus(conn) == CONNECTION_OK ? PQsocket(conn) : -1;
        /* Until the next look, or sooner: a notification, or a transfer (curl's own timeouts). */
        curl_multi_poll(multi, pg.fd >= 0 ? &pg : NULL, pg.fd >= 0 ? 1 : 0,
                        (int)(wait - (now_ms() - last) > 0 ? wait - (now_ms() - last) : 0), NULL);
        woken = drain(db);
        if (woken > 0)
            wait = 0;
    }
    crm_log(CRM_LOG_INFO, NULL, "stopped");
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    crm_evorder_free(&order);
    crm_db_close(db);
    explicit_bzero(&config, sizeof(config));
    return 0;
}
