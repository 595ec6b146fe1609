/* crmctl: the administrator's command line: apply the schema, create users, back up, check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "auth.h"
#include "backup.h"
#include "config.h"
#include "db.h"
#include "doctor.h"
#include "password.h"
#include "seed.h"
#include "util.h"
#include "valid.h"

/* The routing tables of the programs, read from where each program builds its own. */
#include "../cgi-src/auth/routes.h"
#include "../cgi-src/dashboard/routes.h"
#include "../cgi-src/events/routes.h"
#include "../cgi-src/leads/routes.h"

#ifndef CRM_DATADIR
#define CRM_DATADIR "/usr/share/crm"
#endif

static int
usage(FILE *f)
{
    fprintf(f, "Usage: crmctl COMMAND [OPTIONS]\n\n"
               "Commands:\n"
               "  migrate [--schema FILE]   apply schema.sql (idempotent; default ./schema.sql,\n"
               "                            else " CRM_DATADIR "/schema.sql)\n"
               "  create-user --role ROLE --email EMAIL --name NAME [--password-stdin]\n"
               "                            create a user; the password is read from standard\n"
               "                            input with --password-stdin, else generated and\n"
               "                            printed once as email=... and password=... lines\n"
               "  mail list [--status pending|sent|failed] [--limit N]\n"
               "                            the e-mail outbox, newest first, with last errors\n"
               "  mail retry ID             send a failed message again now (fresh attempts)\n"
               "  purge-events              delete events older than 24 hours (crm-events also\n"
               "                            does it every minute), in batches; prints the count\n"
               "  routes                    print METHOD PATH for every route the programs serve\n"
               "                            (their routing tables; :name is a path parameter)\n"
               "  statement NAME            print the SQL of a statement the programs run\n"
               "                            (lead_get, lead_list:-created_at, ...), to EXPLAIN\n"
               "  nginx-settings            print the nginx settings made from CORS_ORIGINS and\n"
               "                            METRICS_ALLOW (the site includes crm-settings.conf)\n"
               "  seed --leads N --users M [--seed S] [--chunk C] [--indexes keep|rebuild]\n"
               "                            add demo data: M users, N leads, ~10 activities\n"
               "                            per lead (COPY, C leads at a time: 100 000;\n"
               "                            1 000 000 leads take minutes); rebuild: drop the\n"
               "                            indexes of leads and activities and build them\n"
               "                            again at the end (much faster for millions; the\n"
               "                            tables wait until it ends: not on a live database)\n"
               "  backup FILE               dump the database to FILE (pg_dump custom format,\n"
               "                            mode 0600)\n"
               "  restore [--clean] FILE    restore a backup in one transaction into an empty\n"
               "                            database, or with --clean over what is there; stop\n"
               "                            crm.target first (README \"Backups\")\n"
               "  doctor [--sockets DIR] [--url URL]\n"
               "                            check the env file, the database, the SMTP relay,\n"
               "                            the FastCGI sockets in DIR (default /run/crm) and\n"
               "                            URL/api/health (default http://127.0.0.1:PORT): one\n"
               "                            line per check; exit status 0 only if all pass\n\n"
               "Reads DATABASE_URL and the other settings from the environment and from the env\n"
               "file in CRM_ENV_FILE (default /etc/crm/crm.env).\n");
    return f == stdout ? 0 : 2;
}

