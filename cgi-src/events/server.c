/*
 * server.c: the FastCGI side of crm-events. nginx opens one connection per SSE request; each is
 * a stream here, non-blocking, on one epoll set with the listening socket (fd 0, from spawn-fcgi)
 * and the database connection. Nothing in the loop waits for a client: what a socket does not
 * take is kept, up to EV_OUT_MAX, and a client that lets more pile up is dropped.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "events.h"
#include "fcgirec.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "routes.h"
#include "util.h"

#define IN_MAX (128 * 1024) /* a request's records: PARAMS of nginx's few headers */
#define PING_MS 15000
#define PURGE_MS 60000
#define PURGE_BATCH 5000
#define RECHECK_MS 5     /* a gap waiting for transactions to end is looked at again */
#define REQUEST_MS 10000 /* a connection's request must come, or delivery start, within */
#define START_MS 100     /* while delivery cannot start (transactions running, no database) */

static const struct crm_route routes[] = {CRM_EVENTS_ROUTES(CRM_ROUTE)};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))
/* Why a stream is dropped as slow: its own string, so that stream_close can count it. */
static const char too_slow[] = "client too slow";

static const char sse_head[] = "Status: 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";

int64_t
ev_now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void
stream_want_out(struct server *srv, struct stream *s, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = s};

    if (s->want_out == on)
        return;
    s->want_out = on;
    (void)epoll_ctl(srv->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Writes what the socket takes of s's buffer. 0, or -1 when the connection is gone. */
static int
stream_flush(struct server *srv, struct stream *s)
{
    while (s->outoff < s->outlen) {
        ssize_t n = write(s->fd, s->out + s->outoff, s->outlen - s->outoff);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            stream_want_out(srv, s, 1);
            return 0;
        }
        if (n <= 0)
            return -1;
        s->outoff += (size_t)n;
    }
    free(s->out);
    s->out = NULL;
    s->outlen = s->outoff = 0;
    stream_want_out(srv, s, 0);
    return 0;
}

int
stream_send(struct server *srv, struct stream *s, const void *data, size_t n)
{
    const unsigned char *d = data;
    size_t pending = s->outlen - s->outoff;
    unsigned char *grown;

    if (pending == 0) {
        ssize_t w = write(s->fd, d, n);

        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (w > 0) {
            d += w;
            n -= (size_t)w;
        }
        if (n == 0)
            return 0;
    }
    if (pending + n > EV_OUT_MAX) {
        s->kill = too_slow;
        return -1;
    }
    /* Keep only what is unsent: the buffer never holds more than the client owes. */
    if ((grown = malloc(pending + n)) == NULL)
        return -1;
    if (pending > 0)
        memcpy(grown, s->out + s->outoff, pending);
    memcpy(grown + pending, d, n);
    free(s->out);
    s->out = grown;
    s->outlen = pending + n;
    s->outoff = 0;
    stream_want_out(srv, s, 1);
    return 0;
}

int
stream_send_text(struct server *srv, struct stream *s, const char *text, size_t n)
{
    size_t len = crm_fcgi_framed_size(n);
    unsigned char *f = malloc(len);
    int rc;

    if (f == NULL)
        return -1;
    crm_fcgi_frame(f, s->reqid, text, n);
    rc = stream_send(srv, s, f, len);
    free(f);
    return rc;
}

int
stream_send_records(struct server *srv, struct stream *s, const unsigned char *rec, size_t n)
{
    unsigned char *copy;
    int rc;

    if (s->reqid == 1)
        return stream_send(srv, s, rec, n);
    if ((copy = malloc(n)) == NULL)
        return -1;
    memcpy(copy, rec, n);
    crm_fcgi_set_id(copy, n, s->reqid);
    rc = stream_send(srv, s, copy, n);
    free(copy);
    return rc;
}

/* Every connection is on the server's list, from accept to close. */
static void
link_conn(struct server *srv, struct stream *s)
{
    s->next = srv->streams;
    if (srv->streams != NULL)
        srv->streams->prev = s;
    srv->streams = s;
}

