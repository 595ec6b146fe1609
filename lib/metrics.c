/* metrics.c: per-worker slots in shared memory, summed into the Prometheus text format. */
#include "metrics.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "db.h"

#define MAX_ROUTES 40 /* a program's routes, then "other" and "/metrics" */
#define NMETHODS 8
#define NCLASSES 5 /* 1xx .. 5xx */

static const char *const methods[NMETHODS] = {"GET",   "HEAD",   "POST",    "PUT",
                                              "PATCH", "DELETE", "OPTIONS", "other"};
/* Upper bounds (seconds) of the latency buckets; one more bucket holds what is above them. */
static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,  0.5,    1,     2.5,  5,     10};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))
static const char *const db_errs[] = {"connection", "conflict", "other"};

/* One worker's figures; only that worker writes them, any worker reads them. */
struct slot {
    uint64_t requests[MAX_ROUTES][NMETHODS][NCLASSES];
    uint64_t buckets[MAX_ROUTES][NBOUNDS + 1]; /* not cumulative: summed when rendered */
    uint64_t micros[MAX_ROUTES];               /* the sum of the durations, microseconds */
    uint64_t in_flight;
    uint64_t db[CRM_METRICS_DB_NEVENTS];
    uint64_t sse_open, sse_fanned_out, sse_dropped;
} __attribute__((aligned(64)));

static struct slot *slots; /* the shared region, NULL without one */
static struct slot *mine;
static int nslots;
static const struct crm_route *routes;
static size_t nroutes;
/* The first route with each route's pattern: a path under several methods is one label. */
static size_t canon[MAX_ROUTES];
static int with_sse;

