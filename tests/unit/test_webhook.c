/* test_webhook.c: the addresses webhooks may reach, the URL check, and the delivery signature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <string.h>

#include "webhook.h"

/* Whether text (an IPv4 or IPv6 address) is refused under allow. */
static int
refused(const char *text, const char *allow)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};

    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1)
        return crm_webhook_addr_refused((struct sockaddr *)&v4, allow);
    assert_int_equal(inet_pton(AF_INET6, text, &v6.sin6_addr), 1);
    return crm_webhook_addr_refused((struct sockaddr *)&v6, allow);
}

static void
test_private_addresses_are_refused(void **state)
{
    static const char *const bad[] = {
        "127.0.0.1",
        "127.255.0.9",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.7",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "fc00::2",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "ff02::1",
        "2001:db8::1",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!refused(bad[i], ""))
            fail_msg("%s is not refused", bad[i]);
}

static void
test_public_addresses_pass(void **state)
{
    static const char *const good[] = {"93.184.216.34", "8.8.8.8",         "172.32.0.1",
                                       "11.0.0.1",      "2606:4700::1111", "::ffff:8.8.8.8"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (refused(good[i], ""))
            fail_msg("%s is refused", good[i]);
}

static void
test_allowed_networks_let_private_ones_through(void **state)
{
    (void)state;
    assert_false(refused("127.0.0.1", "127.0.0.0/8"));
    assert_false(refused("10.1.2.3", "192.168.0.0/16, 10.1.2.0/24"));
    assert_true(refused("10.1.3.3", "192.168.0.0/16, 10.1.2.0/24"));
    assert_false(refused("10.9.9.9", "10.9.9.9"));
    assert_true(refused("10.9.9.8", "10.9.9.9"));
    assert_false(refused("fd00::5", "fd00::/8"));
    assert_true(refused("::1", "127.0.0.0/8")); /* an IPv4 network holds no IPv6 address */
    assert_true(refused("169.254.169.254", "127.0.0.0/8 ::1"));
}

static void
test_url_check(void **state)
{
    char why[256];

    (void)state;
    /* A name resolving to a refused address is refused: localhost is 127.0.0.1 (and ::1). */
    assert_int_equal(crm_webhook_url_check("http://localhost/hook", "", why, sizeof(why)), -1);
    assert_non_null(strstr(why, "WEBHOOK_ALLOW_NETS"));
    assert_int_equal(crm_webhook_url_check("http://127.0.0.1:9/x", "", why, sizeof(why)), -1);
    assert_int_equal(crm_webhook_url_check("http://127.0.0.1:9/x", "127.0.0.0/8", why, sizeof(why)),
                     0);
    assert_int_equal(crm_webhook_url_check("http://[::1]/", "", why, sizeof(why)), -1);
    assert_int_equal(crm_webhook_url_check("http://0x7f000001/", "", why, sizeof(why)), -1);
    assert_int_equal(crm_webhook_url_check("http://2130706433/", "", why, sizeof(why)), -1);
    assert_int_equal(crm_webhook_url_check("file:///etc/passwd", "", why, sizeof(why)), -1);
    assert_int_equal(crm_webhook_url_check("gopher://8.8.8.8/", "", why, sizeof(why)), -1);
    assert_int_equal(crm_webhook_url_check("http://u:p@8.8.8.8/", "", why, sizeof(why)), -1);
    assert_int_equal(crm_webhook_url_check("https://8.8.8.8/hook?a=1", "", why, sizeof(why)), 0);
}

static void
test_signature_matches_independent_vector(void **state)
{
    char sig[68];

    (void)state;
    /* Python: hmac.new(b"whsec_test", b'1700000000.{"id":1}', hashlib.sha256).hexdigest() */
    assert_int_equal(crm_webhook_sign("whsec_test", 1700000000, "{\"id\":1}", sig), 0);
    assert_string_equal(sig, "v1=2f441ba4b3b2d50d28a9ab9d9fd8880376ecd1eb5d0435401553f5d8d0a5dcf8");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_addresses_are_refused),
        cmocka_unit_test(test_public_addresses_pass),
        cmocka_unit_test(test_allowed_networks_let_private_ones_through),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_signature_matches_independent_vector),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
