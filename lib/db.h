/* db.h: one persistent PostgreSQL connection per worker, prepared statements only. */
#ifndef CRM_DB_H
#define CRM_DB_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "err.h"

struct crm_db;

/*
 * Makes a handle for url; it connects on first use, so a worker starts while PostgreSQL is down.
 * Returns NULL when out of memory. Free with crm_db_close().
 */
struct crm_db *crm_db_open(const char *url);

/* Closes the connection and frees db; NULL is a no-op. */
void crm_db_close(struct crm_db *db);

struct crm_req;

/*
 * The request db is serving now, or NULL between requests: its id goes on the log lines of
 * database errors, next to the response's own line. Set where a request starts, cleared where
 * it ends; req must live until then.
 */
void crm_db_set_req(struct crm_db *db, const struct crm_req *req);

/*
 * Runs the prepared statement name (from the table in db.c) with n text parameters (NULL is SQL
 * NULL). Connects and prepares every statement first when the connection is new or was lost.
 * Returns CRM_OK with *out (caller PQclears); CRM_ECONFLICT on a unique violation; CRM_EUNAVAIL
 * when the database cannot be reached; CRM_EDB for any other failure (logged here).
 */
enum crm_err crm_db_exec(struct crm_db *db, const char *name, int n, const char *const *params,
                         PGresult **out);

/* The same, for statements whose result is not needed. */
enum crm_err crm_db_run(struct crm_db *db, const char *name, int n, const char *const *params);

/*
 * Starts statement name as crm_db_exec does, in single-row mode: crm_db_stream_row reads its
 * rows one at a time, so a result of any size costs the memory of one row. Returns CRM_OK, or
 * an error as crm_db_exec; a failure of the statement itself shows at crm_db_stream_row. Every
 * stream must be read to its end or cancelled before the next statement.
 */
enum crm_err crm_db_stream(struct crm_db *db, const char *name, int n, const char *const *params);

/*
 * The stream's next row: CRM_OK with *row (caller PQclears), or with *row NULL after the last
 * row; an error as crm_db_exec when the statement failed, which ends the stream.
 */
enum crm_err crm_db_stream_row(struct crm_db *db, PGresult **row);

/* Ends a stream before its last row (its reader is gone): cancels it and drops the rest. */
void crm_db_stream_cancel(struct crm_db *db);

/* The JSON text in column col of row (json built by SQL) as a cJSON raw item; null for NULL. */
cJSON *crm_db_json(const PGresult *res, int row, int col);

/* {keys[0]: column 0, keys[1]: column 1, ...} of row, each column JSON text (NULL: null). */
cJSON *crm_db_json_object(const PGresult *res, int row, const char *const *keys, int n);

/*
 * A page of a listing: {"data": [item(rows, i, col) for the first limit rows], "page": {limit,
 * offset, total}}, the total read from count (row 0, column 0). A NULL in column col ends the
 * rows (an outer join's empty page). NULL when out of memory.
 */
cJSON *crm_db_page_json(const PGresult *count, const PGresult *rows, int col, long limit,
                        long offset, cJSON *(*item)(const PGresult *res, int row, int col));

struct crm_resp;
struct crm_snap;

/*
 * The snapshot of events_head or events_read (column 0 of row 0) and the xid assigned after it
 * (column 1; NULL: 0), for lib/evorder: crm-events and crm-webhooks read them so. 0, or -1
 * (logged; nothing to free).
 */
int crm_db_snapshot(const PGresult *res, struct crm_snap *snap);

/*
 * Answers a page whose statement returned one row: the total in column 0 and the items as a
 * JSON array in column 1 ({"data", "page"}, crm_page_json); or the error err. Clears res.
 */
int crm_resp_page(struct crm_resp *resp, enum crm_err err, PGresult *res, long limit, long offset);

/*
 * COPY FROM STDIN: crm_db_copy_begin runs the prepared COPY statement name; crm_db_copy_put
 * sends len bytes of its data (libpq buffers them); crm_db_copy_end ends it, or aborts it when
 * abort is set (then the statement fails, as it should). Errors as crm_db_exec; after a failed
 * begin or put, call crm_db_copy_end(db, 1) all the same, to leave the COPY.
 */
enum crm_err crm_db_copy_begin(struct crm_db *db, const char *name);
enum crm_err crm_db_copy_put(struct crm_db *db, const char *data, size_t len);
enum crm_err crm_db_copy_end(struct crm_db *db, int abort);

/* Transactions: BEGIN, COMMIT, ROLLBACK on the worker's connection. Errors as crm_db_exec. */
enum crm_err crm_db_begin(struct crm_db *db);
enum crm_err crm_db_commit(struct crm_db *db);
void crm_db_rollback(struct crm_db *db);

/*
 * Prepares every statement of the table against the database, the per-call ones too, so a
 * schema that does not fit the programs is found at migration, not by a request. CRM_OK with
 * *nstmts the number checked; CRM_EUNAVAIL when a named one fails (logged); CRM_EDB.
 */
enum crm_err crm_db_check(struct crm_db *db, int *nstmts);

/*
 * Runs the LISTEN statements names[0..n) unless db's connection is the one that *listened
 * last listened on (0: none). A new connection, the first or a reconnect, has lost every LISTEN:
 * this is the one way the programs notice that, by db's generation counter, never by comparing
 * PGconn pointers, which the allocator hands out again. Connects if needed. Returns 1 when it
 * listened now (notifications sent meanwhile are lost: read the table), 0 when the connection
 * already listens, -1 when there is no connection or a LISTEN failed (try again later).
 */
int crm_db_listen(struct crm_db *db, unsigned *listened, const char *const *names, int n);

/* The live connection, or NULL: for LISTEN and notifications (crm-mailer, crm-events). */
PGconn *crm_db_conn(struct crm_db *db);

/*
 * How many connections db has made: it changes when a statement had to reconnect, which drops
 * the LISTENs of the old connection.
 */
unsigned crm_db_generation(const struct crm_db *db);

/* The SQL text of statement name, or NULL: for EXPLAIN and for pgbench. */
const char *crm_db_sql(const char *name);

/* Connects now if needed. CRM_OK or CRM_EUNAVAIL. */
enum crm_err crm_db_connect(struct crm_db *db);

#endif
