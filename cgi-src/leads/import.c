/*
 * import.c: POST /api/leads/import: a CSV file of leads (the export's columns), every row held
 * to the rules of POST /api/leads, then all of them created in one transaction, or none.
 *
 * The file is read in place (lib/csv.c). Each row is checked here as POST /api/leads checks a
 * body (lib/valid.c, the same rules); the rows that pass go to the database by COPY into a
 * temporary table, where one statement finds what only the database can see (owners, duplicate
 * e-mails) and one INSERT ... SELECT creates the leads (schema.sql crm_import_check,
 * crm_import_leads). Problems are reported by row; with any, nothing is written.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "csv.h"
#include "db.h"
#include "handlers.h"
#include "log.h"
#include "util.h"

/* The problems an answer lists; errors_total counts them all. */
#define IMPORT_ERRORS_MAX 100
/* More columns than this cannot all be the export's. */
#define IMPORT_COLS_MAX 32

/* The columns of lead_import after n, in order: the members of a lead a row may set. */
static const char *const copy_cols[] = {"name",   "email", "phone", "company", "source",
                                        "status", "value", "notes", "owner_id"};
#define NCOPY ((int)(sizeof(copy_cols) / sizeof(copy_cols[0])))

/* One problem of one row, as the answer lists it. */
struct problem {
    long row;
    const char *field; /* NULL: the row as a whole */
    const char *text;
};

/* A COPY text-format line, its buffer reused from row to row. */
struct line {
    char *buf;
    size_t len, cap;
};

struct import {
    struct crm_req *req;
    int ncols;
    char *cols[IMPORT_COLS_MAX];                   /* the header's names */
    const struct crm_field *rule[IMPORT_COLS_MAX]; /* per column; NULL: read, not imported */
    struct problem kept[IMPORT_ERRORS_MAX];        /* the first problems found here */
    int nkept;
    long problems, copied; /* problems found here; rows sent to the database */
    struct line line;
};

