/* jwt.h: HS256 JSON Web Tokens, made at login and checked on every request. */
#ifndef CRM_JWT_H
#define CRM_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CRM_JWT_MAX 1024

struct crm_jwt_claims {
    int64_t sub;
    char role[32];
    int64_t iat, exp;
    int64_t ep; /* the user's token epoch when it was made (lib/auth.h); 0 when absent */
};

/*
 * Writes a token for c signed with key into out. Returns CRM_OK, or CRM_EINTERNAL when out is
 * too small or the MAC cannot be computed.
 */
enum crm_err crm_jwt_sign(const unsigned char *key, size_t keylen, const struct crm_jwt_claims *c,
                          char *out, size_t outsz);

/*
 * Checks token: three base64url parts, a header whose alg is exactly HS256, a MAC equal to ours
 * (compared in constant time), a numeric sub, and exp later than now. Returns CRM_OK with *out
 * filled, or CRM_EAUTH for any failure.
 */
enum crm_err crm_jwt_verify(const unsigned char *key, size_t keylen, const char *token, int64_t now,
                            struct crm_jwt_claims *out);

/* HMAC-SHA256 of n bytes of data under key into out. Returns 0, or -1. */
int crm_jwt_hs256(const unsigned char *key, size_t keylen, const char *data, size_t n,
                  unsigned char out[32]);

/*
 * 1 when the base64url text mac (maclen bytes) is the HMAC-SHA256 of n bytes of data under key,
 * compared in constant time; else 0. Tokens and list cursors (lib/cursor.h) are checked with it.
 */
int crm_jwt_hs256_ok(const unsigned char *key, size_t keylen, const char *data, size_t n,
                     const char *mac, size_t maclen);

#endif
