/* valid.c: the rule checker behind every request body. */
#include "valid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

enum crm_err
crm_valid_email(const char *s)
{
    const char *at = strchr(s, '@'), *dot;
    size_t n = strlen(s);

    if (at == NULL || at == s || at - s > 64 || n > 254 || strchr(at + 1, '@') != NULL)
        return CRM_EINVAL;
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("<>()[],;:\\\"", *p) != NULL)
            return CRM_EINVAL;
    dot = strrchr(at + 1, '.');
    if (dot == NULL || dot == at + 1 || dot[1] == '\0' || strstr(at, "..") != NULL)
        return CRM_EINVAL;
    return CRM_OK;
}

/* Reads exactly n digits at *s into *out and advances *s. Returns 0, or -1. */
static int
digits(const char **s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (**s < '0' || **s > '9')
            return -1;
        *out = *out * 10 + (**s - '0');
    }
    return 0;
}

static int
days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Reads YYYY-MM-DD at *s and advances *s. Returns 0 for a real day (no February 30th), or -1. */
static int
read_date(const char **s, int *y, int *mo, int *d)
{
    if (digits(s, 4, y) || *(*s)++ != '-' || digits(s, 2, mo) || *(*s)++ != '-' ||
        digits(s, 2, d) || *y < 1 || *mo < 1 || *mo > 12 || *d < 1 || *d > days_in_month(*y, *mo))
        return -1;
    return 0;
}

/*
 * Reads THH:MM:SS[.fraction] at *s and advances *s: *secs into the day, *ns the fraction in
 * nanoseconds (1 to 9 digits). Returns 0, or -1.
 */
static int
read_clock(const char **s, long *secs, long *ns)
{
    int h, mi, sec;

    if ((**s != 'T' && **s != 't') || ((*s)++, digits(s, 2, &h)) || *(*s)++ != ':' ||
        digits(s, 2, &mi) || *(*s)++ != ':' || digits(s, 2, &sec) || h > 23 || mi > 59 || sec > 59)
        return -1;
    *secs = h * 3600L + mi * 60L + sec;
    *ns = 0;
    if (**s != '.')
        return 0;
    (*s)++;
    for (long scale = 100000000; **s >= '0' && **s <= '9'; (*s)++, scale /= 10) {
        if (scale == 0)
            return -1;
        *ns += (**s - '0') * scale;
    }
    return (*s)[-1] == '.' ? -1 : 0;
}

/*
 * Reads the rest, s: Z, or an offset +HH:MM or -HH:MM, as *secs east of UTC. PostgreSQL refuses
 * offsets beyond 15:59:59, so they are refused here, before the query. Returns 0, or -1.
 */
static int
read_offset(const char *s, long *secs)
{
    int oh, om;
    char sign = *s++;

    *secs = 0;
    if ((sign == 'Z' || sign == 'z') && *s == '\0')
        return 0;
    if ((sign != '+' && sign != '-') || digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om) ||
        oh > 15 || om > 59 || *s != '\0')
        return -1;
    *secs = (sign == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
    return 0;
}

/* Days from 1970-01-01 to y-mo-d (y >= 1) in the proleptic Gregorian calendar. */
static long long
days_from_civil(int y, int mo, int d)
{
    long long yy = y - (mo <= 2), era = yy / 400, yoe = yy - era * 400;
    long long doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;

    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

enum crm_err
crm_valid_time(const char *s, int date_ok)
{
    /*
     * Seconds since 1970 of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. PostgreSQL keeps
     * instants to the microsecond and this API prints them in UTC with a 4-digit year: only
     * instants from the first to 9999-12-31T23:59:59.999999Z come back as they were given (a
     * later one, even by a fraction of a microsecond, is rounded into year 10000).
     */
    static const long long first = -719162LL * 86400, last = 2932896LL * 86400 + 86399;
    int y, mo, d;
    long secs, ns, off;
    long long utc;

    if (read_date(&s, &y, &mo, &d) != 0)
        return CRM_EINVAL;
    if (*s == '\0')
        return date_ok ? CRM_OK : CRM_EINVAL;
    if (read_clock(&s, &secs, &ns) != 0 || read_offset(s, &off) != 0)
        return CRM_EINVAL;
    utc = days_from_civil(y, mo, d) * 86400 + secs - off;
    if (utc < first || utc > last || (utc == last && ns > 999999000))
        return CRM_EINVAL;
    return CRM_OK;
}

/* A number that is the closest double to one with at most 2 decimals, in 0..max. */
static const char *
check_money(const cJSON *item, double max)
{
    static const char msg[] = "must be a number from 0 to 999999999999.99, at most 2 decimals";
    char buf[64];

    if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0) || item->valuedouble > max)
        return msg;
    snprintf(buf, sizeof(buf), "%.2f", item->valuedouble);
    return strtod(buf, NULL) == item->valuedouble ? NULL : msg;
}

