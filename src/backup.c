/* backup.c: crmctl backup and restore, on pg_dump and pg_restore in their custom format. */
#include "backup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

/*
 * DATABASE_URL as a libpq keyword string without its password, which is returned apart: the
 * child gets it in PGPASSWORD, never on its command line, which every local user can read.
 */
static int
conninfo_split(const char *url, char *out, size_t outsz, char **password)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    size_t o = 0;

    *password = NULL;
    if (opts == NULL)
        return -1;
    out[0] = '\0';
    for (PQconninfoOption *p = opts; p->keyword != NULL && o + 1 < outsz; p++) {
        if (p->val == NULL || p->val[0] == '\0')
            continue;
        if (strcmp(p->keyword, "password") == 0) {
            *password = strdup(p->val);
            continue;
        }
        o += (size_t)snprintf(out + o, outsz - o, "%s='", p->keyword);
        for (const char *v = p->val; *v != '\0' && o + 3 < outsz; v++) {
            if (*v == '\'' || *v == '\\')
                out[o++] = '\\';
            out[o++] = *v;
        }
        o += (size_t)snprintf(out + o, o < outsz ? outsz - o : 0, "' ");
    }
    PQconninfoFree(opts);
    return o + 1 < outsz ? 0 : -1;
}

/* Runs argv (a PostgreSQL client) with PGPASSWORD set when there is one; returns its status. */
static int
run_tool(char *const argv[], const char *password, int quiet)
{
    int status;
    pid_t pid = fork();

    if (pid < 0) {
        perror("crmctl: fork");
        return -1;
    }
    if (pid == 0) {
        if (password != NULL)
            setenv("PGPASSWORD", password, 1);
        if (quiet && freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execvp(argv[0], argv);
        fprintf(stderr, "crmctl: cannot run %s (install postgresql-client)\n", argv[0]);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int
crm_backup(const struct crm_config *cfg, const char *file)
{
    char conn[2048], dbarg[2100], tmp[4096], filearg[4200];
    char *password;
    int rc;

    if (conninfo_split(cfg->database_url, conn, sizeof(conn), &password) != 0 ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.partial", file) >= sizeof(tmp)) {
        fprintf(stderr, "crmctl: backup: DATABASE_URL or the file name is unusable\n");
        free(password);
        return 1;
    }
    snprintf(dbarg, sizeof(dbarg), "--dbname=%s", conn);
    snprintf(filearg, sizeof(filearg), "--file=%s", tmp);
    char *argv[] = {"pg_dump", "--format=custom", "--no-password", filearg, dbarg, NULL};

    /* The dump holds password hashes and e-mail addresses: the owner's only. */
    umask(077);
    rc = run_tool(argv, password, 0);
    free(password);
    /* Written aside and renamed when complete, so FILE is never a truncated dump. */
    if (rc != 0 || rename(tmp, file) != 0) {
        unlink(tmp);
        fprintf(stderr, "crmctl: backup: pg_dump failed (see above); no backup written\n");
        return 1;
    }
    printf("backup written to %s\n", file);
    return 0;
}

/* Objects in the public schema of the configured database: -1 when it cannot be asked. */
static long
public_objects(const struct crm_config *cfg)
{
    PGconn *conn = PQconnectdb(cfg->database_url);
    PGresult *res;
    long n = -1;

    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "crmctl: restore: cannot connect to the database: %s",
                PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    res = PQexec(conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                       " ON n.oid = c.relnamespace WHERE n.nspname = 'public'");
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    PQfinish(conn);
    return n;
}

int
crm_restore(const struct crm_config *cfg, const char *file, int clean)
{
    char conn[2048], dbarg[2100], path[4096];
    char *password;
    long n;
    int rc;

    /* Read the whole archive's table of contents before touching the database. */
    snprintf(path, sizeof(path), "%s", file);
    char *list[] = {"pg_restore", "--list", path, NULL};
    if (access(file, R_OK) != 0 || run_tool(list, NULL, 1) != 0) {
        fprintf(stderr,
                "crmctl: restore: %s is not a readable backup (crmctl backup's custom "
                "format); nothing was changed\n",
                file);
        return 1;
    }
    if ((n = public_objects(cfg)) < 0)
        return 1;
    if (n > 0 && !clean) {
        fprintf(stderr,
                "crmctl: restore: the database is not empty (%ld objects); restore into "
                "an empty database, or pass --clean to replace what is there\n",
                n);
        return 1;
    }
    if (conninfo_split(cfg->database_url, conn, sizeof(conn), &password) != 0) {
        fprintf(stderr, "crmctl: restore: DATABASE_URL is unusable\n");
        return 1;
    }
    snprintf(dbarg, sizeof(dbarg), "--dbname=%s", conn);
    /*
     * One transaction: a restore that fails leaves the database as it was. Objects belong to
     * the configured user (the programs' role), whoever owned them where the dump was made.
     */
    char *argv[12] = {"pg_restore", "--single-transaction", "--exit-on-error",
                      "--no-owner", "--no-privileges",      "--no-password",
                      dbarg};
    int a = 7;

    if (clean) {
        argv[a++] = "--clean";
        argv[a++] = "--if-exists";
    }
    argv[a++] = path;
    argv[a] = NULL;
    rc = run_tool(argv, password, 0);
    free(password);
    if (rc != 0) {
        fprintf(stderr, "crmctl: restore: pg_restore failed (see above); the database is "
                        "unchanged\n");
        return 1;
    }
    printf("restored %s\n", file);
    return 0;
}
