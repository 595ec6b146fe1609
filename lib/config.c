/* config.c: env file parsing and the refusal rules for unsafe settings. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "util.h"

struct key {
    const char *name;
    char *dst;
    size_t sz;
};

static int fail(char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the one-line reason for a refusal; always returns -1. */
static int
fail(char *why, size_t whysz, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, whysz, fmt, ap);
    va_end(ap);
    return -1;
}

static int
copy_value(const struct key *k, const char *val, char *why, size_t whysz)
{
    size_t n = strlen(val);

    if (n >= k->sz)
        return fail(why, whysz, "%s is too long", k->name);
    memcpy(k->dst, val, n + 1);
    return 0;
}

static int
set_key(const struct key *keys, size_t nkeys, const char *name, const char *val, char *why,
        size_t whysz)
{
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i].name, name) == 0)
            return copy_value(&keys[i], val, why, whysz);
    return 0; /* Unknown keys belong to other programs (nginx template, scripts). */
}

/* Strips one pair of matching quotes, in place. */
static char *
unquote(char *v)
{
    size_t n = strlen(v);

    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = '\0';
        return v + 1;
    }
    return v;
}

/*
 * Reads the next line of f into line (sz bytes). Returns 1; 0 at the end of the file; -1 for a
 * line longer than sz - 1 bytes (its tail would otherwise be read as a line of its own).
 */
static int
next_line(FILE *f, char *line, size_t sz)
{
    int c;

    line[sz - 1] = 'x'; /* fgets puts its NUL here only when it fills the buffer */
    if (fgets(line, (int)sz, f) == NULL)
        return 0;
    if (line[sz - 1] != '\0' || line[sz - 2] == '\n')
        return 1;
    /* Full: the line is whole only when its newline or the end of the file comes next. */
    if ((c = getc(f)) == EOF || c == '\n')
        return 1;
    return -1;
}

static int
read_file(const char *path, const struct key *keys, size_t nkeys, char *why, size_t whysz)
{
    char line[2048];
    struct stat st;
    FILE *f;
    int rc = 0, got, lineno = 0;

    if ((f = fopen(path, "r")) == NULL)
        return fail(why, whysz, "cannot open env file %s", path);
    /* The file holds the JWT secret and database password: others must not read it. */
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
        fclose(f);
        return fail(why, whysz, "env file %s is readable by others (chmod o-r)", path);
    }
    while (rc == 0 && (got = next_line(f, line, sizeof(line))) != 0) {
        char *s = line, *eq;

        if (got < 0) {
            rc = fail(why, whysz, "env file %s: line %d is longer than %zu bytes", path, lineno + 1,
                      sizeof(line) - 1);
            break;
        }
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        s += strspn(s, " \t");
        if (*s == '#' || *s == '\0')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s += 7;
        if ((eq = strchr(s, '=')) == NULL)
            continue;
        *eq = '\0';
        rc = set_key(keys, nkeys, s, unquote(eq + 1), why, whysz);
    }
    fclose(f);
    return rc;
}

static int
parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int
check_db_url(const char *url, char *why, size_t whysz)
{
    PQconninfoOption *opts;
    char *err = NULL;

    if (url[0] == '\0')
        return fail(why, whysz, "%s is not set", "DATABASE_URL");
    if (strncmp(url, "postgres://", 11) != 0 && strncmp(url, "postgresql://", 13) != 0)
        return fail(why, whysz, "%s must be a postgresql:// URL", "DATABASE_URL");
    if ((opts = PQconninfoParse(url, &err)) == NULL) {
        PQfreemem(err); /* Its text may echo the URL, with its password: not shown. */
        return fail(why, whysz, "%s cannot be parsed", "DATABASE_URL");
    }
    PQconninfoFree(opts);
    return 0;
}

struct num {
    const char *name, *text;
    long lo, hi, dflt;
};