static void
unlink_conn(struct server *srv, struct stream *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    if (s->state != ST_REQUEST)
        srv->nstreams--;
}

void
stream_close(struct server *srv, struct stream *s, const char *why)
{
    unsigned char end[CRM_FCGI_END_SIZE];

    /* A clean end lets nginx finish the response; a stuck buffer gets a plain close. */
    if (s->kill != NULL)
        why = s->kill;
    if (s->kill == too_slow)
        crm_metrics_sse_dropped();
    if (s->outlen == s->outoff) {
        crm_fcgi_end(end, s->reqid);
        (void)!write(s->fd, end, sizeof(end));
    }
    if (s->state != ST_REQUEST)
        crm_log(CRM_LOG_INFO, NULL, "stream closed req=%s user=%lld: %s", s->rid, (long long)s->uid,
                why);
    else if (why != NULL)
        crm_log(CRM_LOG_WARN, NULL, "connection closed before its request: %s", why);
    unlink_conn(srv, s);
    close(s->fd);
    free(s->in);
    free(s->params);
    free(s->out);
    free(s);
}

/* A request as its PARAMS give it: what crm_req holds, and the two headers it has no room for. */
struct incoming {
    struct crm_req req;
    const char *last_id, *request_id, *accept;
};

struct param_map {
    const char *name;
    size_t off; /* of the const char * in struct incoming */
};

static int
take_param(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
    static const struct param_map map[] = {
        {"REQUEST_METHOD", offsetof(struct incoming, req.method)},
        {"DOCUMENT_URI", offsetof(struct incoming, req.path)},
        {"QUERY_STRING", offsetof(struct incoming, req.query)},
        {"HTTP_AUTHORIZATION", offsetof(struct incoming, req.authorization)},
        {"REMOTE_ADDR", offsetof(struct incoming, req.remote_addr)},
        {"HTTP_LAST_EVENT_ID", offsetof(struct incoming, last_id)},
        {"HTTP_X_REQUEST_ID", offsetof(struct incoming, request_id)},
        {"HTTP_ACCEPT", offsetof(struct incoming, accept)},
    };
    struct incoming *in = arg;

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strlen(map[i].name) != nlen || memcmp(map[i].name, name, nlen) != 0)
            continue;
        *(const char **)((char *)in + map[i].off) = crm_arena_strndup(&in->req.arena, val, vlen);
    }
    return 0;
}

/* Answers s with resp (an error; its head only to a HEAD) and closes it. */
static void
respond(struct server *srv, struct stream *s, const struct crm_req *req, struct crm_resp *resp)
{
    size_t blen = resp->body != NULL && !crm_req_head_only(req) ? strlen(resp->body) : 0;
    char *text = malloc(CRM_RESP_HEAD_MAX + blen);
    int n;

    crm_log(CRM_LOG_INFO, req, "%s %s %d user=%s", req->method, req->path, resp->status,
            req->authed ? req->who.idstr : "-");
    /* One record, so head and body reach nginx (and the client) together. */
    if (text != NULL && (n = crm_resp_head(resp, req->id, text, CRM_RESP_HEAD_MAX)) >= 0) {
        memcpy(text + n, resp->body != NULL ? resp->body : "", blen);
        (void)stream_send_text(srv, s, text, (size_t)n + blen);
    }
    free(text);
    stream_close(srv, s, NULL); /* logged above */
}

/* Where the client resumes: Last-Event-ID, or ?last_event_id=. -1 when it gave none. */
static enum crm_err
resume_id(struct crm_req *req, const char *header, int64_t *out)
{
    const char *q;
    long long v;
    enum crm_err err = crm_req_query(req, "last_event_id", &q);

    *out = -1;
    if (err != CRM_OK)
        return err;
    if (header != NULL && header[0] != '\0')
        q = header;
    if (q == NULL)
        return CRM_OK;
    if (crm_parse_int(q, 0, INT64_MAX, &v) != 0)
        return CRM_EQUERY;
    *out = v;
    return CRM_OK;
}

/*
 * The streams uid holds: a walk of every connection, as tick() makes each second, and cheaper
 * than the database round trip of the authentication the request has just had.
 */
