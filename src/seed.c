/*
 * seed.c: crmctl seed: demo data with realistic shapes, streamed with COPY. Leads skew towards
 * the early pipeline, values are log-uniform, some sales executives own far more than others,
 * and each lead has a timeline of about ten activities.
 */
#include "seed.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "password.h"
#include "util.h"

#define SEED_PASSWORD "demo-password"
#define DAY 86400.0

static const char *const firsts[] = {
    "Asha", "Ben",    "Chen",  "Dana",   "Elif",  "Farid", "Grace", "Hugo", "Ines", "Jon",
    "Kofi", "Lena",   "Mateo", "Nadia",  "Omar",  "Priya", "Quinn", "Rosa", "Sam",  "Tariq",
    "Uma",  "Victor", "Wen",   "Ximena", "Yusuf", "Zoe",   "Amir",  "Bea",  "Carl", "Dmitri",
};
static const char *const lasts[] = {
    "Okafor", "Smith", "Novak",  "Garcia", "Kim",   "Müller", "Rossi", "Silva", "Khan", "Dubois",
    "Haddad", "Ito",   "Larsen", "Mensah", "Patel", "Quist",  "Reyes", "Sato",  "Tan",  "Weber",
};
static const char *const companies[] = {
    "Acme",      "Globex",   "Initech",  "Umbrella", "Stark",      "Wayne",
    "Hooli",     "Vandelay", "Soylent",  "Tyrell",   "Cyberdyne",  "Wonka",
    "Gringotts", "Oscorp",   "Aperture", "Massive",  "Pied Piper", "Dunder",
    "Bluth",     "Prestige", "Monarch",  "Nakatomi", "Virtucon",   "Zorg",
};
static const char *const suffixes[] = {"Inc", "Ltd", "GmbH", "SA", "Group", "Labs", "& Co"};
static const char *const statuses[] = {"NEW",         "CONTACTED", "QUALIFIED", "PROPOSAL",
                                       "NEGOTIATION", "WON",       "LOST"};
static const int status_weight[] = {25, 20, 15, 10, 8, 12, 10};
static const char *const sources[] = {"WEBSITE",   "REFERRAL", "SOCIAL", "EMAIL",
                                      "COLD_CALL", "EVENT",    "OTHER"};