static int
check_numbers(struct crm_config *cfg, const char *const *texts, char *why, size_t whysz)
{
    const struct num nums[] = {
        {"JWT_TTL", texts[0], 60, 31L * 86400, 86400},
        {"BCRYPT_COST", texts[1], 4, 31, 12},
        {"PORT", texts[2], 1, 65535, 8080},
        {"MAIL_PORT", texts[3], 1, 65535, 25},
        {"MAIL_MAX_ATTEMPTS", texts[4], 1, 100, 8},
        {"MAIL_RETRY_SECONDS", texts[5], 1, 86400, 30},
        {"SSE_MAX_STREAMS", texts[6], 1, 1000000, 10000},
        /* Several tabs on several devices (make bench models 10 a user), far below the total. */
        {"SSE_MAX_STREAMS_PER_USER", texts[7], 1, 1000000, 16},
        {"LOGIN_MAX_FAILURES", texts[8], 1, 100, 5},
        /* An hour at most: whoever guesses at an account can keep its owner out that long. */
        {"LOGIN_LOCKOUT_SECONDS", texts[9], 1, 3600, 30},
        {"LOGIN_LOCKOUT_MAX_SECONDS", texts[10], 1, 3600, 900},
        {"WEBHOOK_TIMEOUT_SECONDS", texts[11], 1, 60, 10},
        {"WEBHOOK_RETRY_SECONDS", texts[12], 1, 3600, 10},
        {"WEBHOOK_MAX_FAILURES", texts[13], 1, 1000, 20},
    };
    enum { NNUMS = sizeof(nums) / sizeof(nums[0]) };
    long vals[NNUMS];

    for (size_t i = 0; i < NNUMS; i++) {
        vals[i] = nums[i].dflt;
        if (nums[i].text[0] != '\0' &&
            parse_long(nums[i].text, nums[i].lo, nums[i].hi, &vals[i]) != 0)
            return fail(why, whysz, "%s is not a number in its allowed range", nums[i].name);
    }
    cfg->jwt_ttl = vals[0];
    cfg->bcrypt_cost = (int)vals[1];
    cfg->port = (int)vals[2];
    cfg->mail_port = (int)vals[3];
    cfg->mail_max_attempts = (int)vals[4];
    cfg->mail_retry = vals[5];
    cfg->sse_max_streams = (int)vals[6];
    cfg->sse_max_streams_per_user = (int)vals[7];
    cfg->login_max_failures = (int)vals[8];
    cfg->login_lockout = vals[9];
    cfg->login_lockout_max = vals[10];
    cfg->webhook_timeout = vals[11];
    cfg->webhook_retry = vals[12];
    cfg->webhook_max_failures = (int)vals[13];
    return 0;
}

int
crm_config_each(const char *list, int (*fn)(const char *item, size_t len, void *arg), void *arg)
{
    static const char sep[] = " \t,";
    int rc = 0;

    for (const char *p = list + strspn(list, sep); rc == 0 && *p != '\0'; p += strspn(p, sep)) {
        size_t n = strcspn(p, sep);

        rc = fn(p, n, arg);
        p += n;
    }
    return rc;
}

/*
 * An origin as a browser sends it: http or https, a host name or IPv4 address (lower case, as
 * browsers serialise it) or a bracketed IPv6 one, an optional port, nothing after. The list goes
 * into nginx's configuration, so nothing else may get through.
 */
static int
bad_origin(const char *item, size_t len, void *arg)
{
    size_t i = strncmp(item, "https://", 8) == 0 ? 8 : strncmp(item, "http://", 7) == 0 ? 7 : 0;
    size_t host = i;

    (void)arg;
    if (i == 0)
        return 1;
    if (i < len && item[i] == '[') {
        for (i++; i < len && strchr("0123456789abcdef:.", item[i]) != NULL; i++)
            ;
        if (i >= len || item[i++] != ']')
            return 1;
    } else {
        while (i < len && strchr("abcdefghijklmnopqrstuvwxyz0123456789.-", item[i]) != NULL)
            i++;
    }
    if (i == host)
        return 1;
    if (i < len && item[i] == ':') {
        size_t digits = ++i;

        while (i < len && item[i] >= '0' && item[i] <= '9')
            i++;
        if (i == digits || i - digits > 5)
            return 1;
    }
    return i != len;
}

