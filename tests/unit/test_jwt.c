/* test_jwt.c: HS256 signing and every way a token must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "jwt.h"
#include "util.h"

static const unsigned char key[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN 32
#define NOW 1800000000

/* Made with Python's hmac module, an implementation independent of ours. */
static const char good[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiI0MiIsInJvbGUiOiJBRE1JTiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ."
    "5-8SPW2s4Z4zYSbW9gDPRULmTRk4pQdd7YoioR18Zrs";

/* RFC 7515 appendix A.1: the published HS256 example (JWS signing input, key, signature). */
static void
test_jwt_rfc7515_vector(void **state)
{
    static const char input[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                                "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcG"
                                "xlLmNvbS9pc19yb290Ijp0cnVlfQ";
    static const char jwk[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    unsigned char k[64], mac[32];
    char b64[64];
    long klen = crm_b64url_decode(jwk, strlen(jwk), k, sizeof(k));

    (void)state;
    assert_int_equal(klen, 64);
    assert_int_equal(crm_jwt_hs256(k, (size_t)klen, input, strlen(input), mac), 0);
    assert_int_equal(crm_b64url_encode(mac, sizeof(mac), b64, sizeof(b64)), 43);
    assert_string_equal(b64, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
}

static void
test_jwt_verifies_foreign_token(void **state)
{
    struct crm_jwt_claims c;

    (void)state;
    assert_int_equal(crm_jwt_verify(key, KEYLEN, good, NOW, &c), CRM_OK);
    assert_int_equal(c.sub, 42);
    assert_string_equal(c.role, "ADMIN");
    assert_int_equal(c.exp, 4102444800LL);
    /* A token without "ep" (made before token epochs) is of epoch 0. */
    assert_int_equal(c.ep, 0);
}

static void
test_jwt_sign_then_verify(void **state)
{
    struct crm_jwt_claims in = {.sub = 7, .role = "MANAGER", .iat = NOW, .exp = NOW + 60, .ep = 3},
                          out;
    char tok[CRM_JWT_MAX];

    (void)state;
    assert_int_equal(crm_jwt_sign(key, KEYLEN, &in, tok, sizeof(tok)), CRM_OK);
    assert_int_equal(crm_jwt_verify(key, KEYLEN, tok, NOW + 59, &out), CRM_OK);
    assert_int_equal(out.sub, 7);
    assert_string_equal(out.role, "MANAGER");
    assert_int_equal(out.ep, 3);
}

static void
test_jwt_tampered_payload(void **state)
{
    char tok[sizeof(good)];
    struct crm_jwt_claims c;
    char *p;

    (void)state;
    memcpy(tok, good, sizeof(good));
    /* Flip one payload character: "sub":"42" becomes another value, the MAC stays. */
    p = strchr(tok, '.') + 10;
    *p = *p == 'A' ? 'B' : 'A';
    assert_int_equal(crm_jwt_verify(key, KEYLEN, tok, NOW, &c), CRM_EAUTH);
}

static void
test_jwt_wrong_key(void **state)
{
    static const unsigned char other[] = "fedcba9876543210fedcba9876543210";
    struct crm_jwt_claims c;

    (void)state;
    assert_int_equal(crm_jwt_verify(other, KEYLEN, good, NOW, &c), CRM_EAUTH);
}

static void
test_jwt_alg_none_refused(void **state)
{
    /* Unsigned, and also "signed" with our key while the header says none. */
    static const char unsigned_tok[] =
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
        "eyJzdWIiOiI0MiIsInJvbGUiOiJBRE1JTiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ.";
    static const char none_signed[] =
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
        "eyJzdWIiOiI0MiIsInJvbGUiOiJBRE1JTiIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ."
        "kD4H6n4zsEDchORDxpqwYjjYFWVQMBWWktBh7yvFuy8";
    struct crm_jwt_claims c;

    (void)state;
    assert_int_equal(crm_jwt_verify(key, KEYLEN, unsigned_tok, NOW, &c), CRM_EAUTH);
    assert_int_equal(crm_jwt_verify(key, KEYLEN, none_signed, NOW, &c), CRM_EAUTH);
}

static void
test_jwt_expired(void **state)
{
    static const char expired[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiI0MiIsInJvbGUiOiJBRE1JTiIsImlhdCI6MTAwMCwiZXhwIjoyMDAwfQ."
        "mlOJKScIiawmqBCasnp2Y5X-9AxZSWnmq950Vn_kElk";
    struct crm_jwt_claims c;

    (void)state;
    assert_int_equal(crm_jwt_verify(key, KEYLEN, expired, 1999, &c), CRM_OK);
    assert_int_equal(crm_jwt_verify(key, KEYLEN, expired, 2000, &c), CRM_EAUTH);
}

static void
test_jwt_malformed(void **state)
{
    struct crm_jwt_claims c;

    (void)state;
    assert_int_equal(crm_jwt_verify(key, KEYLEN, "", NOW, &c), CRM_EAUTH);
    assert_int_equal(crm_jwt_verify(key, KEYLEN, "a.b", NOW, &c), CRM_EAUTH);
    assert_int_equal(crm_jwt_verify(key, KEYLEN, "a.b.c.d", NOW, &c), CRM_EAUTH);
    assert_int_equal(crm_jwt_verify(key, KEYLEN, "!!.??.**", NOW, &c), CRM_EAUTH);
    assert_int_equal(crm_jwt_verify(key, KEYLEN, NULL, NOW, &c), CRM_EAUTH);
}

/* A token of header {"alg":"HS256"} and the claims JSON, signed with key, into out. */
static void
make_token(const char *claims, char *out, size_t outsz)
{
    unsigned char mac[32];
    long n = crm_b64url_encode((const unsigned char *)"{\"alg\":\"HS256\"}", 15, out, outsz);

    assert_true(n > 0);
    out[n++] = '.';
    n += crm_b64url_encode((const unsigned char *)claims, strlen(claims), out + n, outsz - n);
    assert_int_equal(crm_jwt_hs256(key, KEYLEN, out, (size_t)n, mac), 0);
    out[n++] = '.';
    assert_int_equal(crm_b64url_encode(mac, sizeof(mac), out + n, outsz - n), 43);
}

/*
 * iat, when given, is a number of seconds like exp: one beyond int64_t (1e300) made the cast
 * undefined (found by tests/fuzz/fuzz_auth, UBSan float-cast-overflow) and gave a garbage iat.
 */
static void
test_jwt_iat_out_of_range(void **state)
{
    char tok[CRM_JWT_MAX];
    struct crm_jwt_claims c;

    (void)state;
    make_token("{\"sub\":\"4\",\"iat\":1e300,\"exp\":4102444800}", tok, sizeof(tok));
    assert_int_equal(crm_jwt_verify(key, KEYLEN, tok, NOW, &c), CRM_EAUTH);
    make_token("{\"sub\":\"4\",\"iat\":-1e300,\"exp\":4102444800}", tok, sizeof(tok));
    assert_int_equal(crm_jwt_verify(key, KEYLEN, tok, NOW, &c), CRM_EAUTH);
    make_token("{\"sub\":\"4\",\"iat\":1700000000,\"exp\":4102444800}", tok, sizeof(tok));
    assert_int_equal(crm_jwt_verify(key, KEYLEN, tok, NOW, &c), CRM_OK);
    assert_int_equal(c.iat, 1700000000);
    make_token("{\"sub\":\"4\",\"exp\":4102444800}", tok, sizeof(tok));
    assert_int_equal(crm_jwt_verify(key, KEYLEN, tok, NOW, &c), CRM_OK);
    assert_int_equal(c.iat, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_rfc7515_vector),
        cmocka_unit_test(test_jwt_verifies_foreign_token),
        cmocka_unit_test(test_jwt_sign_then_verify),
        cmocka_unit_test(test_jwt_tampered_payload),
        cmocka_unit_test(test_jwt_wrong_key),
        cmocka_unit_test(test_jwt_alg_none_refused),
        cmocka_unit_test(test_jwt_expired),
        cmocka_unit_test(test_jwt_malformed),
        cmocka_unit_test(test_jwt_iat_out_of_range),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
