/*
 * sse-bench: opens Server-Sent Events streams through nginx, then makes events and measures when
 * each stream receives each of them. Used by bench/sse.py (make bench).
 *
 *   sse-bench PORT STREAMS_FILE LEADS_FILE WRITE_TOKEN SINGLE RATE SECONDS
 *
 * STREAMS_FILE has a line "uid token" per stream (uid 0: a role that sees every lead);
 * LEADS_FILE a line "lead_id owner_uid" per lead the events go to, in turn.
 * 1. Opens the streams (GET /api/events, HTTP/1.0) and waits for each one's "retry:" line;
 *    prints "ready OPENED SECONDS PROCESSES", then waits for a line on standard input (the driver
 * reads memory meanwhile).
 * 2. SINGLE events, one at a time, on the first lead: the time from sending the request to
 *    its arrival on every stream that may see it. Prints "single p50 p99 max samples" in ms.
 * 3. RATE events a second for SECONDS seconds from four writer threads. Every stream must get
 *    every event it may see. Prints "sustained sent acked behind missing p50 p99 max":
 *    behind is the number of streams that did not get all theirs, missing the events short.
 * Each event's content is "sse-bench SEQ", which the client finds in the message, so each
 * arrival is timed against the start of its own request.
 * A process holds a descriptor per stream, and the hard limit on them is per process: with more
 * streams than that allows, the streams are split over several processes (forked), each with
 * its own slice and event loop; the first also makes the events and reports. The streams'
 * counts and the latencies are in memory they all share, so the figures are of all streams.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HIST_BUCKETS 100000 /* 0.1 ms each: up to 10 s */
#define MAX_EVENTS 200000
#define TAIL 32
#define READ_BUF 65536
#define SPARE_FDS 256 /* a process's descriptors beside its streams': writers, epoll, stdio */

struct conn {
    int fd;
    long uid; /* 0: sees every lead */
    int ready;
    long got, expected;
    size_t tlen;
    char tail[TAIL]; /* the last bytes of the previous read, for matches across reads */
};

struct lead {
    long id, owner;
};

/* What the client processes share (MAP_SHARED), beside the streams themselves. */
struct shared {
    double send_time[MAX_EVENTS];
    unsigned long hist[HIST_BUCKETS + 1];
    unsigned long samples;
    atomic_int opened; /* processes done opening their streams */
    atomic_int stop;   /* the first process is done: the others end */
};

static int port;
static const char *write_token;
static struct conn *conns; /* shared */
static long nconns;
static long lo, hi; /* this process's streams: conns[lo] .. conns[hi - 1] */
static struct lead *leads;
static long nleads;
static struct shared *sh;
static atomic_long next_seq;
static atomic_long acked;
static atomic_int writers_left;

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

    __atomic_add_fetch(&sh->hist[b < 0              ? 0
                                 : b > HIST_BUCKETS ? HIST_BUCKETS
                                                    : b],
                       1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sh->samples, 1, __ATOMIC_RELAXED);
}

/* The latency at fraction q of the samples, in ms. */
static double
quantile(double q)
{
    unsigned long want = (unsigned long)((double)sh->samples * q), seen = 0;

    for (long b = 0; b <= HIST_BUCKETS; b++) {
        seen += sh->hist[b];
        if (seen > want || (seen == sh->samples && seen > 0))
            return (double)b / 10.0;
    }
    return 0;
}

static double
maximum(void)
{
    for (long b = HIST_BUCKETS; b >= 0; b--)
        if (sh->hist[b] > 0)
            return (double)b / 10.0;
    return 0;
}

