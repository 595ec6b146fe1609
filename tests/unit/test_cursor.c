/* test_cursor.c: keyset cursors round-trip, and are refused when altered or used elsewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "cursor.h"

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef";
#define SLEN 32
#define BIND                                                                                       \
    "lead_list:value\x1f"                                                                          \
    "7"

/* Made with Python's hmac, base64 and json modules, independently of ours. */
static const char vector[] = "WyIxMjUwLjUwIiwiNDIiXQ.Lg7AuSqTjJh2Zcg9aUKBPyHZx7REKcJlhm8c1yuBrPQ";

static void
test_cursor_matches_independent_vector(void **state)
{
    char out[CRM_CURSOR_MAX];
    struct crm_arena a = {0};
    const char *key, *id;

    (void)state;
    assert_int_equal(crm_cursor_make(secret, SLEN, BIND, "1250.50", "42", out, sizeof(out)), 0);
    assert_string_equal(out, vector);
    assert_int_equal(crm_cursor_read(secret, SLEN, BIND, vector, &a, &key, &id), 0);
    assert_string_equal(key, "1250.50");
    assert_string_equal(id, "42");
    crm_arena_reset(&a);
}

static void
test_cursor_round_trip_with_any_key(void **state)
{
    static const char name[] = "Zoë \"Quist\" \\ ünïcode, 100%";
    char out[CRM_CURSOR_MAX];
    struct crm_arena a = {0};
    const char *key, *id;

    (void)state;
    assert_int_equal(crm_cursor_make(secret, SLEN, "b", name, "9", out, sizeof(out)), 0);
    assert_int_equal(crm_cursor_read(secret, SLEN, "b", out, &a, &key, &id), 0);
    assert_string_equal(key, name);
    assert_string_equal(id, "9");
    /* Too small a buffer is an error, never a truncated cursor. */
    assert_int_equal(crm_cursor_make(secret, SLEN, "b", name, "9", out, 40), -1);
    crm_arena_reset(&a);
}

static void
test_cursor_refused(void **state)
{
    static const unsigned char other[] = "1123456789abcdef0123456789abcdef";
    char bad[sizeof(vector)];
    struct crm_arena a = {0};
    const char *key, *id;

    (void)state;
    /* Another query, another secret. */
    assert_int_equal(crm_cursor_read(secret, SLEN,
                                     "lead_list:-value\x1f"
                                     "7",
                                     vector, &a, &key, &id),
                     -1);
    assert_int_equal(crm_cursor_read(other, SLEN, BIND, vector, &a, &key, &id), -1);
    /* A changed byte anywhere in the payload or the MAC. */
    for (size_t i = 0; i < strlen(vector); i++) {
        if (vector[i] == '.')
            continue;
        memcpy(bad, vector, sizeof(vector));
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(crm_cursor_read(secret, SLEN, BIND, bad, &a, &key, &id), -1);
    }
    assert_int_equal(crm_cursor_read(secret, SLEN, BIND, "", &a, &key, &id), -1);
    assert_int_equal(crm_cursor_read(secret, SLEN, BIND, ".", &a, &key, &id), -1);
    assert_int_equal(crm_cursor_read(secret, SLEN, BIND, "WyIxMjUwLjUwIiwiNDIiXQ", &a, &key, &id),
                     -1);
    crm_arena_reset(&a);
}

static void
test_cursor_signed_payload_must_be_key_and_id(void **state)
{
    char out[CRM_CURSOR_MAX];
    struct crm_arena a = {0};
    const char *key, *id;

    (void)state;
    /* Properly signed, but the id is not an id: still refused. */
    assert_int_equal(crm_cursor_make(secret, SLEN, BIND, "1", "0", out, sizeof(out)), 0);
    assert_int_equal(crm_cursor_read(secret, SLEN, BIND, out, &a, &key, &id), -1);
    assert_int_equal(crm_cursor_make(secret, SLEN, BIND, "1", "x1", out, sizeof(out)), 0);
    assert_int_equal(crm_cursor_read(secret, SLEN, BIND, out, &a, &key, &id), -1);
    crm_arena_reset(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_matches_independent_vector),
        cmocka_unit_test(test_cursor_round_trip_with_any_key),
        cmocka_unit_test(test_cursor_refused),
        cmocka_unit_test(test_cursor_signed_payload_must_be_key_and_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
