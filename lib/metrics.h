/*
 * metrics.h: the programs' figures for Prometheus (text exposition format 0.0.4).
 *
 * A FastCGI pool is a master that forks workers, and a scrape reaches only one of them. So the
 * master maps one shared anonymous region before it forks, with one slot per worker; a worker
 * adds to its own slot only (atomic adds, one writer per slot), and whichever worker serves the
 * scrape sums every slot. A worker that dies leaves its counts in its slot and its successor
 * goes on adding to them, so no counter ever goes back (docs/METRICS.md has the reasoning).
 */
#ifndef CRM_METRICS_H
#define CRM_METRICS_H

#include <stddef.h>

#include "err.h"
#include "router.h"

#define CRM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The route index of a request no route matched (404, 405, a malformed request). */
#define CRM_METRICS_UNROUTED (-1)
/* The route index of a scrape of /metrics itself. */
#define CRM_METRICS_SCRAPE (-2)

/* What the programs' database handle counts. */
enum crm_metrics_db_event {
    CRM_METRICS_DB_RECONNECT,      /* a connection made after the process's first */
    CRM_METRICS_DB_CONNECT_FAILED, /* a connection attempt that failed */
    CRM_METRICS_DB_ERR_CONNECTION, /* a statement that failed with the connection */
    CRM_METRICS_DB_ERR_CONFLICT,   /* a statement refused by a unique constraint */
    CRM_METRICS_DB_ERR_OTHER,      /* any other failed statement */
    CRM_METRICS_DB_NEVENTS
};

/*
 * Maps the shared region with n slots for a program whose routes are r[0..nr) (their
 * patterns become the route labels); sse adds crm-events' families. Called once, before any
 * fork. Returns 0, or -1 (no memory; the program then runs without figures).
 */
int crm_metrics_init(int n, const struct crm_route *r, size_t nr, int sse);

/* This process writes to slot i from now on; clears the in-flight count a dead one left there. */
void crm_metrics_attach(int slot);

/* A request starts (the in-flight gauge). */
void crm_metrics_begin(void);

/* A request ended: route (an index into the routes, or CRM_METRICS_UNROUTED/_SCRAPE), its
 * method, status and duration. Also ends what crm_metrics_begin started. */
void crm_metrics_end(int route, const char *method, int status, double seconds);

/* Counts one database event; a no-op in a program without the region (crmctl). */
void crm_metrics_db(enum crm_metrics_db_event ev);

/* crm-events: the streams open now, events fanned out, a stream dropped as too slow. */
void crm_metrics_sse_open(long streams);
void crm_metrics_sse_fanned_out(long events);
void crm_metrics_sse_dropped(void);

/* 1 when path is a scrape's (/metrics, /metrics/...), which no route of the API may take. */
int crm_metrics_is_scrape(const char *path);

/*
 * Answers a scrape into resp: GET (or HEAD) /metrics with this program's figures, /metrics/outbox
 * with the mail outbox's (crm_metrics_outbox); other methods get 405. Only nginx's
 * /metrics/<daemon> locations send these paths, from METRICS_ALLOW's addresses.
 */
void crm_metrics_answer(struct crm_req *req, struct crm_resp *resp);

/* The exposition text of every slot summed; malloc'd (caller frees), NULL when out of memory. */
char *crm_metrics_render(void);

/*
 * The mail outbox's figures, read from the database (crm-mailer has no socket of its own, and
 * the table is the truth whichever mailer sends): messages by state and the age of the oldest
 * pending one. CRM_OK with *out malloc'd; CRM_EUNAVAIL, CRM_EDB or CRM_ENOMEM.
 */
struct crm_db;
enum crm_err crm_metrics_outbox(struct crm_db *db, char **out);

#endif
