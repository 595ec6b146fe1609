/*
 * sse-bench: opens N Server-Sent Events streams through nginx, then makes events and measures
 * when each stream receives each of them. Used by bench/sse.py (make bench).
 *
 *   sse-bench PORT STREAMS TOKEN LEAD_ID SINGLE RATE SECONDS
 *
 * 1. Opens STREAMS streams (GET /api/events, HTTP/1.0) and waits for each one's "retry:" line;
 *    prints "ready STREAMS SECONDS", then waits for a line on standard input (the driver reads
 *    memory meanwhile).
 * 2. SINGLE events, one at a time (POST /api/leads/LEAD_ID/activity): for each, the time from
 *    sending the request to its arrival on every stream. Prints "single p50 p99 max" in ms.
 * 3. RATE events a second for SECONDS seconds from four writer threads: every stream must get
 *    every event. The j-th message a stream gets is the j-th event committed; its latency is
 *    taken from the start of the j-th request sent, which is close to (and never later than
 *    most of) its commit. Prints "sustained sent received_min received_max p50 p99 max".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_BUCKETS 100000 /* 0.1 ms each: up to 10 s */
#define MAX_EVENTS 100000

struct conn {
    int fd;
    int ready; /* its "retry:" line came */
    int match; /* how much of "\nid: " the last bytes matched */
    long got;  /* messages received */
    long base; /* messages received before the current phase */
};

static int port;
static const char *token;
static long lead_id;
static struct conn *conns;
static long nconns;
static double send_time[MAX_EVENTS];
static atomic_long sent;
static atomic_long acked;
static unsigned long hist[HIST_BUCKETS + 1];
static unsigned long samples;

static double
now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
record(double seconds)
{
    long b = (long)(seconds * 10000.0);

    hist[b < 0 ? 0 : b > HIST_BUCKETS ? HIST_BUCKETS : b]++;
    samples++;
}

/* The latency at fraction q of the samples, in ms. */
static double
quantile(double q)
{
    unsigned long want = (unsigned long)((double)samples * q), seen = 0;

    for (long b = 0; b <= HIST_BUCKETS; b++) {
        seen += hist[b];
        if (seen > want || (seen == samples && seen > 0))
            return (double)b / 10.0;
    }
    return 0;
}

static double
maximum(void)
{
    for (long b = HIST_BUCKETS; b >= 0; b--)
        if (hist[b] > 0)
            return (double)b / 10.0;
    return 0;
}

static void
reset_hist(void)
{
    memset(hist, 0, sizeof(hist));
    samples = 0;
}

/* A connection from its own loopback source address, so ports never run short. */
static int
dial(long i)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(2 + i / 20000) << 16 |
                                (uint32_t)(i % 20000 / 250) << 8 | (uint32_t)(i % 250 + 1));
    dst.sin_port = htons((uint16_t)port);
    dst.sin_addr.s_addr = htonl(0x7f000001u);
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One event: POST an activity, wait for its answer. Returns the HTTP status. */
static int
post_event(long i, long seq)
{
    char req[1024], resp[512];
    int fd = dial(60000 + i), status = 0;
    int body_len;
    char body[128];
    ssize_t n;

    if (fd < 0)
        return 0;
    body_len = snprintf(body, sizeof(body), "{\"type\":\"NOTE\",\"content\":\"bench %ld\"}", seq);
    n = snprintf(req, sizeof(req),
                 "POST /api/leads/%ld/activity HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                 lead_id, token, body_len, body);
    if (write(fd, req, (size_t)n) == n && (n = read(fd, resp, sizeof(resp) - 1)) > 12) {
        resp[n] = '\0';
        status = atoi(resp + 9);
    }
    close(fd);
    return status;
}

/* Counts the messages in the bytes just read: each starts with "id: " after a blank line. */
static void
scan(struct conn *c, const char *buf, ssize_t n)
{
    static const char pat[] = "\nid: ";

    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == pat[c->match]) {
            if (++c->match == 5) {
                c->got++;
                c->match = 0;
            }
        } else {
            c->match = buf[i] == '\n' ? 1 : 0;
        }
        if (!c->ready && buf[i] == ':' && i >= 5 && memcmp(buf + i - 5, "retry", 5) == 0)
            c->ready = 1;
    }
}

/* Reads what is there on the streams for up to ms; for each new message, latency(c, k). */
static long
pump(int ep, int ms, void (*on_msg)(struct conn *c, long k))
{
    struct epoll_event evs[512];
    char buf[65536];
    int n = epoll_wait(ep, evs, 512, ms);
    long closed = 0;

    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        long before = c->got;
        ssize_t r = read(c->fd, buf, sizeof(buf));

        if (r <= 0) {
            if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                closed++;
            }
            continue;
        }
        scan(c, buf, r);
        for (long k = before; on_msg != NULL && k < c->got; k++)
            on_msg(c, k - c->base);
    }
    return closed;
}

