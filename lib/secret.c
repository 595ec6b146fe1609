/* secret.c: random secrets with a recognisable prefix, and their SHA-256. */
#include "secret.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "util.h"

int
crm_secret_new(const char *prefix, char *out, size_t outsz, char hash[CRM_SECRET_HASH])
{
    unsigned char raw[32];
    size_t n = strlen(prefix);
    int rc = -1;

    if (n < outsz && crm_random(raw, sizeof(raw)) == 0) {
        memcpy(out, prefix, n);
        if (crm_b64url_encode(raw, sizeof(raw), out + n, outsz - n) > 0)
            rc = crm_secret_hash(out, hash);
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

int
crm_secret_hash(const char *s, char hash[CRM_SECRET_HASH])
{
    unsigned char md[32];
    unsigned int len = 0;

    if (EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL) != 1 || len != sizeof(md))
        return -1;
    for (unsigned int i = 0; i < len; i++)
        snprintf(hash + 2 * i, 3, "%02x", md[i]);
    return 0;
}
