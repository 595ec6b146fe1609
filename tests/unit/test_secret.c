/* test_secret.c: secrets handed out once (lib/secret.h) and the shape of an API token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "auth.h"
#include "secret.h"

static void
test_secret_hash_is_sha256_hex(void **state)
{
    char h[CRM_SECRET_HASH];

    (void)state;
    assert_int_equal(crm_secret_hash("abc", h), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void
test_secret_new_has_prefix_and_its_hash(void **state)
{
    char a[CRM_SECRET_MAX], b[CRM_SECRET_MAX], ha[CRM_SECRET_HASH], hb[CRM_SECRET_HASH],
        check[CRM_SECRET_HASH];

    (void)state;
    assert_int_equal(crm_secret_new(CRM_API_TOKEN_PREFIX, a, sizeof(a), ha), 0);
    assert_int_equal(crm_secret_new(CRM_API_TOKEN_PREFIX, b, sizeof(b), hb), 0);
    assert_int_equal(strlen(a), strlen(CRM_API_TOKEN_PREFIX) + 43);
    assert_int_equal(strncmp(a, CRM_API_TOKEN_PREFIX, strlen(CRM_API_TOKEN_PREFIX)), 0);
    assert_int_equal(crm_auth_api_token_shaped(a), 1);
    assert_string_not_equal(a, b);
    assert_int_equal(crm_secret_hash(a, check), 0);
    assert_string_equal(ha, check);
    /* Too small a buffer is refused, not truncated. */
    assert_int_equal(crm_secret_new(CRM_API_TOKEN_PREFIX, a, 20, ha), -1);
}

static void
test_api_token_shape(void **state)
{
    (void)state;
    assert_int_equal(
        crm_auth_api_token_shaped("crm_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 1);
    assert_int_equal(
        crm_auth_api_token_shaped("crm_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
    assert_int_equal(
        crm_auth_api_token_shaped("crm_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
    assert_int_equal(
        crm_auth_api_token_shaped("crm_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), 0);
    assert_int_equal(
        crm_auth_api_token_shaped("crm_pax_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 0);
    assert_int_equal(crm_auth_api_token_shaped("eyJhbGciOiJIUzI1NiJ9.e30.sig"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_hash_is_sha256_hex),
        cmocka_unit_test(test_secret_new_has_prefix_and_its_hash),
        cmocka_unit_test(test_api_token_shape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
