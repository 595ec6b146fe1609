/* valid.h: field-by-field validation of JSON input against explicit rules, before any SQL. */
#ifndef CRM_VALID_H
#define CRM_VALID_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "err.h"

enum crm_ftype {
    CRM_F_STRING, /* min..max characters (code points) */
    CRM_F_BYTES,  /* a string of min..max bytes (passwords: bcrypt reads 72) */
    CRM_F_EMAIL,  /* an e-mail address, at most max characters */
    CRM_F_ENUM,   /* one of values */
    CRM_F_BOOL,
    CRM_F_ID,    /* a positive integral number */
    CRM_F_MONEY, /* a number in 0..max with at most 2 decimals (numeric(14,2)) */
    CRM_F_TIME,  /* an RFC 3339 date-time string */
    CRM_F_ENUMS, /* an array of min..max distinct strings, each one of values */
};

#define CRM_F_REQUIRED 1u
#define CRM_F_NULLABLE 2u /* null is accepted (it clears the field) */
#define CRM_F_TRIM 4u     /* leading and trailing white space is removed first, in place */

struct crm_field {
    const char *name;
    enum crm_ftype type;
    unsigned flags;
    size_t min, max;
    const char *const *values; /* CRM_F_ENUM: NULL-terminated */
};

/* The rule of rules[0..n) for member name, or NULL when the body may not have it. */
const struct crm_field *crm_valid_rule(const struct crm_field *rules, size_t n, const char *name);

/*
 * Checks obj against rules: unknown members, missing required ones, wrong types, lengths and
 * enums. Returns CRM_OK; CRM_EINVAL with *fields set to {"name": "message"} for every failing
 * member (caller frees, or hands it to crm_resp_invalid); CRM_ENOMEM.
 */
enum crm_err crm_valid_object(cJSON *obj, const struct crm_field *rules, size_t n, cJSON **fields);

struct crm_req;

/*
 * Parses req's body as a JSON object and validates it against rules: the one call at the top of
 * every handler that takes a body. Returns CRM_OK with *body (caller frees); else the error, with
 * *fields set for CRM_EINVAL (hand both to crm_resp_fail).
 */
enum crm_err crm_valid_body(const struct crm_req *req, const struct crm_field *rules, size_t n,
                            cJSON **body, cJSON **fields);

/* 1 when the n bytes at s are one of the NULL-terminated values, else 0. */
int crm_valid_enum(const char *s, size_t n, const char *const *values);

/* CRM_OK when s looks like a deliverable address (local@domain.tld, no spaces), else CRM_EINVAL. */
enum crm_err crm_valid_email(const char *s);

/*
 * CRM_OK when s is an RFC 3339 date-time (2026-11-24T18:30:00.123Z, or with an offset), or, when
 * date_ok, a date alone (2026-11-24); every part in range (no February 30th), an offset of at
 * most 15:59 and the instant within 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z, so that
 * PostgreSQL takes it and gives it back unchanged. Else CRM_EINVAL. The one time parser: query
 * bounds (crm_req_time) and body fields (CRM_F_TIME) both come here.
 */
enum crm_err crm_valid_time(const char *s, int date_ok);

#endif