static PGconn *
connect_db(const struct crm_config *cfg)
{
    PGconn *conn = PQconnectdb(cfg->database_url);

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "crmctl: cannot connect to the database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    } else {
        buf[n] = '\0';
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

/* Every statement the programs run must prepare against the schema just applied. */
static int
check_statements(const struct crm_config *cfg)
{
    struct crm_db *db = crm_db_open(cfg->database_url);
    int n = 0, rc = db != NULL && crm_db_check(db, &n) == CRM_OK ? 0 : 1;

    if (rc == 0)
        printf("statements: %d prepared\n", n);
    else
        fprintf(stderr, "crmctl: migrate: a statement does not prepare (see above)\n");
    crm_db_close(db);
    return rc;
}

/* The schema of this release: ./schema.sql in a checkout, else the installed one. */
static const char *
default_schema(void)
{
    return access("schema.sql", R_OK) == 0 ? "schema.sql" : CRM_DATADIR "/schema.sql";
}

/* Tries of a migration that finds the tables locked (each waits at most lock_timeout). */
#define MIGRATE_ATTEMPTS 15

/* The hash of schema text, as schema_applied keeps it. */
#define SCHEMA_SHA256 "encode(sha256(convert_to($1, 'UTF8')), 'hex')"

/* 1 when this very schema text was applied before (schema_applied has its hash), else 0. */
static int
schema_applied(PGconn *conn, const char *sql)
{
    PGresult *res = PQexecParams(conn, "SELECT 1 FROM schema_applied WHERE sha256 = " SCHEMA_SHA256,
                                 1, NULL, &sql, NULL, NULL, 0);
    /* A database from before schema_applied has no such table: not applied. */
    int yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

    PQclear(res);
    return yes;
}

/*
 * Runs the schema and records its hash in one transaction. Its ALTER TABLEs wait for the running
 * programs' transactions, and the programs' new ones queue behind them: lock_timeout bounds that
 * stall, and a lock that times out or a deadlock with a program's transaction rolls the whole
 * schema back to be tried again. Returns the last result, for its status and message.
 */
static PGresult *
apply_schema(PGconn *conn, const char *sql)
{
    PGresult *res = NULL;

    for (int attempt = 1;; attempt++) {
        const char *state;

        PQclear(res);
        PQclear(PQexec(conn, "BEGIN; SET LOCAL lock_timeout = '2s'"));
        res = PQexec(conn, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK) {
            PQclear(res);
            res = PQexecParams(conn,
                               "INSERT INTO schema_applied (sha256) VALUES (" SCHEMA_SHA256 ")"
                               " ON CONFLICT DO NOTHING",
                               1, NULL, &sql, NULL, NULL, 0);
            if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                PQclear(res);
                res = PQexec(conn, "COMMIT");
            }
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                PQclear(PQexec(conn, "ROLLBACK"));
            return res;
        }
        PQclear(PQexec(conn, "ROLLBACK"));
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* 55P03: lock_timeout; 40P01: deadlock. */
        if (attempt == MIGRATE_ATTEMPTS || state == NULL ||
            (strcmp(state, "55P03") != 0 && strcmp(state, "40P01") != 0))
            return res;
        fprintf(stderr, "crmctl: migrate: %s", PQresultErrorMessage(res));
        fprintf(stderr,
                "crmctl: migrate: the programs' transactions hold the tables; "
                "trying again (%d of %d)\n",
                attempt + 1, MIGRATE_ATTEMPTS);
        sleep(1);
    }
}

/*
 * Applies the schema under a lock, so two migrations never interleave; a schema applied before
 * is not run again, so restarting against a running deployment takes no table lock at all.
 */
static int
cmd_migrate(const struct crm_config *cfg, int argc, char **argv)
{
    const char *path = default_schema();
    PGconn *conn;
    PGresult *res = NULL;
    char *sql;
    int rc = 1;

    if (argc == 2 && strcmp(argv[0], "--schema") == 0)
        path = argv[1];
    else if (argc != 0)
        return usage(stderr);
    if ((sql = read_file(path)) == NULL) {
        fprintf(stderr, "crmctl: cannot read %s\n", path);
        return 1;
    }
    if ((conn = connect_db(cfg)) == NULL) {
        free(sql);
        return 1;
    }
    PQclear(PQexec(conn, "SET client_min_messages TO warning"));
    PQclear(PQexec(conn, "SELECT pg_advisory_lock(4242)"));
    if (!schema_applied(conn, sql))
        res = apply_schema(conn, sql);
    else
        printf("%s: applied before, not run again\n", path);
    if (res == NULL || PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        res = PQexec(conn, "SELECT max(version) FROM schema_version");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            printf("schema version %s\n", PQgetvalue(res, 0, 0));
            rc = check_statements(cfg);
        }
    } else {
        fprintf(stderr, "crmctl: migrate: %s", PQresultErrorMessage(res));
    }
    PQclear(res);
    PQfinish(conn);
    free(sql);
    return rc;
}

struct user_opts {
    const char *role, *email, *name;
    int pw_stdin;
};

