/*
 * feed.c: the events table to the streams. A notification only wakes the reader; what is sent
 * always comes from the table, in id order, once lib/evorder says an id is final. So nothing is
 * lost when notifications are (a restart of PostgreSQL, a new connection): the next read after
 * reconnecting picks up where the cursor stands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <cjson/cJSON.h>

#include "events.h"
#include "fcgirec.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define READ_LIMIT 1000
#define REPLAY_LIMIT 200

/*
 * Runs a statement on the feed's connection, then LISTENs again if it had to reconnect and
 * takes the notifications it brought. CRM_OK with *res (caller clears), or an error.
 */
static enum crm_err
feed_exec(struct server *srv, const char *name, int n, const char *const *params, PGresult **res)
{
    enum crm_err err = crm_db_exec(srv->db, name, n, params, res);

    feed_sync(srv);
    return err;
}

int
feed_start(struct server *srv)
{
    PGresult *res;
    struct crm_snap snap;
    long long head;
    int rc = -1;

    if (feed_exec(srv, "events_head", 0, NULL, &res) != CRM_OK)
        return -1;
    if (crm_db_snapshot(res, &snap) == 0) {
        if (crm_parse_int(PQgetvalue(res, 0, 2), 0, INT64_MAX, &head) == 0 &&
            crm_evorder_start(&srv->order, &snap, head) == 1)
            rc = 0;
        crm_snap_free(&snap);
    }
    PQclear(res);
    if (rc == 0) {
        srv->started = 1;
        crm_log(CRM_LOG_INFO, NULL, "events: delivering after id %lld",
                (long long)srv->order.cursor);
    }
    return rc;
}

/*
 * Marks every stream of user uid to be closed (a role change or a deactivation): the client
 * reconnects and is judged again. Marked, not closed, as the loop may hold events for them.
 */
static void
close_user(struct server *srv, const char *uid)
{
    int64_t id;

    if (crm_parse_id(uid, &id) != 0)
        return;
    for (struct stream *s = srv->streams; s != NULL; s = s->next) {
        if (s->uid == id) {
            s->kill = "user changed";
            srv->reap = 1;
        }
    }
}

static void
take_notifications(struct server *srv, PGconn *conn)
{
    PGnotify *n;

    while ((n = PQnotifies(conn)) != NULL) {
        if (strcmp(n->relname, "crm_users") == 0)
            close_user(srv, n->extra);
        else
            srv->read_due = 1;
        PQfreemem(n);
    }
}

/* Forgets the LISTEN socket; the next feed_sync() LISTENs again, on whatever connection. */
static void
drop_listen(struct server *srv)
{
    if (srv->listen_fd >= 0)
        (void)epoll_ctl(srv->ep, EPOLL_CTL_DEL, srv->listen_fd, NULL);
    srv->listen_fd = -1;
    srv->db_gen = 0;
}

void
feed_sync(struct server *srv)
{
    static const char *const listens[] = {"events_listen", "events_listen_users"};
    PGconn *conn = crm_db_conn(srv->db);
    struct epoll_event ev = {.events = EPOLLIN};
    int rc;

    if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
        (rc = crm_db_listen(srv->db, &srv->db_gen, listens, 2)) < 0) {
        drop_listen(srv);
        return;
    }
    conn = crm_db_conn(srv->db);
    if (rc == 1) {
        if (srv->listen_fd >= 0)
            (void)epoll_ctl(srv->ep, EPOLL_CTL_DEL, srv->listen_fd, NULL);
        ev.data.ptr = NULL; /* the loop knows the database by its NULL */
        if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, PQsocket(conn), &ev) != 0) {
            drop_listen(srv);
            return;
        }
        srv->listen_fd = PQsocket(conn);
        /* Notifications sent while no one listened are lost: read the table instead. */
        srv->read_due = 1;
        crm_log(CRM_LOG_INFO, NULL, "events: listening");
    }
    take_notifications(srv, conn);
}

