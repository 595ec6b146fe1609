/*
 * fuzz_lastid.c: where an SSE client resumes. crm-events reads the Last-Event-ID header, else
 * ?last_event_id=, as a number from 0 (its resume_id() in cgi-src/events/server.c is static, so
 * this drives the library calls it makes: crm_req_query, then crm_parse_int over 0..INT64_MAX),
 * and takes the X-Request-Id header through crm_req_set_id. Input: the header value (used for
 * both headers), a newline, the query string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
    char *header = fuzz_cstr(data, hlen);
    char *query = fuzz_cstr(nl != NULL ? nl + 1 : data + size, nl != NULL ? size - hlen - 1 : 0);
    struct crm_req req;
    const char *q = NULL;
    long long v = -1;

    memset(&req, 0, sizeof(req));
    req.query = query;
    crm_req_set_id(&req, header);
    fuzz_check(strlen(req.id) > 0 && strlen(req.id) <= 64 &&
                   strspn(req.id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789._-") == strlen(req.id),
               "a request id is 1-64 safe characters");
    if (crm_req_query(&req, "last_event_id", &q) == CRM_OK) {
        if (header[0] != '\0')
            q = header;
        if (q != NULL && crm_parse_int(q, 0, INT64_MAX, &v) == 0)
            fuzz_check(v >= 0 &&
                           strspn(q + (q[0] == '-'), "0123456789") == strlen(q) - (q[0] == '-'),
                       "a resume id is a number from 0");
    }
    crm_arena_reset(&req.arena);
    free(header);
    free(query);
    return 0;
}
