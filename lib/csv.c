/* csv.c: one CSV record at a time, written straight to the response. */
#include "csv.h"

#include <string.h>

/* OWASP "CSV injection": these first characters make a cell a formula. */
static int
is_formula(const char *s)
{
    return *s != '\0' && strchr("=+-@\t\r", *s) != NULL;
}

/* The cell's text between quotes, each quote doubled. */
static int
put_quoted(const char *s, crm_put_fn put, void *sink)
{
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1)
        if (put(sink, s, (size_t)(q - s) + 1) != 0 || put(sink, "\"", 1) != 0)
            return -1;
    return put(sink, s, strlen(s));
}

static int
put_cell(const char *s, crm_put_fn put, void *sink)
{
    int quote = strpbrk(s, ",\"\r\n") != NULL;

    if (quote && put(sink, "\"", 1) != 0)
        return -1;
    if (is_formula(s) && put(sink, "'", 1) != 0)
        return -1;
    if ((quote ? put_quoted(s, put, sink) : put(sink, s, strlen(s))) != 0)
        return -1;
    return quote ? put(sink, "\"", 1) : 0;
}

int
crm_csv_record(const char *const *cells, int n, crm_put_fn put, void *sink)
{
    for (int i = 0; i < n; i++) {
        if (i > 0 && put(sink, ",", 1) != 0)
            return -1;
        if (cells[i] != NULL && put_cell(cells[i], put, sink) != 0)
            return -1;
    }
    return put(sink, "\r\n", 2);
}