static int
parse_user_opts(int argc, char **argv, struct user_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--password-stdin") == 0)
            o->pw_stdin = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--role") == 0)
            o->role = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--email") == 0)
            o->email = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--name") == 0)
            o->name = argv[++i];
        else
            return -1;
    }
    if (o->role == NULL || o->email == NULL || o->name == NULL) {
        return -1;
    }
    return 0;
}

static int
get_password(const struct user_opts *o, char *pw, size_t sz)
{
    unsigned char raw[16];

    if (!o->pw_stdin)
        return crm_random(raw, sizeof(raw)) == 0 && crm_b64url_encode(raw, sizeof(raw), pw, sz) > 0
                   ? 0
                   : -1;
    if (fgets(pw, (int)sz, stdin) == NULL)
        return -1;
    pw[strcspn(pw, "\r\n")] = '\0';
    return 0;
}

static int
cmd_create_user(const struct crm_config *cfg, int argc, char **argv)
{
    struct user_opts o;
    char pw[128], hash[CRM_HASH_MAX];
    const char *params[4];
    size_t pwlen, namelen;
    PGconn *conn;
    PGresult *res;
    int rc = 1;

    if (parse_user_opts(argc, argv, &o) != 0)
        return usage(stderr);
    namelen = crm_utf8_len(o.name);
    if (crm_role_parse(o.role) == 0 || crm_valid_email(o.email) != CRM_OK || namelen < 1 ||
        namelen > 100) {
        fprintf(stderr, "crmctl: need a ROLE of ADMIN, MANAGER or SALES_EXECUTIVE, a valid "
                        "e-mail and a NAME of 1 to 100 characters\n");
        return 2;
    }
    if (get_password(&o, pw, sizeof(pw)) != 0 || (pwlen = strlen(pw)) < 8 || pwlen > 72) {
        fprintf(stderr, "crmctl: the password must be 8 to 72 bytes\n");
        return 2;
    }
    if (crm_password_hash(pw, cfg->bcrypt_cost, hash, sizeof(hash)) != CRM_OK ||
        (conn = connect_db(cfg)) == NULL)
        return 1;
    params[0] = o.name;
    params[1] = o.email;
    params[2] = hash;
    params[3] = o.role;
    res = PQexecParams(conn,
                       "INSERT INTO users (name, email, password_hash, role)"
                       " VALUES ($1, $2, $3, $4) RETURNING id",
                       4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        fprintf(stderr, "crmctl: created %s user %s\n", o.role, PQgetvalue(res, 0, 0));
        if (!o.pw_stdin)
            printf("email=%s\npassword=%s\n", o.email, pw);
        rc = 0;
    } else {
        fprintf(stderr, "crmctl: create-user: %s", PQresultErrorMessage(res));
    }
    explicit_bzero(pw, sizeof(pw));
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int
mail_list(struct crm_db *db, int argc, char **argv)
{
    const char *params[2] = {NULL, "50"};
    PGresult *res;

    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--status") == 0)
            params[0] = argv[i + 1];
        else if (strcmp(argv[i], "--limit") == 0)
            params[1] = argv[i + 1];
        else
            return usage(stderr);
    }
    if (argc % 2 != 0 || crm_db_exec(db, "mail_list", 2, params, &res) != CRM_OK)
        return argc % 2 != 0 ? usage(stderr) : 1;
    printf("%-8s %-8s %-8s %-32s %-24s %-24s %-24s %s\n", "id", "status", "attempts", "to",
           "created", "next attempt", "sent", "last error");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%-8s %-8s %-8s %-32s %-24s %-24s %-24s %s\n", PQgetvalue(res, i, 0),
               PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
               PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), PQgetvalue(res, i, 6),
               PQgetvalue(res, i, 7));
    PQclear(res);
    return 0;
}

static int
mail_retry(struct crm_db *db, const char *id)
{
    const char *params[1] = {id};
    PGresult *res;
    int64_t v;
    int found;

    if (crm_parse_id(id, &v) != 0)
        return usage(stderr);
    if (crm_db_exec(db, "mail_retry", 1, params, &res) != CRM_OK)
        return 1;
    found = PQntuples(res) == 1;
    PQclear(res);
    fprintf(found ? stdout : stderr,
            found ? "mail %s queued again\n" : "crmctl: no unsent mail %s\n", id);
    return found ? 0 : 1;
}

