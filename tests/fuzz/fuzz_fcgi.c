/*
 * fuzz_fcgi.c: what nginx sends crm-events: FastCGI records through crm_fcgi_rec_parse, read as
 * its take_records() reads them (PARAMS content gathered until the empty PARAMS record), the
 * name-value pairs through crm_fcgi_params into an arena as its take_param() stores them, and
 * crm_fcgi_set_id over the whole records. The input is the byte stream of one connection.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "fcgirec.h"
#include "fuzz.h"

struct pairs {
    struct crm_arena arena;
    const unsigned char *start, *end; /* the PARAMS stream the pairs must lie in */
    size_t count;
};

static int
take_pair(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
    struct pairs *p = arg;
    const unsigned char *n = (const unsigned char *)name, *v = (const unsigned char *)val;

    fuzz_check(n >= p->start && nlen <= (size_t)(p->end - n), "a name lies in the stream");
    fuzz_check(v == n + nlen && vlen <= (size_t)(p->end - v), "its value follows it");
    if (crm_arena_strndup(&p->arena, name, nlen) == NULL ||
        crm_arena_strndup(&p->arena, val, vlen) == NULL)
        abort();
    p->count++;
    return 0;
}

static void
check_params(const unsigned char *params, size_t plen)
{
    struct pairs p = {.start = params, .end = plen > 0 ? params + plen : params};

    (void)crm_fcgi_params(params, plen, take_pair, &p);
    crm_arena_reset(&p.arena);
}

/* Relabelling whole records changes their ids and nothing else. */
static void
check_set_id(const uint8_t *data, size_t whole)
{
    unsigned char *copy = malloc(whole > 0 ? whole : 1);
    struct crm_fcgi_rec a, b;

    if (copy == NULL)
        abort();
    memcpy(copy, data, whole);
    crm_fcgi_set_id(copy, whole, 0xbeef);
    for (size_t off = 0; off < whole; off += a.total) {
        fuzz_check(crm_fcgi_rec_parse(data + off, whole - off, &a) == 1 &&
                       crm_fcgi_rec_parse(copy + off, whole - off, &b) == 1,
                   "whole records parse again");
        fuzz_check(b.id == 0xbeef && a.type == b.type && a.len == b.len && a.total == b.total,
                   "only the id changes");
    }
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *params = NULL;
    size_t plen = 0, off = 0;
    struct crm_fcgi_rec rec;
    int rc;

    while ((rc = crm_fcgi_rec_parse(data + off, size - off, &rec)) == 1) {
        fuzz_check(rec.total >= CRM_FCGI_HEADER + rec.len && rec.total <= size - off,
                   "a record lies in the input");
        fuzz_check(rec.content == data + off + CRM_FCGI_HEADER, "its content follows its header");
        off += rec.total;
        if (rec.type == CRM_FCGI_PARAMS && rec.len > 0) {
            unsigned char *grown = realloc(params, plen + rec.len);

            if (grown == NULL)
                abort();
            memcpy(grown + plen, rec.content, rec.len);
            params = grown;
            plen += rec.len;
        } else if (rec.type == CRM_FCGI_PARAMS) {
            check_params(params, plen);
            free(params);
            params = NULL;
            plen = 0;
        }
    }
    fuzz_check(rc == 0 || (off < size && data[off] != 1), "only a bad version is refused");
    check_set_id(data, off);
    free(params);
    return 0;
}
