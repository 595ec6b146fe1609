/* http.c: JSON responses, the API error body, query and body parsing. */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "valid.h"

int
crm_resp_header(struct crm_resp *resp, const char *name, const char *value)
{
    size_t left = sizeof(resp->headers) - resp->hlen;
    int n;

    if (strpbrk(value, "\r\n") != NULL)
        return -1;
    n = snprintf(resp->headers + resp->hlen, left, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= left) {
        resp->headers[resp->hlen] = '\0';
        return -1;
    }
    resp->hlen += (size_t)n;
    return 0;
}

int
crm_resp_json(struct crm_resp *resp, int status, cJSON *json)
{
    char *text = json != NULL ? cJSON_PrintUnformatted(json) : NULL;

    cJSON_Delete(json);
    free(resp->body);
    resp->body = text;
    if (text == NULL) {
        /* A fixed body: building one more JSON object could fail the same way. */
        resp->status = 500;
        resp->body = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}");
        return 500;
    }
    resp->status = status;
    return status;
}

int
crm_resp_stream(struct crm_resp *resp, const char *content_type,
                int (*stream)(struct crm_resp *, crm_put_fn, void *), void *ctx)
{
    free(resp->body);
    resp->body = NULL;
    resp->status = 200;
    resp->content_type = content_type;
    resp->stream = stream;
    resp->stream_ctx = ctx;
    return 200;
}

int
crm_resp_empty(struct crm_resp *resp, int status)
{
    free(resp->body);
    resp->body = NULL;
    resp->status = status;
    return status;
}

