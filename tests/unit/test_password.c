/* test_password.c: bcrypt through crypt_r, and hashes made by Node's bcryptjs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "password.h"

/* Made with bcryptjs 2.4.3: hashSync("correct horse", 4), and a $2b$ salt for "Tr0ub4dor&3". */
static const char bcryptjs_2a[] = "$2a$04$7UnsMYqm0KNQzH1nR64jHuiRZFH5CsyA8zy2AuQtL/7KO2niDV7u2";
static const char bcryptjs_2b[] = "$2b$05$snzAwZfRC20VqgLtekhsTey7ZAc1rhVvjYJOQMSLYn4/4zmJLWpwa";

static void
test_password_bcryptjs_2a_verifies(void **state)
{
    (void)state;
    assert_int_equal(crm_password_verify("correct horse", bcryptjs_2a), 1);
    assert_int_equal(crm_password_verify("correct horsE", bcryptjs_2a), 0);
}

static void
test_password_bcryptjs_2b_verifies(void **state)
{
    (void)state;
    assert_int_equal(crm_password_verify("Tr0ub4dor&3", bcryptjs_2b), 1);
    assert_int_equal(crm_password_verify("Tr0ub4dor&4", bcryptjs_2b), 0);
}

static void
test_password_hash_is_2b_with_cost(void **state)
{
    char h[CRM_HASH_MAX];

    (void)state;
    assert_int_equal(crm_password_hash("s3cret-pass", 5, h, sizeof(h)), CRM_OK);
    assert_int_equal(strncmp(h, "$2b$05$", 7), 0);
    assert_int_equal(strlen(h), 60);
    assert_int_equal(crm_password_verify("s3cret-pass", h), 1);
    assert_int_equal(crm_password_verify("s3cret-pasS", h), 0);
}

static void
test_password_salts_differ(void **state)
{
    char a[CRM_HASH_MAX], b[CRM_HASH_MAX];

    (void)state;
    assert_int_equal(crm_password_hash("same", 4, a, sizeof(a)), CRM_OK);
    assert_int_equal(crm_password_hash("same", 4, b, sizeof(b)), CRM_OK);
    assert_string_not_equal(a, b);
}

static void
test_password_malformed_hash_never_matches(void **state)
{
    (void)state;
    assert_int_equal(crm_password_verify("", ""), 0);
    assert_int_equal(crm_password_verify("x", "*0"), 0);
    assert_int_equal(crm_password_verify("x", "$1$abcdefgh$"), 0);
    assert_int_equal(crm_password_verify("x", "$2b$04$short"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_bcryptjs_2a_verifies),
        cmocka_unit_test(test_password_bcryptjs_2b_verifies),
        cmocka_unit_test(test_password_hash_is_2b_with_cost),
        cmocka_unit_test(test_password_salts_differ),
        cmocka_unit_test(test_password_malformed_hash_never_matches),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
