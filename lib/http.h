/* http.h: the per-request context a handler reads and the response it fills. */
#ifndef CRM_HTTP_H
#define CRM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "arena.h"
#include "err.h"

#define CRM_BODY_MAX 65536
#define CRM_MAX_PARAMS 4

struct crm_db;
struct crm_config;

enum crm_role { CRM_ROLE_ADMIN = 1, CRM_ROLE_MANAGER = 2, CRM_ROLE_SALES = 4 };
#define CRM_ROLES_ALL (CRM_ROLE_ADMIN | CRM_ROLE_MANAGER | CRM_ROLE_SALES)

/* The authenticated caller, as re-read from the database on this request. */
struct crm_principal {
    int64_t id;
    enum crm_role role;
    char idstr[21];
    int64_t exp;      /* when the token that authenticated it expires (Unix seconds) */
    int64_t epoch;    /* the token epoch its token was made in: the user's must still be it */
    int64_t token_id; /* the API token that authenticated it; 0 for a login's token (a JWT) */
    int read_only;    /* an API token of scope read: GET and HEAD only */
    /* The SQL row filter: the caller's id for a SALES_EXECUTIVE, NULL for roles that see all. */
    const char *owner;
};

struct crm_req {
    struct crm_arena arena; /* everything below that is a pointer lives here */
    struct crm_db *db;
    const struct crm_config *cfg;
    const char *method, *path, *query;
    const char *content_type, *authorization, *if_match, *remote_addr;
    char *body;
    size_t body_len;
    char id[65]; /* request id: the client's X-Request-Id if sane, else random */
    int authed;  /* who is valid */
    struct crm_principal who;
    int nparams; /* route parameters (":id") */
    const char *param_name[CRM_MAX_PARAMS];
    char *param_val[CRM_MAX_PARAMS];
};

/* Writes len bytes of a response body to sink. Returns 0, or -1 once the client is gone. */
typedef int (*crm_put_fn)(void *sink, const char *buf, size_t len);

struct crm_resp {
    int status;
    char headers[1024]; /* extra "Name: value\r\n" lines */
    size_t hlen;
    char *body; /* malloc'd JSON text, or NULL for an empty body */
    /*
     * A body too large to hold (an export): written after the head, as it is produced, by
     * stream(resp, put, sink), which must end (free) what it holds however put fares; put is
     * a sink that refuses everything for a HEAD. content_type is its type. Set by crm_resp_stream.
     */
    int (*stream)(struct crm_resp *resp, crm_put_fn put, void *sink);
    void *stream_ctx;
    const char *content_type; /* of the body or the stream; NULL: JSON */
};

/* Adds a response header. Returns 0, or -1 when it does not fit or has CR/LF in it. */
int crm_resp_header(struct crm_resp *resp, const char *name, const char *value);

/* Sets status and body from json, which it always takes (frees). Returns status (500 on OOM). */
int crm_resp_json(struct crm_resp *resp, int status, cJSON *json);

/*
 * A 200 whose body of type content_type stream(resp, put, sink) writes after the head, with
 * resp->stream_ctx = ctx. Returns 200.
 */
int crm_resp_stream(struct crm_resp *resp, const char *content_type,
                    int (*stream)(struct crm_resp *, crm_put_fn, void *), void *ctx);

/* Sets an empty response with status (204). Returns status. */
int crm_resp_empty(struct crm_resp *resp, int status);

/* {"error": {"code", "message", "fields"?}} for err; takes fields. NULL when out of memory. */
cJSON *crm_error_json(enum crm_err err, const char *message, cJSON *fields);

/* Responds with body (from crm_error_json, perhaps extended) and err's status and headers. */
int crm_resp_error_json(struct crm_resp *resp, enum crm_err err, cJSON *body);

/* The API error body for err with its default message. Returns the HTTP status. */
int crm_resp_error(struct crm_resp *resp, enum crm_err err);

/* The same with a message of the caller's (no secrets, no internals). */
int crm_resp_errorf(struct crm_resp *resp, enum crm_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 422 validation_failed with the fields object {"field": "message"}, which it takes. */
int crm_resp_invalid(struct crm_resp *resp, cJSON *fields);

/* 422 validation_failed for the one field name. */
int crm_resp_invalid_field(struct crm_resp *resp, const char *name, const char *message);

/* crm_resp_invalid(fields) when err is CRM_EINVAL with fields, else crm_resp_error(err). */
int crm_resp_fail(struct crm_resp *resp, enum crm_err err, cJSON *fields);

/* Sets req->id: the client's X-Request-Id rid when it is sane (1-64 of [A-Za-z0-9._-]), else
 * random. */
void crm_req_set_id(struct crm_req *req, const char *rid);

/* 1 when req is a HEAD: it gets the head a GET would get, and no body. */
int crm_req_head_only(const struct crm_req *req);

/*
 * The head of the response as a FastCGI responder writes it: Status, X-Request-Id (reqid),
 * Content-Type when there is a body, resp's headers, a blank line; the body follows it. Writes
 * it into buf and returns its length, or -1 when it does not fit (CRM_RESP_HEAD_MAX always does).
 */
#define CRM_RESP_HEAD_MAX 1400
int crm_resp_head(const struct crm_resp *resp, const char *reqid, char *buf, size_t sz);

/* Frees the response body and resets resp for the next request. */
void crm_resp_reset(struct crm_resp *resp);

/*
 * Parses the body as a JSON object. Returns CRM_OK and *out (caller frees with cJSON_Delete),
 * CRM_EMEDIA when a body comes without application/json, CRM_EJSON when it is empty, not UTF-8,
 * not JSON, or not an object.
 */
enum crm_err crm_req_json(const struct crm_req *req, cJSON **out);

/*
 * Finds query parameter name and URL-decodes its value into the request arena. Returns CRM_OK
 * with *out set (NULL when absent), or CRM_EQUERY when it is malformed (bad escape, not UTF-8).
 */
enum crm_err crm_req_query(struct crm_req *req, const char *name, const char **out);

/* Reads limit (1..100, default dflt). Returns CRM_OK, or CRM_EQUERY when it is malformed. */
enum crm_err crm_req_limit(struct crm_req *req, long dflt, long *limit);

/*
 * Reads limit (1..100, default 20) and offset (0..1e9, default 0) from the query string.
 * Returns CRM_OK, or CRM_EQUERY when either is present and malformed.
 */
enum crm_err crm_req_page(struct crm_req *req, long *limit, long *offset);

/* {"data": data, "page": {"limit", "offset", "total"}}; takes data. NULL when out of memory. */
cJSON *crm_page_json(cJSON *data, long limit, long offset, long long total);

/* The route parameter name (e.g. "id") parsed as a positive id. Returns 0, or -1. */
int crm_req_param_id(const struct crm_req *req, const char *name, int64_t *out);

/*
 * Query parameter name as a time bound: RFC 3339, or a date (YYYY-MM-DD) standing for its first
 * instant, or its last when end. CRM_OK with *out (NULL when absent), or CRM_EQUERY.
 */
enum crm_err crm_req_time(struct crm_req *req, const char *name, int end, const char **out);

/*
 * The version an If-Match header asks for ("3" or 3). Returns 0 when there is no condition (no
 * header, or *), 1 with *version set, or -1 for a tag that can never match (the write gets 412).
 */
int crm_req_if_match(const struct crm_req *req, long long *version);

#endif
