/*
 * fuzz_auth.c: the Authorization header and the JWT inside it. The first byte picks the path
 * (its value modulo 3):
 *  0: the rest is the Authorization header, through crm_auth_require as every handler calls it
 *     (the "Bearer" scheme, then crm_jwt_verify, or the shape of a personal API token). Its key
 *     is random for the run, so no input carries a valid MAC; a well-formed API token, which
 *     only the database can judge, is left out, so the database is never reached;
 *  1: the rest is a token's signing input (header.payload in base64url); the target signs it
 *     with a known key and appends the MAC, so that crm_jwt_verify goes on past the MAC to the
 *     base64url decoding of both parts, the header's alg and the claims;
 *  2: the same with the header's JSON, a newline and the claims' JSON, which the target encodes
 *     first: the mutations reach the JSON of the claims directly.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "config.h"
#include "fuzz.h"
#include "jwt.h"
#include "util.h"

#define NOW 1800000000

static const unsigned char key[] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";
#define KEYLEN 32
static struct crm_config cfg;

static void
header_path(const uint8_t *data, size_t size)
{
    struct crm_req req;
    char *h = fuzz_cstr(data, size);
    const char *bearer = h + (strncasecmp(h, "Bearer ", 7) == 0 ? 7 + strspn(h + 7, " ") : 0);

    if (crm_auth_api_token_shaped(bearer)) {
        free(h);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.cfg = &cfg;
    req.authorization = h;
    fuzz_check(crm_auth_require(&req, CRM_ROLES_ALL) == CRM_EAUTH, "no token gets in");
    fuzz_check(!req.authed, "nobody authenticated");
    crm_arena_reset(&req.arena);
    free(h);
}

/* Claims that verify sign again into a token that verifies to the same claims. */
static void
check_resign(const struct crm_jwt_claims *c)
{
    struct crm_jwt_claims back;
    char tok[CRM_JWT_MAX];

    if (strpbrk(c->role, "\"\\") != NULL || c->role[0] == '\0')
        return;
    if (crm_jwt_sign(key, KEYLEN, c, tok, sizeof(tok)) != CRM_OK)
        return;
    fuzz_check(crm_jwt_verify(key, KEYLEN, tok, NOW, &back) == CRM_OK,
               "a re-signed token verifies");
    fuzz_check(back.sub == c->sub && back.exp == c->exp && back.iat == c->iat && back.ep == c->ep &&
                   strcmp(back.role, c->role) == 0,
               "a re-signed token keeps its claims");
}

/* Signs the n bytes of input (header.payload), then verifies the token. */
static void
sign_verify(const char *input, size_t n)
{
    unsigned char mac[32];
    char *tok;
    struct crm_jwt_claims c;

    if (n >= CRM_JWT_MAX)
        return;
    if ((tok = malloc(n + 1 + 44)) == NULL)
        abort();
    memcpy(tok, input, n);
    if (crm_jwt_hs256(key, KEYLEN, tok, n, mac) != 0)
        abort();
    tok[n] = '.';
    fuzz_check(crm_b64url_encode(mac, sizeof(mac), tok + n + 1, 44) == 43,
               "a MAC encodes in 43 characters");
    memset(&c, 0, sizeof(c));
    if (crm_jwt_verify(key, KEYLEN, tok, NOW, &c) == CRM_OK) {
        fuzz_check(memchr(input, '\0', n) == NULL, "a verified token has no NUL");
        fuzz_check(c.sub > 0 && c.exp > NOW, "verified claims are a user and a future expiry");
        fuzz_check(memchr(c.role, '\0', sizeof(c.role)) != NULL, "the role is a C string");
        check_resign(&c);
    }
    free(tok);
}

/* header JSON, newline, claims JSON: encoded into a signing input, then signed and verified. */
static void
json_path(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char input[2 * CRM_JWT_MAX];
    size_t hlen;
    long a, b;

    if (nl == NULL || size >= CRM_JWT_MAX)
        return;
    hlen = (size_t)(nl - data);
    a = crm_b64url_encode(data, hlen, input, sizeof(input));
    fuzz_check(a >= 0, "the header encodes");
    input[a] = '.';
    b = crm_b64url_encode(nl + 1, size - hlen - 1, input + a + 1, sizeof(input) - (size_t)a - 1);
    fuzz_check(b >= 0, "the claims encode");
    sign_verify(input, (size_t)(a + 1 + b));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (crm_random_hex(cfg.jwt_secret, sizeof(cfg.jwt_secret), 32) != 0)
        abort();
    cfg.jwt_secret_len = strlen(cfg.jwt_secret);
    cfg.jwt_ttl = 3600;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 3 == 0)
        header_path(data + 1, size - 1);
    else if (data[0] % 3 == 1)
        sign_verify((const char *)data + 1, size - 1);
    else
        json_path(data + 1, size - 1);
    return 0;
}
