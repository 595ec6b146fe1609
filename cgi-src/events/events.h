/*
 * events.h: crm-events, the Server-Sent Events server. One process, one epoll loop, many
 * streams: server.c speaks FastCGI to nginx and owns the streams; feed.c reads the events table
 * (woken by LISTEN) and fans each final event out to the streams that may see it.
 */
#ifndef CRM_EVENTS_H
#define CRM_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "evorder.h"
#include "http.h"

/* Bytes a stream may have waiting for a client that does not read; past it, it is dropped. */
#define EV_OUT_MAX (256 * 1024)

/*
 * Fan-outs are at least gap_ms apart, and events that commit in between go out together: one
 * write per stream however many there are. The gap follows the cost of the last fan-out: each
 * write here costs nginx and the client several times what it costs crm-events (measured by
 * make bench: about 5 times for nginx alone), so the gap is EV_GAP_FACTOR times the time the
 * writes took, within these bounds. Under load every stream then gets fewer, larger writes and
 * the processes behind the sockets keep up, instead of the streams falling behind one write at
 * a time; a lone event still goes out at once.
 */
#define EV_GAP_MIN_MS 10
#define EV_GAP_MAX_MS 500
#define EV_GAP_FACTOR 4

enum stream_state { ST_REQUEST, ST_CATCHUP, ST_LIVE };

struct stream {
    struct stream *prev, *next; /* the server's list of connections */
    int fd;
    unsigned reqid; /* the FastCGI request id */
    enum stream_state state;
    unsigned char *in; /* request phase: records not yet parsed, then the PARAMS stream */
    size_t inlen, plen;
    unsigned char *params;
    unsigned char *out; /* framed bytes the socket has not taken yet */
    size_t outlen, outoff;
    int want_out;             /* EPOLLOUT is armed */
    int64_t uid, exp, cursor; /* the caller, its token's expiry, the last id it was sent */
    int64_t born;             /* when it was accepted (ms, monotonic) */
    int deferred;             /* its request came before delivery started: it waits */
    enum crm_role role;
    const char *kill; /* to be closed, for this reason, once the current events are handled */
    char rid[65];
};

struct server {
    const struct crm_config *cfg;
    int ep, lfd;
    struct crm_db *db;
    unsigned db_gen;   /* the connection that LISTENs (crm_db_listen), 0: none */
    int listen_fd;     /* its socket in the epoll set, or -1 */
    int started;       /* the delivery cursor is known, so streams may start */
    int read_due;      /* a notification came: read the table */
    int again;         /* a gap waits for transactions to end: read again soon */
    int64_t last_read; /* ms, monotonic */
    int64_t gap_ms;    /* the least time from one read to the next, EV_GAP_MIN_MS.. */
    int accepting;     /* the listening socket is in the epoll set */
    int reap;          /* some stream has kill set */
    int64_t next_tick, next_ping, next_purge, next_start;
    struct crm_evorder order;
    struct stream *streams; /* every connection, streams or not yet */
    int nstreams;           /* the streams among them (catch-up and live) */
};

/* Milliseconds on the monotonic clock. */
int64_t ev_now_ms(void);

/* Queues framed bytes for s and writes what the socket takes. 0, or -1: s must be closed. */
int stream_send(struct server *srv, struct stream *s, const void *data, size_t n);

/* Sends STDOUT records framed for request id 1, relabelled with s's. 0, or -1: close s. */
int stream_send_records(struct server *srv, struct stream *s, const unsigned char *rec, size_t n);

/* Frames text (SSE lines) as STDOUT records and sends it. 0, or -1: s must be closed. */
int stream_send_text(struct server *srv, struct stream *s, const char *text, size_t n);

/* Ends s (politely when its buffer is empty), closes it, logs why (unless NULL) and frees it. */
void stream_close(struct server *srv, struct stream *s, const char *why);

/* Arms or disarms EPOLLOUT for s. */
void stream_want_out(struct server *srv, struct stream *s, int on);

/* Runs the server on the listening socket fd 0 until SIGTERM. Returns the exit status. */
int events_run(const struct crm_config *cfg);

/* feed.c */
/* Finds where delivery starts (waiting for transactions in progress). 0, or -1: retry later. */
int feed_start(struct server *srv);
/* After any statement: LISTEN again on a new connection, and take queued notifications. */
void feed_sync(struct server *srv);
/* The LISTEN socket is readable. */
void feed_input(struct server *srv);
/* Reads the events that became final and sends them to every live stream that may see them. */
void feed_read(struct server *srv);
/* Sends a catching-up stream its next page of missed events. 0, or -1: s must be closed. */
int feed_catchup(struct server *srv, struct stream *s);
/* Deletes events older than 24 hours, one batch. Returns the rows deleted, or -1. */
long feed_purge(struct server *srv, long batch);

#endif
