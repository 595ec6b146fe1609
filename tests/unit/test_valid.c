/* test_valid.c: JSON body parsing and field rules, as every handler applies them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "valid.h"

static const char *const roles[] = {"ADMIN", "MANAGER", NULL};
static const struct crm_field rules[] = {
    {"name", CRM_F_STRING, CRM_F_REQUIRED | CRM_F_TRIM, 1, 5, NULL},
    {"email", CRM_F_EMAIL, CRM_F_TRIM, 0, 254, NULL},
    {"role", CRM_F_ENUM, 0, 0, 0, roles},
    {"active", CRM_F_BOOL, 0, 0, 0, NULL},
    {"owner_id", CRM_F_ID, CRM_F_NULLABLE, 0, 0, NULL},
};
#define NRULES (sizeof(rules) / sizeof(rules[0]))

/*
 * Runs the len bytes of text through crm_valid_body; returns the error and the message for field
 * (or NULL).
 */
static enum crm_err
validate_len(const char *text, size_t len, const char *ctype, const char *field, char *msg,
             size_t msgsz)
{
    struct crm_req req;
    cJSON *body = NULL, *fields = NULL;
    enum crm_err err;

    memset(&req, 0, sizeof(req));
    req.body = (char *)text;
    req.body_len = len;
    req.content_type = ctype;
    msg[0] = '\0';
    err = crm_valid_body(&req, rules, NRULES, &body, &fields);
    if (field != NULL && fields != NULL) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(fields, field);

        if (cJSON_IsString(m))
            snprintf(msg, msgsz, "%s", m->valuestring);
    }
    cJSON_Delete(body);
    cJSON_Delete(fields);
    return err;
}

static enum crm_err
validate(const char *text, const char *ctype, const char *field, char *msg, size_t msgsz)
{
    return validate_len(text, strlen(text), ctype, field, msg, msgsz);
}

#define JSON "application/json"

static void
test_valid_accepts_good_body(void **state)
{
    char m[128];

    (void)state;
    assert_int_equal(validate("{\"name\":\" Ana \",\"email\":\"a@b.co\",\"role\":\"ADMIN\","
                              "\"active\":false,\"owner_id\":null}",
                              "application/json; charset=utf-8", NULL, m, sizeof(m)),
                     CRM_OK);
}

static void
test_valid_body_errors(void **state)
{
    char m[128];

    (void)state;
    assert_int_equal(validate("{\"name\":\"x\"}", "text/plain", NULL, m, sizeof(m)), CRM_EMEDIA);
    assert_int_equal(validate("", JSON, NULL, m, sizeof(m)), CRM_EJSON);
    assert_int_equal(validate("{\"name\":", JSON, NULL, m, sizeof(m)), CRM_EJSON);
    assert_int_equal(validate("[1,2]", JSON, NULL, m, sizeof(m)), CRM_EJSON);
    assert_int_equal(validate("{\"name\":\"a\"} x", JSON, NULL, m, sizeof(m)), CRM_EJSON);
    assert_int_equal(validate("{\"name\":\"\xff\"}", JSON, NULL, m, sizeof(m)), CRM_EJSON);
}

static void
test_valid_unknown_field(void **state)
{
    char m[128];

    (void)state;
    assert_int_equal(validate("{\"name\":\"a\",\"nmae\":\"b\"}", JSON, "nmae", m, sizeof(m)),
                     CRM_EINVAL);
    assert_string_equal(m, "unknown field");
}

