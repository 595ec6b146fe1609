/*
 * evorder.h: which committed events may be delivered, so that ids reach clients in increasing
 * order and a client resuming after id N never misses an id below N that commits later.
 *
 * Event ids come from a sequence (CACHE 1) when the row is inserted, but transactions commit in
 * any order: id 11 may be visible while id 10 is still uncommitted. An id missing below the
 * newest visible one was taken before that one committed, so before the snapshot that saw the
 * gap, by a transaction that is aborted or still running. Every statement that inserts an event
 * writes another row first, so that transaction had its xid before it took the id: an xid below
 * any xid assigned after the snapshot ("next", from pg_current_xact_id() in the same statement).
 * Once every xid below next that was running then has ended (seen from a later snapshot), every
 * id up to the newest one the snapshot showed is final: visible now, or never. Note that a
 * snapshot does not list running xids at or above its xmax, which is why next is needed. Ids
 * that follow the cursor with no gap are final at once.
 */
#ifndef CRM_EVORDER_H
#define CRM_EVORDER_H

#include <stddef.h>
#include <stdint.h>

/*
 * A PostgreSQL pg_snapshot: transactions below xmin have ended, xip lists those in progress
 * below xmax, and any at or above xmax had not ended. next, when not 0, is an xid assigned
 * after the snapshot was taken: every xid below it had been assigned by then.
 */
struct crm_snap {
    uint64_t xmin, xmax;
    size_t nxip;
    uint64_t *xip; /* malloc'd */
    uint64_t next;
};

/* Parses pg_snapshot text "xmin:xmax:xip,xip,..." (next is 0). Returns 0, or -1 (nothing to free).
 */
int crm_snap_parse(const char *text, struct crm_snap *out);

/* Frees s's list; s is then empty. */
void crm_snap_free(struct crm_snap *s);

/* 1 when transaction xid had ended when snapshot s was taken, else 0. */
int crm_snap_ended(const struct crm_snap *s, uint64_t xid);

struct crm_evorder {
    int64_t cursor;  /* every id up to here is final and has been delivered */
    int barrier;     /* a gap waits for the transactions of pending to end */
    int64_t horizon; /* the newest id visible when the gap was seen */
    struct crm_snap pending;
};

/*
 * Given ids (ascending, each above o->cursor) read under snapshot s, returns how many of them,
 * from the first, are final and may be delivered now, and moves o->cursor to the last of them.
 * *again is set to 1 when a gap is still waiting, so the caller reads again later (a snapshot
 * is needed to see the pending transactions end); a gap needs s->next, and without it nothing
 * waits but the caller is asked to read again. Returns (size_t)-1 when out of memory.
 */
size_t crm_evorder_next(struct crm_evorder *o, const struct crm_snap *s, const int64_t *ids,
                        size_t n, int *again);

/*
 * Where delivery starts: head is the newest id visible under s. Returns 1 with o->cursor set when
 * every id up to head is final; 0 when transactions of s may hold ids (s->next is needed to tell),
 * so the caller calls again with a later snapshot (any head). -1 when out of memory.
 */
int crm_evorder_start(struct crm_evorder *o, const struct crm_snap *s, int64_t head);

/* Frees o's pending snapshot. */
void crm_evorder_free(struct crm_evorder *o);

#endif