static int
user_streams(const struct server *srv, int64_t uid)
{
    int n = 0;

    for (const struct stream *s = srv->streams; s != NULL; s = s->next)
        n += s->state != ST_REQUEST && s->uid == uid;
    return n;
}

/*
 * Authenticates the request of s and checks what it asks. CRM_OK with *resume set; an error
 * with its headers (Allow) in resp.
 */
static enum crm_err
check_request(struct server *srv, struct incoming *in, struct crm_resp *resp, int64_t *resume,
              int *route)
{
    struct crm_req *req = &in->req;
    const struct crm_route *found;
    const char *token = NULL;
    enum crm_err err;

    if ((err = crm_route_match(routes, NROUTES, req, resp, &found)) != CRM_OK)
        return err;
    *route = (int)(found - routes);
    if (req->authorization == NULL && (err = crm_req_query(req, "access_token", &token)) != CRM_OK)
        return err;
    err = token != NULL ? crm_auth_token(req, token, CRM_ROLES_ALL)
                        : crm_auth_require(req, CRM_ROLES_ALL);
    feed_sync(srv);
    if (err != CRM_OK)
        return err;
    if ((err = resume_id(req, in->last_id, resume)) != CRM_OK)
        return err;
    /* Not started for REQUEST_MS (the database is unreachable): come back shortly. */
    if (!srv->started)
        return CRM_EUNAVAIL;
    /* First the user's own limit: a user at it would gain nothing by retrying after a 503. */
    if (user_streams(srv, req->who.id) >= srv->cfg->sse_max_streams_per_user) {
        crm_log(CRM_LOG_WARN, req, "SSE_MAX_STREAMS_PER_USER (%d) reached by user %s",
                srv->cfg->sse_max_streams_per_user, req->who.idstr);
        return CRM_ESTREAMS;
    }
    if (srv->nstreams >= srv->cfg->sse_max_streams) {
        crm_log(CRM_LOG_WARN, req, "SSE_MAX_STREAMS (%d) reached", srv->cfg->sse_max_streams);
        return CRM_EFULL;
    }
    return CRM_OK;
}

/* Sends the 200 head of a stream, then text (its start; or all of a stream that ends at once). */
static int
send_head(struct server *srv, struct stream *s, const char *rid, const char *text)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%sX-Request-Id: %s\r\n\r\n%s", sse_head, rid, text);

    return n < 0 || (size_t)n >= sizeof(buf) ? -1 : stream_send_text(srv, s, buf, (size_t)n);
}

/* A HEAD: the head a stream starts with, and the end; nothing is held open. */
static void
answer_head(struct server *srv, struct stream *s, const struct crm_req *req)
{
    crm_log(CRM_LOG_INFO, req, "HEAD /api/events 200 user=%s", req->who.idstr);
    (void)send_head(srv, s, req->id, "");
    stream_close(srv, s, NULL); /* logged above */
}

/*
 * The stream starts: headers, retry, its position, then its missed events or the live feed. The
 * position is an id with no data: EventSource dispatches no event for it but keeps it as its last
 * event id, so a browser that loses the stream before its first event resumes from there and
 * misses nothing written while it was away.
 */
static void
start_stream(struct server *srv, struct stream *s, const struct crm_req *req, int64_t resume)
{
    char start[64];

    s->uid = req->who.id;
    s->role = req->who.role;
    s->exp = req->who.exp;
    snprintf(s->rid, sizeof(s->rid), "%s", req->id);
    /* Behind the feed: its missed events come from the table first. Ahead: none twice. */
    s->cursor = resume >= 0 ? resume : srv->order.cursor;
    s->state = s->cursor < srv->order.cursor ? ST_CATCHUP : ST_LIVE;
    snprintf(start, sizeof(start), "retry: 3000\n\nid: %lld\n\n", (long long)s->cursor);
    srv->nstreams++;
    crm_log(CRM_LOG_INFO, req, "GET /api/events 200 user=%s after=%lld", req->who.idstr,
            (long long)s->cursor);
    if (send_head(srv, s, req->id, start) != 0 ||
        (s->state == ST_CATCHUP && feed_catchup(srv, s) != 0))
        stream_close(srv, s, "closed at start");
}

