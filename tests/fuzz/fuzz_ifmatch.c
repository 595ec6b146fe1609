/*
 * fuzz_ifmatch.c: the If-Match header of every lead write through crm_req_if_match: *, a
 * version, or a quoted one; anything else can never match (412). Input: the header value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *h = fuzz_cstr(data, size);
    struct crm_req req;
    long long version = -1;
    int rc;

    memset(&req, 0, sizeof(req));
    req.if_match = h;
    rc = crm_req_if_match(&req, &version);
    fuzz_check(rc == 0 || rc == 1 || rc == -1, "a condition, none, or never");
    if (rc == 0)
        fuzz_check(strcmp(h, "*") == 0, "only * is no condition");
    if (rc == 1)
        fuzz_check(version >= 1 && version <= INT32_MAX, "a version is a positive int32");
    free(h);
    return 0;
}