static const char *fmt(struct crm_req *req, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

/* printf into the request's arena: the messages of the answer. */
static const char *
fmt(struct crm_req *req, const char *f, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(buf, sizeof(buf), f, ap);
    va_end(ap);
    const char *p = crm_arena_strndup(&req->arena, buf, n < 0 ? 0 : strlen(buf));

    return p != NULL ? p : "(out of memory)";
}

/* Records a problem of row: the first IMPORT_ERRORS_MAX are kept (copied), all are counted. */
static void
problem(struct import *im, long row, const char *field, const char *text)
{
    if (im->nkept < IMPORT_ERRORS_MAX) {
        struct problem *p = &im->kept[im->nkept++];

        p->row = row;
        p->field = field == NULL ? NULL : fmt(im->req, "%s", field);
        p->text = fmt(im->req, "%s", text);
    }
    im->problems++;
}

static int
line_add(struct line *l, const char *s, size_t n)
{
    if (l->len + n > l->cap) {
        size_t cap = (l->len + n) * 2 + 256;
        char *p = realloc(l->buf, cap);

        if (p == NULL)
            return -1;
        l->buf = p;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return 0;
}

/* Adds s to a COPY text-format line, its backslashes, tabs and line ends escaped. */
static int
line_text(struct line *l, const char *s)
{
    for (;;) {
        size_t run = strcspn(s, "\\\t\n\r");
        char esc[2] = {'\\', '\\'};

        if (line_add(l, s, run) != 0)
            return -1;
        s += run;
        if (*s == '\0')
            return 0;
        esc[1] = *s == '\\' ? '\\' : *s == '\t' ? 't' : *s == '\n' ? 'n' : 'r';
        if (line_add(l, esc, 2) != 0)
            return -1;
        s++;
    }
}

/* 1 when s is digits, with at most max of them before an optional fraction when frac. */
static int
is_decimal(const char *s, size_t max, int frac)
{
    size_t whole = strspn(s, "0123456789");

    if (whole == 0 || whole > max)
        return 0;
    s += whole;
    if (frac && *s == '.' && s[1] != '\0')
        s += 1 + strspn(s + 1, "0123456789");
    return *s == '\0';
}

/*
 * A cell as the JSON member POST /api/leads would get: a number for value and owner_id when it
 * is one (else the string, which their rules refuse with their own message).
 */
static cJSON *
cell_json(const struct crm_field *rule, const char *cell)
{
    if ((rule->type == CRM_F_ID && is_decimal(cell, 16, 0)) ||
        (rule->type == CRM_F_MONEY && is_decimal(cell, 15, 1)))
        return cJSON_CreateNumber(strtod(cell, NULL));
    return cJSON_CreateString(cell);
}

/*
 * The row's cells as the body POST /api/leads would get: an empty cell is an absent member, a
 * cell of a column that is not imported is left out. A formula cell, in any column, is a
 * problem of its column. Returns the object, or NULL when out of memory.
 */
static cJSON *
row_json(struct import *im, char **cells, long row)
{
    cJSON *obj = cJSON_CreateObject();

    for (int i = 0; obj != NULL && i < im->ncols; i++) {
        cJSON *v;

        if (crm_csv_cell_text(&cells[i]) != 0) {
            problem(im, row, im->cols[i],
                    "starts with =, +, -, @, a tab or CR, which a spreadsheet runs as a formula;"
                    " put ' in front to import it as text");
            continue;
        }
        if (im->rule[i] == NULL || cells[i][0] == '\0')
            continue;
        if ((v = cell_json(im->rule[i], cells[i])) == NULL ||
            !cJSON_AddItemToObject(obj, im->cols[i], v)) {
            cJSON_Delete(v);
            cJSON_Delete(obj);
            obj = NULL;
        }
    }
    return obj;
}

/* A SALES_EXECUTIVE's row may name no owner but itself (as POST /api/leads: 403 there). */
static void
check_owner(struct import *im, const cJSON *obj, long row)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, "owner_id");
    char id[21];

    if (im->req->who.role != CRM_ROLE_SALES || !cJSON_IsNumber(o))
        return;
    crm_fmt_id(id, sizeof(id), (int64_t)o->valuedouble);
    if (strcmp(id, im->req->who.idstr) != 0)
        problem(im, row, "owner_id",
                "must be your own id: a SALES_EXECUTIVE imports its own leads");
}

/* Sends a checked row to the COPY: n, then the columns of copy_cols (\N for none). */
static enum crm_err
copy_row(struct import *im, const cJSON *obj, long row)
{
    struct line *l = &im->line;
    char num[32];
    int rc;

    l->len = 0;
    snprintf(num, sizeof(num), "%ld", row);
    rc = line_add(l, num, strlen(num));
    for (int i = 0; rc == 0 && i < NCOPY; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, copy_cols[i]);
        int owner = strcmp(copy_cols[i], "owner_id") == 0;

        if (cJSON_IsNumber(v))
            snprintf(num, sizeof(num), owner ? "%.0f" : "%.2f", v->valuedouble);
        rc = line_add(l, "\t", 1);
        if (rc == 0 && cJSON_IsString(v))
            rc = line_text(l, v->valuestring);
        else if (rc == 0 && cJSON_IsNumber(v))
            rc = line_add(l, num, strlen(num));
        else if (rc == 0 && owner && im->req->who.role == CRM_ROLE_SALES)
            rc = line_text(l, im->req->who.idstr);
        else if (rc == 0)
            rc = line_add(l, "\\N", 2);
    }
    if (rc != 0 || line_add(l, "\n", 1) != 0)
        return CRM_ENOMEM;
    im->copied++;
    return crm_db_copy_put(im->req->db, l->buf, l->len);
}

/* Checks one row of the file; sends it to the COPY when it has no problem. */
static enum crm_err
read_row(struct import *im, char **cells, long row)
{
    long before = im->problems;
    cJSON *obj = row_json(im, cells, row), *fields = NULL, *f;
    enum crm_err err;

    if (obj == NULL)
        return CRM_ENOMEM;
    err = crm_valid_object(obj, lead_create_rules, LEAD_CREATE_NRULES, &fields);
    if (err == CRM_EINVAL) {
        for (f = fields->child; f != NULL; f = f->next)
            problem(im, row, f->string, f->valuestring);
        err = CRM_OK;
    } else if (err == CRM_OK) {
        check_owner(im, obj, row);
    }
    if (err == CRM_OK && im->problems == before)
        err = copy_row(im, obj, row);
    cJSON_Delete(fields);
    cJSON_Delete(obj);
    return err;
}