/*
 * An EventSource gives up for good on any answer but 200 text/event-stream, and retries one that
 * ends. So while streams cannot start (503), an EventSource gets such a stream, ended at once
 * with the message as a comment; nginx does the same while crm-events is away. Others get 503.
 */
static int
retry_later(struct server *srv, struct stream *s, const struct incoming *in, enum crm_err err)
{
    char text[256];

    if (crm_err_status(err) != 503 || in->accept == NULL ||
        strstr(in->accept, "text/event-stream") == NULL)
        return 0;
    snprintf(text, sizeof(text), "retry: 3000\n: %s\n\n", crm_err_message(err));
    crm_log(CRM_LOG_INFO, &in->req, "GET /api/events 200 retry: %s", crm_err_message(err));
    (void)send_head(srv, s, in->req.id, text);
    stream_close(srv, s, NULL); /* logged above */
    return 1;
}

/* GET /metrics (only nginx's /metrics/crm-events sends it, from allowed addresses). */
static void
answer_metrics(struct server *srv, struct stream *s, struct crm_req *req, struct crm_resp *resp)
{
    crm_metrics_sse_open(srv->nstreams);
    crm_metrics_answer(req, resp);
    respond(srv, s, req, resp);
}

static void
handle_request(struct server *srv, struct stream *s)
{
    struct incoming in;
    struct crm_req *req = &in.req;
    struct crm_resp resp;
    enum crm_err err;
    int64_t resume = -1, t0 = ev_now_ms();
    int route = CRM_METRICS_UNROUTED, status = 200;

    memset(&in, 0, sizeof(in));
    memset(&resp, 0, sizeof(resp));
    req->db = srv->db;
    req->cfg = srv->cfg;
    crm_db_set_req(srv->db, req);
    err = crm_fcgi_params(s->params, s->plen, take_param, &in) != 0 ? CRM_EQUERY : CRM_OK;
    crm_req_set_id(req, in.request_id);
    if (req->method == NULL)
        req->method = "GET";
    if (req->path == NULL)
        req->path = "/";
    free(s->params);
    s->params = NULL;
    crm_metrics_begin();
    if (err == CRM_OK && crm_metrics_is_scrape(req->path)) {
        route = CRM_METRICS_SCRAPE;
        answer_metrics(srv, s, req, &resp);
        status = resp.status;
    } else if (err == CRM_OK && (err = check_request(srv, &in, &resp, &resume, &route)) == CRM_OK) {
        if (crm_req_head_only(req))
            answer_head(srv, s, req);
        else
            start_stream(srv, s, req, resume);
    }
    if (err != CRM_OK && !retry_later(srv, s, &in, err)) {
        status = crm_resp_error(&resp, err);
        respond(srv, s, req, &resp);
    }
    /* A stream counts when its head is out: its duration is the time to start it. */
    crm_metrics_end(route, req->method, status, (double)(ev_now_ms() - t0) / 1e3);
    crm_db_set_req(srv->db, NULL);
    crm_resp_reset(&resp);
    crm_arena_reset(&req->arena);
}

static int
append(unsigned char **buf, size_t *len, const void *data, size_t n)
{
    unsigned char *grown;

    if (*len + n > IN_MAX || (grown = realloc(*buf, *len + n)) == NULL)
        return -1;
    memcpy(grown + *len, data, n);
    *buf = grown;
    *len += n;
    return 0;
}

