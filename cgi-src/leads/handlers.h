/* handlers.h: the routes of crm-leads, and the transaction helpers every write shares. */
#ifndef CRM_LEADS_HANDLERS_H
#define CRM_LEADS_HANDLERS_H

#include <stdint.h>

#include <libpq-fe.h>

#include "http.h"
#include "valid.h"

int leads_create(struct crm_req *req, struct crm_resp *resp);
int leads_list(struct crm_req *req, struct crm_resp *resp);
int leads_export(struct crm_req *req, struct crm_resp *resp);
int leads_import(struct crm_req *req, struct crm_resp *resp);
int leads_get(struct crm_req *req, struct crm_resp *resp);
int leads_update(struct crm_req *req, struct crm_resp *resp);
int leads_delete(struct crm_req *req, struct crm_resp *resp);
int leads_status(struct crm_req *req, struct crm_resp *resp);
int leads_assign(struct crm_req *req, struct crm_resp *resp);
int activity_add(struct crm_req *req, struct crm_resp *resp);
int activity_list(struct crm_req *req, struct crm_resp *resp);
int tasks_create(struct crm_req *req, struct crm_resp *resp);
int tasks_of_lead(struct crm_req *req, struct crm_resp *resp);
int tasks_mine(struct crm_req *req, struct crm_resp *resp);
int tasks_get(struct crm_req *req, struct crm_resp *resp);
int tasks_update(struct crm_req *req, struct crm_resp *resp);
int tasks_complete(struct crm_req *req, struct crm_resp *resp);
int tasks_reopen(struct crm_req *req, struct crm_resp *resp);
int tasks_delete(struct crm_req *req, struct crm_resp *resp);
int notifications_list(struct crm_req *req, struct crm_resp *resp);
int notifications_unread(struct crm_req *req, struct crm_resp *resp);
int notifications_read(struct crm_req *req, struct crm_resp *resp);
int notifications_read_all(struct crm_req *req, struct crm_resp *resp);

/* The enums of a Lead, NULL-terminated. */
extern const char *const lead_sources[];
extern const char *const lead_statuses[];

/* The members POST /api/leads takes, and their rules; a CSV import's rows are held to them. */
#define LEAD_CREATE_NRULES 9
extern const struct crm_field lead_create_rules[LEAD_CREATE_NRULES];

/* The columns of the CSV export, its header row; an import takes the same names. */
#define LEAD_CSV_NCOLS 13
extern const char *const lead_csv_columns[LEAD_CSV_NCOLS];

/* The largest CSV file POST /api/leads/import takes (nginx: client_max_body_size 10m). */
#define LEAD_IMPORT_MAX ((size_t)10 * 1024 * 1024)

/*
 * The filters of GET /api/leads (and of its export) as params[0..6] of the lead statements
 * (params[0] the caller's row filter), and *sort its sort key (default -created_at). Returns
 * CRM_OK, or CRM_EQUERY when one is malformed.
 */
enum crm_err lead_filters(struct crm_req *req, const char **params, const char **sort);

/* "prefix:sort", the name of the statement of that sort (lead_list, lead_export); NULL: OOM. */
const char *lead_sort_stmt(struct crm_req *req, const char *prefix, const char *sort);

/* The lead a write is about, as lead_begin() locked it. */
struct lead_lock {
    const char *id; /* the route's :id, checked */
    char status[16];
    int64_t owner; /* 0: none */
};

/*
 * Opens the transaction of a write to the row :id: runs the lock statement stmt ($1 the id, $2
 * the caller's row filter; its column 0 the row's version) and checks If-Match against it.
 * Returns CRM_OK inside the transaction, with *id the route's :id and *row the locked row
 * (caller PQclears); else, rolled back, CRM_ENOTFOUND (no such row, or not the caller's),
 * CRM_EPRECOND, or a database error.
 */
enum crm_err write_begin(struct crm_req *req, const char *stmt, const char **id, PGresult **row);

/*
 * Opens the transaction of a write to lead :id: locks the row if the caller may see it and
 * checks If-Match against its version. Returns CRM_OK inside the transaction; else, rolled back,
 * CRM_ENOTFOUND (no such lead, or not the caller's), CRM_EPRECOND, or a database error.
 */
enum crm_err lead_begin(struct crm_req *req, struct lead_lock *lock);

/*
 * Runs the write statement name inside lead_begin's transaction and commits. Returns CRM_OK with
 * *res (one row; caller PQclears), CRM_EINVAL when the statement wrote nothing (its condition
 * failed), or the error; the transaction is over either way.
 */
enum crm_err lead_commit(struct crm_req *req, const char *name, int n, const char *const *params,
                         PGresult **res);

/* lead_commit's end for a statement already run with result err: commits or rolls back. */
enum crm_err lead_finish(struct crm_req *req, enum crm_err err, PGresult **res);

/* The members of the answer to a change: the lead and the activity that records it. */
extern const char *const lead_change_keys[];

/*
 * Answers a change that would change nothing: ends lead_begin's transaction, which wrote
 * nothing, and responds with the lead as it is and "activity": null. Returns the status.
 */
int lead_unchanged(struct crm_req *req, struct crm_resp *resp, const struct lead_lock *lock);

/*
 * Responds 200 with {keys[0]: column 0 of row 0 of res, keys[1]: column 1 when activity, else
 * null}, the row's ETag, or with err when it is not CRM_OK. Frees res.
 */
int change_respond(struct crm_resp *resp, enum crm_err err, PGresult *res, const char *const *keys,
                   int activity);

/* Ends a lead_begin transaction that had nothing to write. */
enum crm_err lead_end(struct crm_req *req);

/*
 * Adds ETag: "<version>" of the lead or task in column 0 of res, the tag a later If-Match gives
 * back.
 */
void lead_etag(struct crm_resp *resp, const PGresult *res);

/*
 * Responds with {keys[i]: column i of row 0 of res} (JSON built by SQL) and status, or with
 * err when it is not CRM_OK; with the row's ETag when keys[0] is "lead" or "task". Frees res.
 */
int lead_respond(struct crm_resp *resp, int status, enum crm_err err, PGresult *res,
                 const char *const *keys, int n);

#endif