/* 1 when name is a column of the export (those not imported are read and left alone). */
static int
is_export_column(const char *name)
{
    for (int i = 0; i < LEAD_CSV_NCOLS; i++)
        if (strcmp(lead_csv_columns[i], name) == 0)
            return 1;
    return 0;
}

/* Reads the header row into im. Returns NULL, or why the file cannot be imported. */
static const char *
read_header(struct import *im, struct crm_csv *c)
{
    char unknown[512] = "";
    int n = crm_csv_read(c, im->cols, IMPORT_COLS_MAX), name = 0;

    if (n == 0)
        return "the file is empty: its first row names the columns (those of GET /api/leads.csv)";
    if (n < 0)
        return "row 1: the quoting is broken";
    if (n > IMPORT_COLS_MAX)
        return fmt(im->req, "the header has %d columns; the export has %d", n, LEAD_CSV_NCOLS);
    im->ncols = n;
    for (int i = 0; i < n; i++) {
        im->rule[i] = crm_valid_rule(lead_create_rules, LEAD_CREATE_NRULES, im->cols[i]);
        name |= strcmp(im->cols[i], "name") == 0;
        for (int j = 0; j < i; j++)
            if (strcmp(im->cols[i], im->cols[j]) == 0)
                return fmt(im->req, "the column %s appears twice", im->cols[i]);
        if (im->rule[i] == NULL && !is_export_column(im->cols[i]))
            snprintf(unknown + strlen(unknown), sizeof(unknown) - strlen(unknown), "%s%s",
                     unknown[0] != '\0' ? ", " : "", im->cols[i]);
    }
    if (unknown[0] != '\0')
        return fmt(im->req,
                   "unknown columns: %s (the columns are those of GET /api/leads.csv: id, name,"
                   " email, phone, company, source, status, value, notes, owner_id, owner_name,"
                   " created_at, updated_at)",
                   unknown);
    return name ? NULL : "the header has no name column: every lead needs a name";
}

/* Reads and checks every row after the header, into the COPY. *why: a file it cannot read. */
static enum crm_err
read_rows(struct import *im, struct crm_csv *c, const char **why)
{
    char *cells[IMPORT_COLS_MAX];
    enum crm_err err = CRM_OK;
    int n;

    while (err == CRM_OK && (n = crm_csv_read(c, cells, im->ncols)) > 0) {
        if (n != im->ncols)
            problem(im, c->record, NULL,
                    fmt(im->req, "has %d cells; the header has %d", n, im->ncols));
        else
            err = read_row(im, cells, c->record);
    }
    if (err == CRM_OK && n < 0) {
        *why = fmt(im->req,
                   "row %ld: the quoting is broken (a quote inside an unquoted cell,"
                   " text after a closing quote, a quote never closed, or a CR"
                   " outside quotes)",
                   c->record);
        err = CRM_ECSV;
    }
    return err;
}

/* The figures of an answer. */
struct outcome {
    long imported, skipped, total;
    cJSON *errors;
};

static cJSON *
problem_json(long row, const char *field, const char *text)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || cJSON_AddNumberToObject(o, "row", (double)row) == NULL ||
        (field != NULL ? cJSON_AddStringToObject(o, "field", field)
                       : cJSON_AddNullToObject(o, "field")) == NULL ||
        cJSON_AddStringToObject(o, "problem", text != NULL ? text : "") == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/*
 * Merges the problems found here and those the database found (res: row, field, problem,
 * skipped; both in row order) into out: the first IMPORT_ERRORS_MAX, the counts. -1: OOM.
 */
