/* common.c: helpers of the fuzz targets (fuzz.h). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
fuzz_cstr(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);

    if (s == NULL)
        abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

void
fuzz_check(int ok, const char *msg)
{
    if (!ok) {
        fprintf(stderr, "fuzz: property broken: %s\n", msg);
        abort();
    }
}
