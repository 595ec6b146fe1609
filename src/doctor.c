/* doctor.c: crmctl doctor, the operator's check of a deployment, one line per check. */
#include "doctor.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "db.h"

#define TIMEOUT_SECONDS 10

static int failures;

/* One line: "ok   CHECK: what was found" or "FAIL CHECK: what is wrong; what to do". */
__attribute__((format(printf, 3, 4))) static void
report(int ok, const char *check, const char *fmt, ...)
{
    va_list ap;

    printf("%-4s %s: ", ok ? "ok" : "FAIL", check);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    failures += !ok;
}

/* A TCP connection to host:port with send and receive timeouts; -1 with the reason in why. */
static int
tcp_connect(const char *host, const char *port, char *why, size_t whysz)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = {.tv_sec = TIMEOUT_SECONDS};
    int fd = -1, e = getaddrinfo(host, port, &hints, &res);

    if (e != 0) {
        snprintf(why, whysz, "cannot resolve %s: %s", host, gai_strerror(e));
        return -1;
    }
    snprintf(why, whysz, "cannot connect to %s port %s", host, port);
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            snprintf(why, whysz, "cannot connect to %s port %s: %m", host, port);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* --- the env file ------------------------------------------------------------------------- */

static int
check_env(struct crm_config *cfg)
{
    const char *path = crm_config_default_path();
    char why[512];
    struct stat st;

    if (crm_config_load(path, cfg, why, sizeof(why)) != 0) {
        report(0, "env file", "%s; correct %s (README \"Configuration\")", why,
               path != NULL ? path : "the environment");
        return -1;
    }
    if (path == NULL)
        report(1, "env file",
               "none (no CRM_ENV_FILE, no /etc/crm/crm.env): settings from the "
               "environment, required values set");
    else if (stat(path, &st) == 0)
        report(1, "env file",
               "%s: mode %04o, not readable by others, required values set, JWT_SECRET %zu "
               "bytes",
               path, (unsigned)(st.st_mode & 07777), cfg->jwt_secret_len);
    return 0;
}

/* --- the database ------------------------------------------------------------------------- */

/* The highest "INSERT INTO schema_version (version) VALUES (N)" of the schema file. */
static long
schema_file_version(const char *schema)
{
    static const char mark[] = "INSERT INTO schema_version (version) VALUES (";
    long v = 0;

    for (const char *p = schema; (p = strstr(p, mark)) != NULL; p += sizeof(mark) - 1) {
        long n = strtol(p + sizeof(mark) - 1, NULL, 10);
        v = n > v ? n : v;
    }
    return v;
}

static void
check_schema(PGconn *conn, const char *schema)
{
    long want = schema_file_version(schema), have;
    PGresult *res = PQexec(conn, "SELECT max(version) FROM schema_version");

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        report(0, "schema", "no schema_version table; run crmctl migrate");
    } else if ((have = strtol(PQgetvalue(res, 0, 0), NULL, 10)) < want) {
        report(0, "schema", "version %ld, this release needs %ld; run crmctl migrate", have, want);
    } else {
        report(1, "schema", "version %ld (this release: %ld)", have, want);
    }
    PQclear(res);
}

