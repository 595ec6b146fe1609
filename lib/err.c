/* err.c: the single place where library errors become HTTP statuses and API codes. */
#include "err.h"

#include <stddef.h>

struct err_row {
    int status;
    const char *code;
    const char *message;
    int retry_after; /* seconds, for the Retry-After header; 0: none */
};

static const struct err_row rows[] = {
    [CRM_OK] = {200, "ok", "ok"},
    [CRM_EJSON] = {400, "invalid_json", "request body is not a well-formed JSON object"},
    [CRM_EQUERY] = {400, "invalid_query", "a query parameter is malformed"},
    [CRM_ECSV] = {400, "invalid_csv", "request body is not a well-formed CSV file"},
    [CRM_EAUTH] = {401, "unauthenticated", "a valid bearer token is required"},
    [CRM_ECRED] = {401, "invalid_credentials", "e-mail or password is wrong"},
    [CRM_EFORBIDDEN] = {403, "forbidden", "your role may not do this"},
    [CRM_ENOTFOUND] = {404, "not_found", "not found"},
    [CRM_EMETHOD] = {405, "method_not_allowed", "method not allowed on this resource"},
    [CRM_ECONFLICT] = {409, "conflict", "a resource with this value already exists"},
    [CRM_EPRECOND] = {412, "precondition_failed", "the resource has changed (version mismatch)"},
    [CRM_ETOOBIG] = {413, "payload_too_large", "request body is larger than 64 KiB"},
    [CRM_EMEDIA] = {415, "unsupported_media_type", "request body must be application/json"},
    [CRM_EINVAL] = {422, "validation_failed", "validation failed"},
    [CRM_ERATE] = {429, "rate_limited", "too many attempts, try again later"},
    /* A stream whose client vanished is noticed at the next ping (15 s): then there is room. */
    [CRM_ESTREAMS] = {429, "too_many_streams",
                      "this user has too many open streams, close one and retry", 15},
    [CRM_EINTERNAL] = {500, "internal", "internal error"},
    [CRM_ENOMEM] = {500, "internal", "internal error"},
    [CRM_EDB] = {500, "internal", "internal error"},
    [CRM_EUNAVAIL] = {503, "unavailable", "the database is unavailable, retry shortly", 1},
    [CRM_EFULL] = {503, "unavailable",
                   "the server has reached its limit of open streams, retry shortly", 1},
};

static const struct err_row *
row(enum crm_err err)
{
    if ((unsigned)err >= sizeof(rows) / sizeof(rows[0]))
        return &rows[CRM_EINTERNAL];
    return &rows[err];
}

int
crm_err_status(enum crm_err err)
{
    return row(err)->status;
}

const char *
crm_err_code(enum crm_err err)
{
    return row(err)->code;
}

const char *
crm_err_message(enum crm_err err)
{
    return row(err)->message;
}

int
crm_err_retry_after(enum crm_err err)
{
    return row(err)->retry_after;
}