/* Takes the complete records of s's input. Returns 0, or 1 when s was answered or closed. */
static int
take_records(struct server *srv, struct stream *s)
{
    struct crm_fcgi_rec rec;
    size_t off = 0;
    int rc;

    while ((rc = crm_fcgi_rec_parse(s->in + off, s->inlen - off, &rec)) == 1) {
        off += rec.total;
        if (rec.type == CRM_FCGI_BEGIN_REQUEST) {
            s->reqid = rec.id;
        } else if (rec.type == CRM_FCGI_ABORT_REQUEST) {
            stream_close(srv, s, "aborted");
            return 1;
        } else if (rec.type == CRM_FCGI_PARAMS && rec.len > 0) {
            if (append(&s->params, &s->plen, rec.content, rec.len) != 0) {
                stream_close(srv, s, "request too large");
                return 1;
            }
        } else if (rec.type == CRM_FCGI_PARAMS) {
            /* The params are complete; a GET's empty STDIN needs no waiting for. */
            free(s->in);
            s->in = NULL;
            s->inlen = 0;
            /* Before the first read of the feed, the request waits for it (try_start). */
            s->deferred = !srv->started;
            if (!s->deferred)
                handle_request(srv, s);
            return 1;
        }
    }
    if (rc < 0) {
        stream_close(srv, s, "not a FastCGI request");
        return 1;
    }
    memmove(s->in, s->in + off, s->inlen - off);
    s->inlen -= off;
    return 0;
}

/* The socket of s is readable: request records, or the end of the connection. */
static void
conn_input(struct server *srv, struct stream *s)
{
    unsigned char buf[8192];

    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            stream_close(srv, s, "client gone");
            return;
        }
        if (s->state != ST_REQUEST)
            continue; /* after the request nginx sends nothing we need */
        if (append(&s->in, &s->inlen, buf, (size_t)n) != 0) {
            stream_close(srv, s, "request too large");
            return;
        }
        if (take_records(srv, s) != 0)
            return;
    }
}

/* The socket of s is writable: the rest of its buffer, or a catching-up stream's next page. */
static void
conn_output(struct server *srv, struct stream *s)
{
    if (stream_flush(srv, s) != 0) {
        stream_close(srv, s, "client gone");
        return;
    }
    if (s->state == ST_CATCHUP && s->outlen == 0 && feed_catchup(srv, s) != 0)
        stream_close(srv, s, "catch-up failed");
}

static void
listener(struct server *srv, int on)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = srv};

    if (srv->accepting == on)
        return;
    srv->accepting = on;
    (void)epoll_ctl(srv->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, srv->lfd, &ev);
}

static void
accept_all(struct server *srv)
{
    for (;;) {
        int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
        struct stream *s;

        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: stop accepting until the next tick, not spin. */
                crm_log(CRM_LOG_WARN, NULL, "accept: %s", strerror(errno));
                listener(srv, 0);
            }
            return;
        }
        if ((s = calloc(1, sizeof(*s))) == NULL) {
            close(fd);
            continue;
        }
        s->fd = fd;
        s->born = ev_now_ms();
        ev.data.ptr = s;
        if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(s);
            continue;
        }
        link_conn(srv, s);
    }
}

/* Once a second: token expiry, pings, retention, and the database when it was lost. */
static void
tick(struct server *srv, int64_t now)
{
    int64_t wall = (int64_t)time(NULL);
    int ping = now >= srv->next_ping;
    struct stream *s, *next;

    for (s = srv->streams; s != NULL; s = next) {
        next = s->next;
        if (s->state == ST_REQUEST && s->deferred) {
            /* Still not started (the database is down): 503 rather than a longer wait. */
            if (now - s->born > REQUEST_MS)
                handle_request(srv, s);
        } else if (s->state == ST_REQUEST) {
            /* nginx sends a request at once: a connection still silent is not nginx. */
            if (now - s->born > REQUEST_MS)
                stream_close(srv, s, "no request");
        } else if (s->exp <= wall)
            stream_close(srv, s, "token expired");
        else if (ping && stream_send_text(srv, s, ": ping\n\n", 8) != 0)
            stream_close(srv, s, "client too slow");
    }
    if (ping)
        srv->next_ping = now + PING_MS;
    if (!srv->accepting)
        listener(srv, 1);
    if (srv->listen_fd < 0 && crm_db_connect(srv->db) == CRM_OK)
        feed_sync(srv);
    if (srv->started && now >= srv->next_purge) {
        long n = feed_purge(srv, PURGE_BATCH);

        if (n > 0)
            crm_log(CRM_LOG_INFO, NULL, "events: purged %ld older than 24 hours", n);
        srv->next_purge = now + (n == PURGE_BATCH ? 1000 : PURGE_MS);
    }
    srv->next_tick = now + 1000;
}