static void
reset_phase(void)
{
    memset(sh->hist, 0, sizeof(sh->hist));
    sh->samples = 0;
    for (long i = 0; i < nconns; i++)
        conns[i].got = conns[i].expected = 0;
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

/* Event seq on lead l: POST an activity "sse-bench SEQ", wait for the answer. Returns 1 if 201. */
static int
post_event(long src, const struct lead *l, long seq)
{
    char req[2048], body[128], resp[512];
    int fd = dial(100000 + src), ok = 0;
    int blen =
        snprintf(body, sizeof(body), "{\"type\":\"NOTE\",\"content\":\"sse-bench %ld\"}", seq);
    ssize_t n = snprintf(req, sizeof(req),
                         "POST /api/leads/%ld/activity HTTP/1.0\r\nHost: x\r\n"
                         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         l->id, write_token, blen, body);

    if (fd < 0)
        return 0;
    /* Counted before it can arrive: a stream that may see it now expects it. */
    for (long i = 0; i < nconns; i++)
        if (conns[i].uid == 0 || conns[i].uid == l->owner)
            __atomic_add_fetch(&conns[i].expected, 1, __ATOMIC_RELAXED);
    sh->send_time[seq] = now();
    if (write(fd, req, (size_t)n) == n && (n = read(fd, resp, sizeof(resp) - 1)) > 12) {
        resp[n] = '\0';
        ok = atoi(resp + 9) == 201;
    }
    close(fd);
    return ok;
}

/*
 * Counts what the bytes just read complete: messages ("\nid: "), and times each bench event.
 * work holds c's tail (the last bytes of its previous read) and then len - tlen new bytes.
 */
static void
scan(struct conn *c, const char *work, size_t len)
{
    const char *p, *end = work + len;

    /* A match is new when it ends in the bytes just read. */
    for (p = work; (p = memmem(p, (size_t)(end - p), "\nid: ", 5)) != NULL; p++)
        if ((size_t)(p + 5 - work) > c->tlen)
            c->got++;
    for (p = work; (p = memmem(p, (size_t)(end - p), "sse-bench ", 10)) != NULL; p++) {
        char *q;
        long seq = strtol(p + 10, &q, 10);

        if (q < end && *q == '"' && (size_t)(q + 1 - work) > c->tlen && seq >= 0 &&
            seq < MAX_EVENTS)
            record(now() - sh->send_time[seq]);
    }
    if (!c->ready && memmem(work, len, "retry: ", 7) != NULL)
        c->ready = 1;
    c->tlen = len < TAIL ? len : TAIL;
    memcpy(c->tail, end - c->tlen, c->tlen);
}

/* Reads what is there on the streams, waiting up to ms. Returns the streams that ended. */
static long
pump(int ep, int ms)
{
    static char work[TAIL + READ_BUF];
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, ms);
    long closed = 0;

    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        ssize_t r;

        memcpy(work, c->tail, c->tlen);
        r = read(c->fd, work + c->tlen, READ_BUF);
        if (r > 0) {
            scan(c, work, c->tlen + (size_t)r);
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            closed++;
        }
    }
    return closed;
}

/* Opens this process's streams. Returns how many opened. */
static long
open_streams(int ep, char **tokens)
{
    long ready = 0, lost = 0;
    double deadline;

    for (long i = lo; i < hi; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        char req[1024];
        int len = snprintf(req, sizeof(req),
                           "GET /api/events HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n"
                           "Authorization: Bearer %s\r\n\r\n",
                           tokens[i]);
        int fd = dial(i);

        if (fd < 0 || write(fd, req, (size_t)len) != len) {
            fprintf(stderr, "sse-bench: connection %ld: %s\n", i, strerror(errno));
            exit(1);
        }
        conns[i].fd = fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        if (i % 200 == 199)
            lost += pump(ep, 0);
    }
    deadline = now() + 120;
    while (now() < deadline) {
        ready = 0;
        for (long i = lo; i < hi; i++)
            ready += conns[i].ready;
        if (ready + lost >= hi - lo)
            break;
        lost += pump(ep, 100);
    }
    /* A stream that did not open expects nothing: it is counted out of "ready" instead. */
    for (long i = lo; i < hi; i++)
        if (!conns[i].ready)
            conns[i].uid = -1;
    return ready;
}

/* Reads until the writers are done and every stream has what it expects, or until deadline. */
static void
drain(int ep, double deadline)
{
    while (now() < deadline) {
        long i = 0;

        pump(ep, 10);
        if (atomic_load(&writers_left) > 0)
            continue;
        while (i < nconns && conns[i].got >= __atomic_load_n(&conns[i].expected, __ATOMIC_RELAXED))
            i++;
        if (i == nconns)
            return;
    }
}

static void
single_events(int ep, long count)
{
    reset_phase();
    for (long k = 0; k < count; k++) {
        if (!post_event(k, &leads[0], atomic_fetch_add(&next_seq, 1))) {
            fprintf(stderr, "sse-bench: the event was refused\n");
            exit(1);
        }
        drain(ep, now() + 10);
        /* Quiet in between (longer than crm-events' batching gap after a fan-out to these
         * streams), so each event is measured alone. */
        for (double quiet = now() + 0.5; now() < quiet;)
            pump(ep, 20);
    }
    printf("single %.1f %.1f %.1f %lu\n", quantile(0.5), quantile(0.99), maximum(), sh->samples);
}

struct writer {
    long id, count;
    double rate; /* this writer's events a second */
    double start;
    double end; /* when its last event was acknowledged (or refused) */
};

static void *
write_events(void *arg)
{
    struct writer *w = arg;

    for (long i = 0; i < w->count; i++) {
        double due = w->start + (double)i / w->rate, t;
        long seq;

        while ((t = now()) < due)
            usleep((useconds_t)((due - t) * 1e6));
        seq = atomic_fetch_add(&next_seq, 1);
        if (post_event(w->id * 1000 + i % 1000, &leads[seq % nleads], seq))
            atomic_fetch_add(&acked, 1);
    }
    w->end = now();
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

static void
sustained(int ep, double rate, long seconds)
{
    struct writer w[4];
    pthread_t th[4];
    long total = (long)(rate * (double)seconds) / 4 * 4, behind = 0, missing = 0;
    double t0 = now(), took = 0;

    reset_phase();
    atomic_store(&writers_left, 4);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){.id = i + 1, .count = total / 4, .rate = rate / 4, .start = now()};
        pthread_create(&th[i], NULL, write_events, &w[i]);
    }
    drain(ep, now() + (double)seconds + 30);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        took = w[i].end - t0 > took ? w[i].end - t0 : took;
    }
    drain(ep, now() + 5);
    for (long i = 0; i < nconns; i++) {
        if (conns[i].got < conns[i].expected) {
            behind++;
            missing += conns[i].expected - conns[i].got;
        }
    }
    /* The rate achieved is what the writers got through, however much was asked. */
    printf("sustained %ld %ld %ld %ld %.1f %.1f %.1f %lu %.2f\n", total, atomic_load(&acked),
           behind, missing, quantile(0.5), quantile(0.99), maximum(), sh->samples, took);
}

