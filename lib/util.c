/* util.c: number parsing with full checks, randomness, base64url and UTF-8 checks. */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int
crm_fmt_id(char *buf, size_t sz, int64_t id)
{
    int n = snprintf(buf, sz, "%" PRId64, id);

    return (n < 0 || (size_t)n >= sz) ? -1 : 0;
}

int
crm_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    if (s == NULL || s[0] == '\0' || (s[0] != '-' && (s[0] < '0' || s[0] > '9')))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int
crm_parse_id(const char *s, int64_t *out)
{
    long long v;

    if (s == NULL || s[0] == '-' || crm_parse_int(s, 1, INT64_MAX, &v) != 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int
crm_random(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int
crm_random_hex(char *buf, size_t sz, size_t n)
{
    unsigned char raw[64];
    static const char hex[] = "0123456789abcdef";

    if (n > sizeof(raw) || sz < 2 * n + 1 || crm_random(raw, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
    }
    buf[2 * n] = '\0';
    return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

long
crm_b64url_encode(const unsigned char *in, size_t n, char *out, size_t outsz)
{
    size_t o = 0;

    if (outsz < (n * 4 + 2) / 3 + 1)
        return -1;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = n - i;

        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (left > 1)
            out[o++] = b64[(v >> 6) & 63];
        if (left > 2)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return (long)o;
}

static int
b64val(char c)
{
    const char *p = c != '\0' ? strchr(b64, c) : NULL;

    return p == NULL ? -1 : (int)(p - b64);
}

long
crm_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (n % 4 == 1 || outsz < n * 3 / 4)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64val(in[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero, so each token has exactly one encoding. */
    if (acc != 0)
        return -1;
    return (long)o;
}

int
crm_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07;
        else
            return 0;
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += len;
    }
    return 1;
}

size_t
crm_utf8_len(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}