static long
open_streams(int ep, long want)
{
    char req[1024];
    int len = snprintf(req, sizeof(req),
                       "GET /api/events HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n"
                       "Authorization: Bearer %s\r\n\r\n",
                       token);
    long ready = 0, lost = 0;
    double deadline;

    for (long i = 0; i < want; i++) {
        struct epoll_event ev = {.events = EPOLLIN};
        int fd = dial(i);

        if (fd < 0 || write(fd, req, (size_t)len) != len) {
            fprintf(stderr, "sse-bench: connection %ld: %s\n", i, strerror(errno));
            exit(1);
        }
        conns[i].fd = fd;
        ev.data.ptr = &conns[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        nconns++;
        if (i % 200 == 199)
            lost += pump(ep, 0, NULL);
    }
    deadline = now() + 60;
    while (now() < deadline) {
        ready = 0;
        for (long i = 0; i < nconns; i++)
            ready += conns[i].ready;
        if (ready + lost >= nconns)
            break;
        lost += pump(ep, 100, NULL);
    }
    return ready;
}

/* Phase 2: the k-th message of the phase on a stream is event k. */
static double single_t0;
static long single_k;
static atomic_long arrived;

static void
on_single(struct conn *c, long k)
{
    (void)c;
    if (k == single_k) {
        record(now() - single_t0);
        atomic_fetch_add(&arrived, 1);
    }
}

static void
on_sustained(struct conn *c, long k)
{
    (void)c;
    if (k < atomic_load(&sent))
        record(now() - send_time[k]);
}

struct writer {
    long id, count;
    double rate; /* this writer's events a second */
    double start;
};

static void *
write_events(void *arg)
{
    struct writer *w = arg;

    for (long i = 0; i < w->count; i++) {
        double due = w->start + (double)i / w->rate, t;
        long idx;

        while ((t = now()) < due)
            usleep((useconds_t)((due - t) * 1e6));
        idx = atomic_fetch_add(&sent, 1);
        send_time[idx] = now();
        if (post_event(w->id * 1000 + i % 1000, idx) == 201)
            atomic_fetch_add(&acked, 1);
    }
    return NULL;
}

static void
mark_base(void)
{
    for (long i = 0; i < nconns; i++)
        conns[i].base = conns[i].got;
}

static void
single_events(int ep, long count)
{
    reset_hist();
    for (long k = 0; k < count; k++) {
        double deadline;

        mark_base();
        atomic_store(&arrived, 0);
        single_k = 0;
        single_t0 = now();
        if (post_event(k, k) != 201) {
            fprintf(stderr, "sse-bench: the event was refused\n");
            exit(1);
        }
        deadline = single_t0 + 10;
        while (atomic_load(&arrived) < nconns && now() < deadline)
            pump(ep, 10, on_single);
        /* Quiet in between, so each event is measured alone. */
        deadline = now() + 0.2;
        while (now() < deadline)
            pump(ep, 20, NULL);
    }
    printf("single %.1f %.1f %.1f %lu\n", quantile(0.5), quantile(0.99), maximum(), samples);
}

static void
sustained(int ep, double rate, long seconds)
{
    struct writer w[4];
    pthread_t th[4];
    long total = (long)(rate * (double)seconds), lo = -1, hi = 0;
    double end;

    reset_hist();
    mark_base();
    atomic_store(&sent, 0);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){.id = i + 1, .count = total / 4, .rate = rate / 4, .start = now()};
        pthread_create(&th[i], NULL, write_events, &w[i]);
    }
    end = now() + (double)seconds + 30;
    while (now() < end) {
        long least = -1;

        pump(ep, 10, on_sustained);
        for (long i = 0; i < nconns; i++)
            if (least < 0 || conns[i].got - conns[i].base < least)
                least = conns[i].got - conns[i].base;
        if (least >= (total / 4) * 4)
            break;
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (long i = 0; i < nconns; i++) {
        long g = conns[i].got - conns[i].base;

        lo = lo < 0 || g < lo ? g : lo;
        hi = g > hi ? g : hi;
    }
    printf("sustained %ld %ld %ld %ld %.1f %.1f %.1f\n", atomic_load(&sent), atomic_load(&acked),
           lo, hi, quantile(0.5), quantile(0.99), maximum());
}

int
main(int argc, char **argv)
{
    struct rlimit rl;
    long want, single, seconds;
    double rate, t0;
    char line[16];
    int ep;

    if (argc != 8) {
        fprintf(stderr, "usage: sse-bench PORT STREAMS TOKEN LEAD_ID SINGLE RATE SECONDS\n");
        return 2;
    }
    port = atoi(argv[1]);
    want = atol(argv[2]);
    token = argv[3];
    lead_id = atol(argv[4]);
    single = atol(argv[5]);
    rate = atof(argv[6]);
    seconds = atol(argv[7]);
    if (rate * (double)seconds > MAX_EVENTS || want < 1)
        return 2;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    conns = calloc((size_t)want, sizeof(*conns));
    ep = epoll_create1(0);
    t0 = now();
    printf("ready %ld %.1f\n", open_streams(ep, want), now() - t0);
    fflush(stdout);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 1;
    single_events(ep, single);
    fflush(stdout);
    sustained(ep, rate, seconds);
    return 0;
}