static int
merge(const struct import *im, const PGresult *res, struct outcome *out)
{
    long last_skip = 0, last_bad = 0, bad_rows = 0;
    int k = 0, r = 0, nres = PQntuples(res);

    out->total = im->problems;
    while (k < im->nkept || r < nres) {
        long row = r < nres ? atol(PQgetvalue(res, r, 0)) : 0;
        int mine = k < im->nkept && (r >= nres || im->kept[k].row <= row);
        cJSON *item = NULL;

        if (!mine && PQgetvalue(res, r, 3)[0] == 't') {
            out->skipped += row != last_skip;
            last_skip = row;
            r++;
            continue;
        }
        if (!mine) {
            out->total++;
            bad_rows += row != last_bad;
            last_bad = row;
        }
        if (cJSON_GetArraySize(out->errors) < IMPORT_ERRORS_MAX &&
            ((item = mine ? problem_json(im->kept[k].row, im->kept[k].field, im->kept[k].text)
                          : problem_json(row, PQgetvalue(res, r, 1), PQgetvalue(res, r, 2))) ==
                 NULL ||
             !cJSON_AddItemToArray(out->errors, item))) {
            cJSON_Delete(item);
            return -1;
        }
        if (mine)
            k++;
        else
            r++;
    }
    out->imported = im->copied - out->skipped - bad_rows;
    return 0;
}

/* {"imported", "skipped", "errors", "errors_total"} added to body. Takes out->errors. */
static int
add_outcome(cJSON *body, struct outcome *out)
{
    cJSON *errors = out->errors;

    out->errors = NULL;
    if (body == NULL || cJSON_AddNumberToObject(body, "imported", (double)out->imported) == NULL ||
        cJSON_AddNumberToObject(body, "skipped", (double)out->skipped) == NULL ||
        !cJSON_AddItemToObject(body, "errors", errors)) {
        cJSON_Delete(errors);
        return -1;
    }
    return cJSON_AddNumberToObject(body, "errors_total", (double)out->total) == NULL ? -1 : 0;
}

/* Responds with the outcome: 200, or 422 with the error body when a real run found problems. */
static int
respond(struct crm_req *req, struct crm_resp *resp, struct outcome *out, int dry)
{
    cJSON *body;

    if (dry || out->total == 0) {
        body = cJSON_CreateObject();
        if (add_outcome(body, out) != 0) {
            cJSON_Delete(body);
            return crm_resp_error(resp, CRM_ENOMEM);
        }
        return crm_resp_json(resp, 200, body);
    }
    out->imported = 0;
    body = crm_error_json(
        CRM_EINVAL,
        fmt(req, "%ld problems in the file: nothing was imported (see errors)", out->total), NULL);
    if (add_outcome(body, out) != 0) {
        cJSON_Delete(body);
        return crm_resp_error(resp, CRM_ENOMEM);
    }
    return crm_resp_error_json(resp, CRM_EINVAL, body);
}

/* The database's checks of the copied rows, merged with the problems found here. */
static enum crm_err
check(struct import *im, int skip, struct outcome *out)
{
    const char *params[2] = {im->req->who.owner, skip ? "true" : "false"};
    PGresult *res = NULL;
    enum crm_err err = crm_db_exec(im->req->db, "lead_import_check", 2, params, &res);

    if (err == CRM_OK && merge(im, res, out) != 0)
        err = CRM_ENOMEM;
    PQclear(res);
    return err;
}

/* Creates the leads the check left in lead_import; *n how many. */
static enum crm_err
insert(struct crm_req *req, long *n)
{
    const char *params[1] = {req->who.idstr};
    PGresult *res = NULL;
    enum crm_err err = crm_db_exec(req->db, "lead_import", 1, params, &res);

    if (err == CRM_OK)
        *n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return err;
}

/*
 * The transaction: the COPY of the checked rows, the database's checks, then the insert when a
 * real run found no problem; else, and for a dry run, rolled back.
 */