/* An IPv4 or IPv6 address, with an optional /prefix: what nginx's geo takes. */
static int
bad_network(const char *item, size_t len, void *arg)
{
    char addr[64];
    unsigned char bin[16];
    const char *slash = memchr(item, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - item) : len;
    long long prefix;
    int v6;

    (void)arg;
    if (alen == 0 || alen >= sizeof(addr) || len - alen > 4)
        return 1;
    memcpy(addr, item, alen);
    addr[alen] = '\0';
    v6 = strchr(addr, ':') != NULL;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1)
        return 1;
    if (slash == NULL)
        return 0;
    memcpy(addr, slash + 1, len - alen - 1);
    addr[len - alen - 1] = '\0';
    return crm_parse_int(addr, 0, v6 ? 128 : 32, &prefix) != 0;
}

static int
check_lists(struct crm_config *cfg, char *why, size_t whysz)
{
    if (crm_config_each(cfg->cors_origins, bad_origin, NULL) != 0)
        return fail(why, whysz, "%s must list origins like https://app.example.com[:port]",
                    "CORS_ORIGINS");
    if (cfg->metrics_allow[0] == '\0')
        snprintf(cfg->metrics_allow, sizeof(cfg->metrics_allow), "127.0.0.0/8 ::1");
    if (crm_config_each(cfg->metrics_allow, bad_network, NULL) != 0)
        return fail(why, whysz, "%s must list addresses or networks (CIDR)", "METRICS_ALLOW");
    if (crm_config_each(cfg->trusted_proxies, bad_network, NULL) != 0)
        return fail(why, whysz, "%s must list addresses or networks (CIDR)", "TRUSTED_PROXIES");
    if (crm_config_each(cfg->webhook_allow_nets, bad_network, NULL) != 0)
        return fail(why, whysz, "%s must list addresses or networks (CIDR)", "WEBHOOK_ALLOW_NETS");
    return 0;
}

