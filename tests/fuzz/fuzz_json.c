/*
 * fuzz_json.c: JSON request bodies through crm_valid_body, the one call every handler that takes
 * a body makes: crm_req_json's UTF-8 and JSON checks, the field rules of valid.c (each type and
 * flag), the duplicate and NUL checks. The rule sets are those of the handlers (their tables are
 * static in cgi-src, so they are restated here). The first byte picks the rule set and the
 * Content-Type; the rest is the body.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "http.h"
#include "util.h"
#include "valid.h"

static const char *const roles[] = {"ADMIN", "MANAGER", "SALES_EXECUTIVE", NULL};
static const char *const sources[] = {"WEBSITE",   "REFERRAL", "SOCIAL", "EMAIL",
                                      "COLD_CALL", "EVENT",    "OTHER",  NULL};
static const char *const statuses[] = {"NEW",         "CONTACTED", "QUALIFIED", "PROPOSAL",
                                       "NEGOTIATION", "WON",       "LOST",      NULL};
static const char *const types[] = {"NOTE", "CALL", "MEETING", "EMAIL", NULL};

/* POST /api/auth/register */
static const struct crm_field reg[] = {
    {"name", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 100, NULL},
    {"email", CRM_F_EMAIL, CRM_F_REQUIRED | CRM_F_TRIM, 0, 254, NULL},
    {"password", CRM_F_BYTES, CRM_F_REQUIRED, 8, 72, NULL},
    {"role", CRM_F_ENUM, 0, 0, 0, roles},
};
/* POST /api/auth/login */
static const struct crm_field login[] = {
    {"email", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 254, NULL},
    {"password", CRM_F_BYTES, CRM_F_REQUIRED, 1, 1024, NULL},
};
/* PATCH /api/users/:id */
static const struct crm_field user[] = {
    {"name", CRM_F_STRING, CRM_F_TRIM, 1, 100, NULL},
    {"role", CRM_F_ENUM, 0, 0, 0, roles},
    {"active", CRM_F_BOOL, 0, 0, 0, NULL},
};
/* POST /api/leads (PATCH /api/leads/:id is the same less status and owner_id) */
static const struct crm_field lead[] = {
    {"name", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 200, NULL},
    {"email", CRM_F_EMAIL, CRM_F_NULLABLE | CRM_F_TRIM, 0, 254, NULL},
    {"phone", CRM_F_STRING, CRM_F_NULLABLE | CRM_F_TRIM, 0, 40, NULL},
    {"company", CRM_F_STRING, CRM_F_NULLABLE | CRM_F_TRIM, 0, 200, NULL},
    {"source", CRM_F_ENUM, CRM_F_NULLABLE, 0, 0, sources},
    {"value", CRM_F_MONEY, CRM_F_NULLABLE, 0, 999999999999, NULL},
    {"notes", CRM_F_STRING, CRM_F_NULLABLE, 0, 10000, NULL},
    {"status", CRM_F_ENUM, CRM_F_NULLABLE, 0, 0, statuses},
    {"owner_id", CRM_F_ID, CRM_F_NULLABLE, 0, 0, NULL},
};
/* PATCH /api/leads/:id/status */
static const struct crm_field status[] = {
    {"status", CRM_F_ENUM, CRM_F_REQUIRED, 0, 0, statuses},
    {"note", CRM_F_STRING, CRM_F_NULLABLE, 1, 10000, NULL},
};
/* PATCH /api/leads/:id/assign */
static const struct crm_field assign[] = {
    {"owner_id", CRM_F_ID, CRM_F_REQUIRED, 0, 0, NULL},
};
/* POST /api/leads/:id/activity */
static const struct crm_field activity[] = {
    {"type", CRM_F_ENUM, CRM_F_REQUIRED, 0, 0, types},
    {"content", CRM_F_STRING, CRM_F_REQUIRED, 1, 10000, NULL},
    {"occurred_at", CRM_F_TIME, CRM_F_NULLABLE, 0, 0, NULL},
};
/* POST /api/leads/:id/tasks (PATCH /api/tasks/:id is the same, nothing required) */
static const struct crm_field task[] = {
    {"title", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 200, NULL},
    {"notes", CRM_F_STRING, CRM_F_NULLABLE, 0, 10000, NULL},
    {"due_at", CRM_F_TIME, CRM_F_REQUIRED, 0, 0, NULL},
    {"user_id", CRM_F_ID, 0, 0, 0, NULL},
};