static int
run(struct import *im, struct crm_csv *c, int dry, int skip, struct crm_resp *resp)
{
    struct crm_req *req = im->req;
    struct outcome out = {0, 0, 0, cJSON_CreateArray()};
    const char *why = NULL;
    enum crm_err err = out.errors == NULL ? CRM_ENOMEM : crm_db_begin(req->db);
    int began = err == CRM_OK, status;

    if (err == CRM_OK && (err = crm_db_run(req->db, "lead_import_table", 0, NULL)) == CRM_OK &&
        (err = crm_db_copy_begin(req->db, "lead_import_copy")) == CRM_OK) {
        err = read_rows(im, c, &why);
        if (crm_db_copy_end(req->db, err != CRM_OK) != CRM_OK && err == CRM_OK)
            err = CRM_EDB;
    }
    free(im->line.buf);
    if (err == CRM_OK)
        err = check(im, skip, &out);
    if (err == CRM_OK && !dry && out.total == 0 && (err = insert(req, &out.imported)) == CRM_OK)
        err = crm_db_commit(req->db);
    else if (began)
        crm_db_rollback(req->db);
    crm_log(err != CRM_OK ? CRM_LOG_WARN : CRM_LOG_INFO, req,
            "import%s: %ld rows, %ld to import, %ld skipped, %ld problems%s",
            dry ? " (dry run)" : "", c->record > 0 ? c->record - 1 : 0, out.imported, out.skipped,
            out.total,
            err != CRM_OK          ? ", failed"
            : dry || out.total > 0 ? ", nothing written"
                                   : "");
    if (err == CRM_ECSV)
        status = crm_resp_errorf(resp, err, "%s", why != NULL ? why : "broken CSV");
    else if (err != CRM_OK)
        status = crm_resp_error(resp, err);
    else
        status = respond(req, resp, &out, dry);
    cJSON_Delete(out.errors);
    return status;
}

/* ?dry_run=1|0 (or true|false) and ?on_duplicate=error|skip. */
static int
read_options(struct crm_req *req, struct crm_resp *resp, int *dry, int *skip)
{
    const char *d, *o;

    if (crm_req_query(req, "dry_run", &d) != CRM_OK ||
        crm_req_query(req, "on_duplicate", &o) != CRM_OK)
        return crm_resp_error(resp, CRM_EQUERY);
    *dry = d != NULL && (strcmp(d, "1") == 0 || strcmp(d, "true") == 0);
    if (d != NULL && !*dry && strcmp(d, "0") != 0 && strcmp(d, "false") != 0)
        return crm_resp_errorf(resp, CRM_EQUERY, "dry_run must be 1 or 0");
    *skip = o != NULL && strcmp(o, "skip") == 0;
    if (o != NULL && !*skip && strcmp(o, "error") != 0)
        return crm_resp_errorf(resp, CRM_EQUERY, "on_duplicate must be error or skip");
    return 0;
}

/* text/csv, with parameters or not (the bytes must be UTF-8 whatever charset says). */
static int
is_csv(const char *type)
{
    return type != NULL && strncasecmp(type, "text/csv", 8) == 0 &&
           (type[8] == '\0' || type[8] == ';' || type[8] == ' ');
}

/* POST /api/leads/import?dry_run&on_duplicate: a CSV file of leads. */
int
leads_import(struct crm_req *req, struct crm_resp *resp)
{
    struct import *im;
    struct crm_csv c;
    const char *why;
    int dry = 0, skip = 0, status;
    enum crm_err err;

    if ((err = crm_auth_require(req, CRM_ROLES_ALL)) != CRM_OK)
        return crm_resp_error(resp, err);
    if ((status = read_options(req, resp, &dry, &skip)) != 0)
        return status;
    if (!is_csv(req->content_type))
        return crm_resp_errorf(resp, CRM_EMEDIA, "request body must be text/csv");
    if (memchr(req->body, '\0', req->body_len) != NULL || !crm_utf8_valid(req->body, req->body_len))
        return crm_resp_errorf(resp, CRM_ECSV,
                               "the file is not UTF-8 text (save it as \"CSV UTF-8\")");
    if ((im = crm_arena_alloc(&req->arena, sizeof(*im))) == NULL)
        return crm_resp_error(resp, CRM_ENOMEM);
    im->req = req;
    crm_csv_init(&c, req->body, req->body_len);
    if ((why = read_header(im, &c)) != NULL)
        return crm_resp_errorf(resp, CRM_ECSV, "%s", why);
    return run(im, &c, dry, skip, resp);
}
