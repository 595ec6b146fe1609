/* fcgirec.c: FastCGI 1.0 records: parse, frame, and the name-value pairs of PARAMS. */
#include "fcgirec.h"

#include <string.h>

int
crm_fcgi_rec_parse(const unsigned char *buf, size_t n, struct crm_fcgi_rec *rec)
{
    size_t len, total;

    if (n < CRM_FCGI_HEADER)
        return 0;
    if (buf[0] != 1)
        return -1;
    len = (size_t)buf[4] << 8 | buf[5];
    total = CRM_FCGI_HEADER + len + buf[6];
    if (n < total)
        return 0;
    rec->type = buf[1];
    rec->id = (unsigned)buf[2] << 8 | buf[3];
    rec->content = buf + CRM_FCGI_HEADER;
    rec->len = len;
    rec->total = total;
    return 1;
}

static void
header(unsigned char *h, int type, unsigned id, size_t len)
{
    h[0] = 1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(id >> 8);
    h[3] = (unsigned char)id;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)len;
    h[6] = 0;
    h[7] = 0;
}

size_t
crm_fcgi_framed_size(size_t n)
{
    return n + CRM_FCGI_HEADER * ((n + CRM_FCGI_MAX_CONTENT - 1) / CRM_FCGI_MAX_CONTENT);
}

void
crm_fcgi_frame(unsigned char *out, unsigned id, const void *data, size_t n)
{
    const unsigned char *d = data;

    while (n > 0) {
        size_t part = n < CRM_FCGI_MAX_CONTENT ? n : CRM_FCGI_MAX_CONTENT;

        header(out, CRM_FCGI_STDOUT, id, part);
        memcpy(out + CRM_FCGI_HEADER, d, part);
        out += CRM_FCGI_HEADER + part;
        d += part;
        n -= part;
    }
}

void
crm_fcgi_set_id(unsigned char *buf, size_t n, unsigned id)
{
    struct crm_fcgi_rec rec;

    for (size_t off = 0; crm_fcgi_rec_parse(buf + off, n - off, &rec) == 1; off += rec.total) {
        buf[off + 2] = (unsigned char)(id >> 8);
        buf[off + 3] = (unsigned char)id;
    }
}

void
crm_fcgi_end(unsigned char out[CRM_FCGI_END_SIZE], unsigned id)
{
    header(out, CRM_FCGI_STDOUT, id, 0);
    header(out + 8, CRM_FCGI_END_REQUEST, id, 8);
    /* appStatus 0, protocolStatus FCGI_REQUEST_COMPLETE, reserved. */
    memset(out + 16, 0, 8);
}

/* A pair's length: one byte below 128, else four with the top bit set. */
static int
pair_len(const unsigned char **p, const unsigned char *end, size_t *len)
{
    if (*p >= end)
        return -1;
    if ((**p & 0x80) == 0) {
        *len = *(*p)++;
        return 0;
    }
    if (end - *p < 4)
        return -1;
    *len = ((size_t)((*p)[0] & 0x7f) << 24) | ((size_t)(*p)[1] << 16) | ((size_t)(*p)[2] << 8) |
           (*p)[3];
    *p += 4;
    return 0;
}

int
crm_fcgi_params(const unsigned char *p, size_t n,
                int (*fn)(void *arg, const char *name, size_t nlen, const char *val, size_t vlen),
                void *arg)
{
    const unsigned char *end;

    /* No stream at all (crm-events passes NULL, 0): NULL + 0 is undefined behaviour. */
    if (n == 0)
        return 0;
    end = p + n;
    while (p < end) {
        size_t nl, vl;

        if (pair_len(&p, end, &nl) != 0 || pair_len(&p, end, &vl) != 0 || (size_t)(end - p) < nl ||
            (size_t)(end - p) - nl < vl)
            return -1;
        if (fn(arg, (const char *)p, nl, (const char *)p + nl, vl) != 0)
            return 0;
        p += nl + vl;
    }
    return 0;
}
