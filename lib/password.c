/* password.c: crypt_r with $2b$ salts; bcryptjs's $2a$ hashes verify unchanged. */
#include "password.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

enum crm_err
crm_password_hash(const char *pw, int cost, char *out, size_t outsz)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;
    enum crm_err err = CRM_EINTERNAL;
    const char *h;
    size_t n;

    /* A NULL random source makes libcrypt read the kernel's. */
    if (crypt_gensalt_rn("$2b$", (unsigned long)cost, NULL, 0, salt, sizeof(salt)) == NULL)
        return CRM_EINTERNAL;
    if ((cd = calloc(1, sizeof(*cd))) == NULL)
        return CRM_ENOMEM;
    h = crypt_r(pw, salt, cd);
    if (h != NULL && h[0] == '$' && (n = strlen(h)) < outsz) {
        memcpy(out, h, n + 1);
        err = CRM_OK;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return err;
}

int
crm_password_verify(const char *pw, const char *hash)
{
    struct crypt_data *cd;
    const char *h;
    int ok = 0;

    if (strncmp(hash, "$2a$", 4) != 0 && strncmp(hash, "$2b$", 4) != 0 &&
        strncmp(hash, "$2y$", 4) != 0)
        return 0;
    if ((cd = calloc(1, sizeof(*cd))) == NULL)
        return 0;
    h = crypt_r(pw, hash, cd);
    /* crypt_r returns "*0"-style failure tokens, never equal to a real hash. */
    if (h != NULL && h[0] == '$' && strlen(h) == strlen(hash))
        ok = CRYPTO_memcmp(h, hash, strlen(hash)) == 0;
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}