/* Zeroed memory that stays shared with the processes forked after. */
static void *
shared_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        perror("sse-bench: mmap");
        exit(1);
    }
    return p;
}

/* A process of a slice other than the first: opens its streams and reads them until told. */
static void
serve_slice(char **tokens)
{
    int ep = epoll_create1(0);

    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the first process */
    open_streams(ep, tokens);
    atomic_fetch_add(&sh->opened, 1);
    while (!atomic_load(&sh->stop))
        pump(ep, 50);
    _exit(0);
}

/*
 * Splits the streams over as few processes as the hard limit on descriptors allows, forks all
 * but the first (which keeps slice 0, in lo and hi). Returns the number of processes.
 */
static int
split(char **tokens)
{
    struct rlimit rl = {0};
    long cap = nconns, per;
    int nprocs;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max - SPARE_FDS < cap)
            cap = (long)rl.rlim_max - SPARE_FDS;
    }
    nprocs = (int)((nconns + cap - 1) / cap);
    per = (nconns + nprocs - 1) / nprocs;
    fflush(stdout);
    for (int k = 1; k < nprocs; k++) {
        pid_t pid = fork();

        if (pid < 0) {
            perror("sse-bench: fork");
            exit(1);
        }
        if (pid == 0) {
            lo = k * per;
            hi = lo + per < nconns ? lo + per : nconns;
            serve_slice(tokens);
        }
    }
    lo = 0;
    hi = per;
    return nprocs;
}

/* Reads "a b" lines: numbers into *nums (pairs), or a number and a string into *strs. */
static long
read_pairs(const char *path, long **nums, char ***strs)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    long n = 0, cap = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *sp = strchr(line, ' ');

        if (sp == NULL)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            *nums = realloc(*nums, (size_t)cap * 2 * sizeof(long));
            if (strs != NULL)
                *strs = realloc(*strs, (size_t)cap * sizeof(char *));
        }
        (*nums)[2 * n] = atol(line);
        if (strs != NULL)
            (*strs)[n] = strndup(sp + 1, strcspn(sp + 1, "\r\n"));
        else
            (*nums)[2 * n + 1] = atol(sp + 1);
        n++;
    }
    fclose(f);
    return n;
}

int
main(int argc, char **argv)
{
    long single, seconds, opened, *snums = NULL, *lnums = NULL;
    char **tokens = NULL, line[16];
    double rate, t0;
    int ep, nprocs;

    if (argc != 8) {
        fprintf(stderr, "usage: sse-bench PORT STREAMS_FILE LEADS_FILE WRITE_TOKEN SINGLE RATE "
                        "SECONDS\n");
        return 2;
    }
    port = atoi(argv[1]);
    nconns = read_pairs(argv[2], &snums, &tokens);
    nleads = read_pairs(argv[3], &lnums, NULL);
    write_token = argv[4];
    single = atol(argv[5]);
    rate = atof(argv[6]);
    seconds = atol(argv[7]);
    if (nconns < 1 || nleads < 1 || rate * (double)seconds + (double)single >= MAX_EVENTS)
        return 2;
    conns = shared_alloc((size_t)nconns * sizeof(*conns));
    sh = shared_alloc(sizeof(*sh));
    leads = calloc((size_t)nleads, sizeof(*leads));
    for (long i = 0; i < nconns; i++)
        conns[i].uid = snums[2 * i];
    for (long i = 0; i < nleads; i++)
        leads[i] = (struct lead){lnums[2 * i], lnums[2 * i + 1]};
    t0 = now();
    nprocs = split(tokens);
    ep = epoll_create1(0);
    open_streams(ep, tokens);
    atomic_fetch_add(&sh->opened, 1);
    while (atomic_load(&sh->opened) < nprocs)
        pump(ep, 50);
    opened = 0;
    for (long i = 0; i < nconns; i++)
        opened += conns[i].ready;
    printf("ready %ld %.1f %d\n", opened, now() - t0, nprocs);
    fflush(stdout);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 1;
    if (single > 0)
        single_events(ep, single);
    fflush(stdout);
    sustained(ep, rate, seconds);
    atomic_store(&sh->stop, 1);
    while (wait(NULL) > 0)
        ;
    return 0;
}
