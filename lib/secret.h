/* secret.h: secrets handed out once (API tokens, password reset links) and kept only hashed. */
#ifndef CRM_SECRET_H
#define CRM_SECRET_H

#include <stddef.h>

/* A secret's text at most (prefix included), and its hash's: 64 hex digits and a NUL. */
#define CRM_SECRET_MAX 96
#define CRM_SECRET_HASH 65

/*
 * A new secret into out: prefix, then 256 random bits from the kernel in base64url (43
 * characters), so that a secret scanner recognises it by its prefix; its hash into hash.
 * Returns 0, or -1 (no randomness, or out too small).
 */
int crm_secret_new(const char *prefix, char *out, size_t outsz, char hash[CRM_SECRET_HASH]);

/*
 * The SHA-256 of the text s in lowercase hex: what the database keeps of a secret, and what a
 * presented one is looked up by. A plain hash suffices: the secret has 256 random bits, so there
 * is nothing to guess from it. Returns 0, or -1.
 */
int crm_secret_hash(const char *s, char hash[CRM_SECRET_HASH]);

#endif