/*
 * Until delivery knows where to start, tries every START_MS; then answers the requests that
 * came meanwhile, so clients that connect while crm-events starts wait a moment, not get 503.
 */
static void
try_start(struct server *srv, int64_t now)
{
    struct stream *s, *next;

    if (srv->started || now < srv->next_start)
        return;
    srv->next_start = now + START_MS;
    if (feed_start(srv) != 0)
        return;
    for (s = srv->streams; s != NULL; s = next) {
        next = s->next;
        if (s->state == ST_REQUEST && s->deferred)
            handle_request(srv, s);
    }
}

/* How long epoll may wait: until the next read that is due, or the next tick. */
static int
wait_ms(const struct server *srv, int64_t now)
{
    int64_t until = srv->next_tick;

    if (srv->started && srv->read_due && srv->last_read + srv->gap_ms < until)
        until = srv->last_read + srv->gap_ms;
    if (srv->started && srv->again && srv->last_read + RECHECK_MS < until)
        until = srv->last_read + RECHECK_MS;
    if (!srv->started && srv->next_start < until)
        until = srv->next_start;
    return until <= now ? 0 : (int)(until - now);
}

static void
dispatch(struct server *srv, const struct epoll_event *ev)
{
    struct stream *s = ev->data.ptr;

    if (ev->data.ptr == NULL)
        feed_input(srv);
    else if (ev->data.ptr == srv)
        accept_all(srv);
    else if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_input(srv, s);
    else if (ev->events & EPOLLOUT)
        conn_output(srv, s);
}

/* Closes the streams marked to be closed. */
static void
reap(struct server *srv)
{
    struct stream *s, *next;

    for (s = srv->streams; s != NULL; s = next) {
        next = s->next;
        if (s->kill != NULL)
            stream_close(srv, s, s->kill);
    }
    srv->reap = 0;
}

static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

int
events_run(const struct crm_config *cfg)
{
    struct server srv = {
        .cfg = cfg, .lfd = 0, .listen_fd = -1, .db_gen = 0, .gap_ms = EV_GAP_MIN_MS};
    struct epoll_event evs[256];
    struct sigaction sa = {.sa_handler = on_stop};

    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* accept4() must not wait when another connection was taken first. */
    if (fcntl(srv.lfd, F_SETFL, fcntl(srv.lfd, F_GETFL) | O_NONBLOCK) != 0 ||
        (srv.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (srv.db = crm_db_open(cfg->database_url)) == NULL) {
        crm_log(CRM_LOG_ERR, NULL, "cannot initialise");
        return 1;
    }
    /* One process: one slot, but the same figures and text as the pools (lib/metrics.h). */
    if (crm_metrics_init(1, routes, NROUTES, 1) != 0)
        crm_log(CRM_LOG_WARN, NULL, "no memory for the metrics: /metrics answers 500");
    while (!stopping) {
        int64_t now = ev_now_ms();
        int n;

        if (now >= srv.next_tick)
            tick(&srv, now);
        try_start(&srv, now);
        n = epoll_wait(srv.ep, evs, 256, wait_ms(&srv, ev_now_ms()));
        for (int i = 0; i < n; i++) {
            dispatch(&srv, &evs[i]);
            /*
             * Each request costs a query (authentication): in a reconnect storm, take new
             * connections between them, so they wait here rather than overflow the listen
             * backlog, where nginx would get EAGAIN and the browser a 503 it never retries.
             */
            if (i % 16 == 15 && srv.accepting)
                accept_all(&srv);
        }
        if (srv.reap)
            reap(&srv);
        now = ev_now_ms();
        if (srv.started && ((srv.read_due && now - srv.last_read >= srv.gap_ms) ||
                            (srv.again && now - srv.last_read >= RECHECK_MS)))
            feed_read(&srv);
    }
    while (srv.streams != NULL)
        stream_close(&srv, srv.streams, "shutting down");
    crm_evorder_free(&srv.order);
    crm_db_close(srv.db);
    close(srv.ep);
    return 0;
}