static void
trim(cJSON *item)
{
    char *s = item->valuestring, *e;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    memmove(item->valuestring, s, (size_t)(e - s));
    item->valuestring[e - s] = '\0';
}

int
crm_valid_enum(const char *s, size_t n, const char *const *values)
{
    for (; values != NULL && *values != NULL; values++)
        if (strlen(*values) == n && strncmp(s, *values, n) == 0)
            return 1;
    return 0;
}

/* CRM_F_ENUMS: NULL when item is an array of min..max distinct values of r, else a message. */
static const char *
check_enums(const struct crm_field *r, const cJSON *item, char *buf, size_t bufsz)
{
    int n = cJSON_GetArraySize(item);
    const cJSON *e, *f;

    if (!cJSON_IsArray(item) || n < (int)r->min || n > (int)r->max) {
        snprintf(buf, bufsz, "must be an array of %zu to %zu allowed values", r->min, r->max);
        return buf;
    }
    cJSON_ArrayForEach(e, item)
    {
        if (!cJSON_IsString(e) ||
            !crm_valid_enum(e->valuestring, strlen(e->valuestring), r->values))
            return "lists a value that is not one of the allowed values";
        for (f = item->child; f != e; f = f->next)
            if (strcmp(f->valuestring, e->valuestring) == 0)
                return "lists a value twice";
    }
    return NULL;
}

/* Returns NULL when item satisfies r, else a static message. */
static const char *
check(const struct crm_field *r, cJSON *item, char *buf, size_t bufsz)
{
    size_t len;

    if (cJSON_IsNull(item))
        return (r->flags & CRM_F_NULLABLE) ? NULL : "must not be null";
    switch (r->type) {
    case CRM_F_BOOL:
        return cJSON_IsBool(item) ? NULL : "must be true or false";
    case CRM_F_ID:
        if (!cJSON_IsNumber(item) || item->valuedouble < 1 || item->valuedouble > 9e15 ||
            floor(item->valuedouble) != item->valuedouble)
            return "must be a positive integer";
        return NULL;
    case CRM_F_MONEY:
        return check_money(item, (double)r->max + 0.99);
    case CRM_F_ENUMS:
        return check_enums(r, item, buf, bufsz);
    default:
        break;
    }
    if (!cJSON_IsString(item))
        return "must be a string";
    if (r->flags & CRM_F_TRIM)
        trim(item);
    if (r->type == CRM_F_ENUM)
        return crm_valid_enum(item->valuestring, strlen(item->valuestring), r->values)
                   ? NULL
                   : "is not one of the allowed values";
    if (r->type == CRM_F_TIME)
        return crm_valid_time(item->valuestring, 0) == CRM_OK
                   ? NULL
                   : "must be an RFC 3339 date-time (2026-11-24T18:30:00Z), offset at most"
                     " 15:59, from year 0001 to 9999 in UTC";
    if (r->type == CRM_F_EMAIL)
        return crm_valid_email(item->valuestring) == CRM_OK ? NULL
                                                            : "must be a valid e-mail address";
    len = r->type == CRM_F_BYTES ? strlen(item->valuestring) : crm_utf8_len(item->valuestring);
    if (len < r->min || len > r->max) {
        snprintf(buf, bufsz, "must be %zu to %zu %s long", r->min, r->max,
                 r->type == CRM_F_BYTES ? "bytes" : "characters");
        return buf;
    }
    return NULL;
}

