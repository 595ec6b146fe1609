/* db.c: the statement table, lazy connection, reconnect and re-prepare, error mapping. */
#include "db.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct crm_db {
    PGconn *conn;
    char *url;
    int in_tx; /* inside BEGIN: a lost connection must not be silently replaced */
};

struct crm_stmt {
    const char *name;
    const char *sql;
};

/* Columns of a User, in the order crm_user_from_row() reads them. */
#define USER_COLS "id, name, email, role, active, crm_ts(created_at)"

/* Every statement any program runs: prepared once per connection, and again after reconnecting. */
static const struct crm_stmt stmts[] = {
    {"health", "SELECT 1"},
    {"user_get", "SELECT " USER_COLS " FROM users WHERE id = $1"},
    {"user_login", "SELECT " USER_COLS ", password_hash FROM users WHERE lower(email) = lower($1)"},
    /* One statement, so the user and its welcome e-mail commit together or not at all. */
    {"user_register", "WITH u AS (INSERT INTO users (name, email, password_hash, role)"
                      " VALUES ($1, $2, $3, $4) RETURNING *),"
                      " m AS (INSERT INTO mail_outbox (kind, user_id, to_addr, to_name)"
                      " SELECT 'welcome', u.id, u.email, u.name FROM u RETURNING id AS mail_id)"
                      " SELECT u.id, u.name, u.email, u.role, u.active, crm_ts(u.created_at),"
                      " pg_notify('mail_outbox', m.mail_id::text) IS NULL FROM u, m"},
    {"user_count", "SELECT count(*) FROM users"},
    {"user_list", "SELECT " USER_COLS " FROM users ORDER BY id LIMIT $1 OFFSET $2"},
    {"user_update", "UPDATE users SET name = coalesce($2, name), role = coalesce($3, role),"
                    " active = coalesce($4::boolean, active), updated_at = now()"
                    " WHERE id = $1 RETURNING " USER_COLS},
    {"admin_count", "SELECT count(*) FROM users WHERE role = 'ADMIN' AND active"},
};

struct crm_db *
crm_db_open(const char *url)
{
    struct crm_db *db = calloc(1, sizeof(*db));

    if (db == NULL || (db->url = strdup(url)) == NULL) {
        free(db);
        return NULL;
    }
    return db;
}

void
crm_db_close(struct crm_db *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db->url);
    free(db);
}

static int
prepare_all(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SET search_path TO public");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    PQclear(res);
    for (size_t i = 0; ok && i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        res = PQprepare(conn, stmts[i].name, stmts[i].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            crm_log(CRM_LOG_ERR, NULL, "db: prepare %s: %s", stmts[i].name,
                    PQresultErrorMessage(res));
            ok = 0;
        }
        PQclear(res);
    }
    return ok ? 0 : -1;
}

/*
 * An idle connection that the server closed (a restart, an idle timeout) turns readable. Noticing
 * that before sending a statement lets the statement go to a new connection instead of failing.
 */
static int
idle_conn_alive(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};

    if (poll(&p, 1, 0) <= 0)
        return 1;
    return PQconsumeInput(conn) && PQstatus(conn) == CONNECTION_OK;
}

enum crm_err
crm_db_connect(struct crm_db *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
        (db->in_tx || idle_conn_alive(db->conn)))
        return CRM_OK;
    /* A new connection would run the rest of a transaction outside it. */
    if (db->in_tx)
        return CRM_EUNAVAIL;
    PQfinish(db->conn);
    db->conn = PQconnectdb(db->url);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        crm_log(CRM_LOG_WARN, NULL, "db: connect: %s", PQerrorMessage(db->conn));
        PQfinish(db->conn);
        db->conn = NULL;
        return CRM_EUNAVAIL;
    }
    if (prepare_all(db->conn) != 0) {
        PQfinish(db->conn);
        db->conn = NULL;
        return CRM_EUNAVAIL;
    }
    crm_log(CRM_LOG_INFO, NULL, "db: connected");
    return CRM_OK;
}

/* Maps a failed result to an error; logs what is not the client's doing. */
static enum crm_err
result_err(struct crm_db *db, const char *name, const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (PQstatus(db->conn) != CONNECTION_OK || (state != NULL && strncmp(state, "08", 2) == 0) ||
        (state != NULL && strncmp(state, "57P", 3) == 0)) {
        crm_log(CRM_LOG_WARN, NULL, "db: %s: connection lost", name);
        return CRM_EUNAVAIL;
    }
    if (state != NULL && strcmp(state, "23505") == 0)
        return CRM_ECONFLICT;
    crm_log(CRM_LOG_ERR, NULL, "db: %s: %s", name, PQresultErrorMessage(res));
    return CRM_EDB;
}

enum crm_err
crm_db_exec(struct crm_db *db, const char *name, int n, const char *const *params, PGresult **out)
{
    PGresult *res;
    ExecStatusType st;
    enum crm_err err;

    if ((err = crm_db_connect(db)) != CRM_OK)
        return err;
    res = PQexecPrepared(db->conn, name, n, params, NULL, NULL, 0);
    st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        err = res == NULL ? CRM_EUNAVAIL : result_err(db, name, res);
        PQclear(res);
        return err;
    }
    *out = res;
    return CRM_OK;
}

enum crm_err
crm_db_run(struct crm_db *db, const char *name, int n, const char *const *params)
{
    PGresult *res;
    enum crm_err err = crm_db_exec(db, name, n, params, &res);

    if (err == CRM_OK)
        PQclear(res);
    return err;
}

/* Runs a fixed command with no user data in it. */
static enum crm_err
command(struct crm_db *db, const char *sql)
{
    PGresult *res;
    enum crm_err err = CRM_OK;

    if ((err = crm_db_connect(db)) != CRM_OK)
        return err;
    res = PQexec(db->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        err = res == NULL ? CRM_EUNAVAIL : result_err(db, sql, res);
    PQclear(res);
    return err;
}

enum crm_err
crm_db_begin(struct crm_db *db)
{
    enum crm_err err = command(db, "BEGIN");

    db->in_tx = err == CRM_OK;
    return err;
}

enum crm_err
crm_db_commit(struct crm_db *db)
{
    enum crm_err err = command(db, "COMMIT");

    if (err != CRM_OK)
        crm_db_rollback(db);
    db->in_tx = 0;
    return err;
}

void
crm_db_rollback(struct crm_db *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        (void)command(db, "ROLLBACK");
    db->in_tx = 0;
}
