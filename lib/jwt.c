/* jwt.c: HS256 tokens with OpenSSL HMAC; nothing but HS256 is ever accepted. */
#include "jwt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"

#define HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" /* {"alg":"HS256","typ":"JWT"} */

int
crm_jwt_hs256(const unsigned char *key, size_t keylen, const char *data, size_t n,
              unsigned char out[32])
{
    unsigned int len = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, n, out, &len) == NULL ||
        len != 32)
        return -1;
    return 0;
}

int
crm_jwt_hs256_ok(const unsigned char *key, size_t keylen, const char *data, size_t n,
                 const char *mac, size_t maclen)
{
    unsigned char want[32], got[32];

    if (crm_b64url_decode(mac, maclen, got, sizeof(got)) != 32 ||
        crm_jwt_hs256(key, keylen, data, n, want) != 0)
        return 0;
    /* Constant time: a timing leak would give the MAC away byte by byte. */
    return CRYPTO_memcmp(got, want, sizeof(want)) == 0;
}

enum crm_err
crm_jwt_sign(const unsigned char *key, size_t keylen, const struct crm_jwt_claims *c, char *out,
             size_t outsz)
{
    char payload[256];
    unsigned char sig[32];
    int n;
    long len;

    n = snprintf(payload, sizeof(payload),
                 "{\"sub\":\"%" PRId64 "\",\"role\":\"%s\",\"iat\":%" PRId64 ",\"exp\":%" PRId64
                 ",\"ep\":%" PRId64 "}",
                 c->sub, c->role, c->iat, c->exp, c->ep);
    if (n < 0 || (size_t)n >= sizeof(payload) || strpbrk(c->role, "\"\\") != NULL)
        return CRM_EINTERNAL;
    n = snprintf(out, outsz, "%s.", HEADER_B64);
    if (n < 0 || (size_t)n >= outsz)
        return CRM_EINTERNAL;
    len = crm_b64url_encode((const unsigned char *)payload, strlen(payload), out + n, outsz - n);
    if (len < 0)
        return CRM_EINTERNAL;
    n += (int)len;
    if (crm_jwt_hs256(key, keylen, out, (size_t)n, sig) != 0 || (size_t)n + 1 >= outsz)
        return CRM_EINTERNAL;
    out[n++] = '.';
    if (crm_b64url_encode(sig, sizeof(sig), out + n, outsz - n) < 0)
        return CRM_EINTERNAL;
    return CRM_OK;
}

/* Decodes one base64url part into a parsed JSON object; NULL when it is not one. */
static cJSON *
part_json(const char *s, size_t n)
{
    unsigned char buf[CRM_JWT_MAX];
    long len = crm_b64url_decode(s, n, buf, sizeof(buf));
    cJSON *j;

    if (len <= 0)
        return NULL;
    j = cJSON_ParseWithLength((const char *)buf, (size_t)len);
    if (j != NULL && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int
header_ok(const char *s, size_t n)
{
    cJSON *h = part_json(s, n);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    /* Only HS256: "none" and every other alg are refused, so no algorithm confusion. */
    int ok = cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0;

    cJSON_Delete(h);
    return ok;
}

/* A time claim: a number of seconds from 0 to 9e15, well inside int64_t for the cast. */
static int
seconds(const cJSON *item)
{
    return cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble <= 9e15;
}

static int
claims_from(const char *s, size_t n, struct crm_jwt_claims *c)
{
    cJSON *p = part_json(s, n);
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(p, "sub");
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(p, "role");
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(p, "iat");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(p, "exp");
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(p, "ep");
    int rc = -1;

    /* A token made before epochs existed has none: it belongs to epoch 0, every user's first. */
    if (!cJSON_IsString(sub) || crm_parse_id(sub->valuestring, &c->sub) != 0 || !seconds(exp) ||
        (iat != NULL && !seconds(iat)) || (ep != NULL && !seconds(ep)))
        goto out;
    c->exp = (int64_t)exp->valuedouble;
    c->iat = iat != NULL ? (int64_t)iat->valuedouble : 0;
    c->ep = ep != NULL ? (int64_t)ep->valuedouble : 0;
    c->role[0] = '\0';
    if (cJSON_IsString(role) && strlen(role->valuestring) < sizeof(c->role))
        memcpy(c->role, role->valuestring, strlen(role->valuestring) + 1);
    rc = 0;
out:
    cJSON_Delete(p);
    return rc;
}

enum crm_err
crm_jwt_verify(const unsigned char *key, size_t keylen, const char *token, int64_t now,
               struct crm_jwt_claims *out)
{
    const char *dot1, *dot2;
    struct crm_jwt_claims c;
    size_t len;

    if (token == NULL || (len = strlen(token)) >= CRM_JWT_MAX ||
        (dot1 = strchr(token, '.')) == NULL || (dot2 = strchr(dot1 + 1, '.')) == NULL ||
        strchr(dot2 + 1, '.') != NULL)
        return CRM_EAUTH;
    if (!crm_jwt_hs256_ok(key, keylen, token, (size_t)(dot2 - token), dot2 + 1,
                          len - (size_t)(dot2 + 1 - token)))
        return CRM_EAUTH;
    if (!header_ok(token, (size_t)(dot1 - token)) ||
        claims_from(dot1 + 1, (size_t)(dot2 - dot1 - 1), &c) != 0 || c.exp <= now)
        return CRM_EAUTH;
    *out = c;
    return CRM_OK;
}