static void
test_valid_required_and_types(void **state)
{
    char m[128];

    (void)state;
    assert_int_equal(validate("{}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "is required");
    assert_int_equal(validate("{\"name\":5}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "must be a string");
    assert_int_equal(validate("{\"name\":\"a\",\"active\":1}", JSON, "active", m, sizeof(m)),
                     CRM_EINVAL);
    assert_string_equal(m, "must be true or false");
    assert_int_equal(validate("{\"name\":\"a\",\"owner_id\":1.5}", JSON, "owner_id", m, sizeof(m)),
                     CRM_EINVAL);
    assert_string_equal(m, "must be a positive integer");
    assert_int_equal(validate("{\"name\":null}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "must not be null");
}

static void
test_valid_lengths_count_characters(void **state)
{
    char m[128];

    (void)state;
    /* Five two-byte characters are five characters, not ten. */
    assert_int_equal(validate("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", JSON, NULL,
                              m, sizeof(m)),
                     CRM_OK);
    assert_int_equal(validate("{\"name\":\"abcdef\"}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "must be 1 to 5 characters long");
    assert_int_equal(validate("{\"name\":\"   \"}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
}

static void
test_valid_enum_and_email(void **state)
{
    char m[128];

    (void)state;
    assert_int_equal(validate("{\"name\":\"a\",\"role\":\"admin\"}", JSON, "role", m, sizeof(m)),
                     CRM_EINVAL);
    assert_string_equal(m, "is not one of the allowed values");
    assert_int_equal(validate("{\"name\":\"a\",\"email\":\"a.b.c\"}", JSON, "email", m, sizeof(m)),
                     CRM_EINVAL);
    assert_string_equal(m, "must be a valid e-mail address");
    assert_int_equal(crm_valid_email("ana@example.com"), CRM_OK);
    assert_int_equal(crm_valid_email("ana@@example.com"), CRM_EINVAL);
    assert_int_equal(crm_valid_email("ana@example"), CRM_EINVAL);
    assert_int_equal(crm_valid_email("a na@example.com"), CRM_EINVAL);
    assert_int_equal(crm_valid_email("@example.com"), CRM_EINVAL);
}

static void
test_valid_duplicate_member(void **state)
{
    char m[128];

    (void)state;
    assert_int_equal(validate("{\"name\":\"a\",\"name\":\"b\"}", JSON, "name", m, sizeof(m)),
                     CRM_EINVAL);
    assert_string_equal(m, "appears more than once");
}

/* cJSON ends its C strings at a NUL: the value would be cut short, so it is refused. */
static void
test_valid_refuses_nul(void **state)
{
    static const char raw[] = "{\"email\":\"a@b.co\",\"name\":\"a\0b\"}";
    static const char trail[] = "{\"name\":\"ab\",\"role\":[\"x\",\"\0\"]}";
    char m[128];

    (void)state;
    assert_int_equal(validate("{\"name\":\"a\\u0000b\"}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "must not contain a NUL character");
    assert_int_equal(validate_len(raw, sizeof(raw) - 1, JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "must not contain a NUL character");
    /* In a member that fails anyway, and in a key: the member is named. */
    assert_int_equal(validate_len(trail, sizeof(trail) - 1, JSON, "role", m, sizeof(m)),
                     CRM_EINVAL);
    assert_string_equal(m, "must not contain a NUL character");
    assert_int_equal(validate("{\"name\\u0000x\":\"a\"}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "must not contain a NUL character");
    /* An escaped backslash before u0000 is text, and other escapes are fine. */
    assert_int_equal(validate("{\"name\":\"\\\\u0000\"}", JSON, "name", m, sizeof(m)), CRM_EINVAL);
    assert_string_equal(m, "must be 1 to 5 characters long");
    assert_int_equal(validate("{\"name\":\"a\\u0001\\\"\\n\"}", JSON, "name", m, sizeof(m)),
                     CRM_OK);
}

/* What PostgreSQL stores and gives back unchanged: offsets to +-15:59, years 1-9999 in UTC. */
static void
test_valid_time_range(void **state)
{
    static const char *const good[] = {
        "2026-11-24T18:30:00Z",           "2026-11-24T18:30:00.123456789+02:00",
        "2020-01-01T00:00:00+15:59",      "2020-01-01T00:00:00-15:59",
        "0001-01-01T00:00:00Z",           "0001-01-01T00:00:00-01:00",
        "0001-01-01T15:58:00+15:58",      "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59.999999000Z", "9999-12-31T23:59:59+00:00",
        "9999-12-31T08:00:59-15:59",      "2024-02-29T23:59:59.5+02:00",
    };
    static const char *const bad[] = {
        "2020-01-01T00:00:00+23:00",      "2020-01-01T00:00:00+16:00",
        "2020-01-01T00:00:00-16:00",      "2020-01-01T00:00:00+15:60",
        "0001-01-01T00:00:00+01:00",      "0001-01-01T15:57:59.999999+15:58",
        "0000-12-31T23:59:59Z",           "9999-12-31T23:59:59-15:59",
        "9999-12-31T23:59:59-00:01",      "9999-12-31T23:59:59.9999995Z",
        "9999-12-31T23:59:59.999999001Z", "2026-02-29T00:00:00Z",
        "2026-11-24T24:00:00Z",           "2026-11-24T18:30:00",
        "2026-11-24T18:30:00.Z",          "2026-11-24T18:30:00.1234567890Z",
        "2026-11-24T18:30:00+0200",       "2026-11-24T18:30:00Zx",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(crm_valid_time(good[i], 0), CRM_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (crm_valid_time(bad[i], 0) != CRM_EINVAL)
            fail_msg("accepted %s", bad[i]);
    assert_int_equal(crm_valid_time("0001-01-01", 1), CRM_OK);
    assert_int_equal(crm_valid_time("9999-12-31", 1), CRM_OK);
    assert_int_equal(crm_valid_time("9999-12-31", 0), CRM_EINVAL);
    assert_int_equal(crm_valid_time("0000-12-31", 1), CRM_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_accepts_good_body),
        cmocka_unit_test(test_valid_body_errors),
        cmocka_unit_test(test_valid_unknown_field),
        cmocka_unit_test(test_valid_required_and_types),
        cmocka_unit_test(test_valid_lengths_count_characters),
        cmocka_unit_test(test_valid_enum_and_email),
        cmocka_unit_test(test_valid_duplicate_member),
        cmocka_unit_test(test_valid_refuses_nul),
        cmocka_unit_test(test_valid_time_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