static const int source_weight[] = {30, 15, 15, 10, 15, 10, 5};
static const char *const kinds[] = {"NOTE", "CALL", "MEETING", "EMAIL"};
static const char *const notes[] = {
    "Left a voicemail",      "Sent the pricing sheet",       "Demo went well",
    "Asked for a discount",  "Needs sign-off from finance",  "Follow up next week",
    "Introduced to the CTO", "Compared us with a competitor"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* xorshift64*: fast, reproducible for a given --seed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Uniform in [0, 1). */
static double
unif(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static size_t
pick(size_t n)
{
    return (size_t)(unif() * (double)n);
}

static size_t
weighted(const int *w, size_t n)
{
    int total = 0, r;

    for (size_t i = 0; i < n; i++)
        total += w[i];
    r = (int)pick((size_t)total);
    for (size_t i = 0; i < n; i++)
        if ((r -= w[i]) < 0)
            return i;
    return n - 1;
}

/* An RFC 3339 UTC time for the Unix time t. */
static const char *
ts(double t, char *buf, size_t sz)
{
    time_t s = (time_t)t;
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* Buffered COPY ... FROM STDIN. */
struct copy {
    PGconn *conn;
    char buf[1 << 16];
    size_t len;
    int failed;
};

static void
copy_flush(struct copy *c)
{
    if (c->len > 0 && PQputCopyData(c->conn, c->buf, (int)c->len) != 1)
        c->failed = 1;
    c->len = 0;
}

static void __attribute__((format(printf, 2, 3))) copy_row(struct copy *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sizeof(c->buf) - c->len < 2048)
        copy_flush(c);
    va_start(ap, fmt);
    n = vsnprintf(c->buf + c->len, sizeof(c->buf) - c->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(c->buf) - c->len)
        c->len += (size_t)n;
    else
        c->failed = 1;
}

static int
run(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_COPY_IN ||
             PQresultStatus(res) == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "crmctl: seed: %s", PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

static int
copy_begin(struct copy *c, PGconn *conn, const char *sql)
{
    c->conn = conn;
    c->len = 0;
    c->failed = 0;
    return run(conn, sql);
}

static int
copy_end(struct copy *c)
{
    PGresult *res;
    int ok;

    copy_flush(c);
    if (PQputCopyEnd(c->conn, c->failed ? "seed: row too long" : NULL) != 1)
        return -1;
    res = PQgetResult(c->conn);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "crmctl: seed: %s", PQresultErrorMessage(res));
    PQclear(res);
    while ((res = PQgetResult(c->conn)) != NULL)
        PQclear(res);
    return ok ? 0 : -1;
}

/* The users: one MANAGER in ten (at least one), the rest SALES_EXECUTIVE. */
static int
seed_users(PGconn *conn, const char *run_id, long users, int cost)
{
    char hash[CRM_HASH_MAX];
    struct copy c;

    if (crm_password_hash(SEED_PASSWORD, cost, hash, sizeof(hash)) != CRM_OK)
        return -1;
    if (copy_begin(&c, conn, "COPY users (name, email, password_hash, role) FROM STDIN") != 0)
        return -1;
    for (long i = 0; i < users; i++)
        copy_row(&c, "%s %s\tseed-%s-%ld@demo.example\t%s\t%s\n", firsts[pick(N(firsts))],
                 lasts[pick(N(lasts))], run_id, i, hash,
                 i % 10 == 0 ? "MANAGER" : "SALES_EXECUTIVE");
    return copy_end(&c);
}

/* Ids of this run's users: managers first (they created the leads), then sales. */
static int64_t *
user_ids(PGconn *conn, const char *run_id, const char *role, long *n)
{
    char pattern[64];
    const char *params[2] = {pattern, role};
    PGresult *res;
    int64_t *ids = NULL;

    snprintf(pattern, sizeof(pattern), "seed-%s-%%", run_id);
    res = PQexecParams(conn, "SELECT id FROM users WHERE email LIKE $1 AND role = $2 ORDER BY id",
                       2, NULL, params, NULL, NULL, 0);
    *n = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
    if (*n > 0 && (ids = calloc((size_t)*n, sizeof(*ids))) != NULL)
        for (long i = 0; i < *n; i++)
            ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    return ids;
}

struct world {
    int64_t *sales, *managers;
    long nsales, nmanagers;
    double now;
};

/* A few sales executives own far more leads than the rest (u^2 skews towards index 0). */
static int64_t
some_owner(const struct world *w)
{
    double u = unif();

    return w->sales[(size_t)(u * u * (double)w->nsales)];
}

static void
lead_row(struct copy *c, const struct world *w, long i)
{
    const char *first = firsts[pick(N(firsts))], *last = lasts[pick(N(lasts))];
    const char *company = companies[pick(N(companies))];
    size_t st = weighted(status_weight, N(status_weight));
    double created = w->now - unif() * 730 * DAY;
    double updated = fmin(w->now, created + unif() * 30 * DAY);
    double value = exp(log(500) + unif() * (log(200000) - log(500)));
    char t1[32], t2[32], t3[32], owner[24];

    if (unif() < 0.05)
        strcpy(owner, "\\N");
    else
        crm_fmt_id(owner, sizeof(owner), some_owner(w));
    char slug[16];

    for (size_t k = 0; k < sizeof(slug) - 1 && company[k] != '\0' && company[k] != ' '; k++)
        slug[k] = (char)tolower((unsigned char)company[k]), slug[k + 1] = '\0';
    copy_row(c,
             "%s %s\t%s.%ld@%s.example\t+1 555 %03d %04d\t%s %s\t%s\t%s\t%.2f\t%s\t%lld\t%s"
             "\t%s\t%s\n",
             first, last, first, i, slug, (int)pick(1000), (int)pick(10000), company,
             suffixes[pick(N(suffixes))], sources[weighted(source_weight, N(source_weight))],
             statuses[st], value, owner, (long long)w->managers[pick((size_t)w->nmanagers)],
             st == 5 ? ts(fmin(w->now, created + (1 + unif() * 60) * DAY), t3, sizeof(t3)) : "\\N",
             ts(created, t1, sizeof(t1)), ts(updated, t2, sizeof(t2)));
}

/* Leads first .. first + n - 1 of the run. */
static int
seed_leads(PGconn *conn, const struct world *w, long first, long n)
{
    struct copy c;

    if (copy_begin(&c, conn,
                   "COPY leads (name, email, phone, company, source, status, value, owner_id,"
                   " created_by, won_at, created_at, updated_at) FROM STDIN") != 0)
        return -1;
    for (long i = first; i < first + n; i++)
        lead_row(&c, w, i);
    return copy_end(&c);
}

/* About ten activities per lead: the CREATED one, then notes, calls, meetings and e-mails. */
static int
seed_activities(PGconn *conn, const struct world *w, int64_t after)
{
    char after_s[24], t[32];
    const char *params[1] = {after_s};
    struct copy c;
    PGresult *res;
    int rc;

    crm_fmt_id(after_s, sizeof(after_s), after);
    res = PQexecParams(conn,
                       "SELECT id, coalesce(owner_id, created_by), created_by,"
                       " extract(epoch FROM created_at) FROM leads WHERE id > $1 ORDER BY id",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK ||
        copy_begin(&c, conn,
                   "COPY activities (lead_id, type, content, occurred_at, actor_id, created_at)"
                   " FROM STDIN") != 0) {
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0), *actor = PQgetvalue(res, i, 1);
        double created = strtod(PQgetvalue(res, i, 3), NULL);
        int n = (int)(-log(1 - unif()) * 9);

        copy_row(&c, "%s\tCREATED\t\\N\t%s\t%s\t%s\n", id, ts(created, t, sizeof(t)),
                 PQgetvalue(res, i, 2), t);
        /* The k-th in the k-th of n equal spans up to now: a timeline lists activities in the
         * order they were added, so they happen in that order. */
        for (int k = 0; k < n; k++) {
            ts(created + (k + unif()) / n * (w->now - created), t, sizeof(t));
            copy_row(&c, "%s\t%s\t%s\t%s\t%s\t%s\n", id, kinds[pick(N(kinds))],
                     notes[pick(N(notes))], t, actor, t);
        }
    }
    PQclear(res);
    rc = copy_end(&c);
    return rc;
}

/* The newest lead's id (0 with none), or -1. */
static int64_t
last_lead(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT coalesce(max(id), 0) FROM leads");
    int64_t id =
        PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;

    PQclear(res);
    return id;
}

/*
 * crm_seed's rebuild: the indexes to build again are kept in a table of the transaction, then
 * dropped; building each once at the end reads the tables once instead of updating the index
 * for every row (a trigram index of 10 million leads, 100 million activities).
 */
#define DROP_INDEXES                                                                               \
    "SET LOCAL maintenance_work_mem = '512MB';"                                                    \
    " CREATE TEMP TABLE seed_indexes ON COMMIT DROP AS SELECT i.indexrelid::regclass::text AS"     \
    " name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i WHERE i.indrelid IN"              \
    " ('leads'::regclass, 'activities'::regclass) AND NOT i.indisunique;"                          \
    " DO $$DECLARE r record; BEGIN FOR r IN SELECT name FROM seed_indexes LOOP"                    \
    " EXECUTE 'DROP INDEX ' || r.name; END LOOP; END$$"
#define BUILD_INDEXES                                                                              \
    "DO $$DECLARE r record; BEGIN FOR r IN SELECT def FROM seed_indexes LOOP EXECUTE r.def;"       \
    " END LOOP; END$$"

int
crm_seed(PGconn *conn, long leads, long users, long chunk, int rebuild, int cost,
         unsigned long seed)
{
    struct world w = {.now = (double)time(NULL)};
    char run_id[16];
    int64_t after;
    int rc = -1;

    rng_state ^= seed * 0x2545F4914F6CDD1DULL;
    snprintf(run_id, sizeof(run_id), "%06llx", (unsigned long long)(rnd() & 0xffffff));
    if (run(conn, "BEGIN") != 0 || seed_users(conn, run_id, users, cost) != 0)
        goto out;
    w.sales = user_ids(conn, run_id, "SALES_EXECUTIVE", &w.nsales);
    w.managers = user_ids(conn, run_id, "MANAGER", &w.nmanagers);
    if (w.nsales == 0 || w.nmanagers == 0) {
        fprintf(stderr, "crmctl: seed: --users must be at least 2\n");
        goto out;
    }
    if (rebuild && run(conn, DROP_INDEXES) != 0)
        goto out;
    for (long first = 0; first < leads; first += chunk) {
        long n = leads - first < chunk ? leads - first : chunk;

        if ((after = last_lead(conn)) < 0 || seed_leads(conn, &w, first, n) != 0 ||
            seed_activities(conn, &w, after) != 0)
            goto out;
    }
    if ((rebuild && run(conn, BUILD_INDEXES) != 0) || run(conn, "COMMIT") != 0)
        goto out;
    printf("seeded %ld users (password %s, e-mails seed-%s-N@demo.example) and %ld leads\n", users,
           SEED_PASSWORD, run_id, leads);
    rc = 0;
out:
    if (rc != 0)
        PQclear(PQexec(conn, "ROLLBACK"));
    free(w.sales);
    free(w.managers);
    return rc;
}