int
crm_config_load(const char *path, struct crm_config *cfg, char *why, size_t whysz)
{
    char ttl[32] = "", cost[32] = "", port[32] = "", mport[32] = "", tries[32] = "", retry[32] = "";
    char streams[32] = "", user_streams[32] = "", lfail[32] = "", lfirst[32] = "", lmax[32] = "";
    char wtime[32] = "", wretry[32] = "", wfail[32] = "";
    const char *texts[14] = {ttl,          cost,  port,   mport, tries, retry,  streams,
                             user_streams, lfail, lfirst, lmax,  wtime, wretry, wfail};
    const struct key keys[] = {
        {"DATABASE_URL", cfg->database_url, sizeof(cfg->database_url)},
        {"JWT_SECRET", cfg->jwt_secret, sizeof(cfg->jwt_secret)},
        {"JWT_TTL", ttl, sizeof(ttl)},
        {"BCRYPT_COST", cost, sizeof(cost)},
        {"PORT", port, sizeof(port)},
        {"MAIL_HOST", cfg->mail_host, sizeof(cfg->mail_host)},
        {"MAIL_PORT", mport, sizeof(mport)},
        {"MAIL_USER", cfg->mail_user, sizeof(cfg->mail_user)},
        {"MAIL_PASS", cfg->mail_pass, sizeof(cfg->mail_pass)},
        {"MAIL_FROM", cfg->mail_from, sizeof(cfg->mail_from)},
        {"MAIL_TLS", cfg->mail_tls, sizeof(cfg->mail_tls)},
        {"MAIL_MAX_ATTEMPTS", tries, sizeof(tries)},
        {"MAIL_RETRY_SECONDS", retry, sizeof(retry)},
        {"MAIL_DIR", cfg->mail_dir, sizeof(cfg->mail_dir)},
        {"SSE_MAX_STREAMS", streams, sizeof(streams)},
        {"SSE_MAX_STREAMS_PER_USER", user_streams, sizeof(user_streams)},
        {"LOGIN_MAX_FAILURES", lfail, sizeof(lfail)},
        {"LOGIN_LOCKOUT_SECONDS", lfirst, sizeof(lfirst)},
        {"LOGIN_LOCKOUT_MAX_SECONDS", lmax, sizeof(lmax)},
        {"CORS_ORIGINS", cfg->cors_origins, sizeof(cfg->cors_origins)},
        {"METRICS_ALLOW", cfg->metrics_allow, sizeof(cfg->metrics_allow)},
        {"TRUSTED_PROXIES", cfg->trusted_proxies, sizeof(cfg->trusted_proxies)},
        {"WEBHOOK_ALLOW_NETS", cfg->webhook_allow_nets, sizeof(cfg->webhook_allow_nets)},
        {"WEBHOOK_TIMEOUT_SECONDS", wtime, sizeof(wtime)},
        {"WEBHOOK_RETRY_SECONDS", wretry, sizeof(wretry)},
        {"WEBHOOK_MAX_FAILURES", wfail, sizeof(wfail)},
        {"PUBLIC_URL", cfg->public_url, sizeof(cfg->public_url)},
    };
    const size_t nkeys = sizeof(keys) / sizeof(keys[0]);

    memset(cfg, 0, sizeof(*cfg));
    if (path != NULL && read_file(path, keys, nkeys, why, whysz) != 0)
        return -1;
    for (size_t i = 0; i < nkeys; i++) {
        const char *v = getenv(keys[i].name);

        if (v != NULL && copy_value(&keys[i], v, why, whysz) != 0)
            return -1;
    }
    if (check_db_url(cfg->database_url, why, whysz) != 0)
        return -1;
    cfg->jwt_secret_len = strlen(cfg->jwt_secret);
    if (cfg->jwt_secret_len == 0)
        return fail(why, whysz, "%s is not set", "JWT_SECRET");
    if (cfg->jwt_secret_len < 32)
        return fail(why, whysz, "%s is shorter than 32 bytes", "JWT_SECRET");
    if (cfg->mail_from[0] == '\0')
        snprintf(cfg->mail_from, sizeof(cfg->mail_from), "Next-Gen CRM <no-reply@localhost>");
    if (cfg->mail_tls[0] == '\0')
        snprintf(cfg->mail_tls, sizeof(cfg->mail_tls), "auto");
    if (strcmp(cfg->mail_tls, "off") != 0 && strcmp(cfg->mail_tls, "auto") != 0 &&
        strcmp(cfg->mail_tls, "required") != 0)
        return fail(why, whysz, "%s must be off, auto or required", "MAIL_TLS");
    if (cfg->mail_dir[0] == '\0')
        snprintf(cfg->mail_dir, sizeof(cfg->mail_dir), "/var/lib/crm/mail");
    if (check_lists(cfg, why, whysz) != 0 || check_numbers(cfg, texts, why, whysz) != 0)
        return -1;
    if (cfg->public_url[0] == '\0')
        snprintf(cfg->public_url, sizeof(cfg->public_url), "http://localhost:%d", cfg->port);
    if (bad_origin(cfg->public_url, strlen(cfg->public_url), NULL))
        return fail(why, whysz, "%s must be an origin like https://crm.example.com[:port]",
                    "PUBLIC_URL");
    return 0;
}

const char *
crm_config_default_path(void)
{
    const char *p = getenv("CRM_ENV_FILE");

    if (p != NULL && p[0] != '\0')
        return p;
    if (access("/etc/crm/crm.env", F_OK) == 0)
        return "/etc/crm/crm.env";
    return NULL;
}
