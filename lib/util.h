/* util.h: small helpers shared by every module: ids, numbers, time, base64url, randomness. */
#ifndef CRM_UTIL_H
#define CRM_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Writes id in decimal into buf. Returns 0, or -1 when buf is too small. */
int crm_fmt_id(char *buf, size_t sz, int64_t id);

/* Parses a positive decimal id (1..INT64_MAX, digits only). Returns 0, or -1. */
int crm_parse_id(const char *s, int64_t *out);

/* Parses a decimal integer in [lo, hi] (digits with an optional '-'). Returns 0, or -1. */
int crm_parse_int(const char *s, long long lo, long long hi, long long *out);

/* Fills buf with n random bytes from the kernel. Returns 0, or -1. */
int crm_random(void *buf, size_t n);

/* Writes 2*n lowercase hex digits of n random bytes and a NUL into buf (sz >= 2n+1). 0 or -1. */
int crm_random_hex(char *buf, size_t sz, size_t n);

/*
 * Base64url without padding (RFC 7515). encode: writes a NUL-terminated string, returns its
 * length or -1 when out is too small. decode: returns the decoded length, or -1 on a character
 * outside the alphabet, an impossible length, or an output buffer too small.
 */
long crm_b64url_encode(const unsigned char *in, size_t n, char *out, size_t outsz);
long crm_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz);

/* Returns 1 when the n bytes at s are well-formed UTF-8 (no overlongs, no surrogates), else 0. */
int crm_utf8_valid(const char *s, size_t n);

/* Number of code points in the NUL-terminated UTF-8 string s. */
size_t crm_utf8_len(const char *s);

#endif