/* crmctl mail list|retry: the operator's view of the outbox. */
static int
cmd_mail(const struct crm_config *cfg, int argc, char **argv)
{
    struct crm_db *db;
    int rc;

    if (argc < 1 || (strcmp(argv[0], "retry") == 0 && argc != 2))
        return usage(stderr);
    if ((db = crm_db_open(cfg->database_url)) == NULL)
        return 1;
    if (strcmp(argv[0], "list") == 0)
        rc = mail_list(db, argc - 1, argv + 1);
    else if (strcmp(argv[0], "retry") == 0)
        rc = mail_retry(db, argv[1]);
    else
        rc = usage(stderr);
    crm_db_close(db);
    return rc;
}

static int
cmd_seed(const struct crm_config *cfg, int argc, char **argv)
{
    long long leads = -1, users = -1, seed = 1, chunk = CRM_SEED_CHUNK;
    int rebuild = 0;
    PGconn *conn;
    int rc;

    for (int i = 0; i + 1 < argc; i += 2) {
        long long *v;

        if (strcmp(argv[i], "--indexes") == 0) {
            if (strcmp(argv[i + 1], "keep") != 0 && strcmp(argv[i + 1], "rebuild") != 0)
                return usage(stderr);
            rebuild = strcmp(argv[i + 1], "rebuild") == 0;
            continue;
        }
        v = strcmp(argv[i], "--leads") == 0   ? &leads
            : strcmp(argv[i], "--users") == 0 ? &users
            : strcmp(argv[i], "--seed") == 0  ? &seed
            : strcmp(argv[i], "--chunk") == 0 ? &chunk
                                              : NULL;

        if (v == NULL || crm_parse_int(argv[i + 1], 0, 100000000, v) != 0)
            return usage(stderr);
    }
    if (argc % 2 != 0 || leads < 0 || users < 2 || chunk < 1)
        return usage(stderr);
    if ((conn = connect_db(cfg)) == NULL)
        return 1;
    rc = crm_seed(conn, (long)leads, (long)users, (long)chunk, rebuild, cfg->bcrypt_cost,
                  (unsigned long)seed) == 0
             ? 0
             : 1;
    PQfinish(conn);
    return rc;
}

/* crmctl purge-events: the 24-hour retention of the events feed, in batches of 5000. */
static int
cmd_purge_events(const struct crm_config *cfg)
{
    const char *params[1] = {"5000"}; /* per statement: each is a short transaction */
    struct crm_db *db = crm_db_open(cfg->database_url);
    long total = 0, n = -1;
    PGresult *res;

    if (db == NULL)
        return 1;
    while (n != 0) {
        if (crm_db_exec(db, "events_purge", 1, params, &res) != CRM_OK) {
            crm_db_close(db);
            return 1;
        }
        n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        total += n;
        PQclear(res);
    }
    crm_db_close(db);
    printf("purged %ld events\n", total);
    return 0;
}

/* crmctl doctor: checks against the schema of this release. */
static int
cmd_doctor(int argc, char **argv)
{
    char *schema = read_file(default_schema());
    int rc;

    if (schema == NULL) {
        fprintf(stderr, "crmctl: cannot read %s\n", default_schema());
        return 1;
    }
    rc = crm_doctor(argc, argv, schema);
    free(schema);
    return rc < 0 ? usage(stderr) : rc;
}

static int
print_origin(const char *item, size_t len, void *arg)
{
    (void)arg;
    printf("    \"%.*s\" $http_origin;\n", (int)len, item);
    return 0;
}

static int
print_network(const char *item, size_t len, void *arg)
{
    (void)arg;
    printf("    %.*s 0;\n", (int)len, item);
    return 0;
}

static int
print_proxy(const char *item, size_t len, void *arg)
{
    (void)arg;
    printf("set_real_ip_from %.*s;\n", (int)len, item);
    return 0;
}

/*
 * crmctl nginx-settings: the http-level part of the site that follows the env file, made from
 * the checked settings (lib/config.c), so nginx never reads a value the programs would refuse.
 */
