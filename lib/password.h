/* password.h: bcrypt ($2b$) hashing through libcrypt, compatible with Node's bcryptjs. */
#ifndef CRM_PASSWORD_H
#define CRM_PASSWORD_H

#include <stddef.h>

#include "err.h"

#define CRM_HASH_MAX 128

/* Hashes pw with a fresh random salt at cost (4..31) into out. CRM_OK, or CRM_EINTERNAL. */
enum crm_err crm_password_hash(const char *pw, int cost, char *out, size_t outsz);

/*
 * Returns 1 when pw matches hash ($2a$, $2b$ or $2y$ bcrypt), else 0; a malformed hash never
 * matches. The comparison of the computed hash is constant-time.
 */
int crm_password_verify(const char *pw, const char *hash);

#endif