cJSON *
crm_error_json(enum crm_err err, const char *message, cJSON *fields)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");

    if (e == NULL || cJSON_AddStringToObject(e, "code", crm_err_code(err)) == NULL ||
        cJSON_AddStringToObject(e, "message", message) == NULL ||
        (fields != NULL && !cJSON_AddItemToObject(e, "fields", fields))) {
        cJSON_Delete(fields);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int
crm_resp_error_json(struct crm_resp *resp, enum crm_err err, cJSON *body)
{
    int status = crm_err_status(err), retry = crm_err_retry_after(err);
    char secs[16];

    if (status == 401)
        crm_resp_header(resp, "WWW-Authenticate", "Bearer");
    if (retry > 0) {
        snprintf(secs, sizeof(secs), "%d", retry);
        crm_resp_header(resp, "Retry-After", secs);
    }
    return crm_resp_json(resp, body != NULL ? status : 500, body);
}

static int
error_body(struct crm_resp *resp, enum crm_err err, const char *message, cJSON *fields)
{
    return crm_resp_error_json(resp, err, crm_error_json(err, message, fields));
}

int
crm_resp_error(struct crm_resp *resp, enum crm_err err)
{
    return error_body(resp, err, crm_err_message(err), NULL);
}

int
crm_resp_errorf(struct crm_resp *resp, enum crm_err err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return error_body(resp, err, msg, NULL);
}

int
crm_resp_invalid(struct crm_resp *resp, cJSON *fields)
{
    char msg[512] = "validation failed";
    const cJSON *first = fields != NULL ? fields->child : NULL;

    /* The message names the first failing field, as in API.md's example. */
    if (first != NULL && cJSON_IsString(first))
        snprintf(msg, sizeof(msg), "%s: %s", first->string, first->valuestring);
    return error_body(resp, CRM_EINVAL, msg, fields);
}

int
crm_resp_invalid_field(struct crm_resp *resp, const char *name, const char *message)
{
    cJSON *fields = cJSON_CreateObject();

    if (cJSON_AddStringToObject(fields, name, message) == NULL) {
        cJSON_Delete(fields);
        return crm_resp_error(resp, CRM_ENOMEM);
    }
    return crm_resp_invalid(resp, fields);
}

int
crm_resp_fail(struct crm_resp *resp, enum crm_err err, cJSON *fields)
{
    if (err == CRM_EINVAL && fields != NULL)
        return crm_resp_invalid(resp, fields);
    cJSON_Delete(fields);
    return crm_resp_error(resp, err);
}

void
crm_resp_reset(struct crm_resp *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

static int
is_json_type(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

enum crm_err
crm_req_json(const struct crm_req *req, cJSON **out)
{
    const char *end = NULL;
    cJSON *json;

    if (req->body_len > 0 && !is_json_type(req->content_type))
        return CRM_EMEDIA;
    if (req->body_len == 0 || !crm_utf8_valid(req->body, req->body_len))
        return CRM_EJSON;
    json = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    if (json == NULL || !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return CRM_EJSON;
    }
    /* Only white space may follow the object. */
    for (; end != NULL && end < req->body + req->body_len; end++) {
        if (strchr(" \t\r\n", *end) == NULL) {
            cJSON_Delete(json);
            return CRM_EJSON;
        }
    }
    *out = json;
    return CRM_OK;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of a URL-encoded value into dst (at least n+1 bytes). Returns 0, or -1. */
static int
url_decode(const char *s, size_t n, char *dst)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            dst[o++] = ' ';
        } else if (s[i] == '%') {
            int hi, lo;

            if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
                return -1;
            dst[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[o++] = s[i];
        }
    }
    dst[o] = '\0';
    if (memchr(dst, '\0', o) != NULL || !crm_utf8_valid(dst, o))
        return -1;
    return 0;
}

enum crm_err
crm_req_query(struct crm_req *req, const char *name, const char **out)
{
    const char *p = req->query != NULL ? req->query : "";
    size_t nlen = strlen(name);

    while (*p != '\0') {
        size_t len = strcspn(p, "&");

        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            char *v = crm_arena_alloc(&req->arena, len - nlen);

            if (v == NULL || url_decode(p + nlen + 1, len - nlen - 1, v) != 0)
                return CRM_EQUERY;
            *out = v;
            return CRM_OK;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    *out = NULL;
    return CRM_OK;
}

int
crm_req_param_id(const struct crm_req *req, const char *name, int64_t *out)
{
    for (int i = 0; i < req->nparams; i++)
        if (strcmp(req->param_name[i], name) == 0)
            return crm_parse_id(req->param_val[i], out);
    return -1;
}

enum crm_err
crm_req_limit(struct crm_req *req, long dflt, long *limit)
{
    const char *l;
    long long v = dflt;

    if (crm_req_query(req, "limit", &l) != CRM_OK ||
        (l != NULL && crm_parse_int(l, 1, 100, &v) != 0))
        return CRM_EQUERY;
    *limit = (long)v;
    return CRM_OK;
}

enum crm_err
crm_req_page(struct crm_req *req, long *limit, long *offset)
{
    const char *o;
    long long ov = 0;

    if (crm_req_limit(req, 20, limit) != CRM_OK || crm_req_query(req, "offset", &o) != CRM_OK ||
        (o != NULL && crm_parse_int(o, 0, 1000000000, &ov) != 0))
        return CRM_EQUERY;
    *offset = (long)ov;
    return CRM_OK;
}

cJSON *
crm_page_json(cJSON *data, long limit, long offset, long long total)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *page;

    if (root == NULL || !cJSON_AddItemToObject(root, "data", data)) {
        cJSON_Delete(data);
        cJSON_Delete(root);
        return NULL;
    }
    if ((page = cJSON_AddObjectToObject(root, "page")) == NULL ||
        cJSON_AddNumberToObject(page, "limit", (double)limit) == NULL ||
        cJSON_AddNumberToObject(page, "offset", (double)offset) == NULL ||
        cJSON_AddNumberToObject(page, "total", (double)total) == NULL) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int
crm_req_if_match(const struct crm_req *req, long long *version)
{
    const char *s = req->if_match;
    char buf[24];
    size_t n;

    if (s == NULL || strcmp(s, "*") == 0)
        return 0;
    n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return crm_parse_int(buf, 1, INT32_MAX, version) == 0 ? 1 : -1;
}

enum crm_err
crm_req_time(struct crm_req *req, const char *name, int end, const char **out)
{
    const char *v, *day_time = end ? "T23:59:59.999999Z" : "T00:00:00Z";
    char *full;

    if (crm_req_query(req, name, out) != CRM_OK)
        return CRM_EQUERY;
    if ((v = *out) == NULL)
        return CRM_OK;
    if (crm_valid_time(v, 1) != CRM_OK)
        return CRM_EQUERY;
    if (strlen(v) != 10) /* a date-time, not a date */
        return CRM_OK;
    if ((full = crm_arena_alloc(&req->arena, 32)) == NULL)
        return CRM_ENOMEM;
    snprintf(full, 32, "%s%s", v, day_time);
    *out = full;
    return CRM_OK;
}

/* The reason phrase of an HTTP status ("Not Found"). */
static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "Unknown";
    }
}

int
crm_resp_head(const struct crm_resp *resp, const char *reqid, char *buf, size_t sz)
{
    const char *type = resp->stream == NULL && resp->body == NULL ? NULL
                       : resp->content_type != NULL               ? resp->content_type
                                                    : "application/json; charset=utf-8";
    int n = snprintf(buf, sz, "Status: %d %s\r\nX-Request-Id: %s\r\n%s%s%s%.*s\r\n", resp->status,
                     reason(resp->status), reqid, type != NULL ? "Content-Type: " : "",
                     type != NULL ? type : "", type != NULL ? "\r\n" : "", (int)resp->hlen,
                     resp->headers);

    return n < 0 || (size_t)n >= sz ? -1 : n;
}

int
crm_req_head_only(const struct crm_req *req)
{
    return req->method != NULL && strcmp(req->method, "HEAD") == 0;
}

static int
sane_request_id(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > 64)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

void
crm_req_set_id(struct crm_req *req, const char *rid)
{
    if (sane_request_id(rid))
        snprintf(req->id, sizeof(req->id), "%s", rid);
    else if (crm_random_hex(req->id, sizeof(req->id), 8) != 0)
        snprintf(req->id, sizeof(req->id), "norandom");
}
