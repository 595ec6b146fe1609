/* export.c: GET /api/leads.csv: the leads GET /api/leads finds, every one, streamed as CSV. */
#include <stdio.h>

#include "auth.h"
#include "csv.h"
#include "db.h"
#include "handlers.h"
#include "log.h"

/* The header row: the columns of the lead_export statements, in their order. */
const char *const lead_csv_columns[LEAD_CSV_NCOLS] = {
    "id",    "name",  "email",    "phone",      "company",    "source",    "status",
    "value", "notes", "owner_id", "owner_name", "created_at", "updated_at"};
#define NCOLS LEAD_CSV_NCOLS

/* What the stream needs after the head: the worker's database, the row already read. */
struct export
{
    struct crm_req *req;
    PGresult *row;
};

static int
put_row(const PGresult *row, crm_put_fn put, void *sink)
{
    const char *cells[NCOLS];

    for (int i = 0; i < NCOLS; i++)
        cells[i] = PQgetisnull(row, 0, i) ? NULL : PQgetvalue(row, 0, i);
    return crm_csv_record(cells, NCOLS, put, sink);
}

/*
 * The body: the header row, then each row as the database sends it, so the worker holds one
 * row at a time however many there are. A client that leaves cancels the statement. A failure
 * after the head cannot change the status: it is logged, and the body ends short.
 */
static int
stream_rows(struct crm_resp *resp, crm_put_fn put, void *sink)
{
    struct export *x = resp->stream_ctx;
    PGresult *row = x->row;
    enum crm_err err = CRM_OK;
    long long n = 0;
    int rc = crm_csv_record(lead_csv_columns, NCOLS, put, sink);

    while (row != NULL && rc == 0) {
        rc = put_row(row, put, sink);
        PQclear(row);
        row = NULL;
        if (rc == 0 && (n++, err = crm_db_stream_row(x->req->db, &row)) != CRM_OK)
            rc = -1;
    }
    PQclear(row);
    if (rc != 0 && err == CRM_OK)
        crm_db_stream_cancel(x->req->db);
    crm_log(err != CRM_OK ? CRM_LOG_ERR : CRM_LOG_INFO, x->req, "export: %lld rows%s", n,
            err != CRM_OK ? ", then the database failed"
            : rc != 0     ? ", then the client was gone"
                          : "");
    return rc;
}

/* GET /api/leads.csv?status&source&owner_id&q&created_from&created_to&sort */
int
leads_export(struct crm_req *req, struct crm_resp *resp)
{
    const char *params[7], *sort, *stmt;
    struct export *x;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK ||
        (err = lead_filters(req, params, &sort)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((stmt = lead_sort_stmt(req, "lead_export", sort)) == NULL ||
        (x = crm_arena_alloc(&req->arena, sizeof(*x))) == NULL)
        return crm_resp_error(resp, CRM_ENOMEM);
    x->req = req;
    /* The first row (or the end) before the head: a statement that fails gets its error. */
    if ((err = crm_db_stream(req->db, stmt, 7, params)) != CRM_OK ||
        (err = crm_db_stream_row(req->db, &x->row)) != CRM_OK)
        return crm_resp_error(resp, err);
    crm_resp_header(resp, "Content-Disposition", "attachment; filename=\"leads.csv\"");
    crm_resp_header(resp, "Cache-Control", "no-store");
    return crm_resp_stream(resp, "text/csv; charset=utf-8; header=present", stream_rows, x);
}