const struct crm_field *
crm_valid_rule(const struct crm_field *rules, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rules[i].name, name) == 0)
            return &rules[i];
    return NULL;
}

enum crm_err
crm_valid_object(cJSON *obj, const struct crm_field *rules, size_t n, cJSON **fields)
{
    cJSON *errs = cJSON_CreateObject();
    cJSON *item;
    char buf[96];
    int bad = 0;

    if (errs == NULL)
        return CRM_ENOMEM;
    cJSON_ArrayForEach(item, obj)
    {
        const struct crm_field *r = crm_valid_rule(rules, n, item->string);
        const char *msg = r == NULL ? "unknown field" : check(r, item, buf, sizeof(buf));

        /* Duplicate members are refused too: which one would win is not obvious. */
        if (msg == NULL && cJSON_GetObjectItemCaseSensitive(obj, item->string) != item)
            msg = "appears more than once";
        if (msg != NULL && cJSON_GetObjectItemCaseSensitive(errs, item->string) == NULL) {
            bad = 1;
            if (cJSON_AddStringToObject(errs, item->string, msg) == NULL)
                goto nomem;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if ((rules[i].flags & CRM_F_REQUIRED) &&
            cJSON_GetObjectItemCaseSensitive(obj, rules[i].name) == NULL) {
            bad = 1;
            if (cJSON_AddStringToObject(errs, rules[i].name, "is required") == NULL)
                goto nomem;
        }
    }
    if (!bad) {
        cJSON_Delete(errs);
        return CRM_OK;
    }
    *fields = errs;
    return CRM_EINVAL;
nomem:
    cJSON_Delete(errs);
    return CRM_ENOMEM;
}

/*
 * The index of the first member of the top-level object whose key or value holds a NUL, escaped
 * (\u0000) or raw, or -1. cJSON puts it into a C string, which then ends there: the value would
 * be cut short without a word. s is the n bytes cJSON has accepted as one object.
 */
static int
nul_member(const char *s, size_t n)
{
    int depth = 0, member = 0, in_string = 0;

    for (size_t i = 0; i < n; i++) {
        if (in_string) {
            if (s[i] == '\0' || (s[i] == '\\' && n - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0))
                return member;
            if (s[i] == '\\')
                i++; /* skips the escaped character: \" does not end the string */
            else if (s[i] == '"')
                in_string = 0;
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == '{' || s[i] == '[') {
            depth++;
        } else if (s[i] == '}' || s[i] == ']') {
            depth--;
        } else if (s[i] == ',' && depth == 1) {
            member++;
        }
    }
    return -1;
}

/*
 * Sets the message of member name in *fields (made when NULL) to msg: CRM_EINVAL; or frees
 * *fields: CRM_ENOMEM.
 */
static enum crm_err
refuse_member(cJSON **fields, const char *name, const char *msg)
{
    cJSON *m = cJSON_CreateString(msg);
    int ok;

    if (*fields == NULL)
        *fields = cJSON_CreateObject();
    if (cJSON_GetObjectItemCaseSensitive(*fields, name) != NULL)
        ok = cJSON_ReplaceItemInObjectCaseSensitive(*fields, name, m);
    else
        ok = cJSON_AddItemToObject(*fields, name, m);
    if (m == NULL || *fields == NULL || !ok) {
        cJSON_Delete(m);
        cJSON_Delete(*fields);
        *fields = NULL;
        return CRM_ENOMEM;
    }
    return CRM_EINVAL;
}

enum crm_err
crm_valid_body(const struct crm_req *req, const struct crm_field *rules, size_t n, cJSON **body,
               cJSON **fields)
{
    cJSON *json, *cut;
    enum crm_err err;

    *fields = NULL;
    if ((err = crm_req_json(req, &json)) != CRM_OK)
        return err;
    err = crm_valid_object(json, rules, n, fields);
    /* A member a NUL cut short is refused whatever else is said of it. */
    if (err != CRM_ENOMEM &&
        (cut = cJSON_GetArrayItem(json, nul_member(req->body, req->body_len))) != NULL)
        err = refuse_member(fields, cut->string, "must not contain a NUL character");
    if (err != CRM_OK) {
        cJSON_Delete(json);
        return err;
    }
    *body = json;
    return CRM_OK;
}