static int
cmd_nginx_settings(const struct crm_config *cfg)
{
    int cors = cfg->cors_origins[strspn(cfg->cors_origins, " \t,")] != '\0';

    printf("# crm-settings.conf: made by `crmctl nginx-settings` from the env file; do not edit.\n"
           "# METRICS_ALLOW: who may reach /metrics/ (1: refused with 403).\n"
           "geo $crm_metrics_refused {\n    default 1;\n");
    crm_config_each(cfg->metrics_allow, print_network, NULL);
    printf("}\n# CORS_ORIGINS: the Origin echoed in Access-Control-Allow-Origin (\"\": none).\n"
           "map $http_origin $crm_cors_origin {\n    default \"\";\n");
    crm_config_each(cfg->cors_origins, print_origin, NULL);
    /* Answers depend on Origin only when there are origins: else nothing changes. */
    printf("}\nmap $http_origin $crm_cors_vary {\n    default \"%s\";\n}\n", cors ? "Origin" : "");
    /* Behind a load balancer every request comes from it: the client is the address it adds to
     * X-Forwarded-For, the last one not itself trusted (so a client cannot name itself). Rate
     * limits, logs and the programs' REMOTE_ADDR then see the client. */
    printf("# TRUSTED_PROXIES: load balancers whose X-Forwarded-For names the client.\n");
    if (cfg->trusted_proxies[strspn(cfg->trusted_proxies, " \t,")] != '\0') {
        crm_config_each(cfg->trusted_proxies, print_proxy, NULL);
        printf("real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n");
    }
    return 0;
}

/* crmctl routes: the routing tables of crm-auth, crm-leads, crm-dashboard and crm-events. */
static int
cmd_routes(void)
{
#define ROUTE_LINE(method, pattern, handler) method " " pattern,
    static const char *const lines[] = {CRM_AUTH_ROUTES(ROUTE_LINE) CRM_LEADS_ROUTES(
        ROUTE_LINE) CRM_DASHBOARD_ROUTES(ROUTE_LINE) CRM_EVENTS_ROUTES(ROUTE_LINE)};
#undef ROUTE_LINE

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        puts(lines[i]);
    return 0;
}

int
main(int argc, char **argv)
{
    struct crm_config cfg;
    char why[256];

    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0)
        return usage(stdout);
    if (strcmp(argv[1], "routes") == 0 && argc == 2)
        return cmd_routes();
    if (strcmp(argv[1], "statement") == 0 && argc == 3) {
        const char *text = crm_db_sql(argv[2]);

        if (text == NULL) {
            fprintf(stderr, "crmctl: no statement %s\n", argv[2]);
            return 1;
        }
        printf("%s\n", text);
        return 0;
    }
    /* The doctor reports a broken env file itself, as one of its checks. */
    if (strcmp(argv[1], "doctor") == 0)
        return cmd_doctor(argc - 2, argv + 2);
    if (crm_config_load(crm_config_default_path(), &cfg, why, sizeof(why)) != 0) {
        fprintf(stderr, "crmctl: %s\n", why);
        return 1;
    }
    if (strcmp(argv[1], "migrate") == 0)
        return cmd_migrate(&cfg, argc - 2, argv + 2);
    if (strcmp(argv[1], "create-user") == 0)
        return cmd_create_user(&cfg, argc - 2, argv + 2);
    if (strcmp(argv[1], "mail") == 0)
        return cmd_mail(&cfg, argc - 2, argv + 2);
    if (strcmp(argv[1], "seed") == 0)
        return cmd_seed(&cfg, argc - 2, argv + 2);
    if (strcmp(argv[1], "backup") == 0 && argc == 3)
        return crm_backup(&cfg, argv[2]);
    if (strcmp(argv[1], "restore") == 0 && argc == 3)
        return crm_restore(&cfg, argv[2], 0);
    if (strcmp(argv[1], "restore") == 0 && argc == 4 && strcmp(argv[2], "--clean") == 0)
        return crm_restore(&cfg, argv[3], 1);
    if (strcmp(argv[1], "nginx-settings") == 0 && argc == 2)
        return cmd_nginx_settings(&cfg);
    if (strcmp(argv[1], "purge-events") == 0 && argc == 2)
        return cmd_purge_events(&cfg);
    return usage(stderr);
}