#define SET(r)                                                                                     \
    {                                                                                              \
        r, sizeof(r) / sizeof(r[0])                                                                \
    }
static const struct {
    const struct crm_field *rules;
    size_t n;
} sets[] = {SET(reg),    SET(login),  SET(user),     SET(lead),
            SET(status), SET(assign), SET(activity), SET(task)};
#define NSETS (sizeof(sets) / sizeof(sets[0]))

static const char *const ctypes[] = {"application/json", "application/json; charset=utf-8",
                                     "text/plain", NULL};

static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* What an accepted body must be: every member known, once, and within its rule. */
static void
check_accepted(const cJSON *body, const struct crm_field *rules, size_t n)
{
    const cJSON *item;

    fuzz_check(cJSON_IsObject(body), "accepted body is an object");
    cJSON_ArrayForEach(item, body)
    {
        const struct crm_field *r = crm_valid_rule(rules, n, item->string);
        const char *s = item->valuestring;

        fuzz_check(r != NULL, "accepted member has a rule");
        fuzz_check(cJSON_GetObjectItemCaseSensitive(body, item->string) == item,
                   "accepted member appears once");
        if (!cJSON_IsString(item))
            continue;
        fuzz_check(crm_utf8_valid(s, strlen(s)), "accepted string is UTF-8");
        if ((r->flags & CRM_F_TRIM) && s[0] != '\0')
            fuzz_check(!is_space(s[0]) && !is_space(s[strlen(s) - 1]), "trimmed string");
        if (r->type == CRM_F_STRING)
            fuzz_check(crm_utf8_len(s) >= r->min && crm_utf8_len(s) <= r->max,
                       "string length within its rule");
        if (r->type == CRM_F_BYTES)
            fuzz_check(strlen(s) >= r->min && strlen(s) <= r->max, "byte length within its rule");
        if (r->type == CRM_F_ENUM)
            fuzz_check(crm_valid_enum(s, strlen(s), r->values), "enum value allowed");
        if (r->type == CRM_F_TIME)
            fuzz_check(crm_valid_time(s, 0) == CRM_OK, "time valid");
        if (r->type == CRM_F_EMAIL)
            fuzz_check(crm_valid_email(s) == CRM_OK, "e-mail valid");
    }
    for (size_t i = 0; i < n; i++)
        if (rules[i].flags & CRM_F_REQUIRED)
            fuzz_check(cJSON_GetObjectItemCaseSensitive(body, rules[i].name) != NULL,
                       "required member present");
}

/* An accepted body, printed again, is accepted again: validation is idempotent. */
static void
check_reprint(const cJSON *body, const struct crm_field *rules, size_t n)
{
    struct crm_req req;
    cJSON *again = NULL, *fields = NULL;
    char *text = cJSON_PrintUnformatted(body);

    if (text == NULL)
        return;
    memset(&req, 0, sizeof(req));
    req.body = text;
    req.body_len = strlen(text);
    req.content_type = "application/json";
    fuzz_check(crm_valid_body(&req, rules, n, &again, &fields) == CRM_OK,
               "reprinted body accepted");
    cJSON_Delete(again);
    cJSON_Delete(fields);
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct crm_req req;
    cJSON *body = NULL, *fields = NULL;
    enum crm_err err;
    size_t set;

    if (size < 1 || size - 1 > CRM_BODY_MAX)
        return 0;
    set = data[0] % NSETS;
    memset(&req, 0, sizeof(req));
    /* The body is not NUL-terminated: read_body gives its length, and so does this. */
    req.body = malloc(size - 1 > 0 ? size - 1 : 1);
    if (req.body == NULL)
        abort();
    memcpy(req.body, data + 1, size - 1);
    req.body_len = size - 1;
    req.content_type = ctypes[(data[0] / NSETS) % 4];
    err = crm_valid_body(&req, sets[set].rules, sets[set].n, &body, &fields);
    if (err == CRM_OK) {
        fuzz_check(fields == NULL, "no fields on success");
        check_accepted(body, sets[set].rules, sets[set].n);
        check_reprint(body, sets[set].rules, sets[set].n);
    } else {
        fuzz_check(body == NULL, "no body on failure");
        fuzz_check(err != CRM_EINVAL || (cJSON_IsObject(fields) && fields->child != NULL),
                   "a 422 names its fields");
        fuzz_check(err == CRM_EINVAL || fields == NULL, "fields only on a 422");
    }
    cJSON_Delete(body);
    cJSON_Delete(fields);
    free(req.body);
    return 0;
}