void
feed_input(struct server *srv)
{
    PGconn *conn = crm_db_conn(srv->db);

    if (conn == NULL || !PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK) {
        crm_log(CRM_LOG_WARN, NULL, "events: database connection lost");
        drop_listen(srv);
        return;
    }
    take_notifications(srv, conn);
}

/*
 * One event as an SSE message: id, event and data lines. NULL when out of memory. The data is
 * PostgreSQL's JSON with the white space taken out ("id" : 1 -> "id":1), once per event rather
 * than in every one of the streams it is relayed to.
 */
static char *
sse_message(const PGresult *res, int row, int idcol, size_t *len)
{
    const char *id = PQgetvalue(res, row, idcol), *type = PQgetvalue(res, row, idcol + 1);
    const char *data = PQgetvalue(res, row, PQnfields(res) - 1);
    size_t cap = strlen(id) + strlen(type) + strlen(data) + 32;
    char *m = malloc(cap);
    int head;

    if (m == NULL)
        return NULL;
    head = snprintf(m, cap, "id: %s\nevent: %s\ndata: %s", id, type, data);
    cJSON_Minify(m + head - strlen(data));
    *len = strlen(m);
    memcpy(m + *len, "\n\n", 3);
    *len += 2;
    return m;
}

/* The messages of a fan-out, framed once for request id 1 (nginx's) into all. */
struct batch {
    unsigned char *all;
    size_t len, n;
    struct batch_msg {
        size_t off, len;     /* the message's records in all */
        int64_t owner, prev; /* who may see it besides ADMIN and MANAGER */
    } * msg;
};

static void
batch_free(struct batch *b)
{
    free(b->all);
    free(b->msg);
}

/* Builds the batch of the first n rows of an events_read result. 0, or -1. */
static int
batch_build(struct batch *b, const PGresult *res, size_t n)
{
    memset(b, 0, sizeof(*b));
    if ((b->msg = calloc(n, sizeof(*b->msg))) == NULL)
        return -1;
    b->n = n;
    for (int row = 0; (size_t)row < n; row++) {
        struct batch_msg *m = &b->msg[row];
        size_t len;
        char *text = sse_message(res, row, 2, &len);
        unsigned char *grown = NULL;

        m->len = crm_fcgi_framed_size(len);
        if (text == NULL || (grown = realloc(b->all, b->len + m->len)) == NULL) {
            free(text);
            return -1;
        }
        b->all = grown;
        m->off = b->len;
        crm_fcgi_frame(b->all + m->off, 1, text, len);
        b->len += m->len;
        free(text);
        m->owner = PQgetisnull(res, row, 4) ? 0 : strtoll(PQgetvalue(res, row, 4), NULL, 10);
        m->prev = PQgetisnull(res, row, 5) ? 0 : strtoll(PQgetvalue(res, row, 5), NULL, 10);
    }
    return 0;
}

/* Sends s the messages of b it may see and has not had. 0, or -1: s must be closed. */
static int
send_batch(struct server *srv, struct stream *s, const struct batch *b, const int64_t *ids)
{
    if (s->role != CRM_ROLE_SALES && s->reqid == 1 && s->cursor < ids[0])
        return stream_send(srv, s, b->all, b->len);
    for (size_t i = 0; i < b->n; i++) {
        const struct batch_msg *m = &b->msg[i];

        if (ids[i] <= s->cursor ||
            (s->role == CRM_ROLE_SALES && m->owner != s->uid && m->prev != s->uid))
            continue;
        if (stream_send_records(srv, s, b->all + m->off, m->len) != 0)
            return -1;
    }
    return 0;
}