/* Every "CREATE EXTENSION IF NOT EXISTS NAME" of the schema file must be in the database. */
static void
check_extensions(PGconn *conn, const char *schema)
{
    static const char mark[] = "CREATE EXTENSION IF NOT EXISTS ";

    for (const char *p = schema; (p = strstr(p, mark)) != NULL; p += sizeof(mark) - 1) {
        char name[64];
        const char *params[1] = {name};
        size_t n = strcspn(p + sizeof(mark) - 1, "; \n");
        PGresult *res;

        snprintf(name, sizeof(name), "%.*s", (int)n, p + sizeof(mark) - 1);
        res = PQexecParams(conn, "SELECT extversion FROM pg_extension WHERE extname = $1", 1, NULL,
                           params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            report(1, "extension", "%s %s", name, PQgetvalue(res, 0, 0));
        else
            report(0, "extension",
                   "%s is missing; install postgresql-contrib and run crmctl "
                   "migrate",
                   name);
        PQclear(res);
    }
}

static void
check_database(const struct crm_config *cfg, const char *schema)
{
    PGconn *conn = PQconnectdb(cfg->database_url);
    struct crm_db *db;
    int n = 0;

    if (PQstatus(conn) != CONNECTION_OK) {
        char *msg = PQerrorMessage(conn);

        msg[strcspn(msg, "\n")] = '\0';
        report(0, "database",
               "cannot connect: %s; start PostgreSQL (systemctl start postgresql) or correct "
               "DATABASE_URL",
               msg);
        PQfinish(conn);
        return;
    }
    report(1, "database", "connected to %s (PostgreSQL %d)", PQdb(conn), PQserverVersion(conn));
    check_schema(conn, schema);
    check_extensions(conn, schema);
    PQfinish(conn);
    /* The programs' own statements, as crm-migrate checks them. */
    db = crm_db_open(cfg->database_url);
    if (db != NULL && crm_db_check(db, &n) == CRM_OK)
        report(1, "statements", "%d prepare", n);
    else
        report(0, "statements", "a statement does not prepare (see above); run crmctl migrate");
    crm_db_close(db);
}

/* --- the SMTP relay: a plain SMTP dialogue up to AUTH, then QUIT; nothing is sent --------- */

struct smtp {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[4096];
    size_t len;
};

static int
smtp_io(struct smtp *s, char *data, size_t n, int writing)
{
    if (s->ssl != NULL)
        return writing ? SSL_write(s->ssl, data, (int)n) : SSL_read(s->ssl, data, (int)n);
    return (int)(writing ? send(s->fd, data, n, MSG_NOSIGNAL) : recv(s->fd, data, n, 0));
}

/* One reply, every line's text (after the code) into text; returns its code, or -1. */
static int
smtp_reply(struct smtp *s, char *text, size_t textsz)
{
    size_t t = 0;

    text[0] = '\0';
    for (;;) {
        char *nl = memchr(s->buf, '\n', s->len);
        int n, more;

        if (nl == NULL) {
            if (s->len == sizeof(s->buf) ||
                (n = smtp_io(s, s->buf + s->len, sizeof(s->buf) - s->len, 0)) <= 0)
                return -1;
            s->len += (size_t)n;
            continue;
        }
        *nl = '\0';
        if (nl > s->buf && nl[-1] == '\r')
            nl[-1] = '\0';
        if (nl - s->buf < 3)
            return -1;
        more = s->buf[3] == '-';
        t += (size_t)snprintf(text + t, t < textsz ? textsz - t : 0, "%s\n",
                              nl - s->buf > 4 ? s->buf + 4 : "");
        n = atoi(s->buf);
        s->len -= (size_t)(nl + 1 - s->buf);
        memmove(s->buf, nl + 1, s->len);
        if (!more)
            return n;
    }
}

/* Sends a command line and returns the code of its reply (text in text). */
static int
smtp_cmd(struct smtp *s, const char *line, char *text, size_t textsz)
{
    char out[1024];
    int n = snprintf(out, sizeof(out), "%s\r\n", line);

    if (n < 0 || (size_t)n >= sizeof(out) || smtp_io(s, out, (size_t)n, 1) != n)
        return -1;
    return smtp_reply(s, text, textsz);
}

/* Whether an EHLO reply lists extension ext (a line "EXT" or "EXT args"). */
static const char *
smtp_ext(const char *ehlo, const char *ext)
{
    size_t n = strlen(ext);

    for (const char *l = ehlo; *l != '\0'; l = strchr(l, '\n') + 1) {
        if (strncasecmp(l, ext, n) == 0 && (l[n] == '\n' || l[n] == ' '))
            return l + n;
        if (strchr(l, '\n') == NULL)
            break;
    }
    return NULL;
}

static void
b64(const char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
}

/* The name the certificate must be for (and SNI, which takes no address literal). */
static int
tls_expect_host(SSL *ssl, const char *host)
{
    unsigned char addr[16];

    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
    return SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

/* STARTTLS as MAIL_TLS asks; 0 when the dialogue may go on. */
static int
smtp_starttls(struct smtp *s, const struct crm_config *cfg, char *ehlo, size_t ehlosz)
{
    char text[1024];
    const char *tls = cfg->mail_tls;
    long verified;

    if (strcmp(tls, "off") == 0) {
        report(1, "smtp STARTTLS", "not used (MAIL_TLS=off)");
        return 0;
    }
    if (smtp_ext(ehlo, "STARTTLS") == NULL) {
        report(strcmp(tls, "auto") == 0, "smtp STARTTLS",
               strcmp(tls, "auto") == 0
                   ? "not offered by the relay: plain text (MAIL_TLS=auto)"
                   : "not offered by the relay, and MAIL_TLS=required; enable STARTTLS on the "
                     "relay or use one that offers it");
        return strcmp(tls, "auto") == 0 ? 0 : -1;
    }
    if (smtp_cmd(s, "STARTTLS", text, sizeof(text)) != 220 ||
        (s->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
        SSL_CTX_set_default_verify_paths(s->ctx) != 1 || (s->ssl = SSL_new(s->ctx)) == NULL ||
        tls_expect_host(s->ssl, cfg->mail_host) != 0 || SSL_set_fd(s->ssl, s->fd) != 1 ||
        SSL_connect(s->ssl) != 1) {
        report(0, "smtp STARTTLS",
               "the TLS handshake with %s failed; check the relay's TLS "
               "setup, or set MAIL_TLS=off where plain text is acceptable",
               cfg->mail_host);
        return -1;
    }
    /* libesmtp, which crm-mailer sends with, refuses a certificate that does not verify. */
    if ((verified = SSL_get_verify_result(s->ssl)) != X509_V_OK) {
        report(0, "smtp STARTTLS",
               "%s, but the certificate of %s is not accepted (%s), so crm-mailer cannot send; "
               "give the relay a certificate for that name from a CA this host trusts",
               SSL_get_version(s->ssl), cfg->mail_host, X509_verify_cert_error_string(verified));
        return -1;
    }
    report(1, "smtp STARTTLS", "%s, certificate verified for %s", SSL_get_version(s->ssl),
           cfg->mail_host);
    /* The extensions offered after STARTTLS are the ones that count (AUTH often only then). */
    return smtp_cmd(s, "EHLO crmctl-doctor", ehlo, ehlosz) == 250 ? 0 : -1;
}

/* AUTH PLAIN (or LOGIN) with MAIL_USER and MAIL_PASS when they are set. */
static void
smtp_auth(struct smtp *s, const struct crm_config *cfg, const char *ehlo)
{
    const char *mechs = smtp_ext(ehlo, "AUTH");
    char text[1024], line[1200], plain[600];
    size_t ul = strlen(cfg->mail_user), pl = strlen(cfg->mail_pass);
    int code = -1;

    if (cfg->mail_user[0] == '\0') {
        report(1, "smtp AUTH", "not configured (no MAIL_USER)");
        return;
    }
    if (mechs != NULL && strstr(mechs, "PLAIN") != NULL) {
        /* authzid NUL authcid NUL password (RFC 4616) */
        plain[0] = '\0';
        memcpy(plain + 1, cfg->mail_user, ul + 1);
        memcpy(plain + 2 + ul, cfg->mail_pass, pl);
        strcpy(line, "AUTH PLAIN ");
        b64(plain, ul + pl + 2, line + strlen(line));
        code = smtp_cmd(s, line, text, sizeof(text));
    } else if (mechs != NULL && strstr(mechs, "LOGIN") != NULL &&
               smtp_cmd(s, "AUTH LOGIN", text, sizeof(text)) == 334) {
        b64(cfg->mail_user, ul, line);
        if (smtp_cmd(s, line, text, sizeof(text)) == 334) {
            b64(cfg->mail_pass, pl, line);
            code = smtp_cmd(s, line, text, sizeof(text));
        }
    } else {
        report(0, "smtp AUTH", "MAIL_USER is set but the relay offers no AUTH PLAIN or LOGIN%s",
               s->ssl == NULL ? " (many offer it only after STARTTLS)" : "");
        return;
    }
    explicit_bzero(plain, sizeof(plain));
    explicit_bzero(line, sizeof(line));
    text[strcspn(text, "\n")] = '\0';
    if (code == 235)
        report(1, "smtp AUTH", "accepted for %s", cfg->mail_user);
    else
        report(0, "smtp AUTH", "refused for %s (%d %s); correct MAIL_USER and MAIL_PASS",
               cfg->mail_user, code, text);
}

static void
check_smtp(const struct crm_config *cfg)
{
    struct smtp s = {.fd = -1};
    char port[16], why[512], ehlo[4096];
    int code;

    if (cfg->mail_host[0] == '\0') {
        int ok = access(cfg->mail_dir, W_OK) == 0;

        report(ok, "smtp relay",
               ok ? "none: e-mails are written to %s"
                  : "none, and %s is not "
                    "writable; create it "
                    "for the crm user",
               cfg->mail_dir);
        return;
    }
    snprintf(port, sizeof(port), "%d", cfg->mail_port);
    if ((s.fd = tcp_connect(cfg->mail_host, port, why, sizeof(why))) < 0) {
        report(0, "smtp relay", "%s; check MAIL_HOST and MAIL_PORT, and that the relay runs", why);
        return;
    }
    if ((code = smtp_reply(&s, ehlo, sizeof(ehlo))) != 220 ||
        smtp_cmd(&s, "EHLO crmctl-doctor", ehlo, sizeof(ehlo)) != 250) {
        report(0, "smtp relay", "%s:%s does not greet as an SMTP server (%d); check MAIL_PORT",
               cfg->mail_host, port, code);
    } else {
        report(1, "smtp relay", "%s:%s answers", cfg->mail_host, port);
        if (smtp_starttls(&s, cfg, ehlo, sizeof(ehlo)) == 0)
            smtp_auth(&s, cfg, ehlo);
        smtp_cmd(&s, "QUIT", why, sizeof(why));
    }
    if (s.ssl != NULL)
        SSL_free(s.ssl);
    SSL_CTX_free(s.ctx);
    close(s.fd);
}

/* --- the FastCGI sockets and the site ----------------------------------------------------- */

static const char *const pools[] = {"crm-auth", "crm-login", "crm-leads", "crm-dashboard",
                                    "crm-events"};

static void
check_sockets(const char *dir)
{
    for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM, 0), ok;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", dir, pools[i]);
        ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (ok)
            report(1, "fastcgi", "%s accepts connections", sa.sun_path);
        else
            report(0, "fastcgi", "%s: %m; start it: systemctl start %s", sa.sun_path, pools[i]);
        if (fd >= 0)
            close(fd);
    }
}

/* GET URL/api/health through nginx: http://HOST[:PORT] only. */
static void
check_site(const char *url)
{
    char host[256], port[16] = "80", why[512], req[512], resp[1024];
    const char *h = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    size_t n = h != NULL ? strcspn(h, ":/") : 0;
    ssize_t got = 0, r;
    int fd;

    if (h == NULL || n == 0 || n >= sizeof(host)) {
        report(0, "site", "%s is not an http://HOST[:PORT] URL", url);
        return;
    }
    snprintf(host, sizeof(host), "%.*s", (int)n, h);
    if (h[n] == ':')
        snprintf(port, sizeof(port), "%.*s", (int)strcspn(h + n + 1, "/"), h + n + 1);
    if ((fd = tcp_connect(host, port, why, sizeof(why))) < 0) {
        report(0, "site",
               "%s; is nginx running with the crm site enabled? (nginx -t, "
               "systemctl status nginx)",
               why);
        return;
    }
    n = (size_t)snprintf(req, sizeof(req), "GET /api/health HTTP/1.0\r\nHost: %s\r\n\r\n", host);
    if (send(fd, req, n, MSG_NOSIGNAL) == (ssize_t)n)
        while ((size_t)got + 1 < sizeof(resp) &&
               (r = recv(fd, resp + got, sizeof(resp) - 1 - (size_t)got, 0)) > 0)
            got += r;
    close(fd);
    resp[got] = '\0';
    if (strncmp(resp, "HTTP/1.1 200", 12) == 0 && strstr(resp, "\"status\":\"ok\"") != NULL)
        report(1, "site", "%s/api/health answers 200 ok", url);
    else
        report(0, "site",
               "%s/api/health answers \"%.*s\"; see the FastCGI lines above and "
               "the nginx error log",
               url, (int)strcspn(resp, "\r\n"), resp);
}

int
crm_doctor(int argc, char **argv, const char *schema)
{
    struct crm_config cfg;
    const char *sockets = "/run/crm", *url = NULL;
    char defurl[64];

    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sockets") == 0)
            sockets = argv[i + 1];
        else if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else
            return -1;
    }
    if (argc % 2 != 0)
        return -1;
    failures = 0;
    if (check_env(&cfg) != 0) {
        printf("the other checks need the settings: fix the env file first\n");
        return 1;
    }
    check_database(&cfg, schema);
    check_smtp(&cfg);
    check_sockets(sockets);
    if (url == NULL) {
        snprintf(defurl, sizeof(defurl), "http://127.0.0.1:%d", cfg.port);
        url = defurl;
    }
    check_site(url);
    printf(failures == 0 ? "all checks passed\n" : "%d checks failed\n", failures);
    return failures == 0 ? 0 : 1;
}