int
crm_metrics_init(int n, const struct crm_route *r, size_t nr, int sse)
{
#ifdef CRM_METRICS_OFF
    /* make bench-metrics' build without figures: no region, so every recording call returns at
     * once; what the figures cost is the difference. */
    (void)n, (void)r, (void)nr, (void)sse;
    return -1;
#else
    void *p = mmap(NULL, sizeof(struct slot) * (size_t)n, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    slots = p; /* mmap gives zeroed pages */
    nslots = n;
    routes = r;
    nroutes = nr < MAX_ROUTES - 2 ? nr : MAX_ROUTES - 2;
    for (size_t i = 0; i < MAX_ROUTES; i++) {
        canon[i] = i;
        for (size_t j = 0; i < nroutes && j < i && canon[i] == i; j++)
            if (strcmp(routes[j].pattern, routes[i].pattern) == 0)
                canon[i] = j;
    }
    with_sse = sse;
    mine = &slots[0];
    return 0;
#endif
}

void
crm_metrics_attach(int slot)
{
    if (slots == NULL || slot < 0 || slot >= nslots)
        return;
    mine = &slots[slot];
    /* The worker that had this slot died (or this is the first): none of its requests runs. */
    __atomic_store_n(&mine->in_flight, 0, __ATOMIC_RELAXED);
}

static void
add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static uint64_t
sum(const uint64_t *field)
{
    /* field points into slot 0: the same field of every slot is one slot's size further on. */
    size_t off = (size_t)((const char *)field - (const char *)slots);
    uint64_t total = 0;

    for (int i = 0; i < nslots; i++)
        total +=
            __atomic_load_n((const uint64_t *)((const char *)&slots[i] + off), __ATOMIC_RELAXED);
    return total;
}

void
crm_metrics_begin(void)
{
    if (mine != NULL)
        add(&mine->in_flight, 1);
}

static size_t
route_index(int route)
{
    if (route >= 0 && (size_t)route < nroutes)
        return canon[route];
    return route == CRM_METRICS_SCRAPE ? nroutes + 1 : nroutes;
}

static const char *
route_label(size_t i)
{
    return i < nroutes ? routes[i].pattern : i == nroutes ? "other" : "/metrics";
}

static size_t
method_index(const char *method)
{
    for (size_t i = 0; i + 1 < NMETHODS; i++)
        if (method != NULL && strcmp(method, methods[i]) == 0)
            return i;
    return NMETHODS - 1;
}

void
crm_metrics_end(int route, const char *method, int status, double seconds)
{
    size_t r = route_index(route), b = 0;
    int cls = status / 100 - 1;

    if (mine == NULL)
        return;
    while (b < NBOUNDS && seconds > bounds[b])
        b++;
    add(&mine->requests[r][method_index(method)][cls < 0 || cls >= NCLASSES ? 4 : cls], 1);
    add(&mine->buckets[r][b], 1);
    add(&mine->micros[r], seconds > 0 ? (uint64_t)(seconds * 1e6) : 0);
    __atomic_fetch_sub(&mine->in_flight, 1, __ATOMIC_RELAXED);
}

void
crm_metrics_db(enum crm_metrics_db_event ev)
{
    if (mine != NULL && ev < CRM_METRICS_DB_NEVENTS)
        add(&mine->db[ev], 1);
}

void
crm_metrics_sse_open(long streams)
{
    if (mine != NULL)
        __atomic_store_n(&mine->sse_open, (uint64_t)(streams > 0 ? streams : 0), __ATOMIC_RELAXED);
}

void
crm_metrics_sse_fanned_out(long events)
{
    if (mine != NULL && events > 0)
        add(&mine->sse_fanned_out, (uint64_t)events);
}

void
crm_metrics_sse_dropped(void)
{
    if (mine != NULL)
        add(&mine->sse_dropped, 1);
}

/* A growing text; on a failed allocation it is freed and stays NULL, and appends are no-ops. */
struct text {
    char *s;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (int tries = 0; t->s != NULL && tries < 2; tries++) {
        va_start(ap, fmt);
        n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            break;
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        char *grown = realloc(t->s, t->cap * 2 + (size_t)n);

        if (grown == NULL)
            break;
        t->s = grown;
        t->cap = t->cap * 2 + (size_t)n;
    }
    free(t->s);
    t->s = NULL;
}

static void
family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Route patterns are the programs' own ASCII paths: no quote, backslash or newline to escape. */
static void
requests(struct text *t)
{
    family(t, "crm_http_requests_total", "counter",
           "Requests answered, by route pattern, method and status class.");
    for (size_t r = 0; r < nroutes + 2; r++)
        for (size_t m = 0; m < NMETHODS && canon[r] == r; m++)
            for (size_t c = 0; c < NCLASSES; c++) {
                uint64_t v = sum(&slots[0].requests[r][m][c]);

                if (v > 0)
                    put(t,
                        "crm_http_requests_total{route=\"%s\",method=\"%s\",code=\"%zuxx\"} %llu\n",
                        route_label(r), methods[m], c + 1, (unsigned long long)v);
            }
}

static void
durations(struct text *t)
{
    family(t, "crm_http_request_duration_seconds", "histogram",
           "Time from reading a request to its answer written, by route pattern.");
    for (size_t r = 0; r < nroutes + 2; r++) {
        uint64_t cum = 0;

        if (canon[r] != r)
            continue;
        for (size_t b = 0; b <= NBOUNDS; b++) {
            cum += sum(&slots[0].buckets[r][b]);
            if (b < NBOUNDS)
                put(t, "crm_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route_label(r), bounds[b], (unsigned long long)cum);
        }
        put(t, "crm_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
            route_label(r), (unsigned long long)cum);
        put(t, "crm_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_label(r),
            (double)sum(&slots[0].micros[r]) / 1e6);
        put(t, "crm_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_label(r),
            (unsigned long long)cum);
    }
}

static void
counter(struct text *t, const char *name, const char *help, const uint64_t *field)
{
    family(t, name, "counter", help);
    put(t, "%s %llu\n", name, (unsigned long long)sum(field));
}

static void
database(struct text *t)
{
    counter(t, "crm_db_reconnects_total",
            "Database connections made after a process's first (the server went away).",
            &slots[0].db[CRM_METRICS_DB_RECONNECT]);
    counter(t, "crm_db_connect_failures_total", "Database connection attempts that failed.",
            &slots[0].db[CRM_METRICS_DB_CONNECT_FAILED]);
    family(t, "crm_db_statement_errors_total", "counter",
           "Statements that failed: the connection, a unique conflict, anything else.");
    for (size_t i = 0; i < sizeof(db_errs) / sizeof(db_errs[0]); i++)
        put(t, "crm_db_statement_errors_total{kind=\"%s\"} %llu\n", db_errs[i],
            (unsigned long long)sum(&slots[0].db[CRM_METRICS_DB_ERR_CONNECTION + i]));
}

static void
sse(struct text *t)
{
    family(t, "crm_sse_streams_open", "gauge", "Server-Sent Events streams open now.");
    put(t, "crm_sse_streams_open %llu\n", (unsigned long long)sum(&slots[0].sse_open));
    counter(t, "crm_sse_events_fanned_out_total",
            "Events the feed sent out to the live streams (each counted once).",
            &slots[0].sse_fanned_out);
    counter(t, "crm_sse_streams_dropped_slow_total",
            "Streams closed because their client let more than 256 KiB wait.",
            &slots[0].sse_dropped);
}

char *
crm_metrics_render(void)
{
    struct text t = {malloc(16384), 0, 16384};

    if (slots == NULL) {
        free(t.s);
        return NULL;
    }
    requests(&t);
    durations(&t);
    family(&t, "crm_http_requests_in_flight", "gauge",
           "Requests being answered now, this scrape included.");
    put(&t, "crm_http_requests_in_flight %llu\n", (unsigned long long)sum(&slots[0].in_flight));
    family(&t, "crm_workers", "gauge", "Worker processes whose figures are summed here.");
    put(&t, "crm_workers %d\n", nslots);
    database(&t);
    if (with_sse)
        sse(&t);
    return t.s;
}

enum crm_err
crm_metrics_outbox(struct crm_db *db, char **out)
{
    struct text t = {malloc(2048), 0, 2048};
    PGresult *res;
    enum crm_err err = crm_db_exec(db, "metrics_outbox", 0, NULL, &res);

    if (err != CRM_OK) {
        free(t.s);
        return err;
    }
    family(&t, "crm_mail_outbox_messages", "gauge", "Messages in the mail outbox, by state.");
    for (int i = 0; i < PQntuples(res); i++)
        put(&t, "crm_mail_outbox_messages{state=\"%s\"} %s\n", PQgetvalue(res, i, 0),
            PQgetvalue(res, i, 1));
    family(&t, "crm_mail_outbox_oldest_pending_age_seconds", "gauge",
           "Age of the oldest message still pending (0 when none is).");
    put(&t, "crm_mail_outbox_oldest_pending_age_seconds %s\n",
        PQntuples(res) > 0 ? PQgetvalue(res, 0, 2) : "0");
    PQclear(res);
    *out = t.s;
    return t.s != NULL ? CRM_OK : CRM_ENOMEM;
}

int
crm_metrics_is_scrape(const char *path)
{
    return strcmp(path, "/metrics") == 0 || strncmp(path, "/metrics/", 9) == 0;
}

void
crm_metrics_answer(struct crm_req *req, struct crm_resp *resp)
{
    enum crm_err err = CRM_OK;
    char *text = NULL;

    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        crm_resp_header(resp, "Allow", "GET, HEAD");
        err = CRM_EMETHOD;
    } else if (strcmp(req->path, "/metrics/outbox") == 0) {
        err = crm_metrics_outbox(req->db, &text);
    } else if ((text = crm_metrics_render()) == NULL) {
        err = CRM_ENOMEM;
    }
    if (err != CRM_OK) {
        crm_resp_error(resp, err);
        return;
    }
    resp->status = 200;
    resp->body = text;
    resp->content_type = CRM_METRICS_CONTENT_TYPE;
}