static void
fan_out(struct server *srv, const PGresult *res, const int64_t *ids, size_t n)
{
    struct batch b;
    struct stream *s, *next;
    int64_t t0 = ev_now_ms(), took, gap;
    int nstreams = srv->nstreams;

    if (batch_build(&b, res, n) != 0) {
        crm_log(CRM_LOG_ERR, NULL, "events: out of memory, %zu events not sent", n);
        batch_free(&b);
        return;
    }
    for (s = srv->streams; s != NULL; s = next) {
        next = s->next;
        if (s->state != ST_LIVE || s->kill != NULL)
            continue;
        if (send_batch(srv, s, &b, ids) != 0) {
            stream_close(srv, s, "write failed or client too slow");
            continue;
        }
        if (s->cursor < ids[n - 1])
            s->cursor = ids[n - 1];
    }
    batch_free(&b);
    crm_metrics_sse_fanned_out((long)n);
    took = ev_now_ms() - t0;
    gap = took * EV_GAP_FACTOR;
    srv->gap_ms = gap < EV_GAP_MIN_MS ? EV_GAP_MIN_MS : gap > EV_GAP_MAX_MS ? EV_GAP_MAX_MS : gap;
    /* A fan-out this long delays every stream: worth a line for capacity planning. */
    if (took > 100)
        crm_log(CRM_LOG_WARN, NULL, "events: %zu sent to %d streams in %lld ms", n, nstreams,
                (long long)took);
}

void
feed_read(struct server *srv)
{
    char cursor[21], limit[8];
    const char *params[2] = {cursor, limit};
    int64_t ids[READ_LIMIT];
    struct crm_snap snap;
    PGresult *res;
    size_t n = 0, k;

    srv->read_due = 0;
    srv->last_read = ev_now_ms();
    crm_fmt_id(cursor, sizeof(cursor), srv->order.cursor);
    snprintf(limit, sizeof(limit), "%d", READ_LIMIT);
    if (feed_exec(srv, "events_read", 2, params, &res) != CRM_OK)
        return;
    if (crm_db_snapshot(res, &snap) != 0) {
        PQclear(res);
        return;
    }
    for (int r = 0; r < PQntuples(res) && !PQgetisnull(res, r, 2) && n < READ_LIMIT; r++)
        ids[n++] = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    k = crm_evorder_next(&srv->order, &snap, ids, n, &srv->again);
    if (k == (size_t)-1)
        crm_log(CRM_LOG_ERR, NULL, "events: out of memory");
    else if (k > 0)
        fan_out(srv, res, ids, k);
    if (n == READ_LIMIT && k == n)
        srv->read_due = 1; /* there may be more */
    crm_snap_free(&snap);
    PQclear(res);
}

int
feed_catchup(struct server *srv, struct stream *s)
{
    char from[21], to[21], owner[21], limit[8];
    const char *params[4] = {from, to, s->role == CRM_ROLE_SALES ? owner : NULL, limit};
    PGresult *res;
    int n;

    crm_fmt_id(from, sizeof(from), s->cursor);
    crm_fmt_id(to, sizeof(to), srv->order.cursor);
    crm_fmt_id(owner, sizeof(owner), s->uid);
    snprintf(limit, sizeof(limit), "%d", REPLAY_LIMIT);
    if (feed_exec(srv, "events_replay", 4, params, &res) != CRM_OK)
        return -1;
    n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        size_t len;
        char *m = sse_message(res, r, 0, &len);
        int rc = m != NULL ? stream_send_text(srv, s, m, len) : -1;

        free(m);
        if (rc != 0) {
            PQclear(res);
            return -1;
        }
        s->cursor = strtoll(PQgetvalue(res, r, 0), NULL, 10);
    }
    PQclear(res);
    if (n < REPLAY_LIMIT) {
        s->state = ST_LIVE;
        s->cursor = srv->order.cursor;
    } else {
        stream_want_out(srv, s, 1); /* the next page when the socket can take it */
    }
    return 0;
}

long
feed_purge(struct server *srv, long batch)
{
    char lim[21];
    const char *params[1] = {lim};
    PGresult *res;
    long n;

    snprintf(lim, sizeof(lim), "%ld", batch);
    if (feed_exec(srv, "events_purge", 1, params, &res) != CRM_OK)
        return -1;
    n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return n;
}
